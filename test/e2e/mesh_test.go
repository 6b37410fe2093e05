//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/meshview"
)

// pod is a pod of the example's Erlang cluster as Kubernetes shows it.
type pod struct {
	Name, IP, App string
	Ready         bool
	Terminating   bool
}

// nodeName is the Erlang node the pod runs.
func (p pod) nodeName() string { return basename + "@" + p.IP }

// pods lists the cluster's pods (label erlang.cluster/name=myapp).
func pods(t testing.TB) []pod {
	t.Helper()
	out := mustKubectl(t, "get", "pods", "-n", namespace, "-l", "erlang.cluster/name="+basename, "-o",
		`jsonpath={range .items[*]}{.metadata.name}{"\t"}{.status.podIP}{"\t"}{.metadata.labels.app\.kubernetes\.io/name}{"\t"}{.status.conditions[?(@.type=="Ready")].status}{"\t"}{.metadata.deletionTimestamp}{"\n"}{end}`)
	var ps []pod
	// Not TrimSpace: a line ends in a tab when its last field is empty.
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, "\t")
		if len(f) < 5 {
			continue
		}
		ps = append(ps, pod{Name: f[0], IP: f[1], App: f[2], Ready: f[3] == "True", Terminating: f[4] != ""})
	}
	recordIPs(ps)
	return ps
}

// running is the pods that run a node: an IP, Ready, not being deleted.
func running(ps []pod) []pod {
	var r []pod
	for _, p := range ps {
		if p.IP != "" && p.Ready && !p.Terminating {
			r = append(r, p)
		}
	}
	return r
}

func ofApp(ps []pod, app string) []pod {
	var r []pod
	for _, p := range ps {
		if p.App == app {
			r = append(r, p)
		}
	}
	return r
}

// rpc evaluates Elixir code in the release of an Elixir pod and returns
// what it printed.
func rpc(ctx context.Context, podName, code string) (string, error) {
	return kubectl(ctx, "exec", "-n", namespace, podName, "-c", "elixir", "--",
		"/app/bin/gonode_example", "rpc", code)
}

// meshView asks the Elixir pod observer for every node's peers.
func meshView(ctx context.Context, observer string) (map[string][]string, error) {
	out, err := rpc(ctx, observer, meshview.Code)
	if err != nil {
		return nil, err
	}
	return meshview.Parse(out, basename), nil
}

// fullMesh reports whether every pod of ps runs a node connected to every
// other pod's node and to no other node of the cluster, as seen from an
// Elixir pod of ps; state describes what differs.
func fullMesh(ps []pod) (ok bool, state string) {
	els := ofApp(ps, "elixir")
	if len(els) == 0 {
		return false, "no Elixir pod to look from"
	}
	var want []string
	for _, p := range ps {
		want = append(want, p.nodeName())
	}
	sort.Strings(want)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	view, err := meshView(ctx, els[0].Name)
	if err != nil {
		return false, err.Error()
	}
	ok, state = meshview.Full(view, want, "pod")
	if !ok {
		state = "seen from " + els[0].nodeName() + ":\n" + state
	}
	return ok, state
}

func without(l []string, x string) []string {
	var r []string
	for _, s := range l {
		if s != x {
			r = append(r, s)
		}
	}
	return r
}

func contains(l []string, x string) bool {
	for _, s := range l {
		if s == x {
			return true
		}
	}
	return false
}

// waitMesh waits until the cluster's running pods number want (per app) and
// form a full mesh, and returns them. It logs how long the mesh took after
// the pods were all Ready.
func waitMesh(t *testing.T, wantElixir, wantGo int, within time.Duration) []pod {
	t.Helper()
	var ps []pod
	var allReady time.Time
	start := time.Now()
	eventually(t, within, "full mesh", func() (bool, string) {
		all := pods(t)
		ps = running(all)
		if len(ofApp(ps, "elixir")) != wantElixir || len(ofApp(ps, "gonode")) != wantGo || len(ps) != len(all) {
			allReady = time.Time{}
			return false, fmt.Sprintf("pods %+v, want %d elixir and %d gonode running, none other", all, wantElixir, wantGo)
		}
		if allReady.IsZero() {
			allReady = time.Now()
		}
		return fullMesh(ps)
	})
	t.Logf("full mesh of %d Elixir and %d gonode pods %s after the last pod was Ready (%s in all)",
		wantElixir, wantGo, time.Since(allReady).Round(100*time.Millisecond), time.Since(start).Round(100*time.Millisecond))
	return ps
}

