//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// readyService is a headless Service of the test's own (not part of
// deploy/kubernetes) whose DNS answer names only the gonode pods that are
// Ready: what a client that calls gonode through a Service sees.
const readyService = "gonode-ready"

func ensureReadyService(t *testing.T) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "svc.yaml")
	svc := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %s, namespace: %s}
spec:
  clusterIP: None
  publishNotReadyAddresses: false
  selector: {app.kubernetes.io/name: gonode}
  ports: [{name: dist, port: 9000}]
`, readyService, namespace)
	if err := os.WriteFile(f, []byte(svc), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, "apply", "-f", f)
}

// callerCode starts, on an Elixir node, a process registered as :e2e_caller
// that loops: it resolves readyService (the Ready gonode pods), calls
// gonode's built-in server on each (ping, 2 s timeout), one call at a time,
// and records per node the calls, the failed calls (with their first
// reasons), the last time the node was in the Ready answer and the first
// time it went down here (monotonic milliseconds).
const callerCode = `
if p = Process.whereis(:e2e_caller), do: Process.exit(p, :kill)
svc = ~c"%s"
now = fn -> System.monotonic_time(:millisecond) end
pid = spawn(fn ->
  :ok = :net_kernel.monitor_nodes(true)
  drain = fn drain, st ->
    receive do
      {:nodedown, n} -> drain.(drain, %%{st | down: Map.put_new(st.down, n, now.())})
      {:nodeup, _} -> drain.(drain, st)
      {:stop, from} -> send(from, {:e2e_caller, st}); exit(:normal)
    after 0 -> st
    end
  end
  step = fn step, st ->
    st = drain.(drain, st)
    st =
      case :inet_res.getbyname(svc, :a, 2000) do
        {:ok, {:hostent, _, _, :inet, _, addrs}} ->
          Enum.reduce(addrs, st, fn ip, st ->
            n = :"%s@#{:inet.ntoa(ip)}"
            st = %%{st | ready: Map.put(st.ready, n, now.()), calls: Map.update(st.calls, n, 1, &(&1 + 1))}
            r =
              try do
                GenServer.call({:gonode, n}, :ping, 2000)
              catch
                :exit, reason -> {:exit, reason}
              end
            if r == :pong do
              st
            else
              %%{st | fails: Map.update(st.fails, n, [inspect(r)], &[inspect(r) | &1])}
            end
          end)
        _ -> %%{st | dns_errors: st.dns_errors + 1}
      end
    Process.sleep(20)
    step.(step, st)
  end
  step.(step, %%{calls: %%{}, fails: %%{}, ready: %%{}, down: %%{}, dns_errors: 0})
end)
Process.register(pid, :e2e_caller)
IO.puts("started")
`

// stopCallerCode stops :e2e_caller and prints one line per node it called:
// name, calls, failed calls, last Ready time, first down time ("-" if none)
// and then, after "|", the first failures' reasons.
const stopCallerCode = `
send(:e2e_caller, {:stop, self()})
receive do
  {:e2e_caller, st} ->
    for n <- Enum.sort(Map.keys(st.calls)) do
      f = Map.get(st.fails, n, [])
      IO.puts("#{n} #{st.calls[n]} #{length(f)} #{st.ready[n]} #{Map.get(st.down, n, "-")} | #{f |> Enum.reverse() |> Enum.take(3) |> Enum.join(" ; ")}")
    end
    IO.puts("dns_errors #{st.dns_errors}")
after
  15000 -> IO.puts("the caller did not answer")
end
`

// callStats is what the caller saw of one gonode node.
type callStats struct {
	Calls, Fails int
	LastReady    int64 // monotonic ms
	Down         int64 // monotonic ms of the first nodedown, if WentDown
	WentDown     bool
	Reasons      string
}

// caller is a running :e2e_caller on an Elixir pod.
type caller struct {
	pod  string
	once sync.Once
}

func startCaller(t *testing.T, podName string) *caller {
	t.Helper()
	ensureReadyService(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := rpc(ctx, podName, fmt.Sprintf(callerCode, readyService+"."+namespace+".svc.cluster.local", basename))
	if err != nil || strings.TrimSpace(out) != "started" {
		t.Fatalf("starting the caller on %s: %q, %v", podName, out, err)
	}
	c := &caller{pod: podName}
	t.Cleanup(func() { c.once.Do(func() { _, _ = rpc(context.Background(), podName, stopCallerCode) }) })
	return c
}

// stop stops the caller and returns what it saw per node.
func (c *caller) stop(t *testing.T) (map[string]callStats, string) {
	t.Helper()
	var out string
	var err error
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err = rpc(ctx, c.pod, stopCallerCode)
	})
	if err != nil {
		t.Fatalf("stopping the caller: %v", err)
	}
	stats := map[string]callStats{}
	var dns string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		head, reasons, _ := strings.Cut(l, " | ")
		f := strings.Fields(head)
		if len(f) == 2 && f[0] == "dns_errors" {
			dns = f[1]
			continue
		}
		var s callStats
		var down string
		if len(f) != 5 {
			t.Fatalf("caller: unexpected line %q in %q", l, out)
		}
		if _, err := fmt.Sscan(strings.Join(f[1:4], " "), &s.Calls, &s.Fails, &s.LastReady); err != nil {
			t.Fatalf("caller: %q: %v", l, err)
		}
		down = f[4]
		if down != "-" {
			s.WentDown = true
			if _, err := fmt.Sscan(down, &s.Down); err != nil {
				t.Fatalf("caller: %q: %v", l, err)
			}
		}
		s.Reasons = strings.TrimSpace(reasons)
		stats[f[0]] = s
	}
	if dns == "" {
		t.Fatalf("caller: no summary in %q", out)
	}
	return stats, dns
}

// logCalls logs the caller's figures.
func logCalls(t *testing.T, what string, stats map[string]callStats, dnsErrors string) {
	t.Helper()
	var names []string
	for n := range stats {
		names = append(names, n)
	}
	sort.Strings(names)
	total, failed := 0, 0
	for _, n := range names {
		s := stats[n]
		total += s.Calls
		failed += s.Fails
		down := "never went down"
		if s.WentDown {
			down = fmt.Sprintf("went down %d ms after it was last Ready", s.Down-s.LastReady)
		}
		t.Logf("%s: Elixir -> gonode %s: %d calls, %d failed; %s %s", what, n, s.Calls, s.Fails, down, s.Reasons)
	}
	t.Logf("%s: %d calls to Ready gonode pods, %d failed; %s failed DNS lookups", what, total, failed, dnsErrors)
}

// ipHistory is every pod IP seen during the run and the pods that had it.
var ipHistory = struct {
	sync.Mutex
	pods map[string][]string
}{pods: map[string][]string{}}

func recordIPs(ps []pod) {
	ipHistory.Lock()
	defer ipHistory.Unlock()
	for _, p := range ps {
		if p.IP != "" && !contains(ipHistory.pods[p.IP], p.Name) {
			ipHistory.pods[p.IP] = append(ipHistory.pods[p.IP], p.Name)
		}
	}
}

// earlierHolders returns the pods other than p that had p's IP before.
func earlierHolders(p pod) []string {
	ipHistory.Lock()
	defer ipHistory.Unlock()
	return without(ipHistory.pods[p.IP], p.Name)
}