// deploy applies the example overlay to the test namespace with only the
// namespace and image names set, for the Elixir image elixirTag
// (gonode-example:<elixirTag>).
func deploy(t *testing.T, elixirTag string) {
	t.Helper()
	dir := t.TempDir()
	// kustomize takes only relative paths to other kustomizations.
	overlay, err := filepath.Rel(dir, filepath.Join(repoRoot, "deploy", "kubernetes", "overlays", "example"))
	if err != nil {
		t.Fatal(err)
	}
	k := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %s
resources:
  - %s
images:
  - {name: gonode, newName: gonode, newTag: e2e}
  - {name: gonode-example, newName: gonode-example, newTag: %s}
`, namespace, overlay, elixirTag)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, "apply", "-k", dir)
}

// TestManifestsPassServerDryRun: the example overlay as a user applies it.
func TestManifestsPassServerDryRun(t *testing.T) {
	out := mustKubectl(t, "apply", "--dry-run=server", "-k", filepath.Join(repoRoot, "deploy", "kubernetes", "overlays", "example"))
	t.Logf("%s", out)
	for _, want := range []string{"deployment.apps/gonode", "deployment.apps/elixir", "service/myapp-headless",
		"networkpolicy.networking.k8s.io/myapp-erlang-dist", "poddisruptionbudget.policy/gonode", "secret/erlang-cookie"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run does not show %s", want)
		}
	}
}

// TestMeshAndCalls: 3 Elixir pods on OTP 27 and 2 gonode pods form one full
// mesh; Elixir calls gonode's server by name and gonode calls Elixir's.
func TestMeshAndCalls(t *testing.T) {
	mustKubectl(t, "create", "namespace", namespace)
	deploy(t, "otp27")
	ps := waitMesh(t, 3, 2, 5*time.Minute)
	checkCalls(t, ps)
	// gonode read the cookie from the Secret's file (it has no other
	// source in the Deployment) and did not find it readable by others.
	for _, g := range ofApp(ps, "gonode") {
		logs := mustKubectl(t, "logs", "-n", namespace, g.Name)
		if strings.Contains(logs, "cookie file") {
			t.Errorf("gonode %s warns about its cookie file:\n%s", g.Name, logs)
		}
	}
}

// checkCalls makes, from the first Elixir pod, an Elixir -> Go call to
// every gonode pod and a Go -> Elixir call from every gonode pod to every
// Elixir pod.
func checkCalls(t *testing.T, ps []pod) {
	t.Helper()
	els, gos := ofApp(ps, "elixir"), ofApp(ps, "gonode")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, g := range gos {
		out, err := rpc(ctx, els[0].Name, fmt.Sprintf(`IO.inspect(GenServer.call({:gonode, :"%s"}, :ping))`, g.nodeName()))
		if err != nil || strings.TrimSpace(out) != ":pong" {
			t.Errorf("Elixir %s -> gonode %s ping: %q, %v; want :pong", els[0].nodeName(), g.nodeName(), out, err)
		}
		for _, e := range els {
			out, err := rpc(ctx, els[0].Name, fmt.Sprintf(`IO.inspect(GonodeExample.go_calls_greeter(:"%s", :"%s"))`, g.nodeName(), e.nodeName()))
			want := fmt.Sprintf(`{:ok, {:hello, :"%s", :"%s",`, g.nodeName(), e.nodeName())
			if err != nil || !strings.HasPrefix(strings.TrimSpace(out), want) {
				t.Errorf("gonode %s -> Elixir %s :greeter: %q, %v; want %s...", g.nodeName(), e.nodeName(), out, err, want)
			}
		}
	}
}

// TestScaleUpAndDown: joiners are meshed; removed pods are pruned on every
// node.
func TestScaleUpAndDown(t *testing.T) {
	mustKubectl(t, "scale", "-n", namespace, "deployment/elixir", "--replicas=4")
	mustKubectl(t, "scale", "-n", namespace, "deployment/gonode", "--replicas=3")
	waitMesh(t, 4, 3, 5*time.Minute)
	mustKubectl(t, "scale", "-n", namespace, "deployment/elixir", "--replicas=2")
	mustKubectl(t, "scale", "-n", namespace, "deployment/gonode", "--replicas=1")
	waitMesh(t, 2, 1, 5*time.Minute)
	mustKubectl(t, "scale", "-n", namespace, "deployment/elixir", "--replicas=3")
	mustKubectl(t, "scale", "-n", namespace, "deployment/gonode", "--replicas=2")
	ps := waitMesh(t, 3, 2, 5*time.Minute)
	checkCalls(t, ps)
}

// TestDeletedPodsAreReplacedInTheMesh: a deleted pod's node leaves every
// node's peers and its replacement (a new IP) joins; an Elixir pod calling
// the Ready gonode pods meanwhile loses no call but one in flight to the
// deleted gonode pod. Pods are deleted until a replacement gets the IP of a
// pod that is gone (the cluster's pod range is small: scripts/k8s-env.sh),
// and the mesh is checked again with it.
func TestDeletedPodsAreReplacedInTheMesh(t *testing.T) {
	reused := false
	for round := 1; round <= 6 && !reused; round++ {
		ps := running(pods(t))
		els := ofApp(ps, "elixir")
		victims := []pod{ofApp(ps, "gonode")[0], els[len(els)-1]}
		c := startCaller(t, els[0].Name)
		for _, v := range victims {
			mustKubectl(t, "delete", "pod", "-n", namespace, v.Name, "--wait=false")
		}
		after := waitMesh(t, 3, 2, 5*time.Minute)
		stats, dnsErrors := c.stop(t)
		logCalls(t, fmt.Sprintf("round %d, %s and %s deleted", round, victims[0].Name, victims[1].Name), stats, dnsErrors)
		for n, s := range stats {
			if n == victims[0].nodeName() {
				if s.Fails > 1 {
					t.Errorf("%d calls to the deleted gonode %s failed, want at most the one in flight: %s", s.Fails, n, s.Reasons)
				}
			} else if s.Fails > 0 {
				t.Errorf("%d calls to gonode %s failed: %s", s.Fails, n, s.Reasons)
			}
		}
		if stats[victims[0].nodeName()].Calls == 0 {
			t.Errorf("the caller never called the deleted gonode %s", victims[0].nodeName())
		}
		for _, v := range victims {
			for _, p := range after {
				if p.Name == v.Name {
					t.Errorf("deleted pod %s still runs", v.Name)
				}
			}
		}
		checkCalls(t, after)
		for _, p := range after {
			if contains(podNames(ps), p.Name) {
				continue
			}
			if prev := earlierHolders(p); len(prev) > 0 {
				t.Logf("round %d: the new pod %s has the IP %s that %v had", round, p.Name, p.IP, prev)
				reused = true
			}
		}
		if t.Failed() {
			return
		}
	}
	if !reused {
		t.Errorf("no new pod got the IP of a pod that is gone in 6 rounds of deletions")
	}
}

// TestRolloutRestartOfGonode: the new gonode pods mesh, the old ones are
// gone from every node, and every Elixir node saw each old gonode node go
// down once and never come back (a stopping gonode does not reconnect to
// the peers it left).
//
// Meanwhile an Elixir pod calls every gonode pod that is Ready (as a
// Service publishing only Ready addresses names them): no call fails, and
// each old gonode pod left the Ready set before its node went down.
func TestRolloutRestartOfGonode(t *testing.T) {
	before := running(pods(t))
	old := ofApp(before, "gonode")
	// What each Elixir node saw of the old gonode nodes so far: with pod
	// IPs reused, a name may have come and gone before.
	seen := map[string]map[string][2]int{}
	for _, e := range ofApp(before, "elixir") {
		seen[e.Name] = upsAndDowns(t, e, old)
	}
	c := startCaller(t, ofApp(before, "elixir")[0].Name)
	mustKubectl(t, "rollout", "restart", "-n", namespace, "deployment/gonode")
	mustKubectl(t, "rollout", "status", "-n", namespace, "deployment/gonode", "--timeout=5m")
	after := waitMesh(t, 3, 2, 5*time.Minute)
	// Until the Ready answer names exactly the new pods (CoreDNS caches it
	// for 5 s); the caller resolves it every few milliseconds.
	var want []string
	for _, g := range ofApp(after, "gonode") {
		want = append(want, g.IP)
	}
	sort.Strings(want)
	eventually(t, time.Minute, "the Ready answer names the new gonode pods", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := rpc(ctx, c.pod, fmt.Sprintf(`{:ok, {:hostent, _, _, _, _, a}} = :inet_res.getbyname(~c"%s.%s.svc.cluster.local", :a)
IO.puts(a |> Enum.map(&:inet.ntoa/1) |> Enum.sort() |> Enum.join(" "))`, readyService, namespace))
		return err == nil && strings.TrimSpace(out) == strings.Join(want, " "), fmt.Sprintf("answer %q (%v), want %v", out, err, want)
	})
	stats, dnsErrors := c.stop(t)
	logCalls(t, "rollout restart", stats, dnsErrors)
	for n, s := range stats {
		if s.Fails > 0 {
			t.Errorf("%d of %d calls to the Ready gonode %s failed: %s", s.Fails, s.Calls, n, s.Reasons)
		}
	}
	for _, o := range old {
		s, ok := stats[o.nodeName()]
		switch {
		case !ok || s.Calls == 0:
			t.Errorf("the caller never called the old gonode %s", o.nodeName())
		case !s.WentDown:
			t.Errorf("the caller never saw the old gonode %s go down", o.nodeName())
		case s.LastReady >= s.Down:
			t.Errorf("the old gonode %s went down while Ready: last in the Ready answer %d ms after its node went down", o.nodeName(), s.LastReady-s.Down)
		}
	}
	for _, g := range ofApp(after, "gonode") {
		if stats[g.nodeName()].Calls == 0 {
			t.Errorf("the caller never called the new gonode %s", g.nodeName())
		}
	}
	for _, o := range old {
		for _, p := range after {
			if p.Name == o.Name {
				t.Errorf("old gonode pod %s still runs after the rollout", o.Name)
			}
		}
	}
	for _, e := range ofApp(after, "elixir") {
		if !contains(podNames(before), e.Name) {
			continue // an Elixir pod that did not see the old gonode pods
		}
		now := upsAndDowns(t, e, old)
		for _, o := range old {
			n := o.nodeName()
			ups, downs := now[n][0]-seen[e.Name][n][0], now[n][1]-seen[e.Name][n][1]
			if ups != 0 || downs != 1 {
				t.Errorf("during the rollout Elixir %s saw the old gonode %s come up %d times and go down %d times, want 0 and 1", e.nodeName(), n, ups, downs)
			}
			t.Logf("during the rollout Elixir %s saw the old gonode %s come up %d times and go down %d times", e.nodeName(), n, ups, downs)
		}
	}
	checkCalls(t, after)
}

// upsAndDowns returns how many times the Elixir pod e saw each of nodes'
// nodes come up and go down (GonodeExample.Cluster's nodeup and nodedown
// counts).
func upsAndDowns(t *testing.T, e pod, nodes []pod) map[string][2]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var code strings.Builder
	code.WriteString("s = GonodeExample.Cluster.status()\n")
	for _, o := range nodes {
		fmt.Fprintf(&code, "IO.puts(\"%s #{Map.get(s.ups, :\"%s\", 0)} #{Map.get(s.downs, :\"%s\", 0)}\")\n", o.nodeName(), o.nodeName(), o.nodeName())
	}
	out, err := rpc(ctx, e.Name, code.String())
	if err != nil {
		t.Fatal(err)
	}
	r := map[string][2]int{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var n string
		var ups, downs int
		if _, err := fmt.Sscanf(l, "%s %d %d", &n, &ups, &downs); err != nil {
			t.Fatalf("%s: %q: %v", e.Name, l, err)
		}
		r[n] = [2]int{ups, downs}
	}
	return r
}

func podNames(ps []pod) []string {
	var r []string
	for _, p := range ps {
		r = append(r, p.Name)
	}
	return r
}

// TestCoreDNSOutageKeepsTheMesh: with CoreDNS stopped for 30 s no node loses
// a link, and the mesh still follows pods once it is back.
func TestCoreDNSOutageKeepsTheMesh(t *testing.T) {
	ps := waitMesh(t, 3, 2, 5*time.Minute)
	if out, err := script(time.Minute, "k8s-dns.sh", "stop"); err != nil {
		t.Fatalf("stopping CoreDNS: %v\n%s", err, out)
	}
	restarted := false
	defer func() {
		if !restarted {
			_, _ = script(2*time.Minute, "k8s-dns.sh", "start")
		}
	}()
	// The mesh must hold at every look for 30 s (a hold, not a deadline: the
	// loop checks a condition over a span, it does not time anything).
	end := time.Now().Add(30 * time.Second)
	looks := 0
	for time.Now().Before(end) {
		if ok, state := fullMesh(ps); !ok {
			t.Fatalf("a link was lost during the DNS outage (look %d):\n%s", looks+1, state)
		}
		looks++
	}
	t.Logf("mesh intact at each of %d looks during a 30 s CoreDNS outage", looks)
	if out, err := script(2*time.Minute, "k8s-dns.sh", "start"); err != nil {
		t.Fatalf("starting CoreDNS: %v\n%s", err, out)
	}
	restarted = true
	mustKubectl(t, "scale", "-n", namespace, "deployment/elixir", "--replicas=4")
	waitMesh(t, 4, 2, 5*time.Minute)
	mustKubectl(t, "scale", "-n", namespace, "deployment/elixir", "--replicas=3")
	waitMesh(t, 3, 2, 5*time.Minute)
}

// scrape fetches http://ip:9568/metrics from the cluster's network (the
// node's namespace, where the kubelet probes and a scraper would run).
func scrape(t *testing.T, ip string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/gonode-k8s", "--", "bash", "-c",
		`exec 3<>"/dev/tcp/$1/9568" && printf 'GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" >&3 && cat <&3`, "_", ip)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scraping %s: %v", ip, err)
	}
	return string(out)
}

// TestMetricsShowTheMesh: each gonode pod's /metrics, scraped from inside
// the cluster's network, counts every other node as a connected peer.
func TestMetricsShowTheMesh(t *testing.T) {
	ps := waitMesh(t, 3, 2, 5*time.Minute)
	want := fmt.Sprintf("gonode_node_peers %d", len(ps)-1)
	for _, g := range ofApp(ps, "gonode") {
		m := scrape(t, g.IP)
		if !strings.Contains(m, "\n"+want+"\n") {
			var lines []string
			for _, l := range strings.Split(m, "\n") {
				if strings.HasPrefix(l, "gonode_node_peers") || strings.HasPrefix(l, "gonode_discovery_peers") {
					lines = append(lines, l)
				}
			}
			t.Errorf("%s /metrics: want %q, got %v", g.nodeName(), want, lines)
		}
	}
}

// TestMeshWithOTP25Elixir: the Elixir pods replaced by the same release on
// the host's OTP 25 (only the image changes) mesh with gonode and call it
// both ways.
func TestMeshWithOTP25Elixir(t *testing.T) {
	deploy(t, "otp25")
	mustKubectl(t, "rollout", "status", "-n", namespace, "deployment/elixir", "--timeout=5m")
	ps := waitMesh(t, 3, 2, 5*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := rpc(ctx, ofApp(ps, "elixir")[0].Name, `IO.puts(:erlang.system_info(:otp_release))`)
	if err != nil || strings.TrimSpace(out) != "25" {
		t.Fatalf("the Elixir pods run OTP %q (%v), want 25", out, err)
	}
	checkCalls(t, ps)
}
