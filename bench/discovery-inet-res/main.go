// Command discovery-inet-res compares gonode's DNS resolver with Erlang's
// inet_res on the same 4,000-record A answer, served in the same run by the
// same in-process miekg/dns server on 127.0.0.1.
//
// It runs -rounds rounds; in each, every contender makes one first lookup
// (a new resolver: for gonode the UDP, truncated, TCP path; for BEAM a new
// erl, so it includes loading inet_res) and -n timed lookups. The order of
// the contenders rotates from round to round. It prints the load average,
// each round's medians, the medians over all rounds and the ratios to
// inet_res. Run it through bench/discovery-inet-res.sh; it needs `erl` on
// PATH.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/discovery/discoverytest"
)

func main() {
	records := flag.Int("records", 4000, "A records in the answer")
	runs := flag.Int("n", 50, "timed lookups per contender per round")
	rounds := flag.Int("rounds", 5, "rounds; the contenders' order rotates between them")
	erl := flag.String("erl", "erl", "the erl executable")
	flag.Parse()
	if err := run(*records, *runs, *rounds, *erl); err != nil {
		fmt.Fprintln(os.Stderr, "discovery-inet-res:", err)
		os.Exit(1)
	}
}

// contender makes one first lookup and n timed ones.
type contender struct {
	name string
	run  func(n int) (first time.Duration, times []time.Duration, err error)
}

// result is what one contender measured over all rounds.
type result struct {
	firsts, times []time.Duration
	roundMedians  []time.Duration
}

func run(records, runs, rounds int, erl string) error {
	if runs < 1 || records < 1 || rounds < 1 {
		return fmt.Errorf("-n, -records and -rounds must be positive")
	}
	mux := dns.NewServeMux()
	mux.Handle(".", discoverytest.NewZone().AddA("peers.bench.", records))
	srv, err := discoverytest.StartServer(mux, discoverytest.ServerOptions{})
	if err != nil {
		return err
	}
	defer srv.Close()
	_, portStr, _ := strings.Cut(srv.Addr, ":")
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return err
	}
	fmt.Printf("server %s, %d A records, %d rounds of %d lookups per contender\n", srv.Addr, records, rounds, runs)
	fmt.Printf("load average at start: %s\n", loadavg())

	cs := []contender{
		{"gonode", gonode(srv.Addr, records)},
		{"inet_res", inetRes(erl, port, records)},
	}
	res := make([]result, len(cs))
	for round := range rounds {
		fmt.Printf("round %d:", round+1)
		for k := range cs {
			i := (round + k) % len(cs)
			first, times, err := cs[i].run(runs)
			if err != nil {
				return fmt.Errorf("%s: %w", cs[i].name, err)
			}
			res[i].firsts = append(res[i].firsts, first)
			res[i].times = append(res[i].times, times...)
			res[i].roundMedians = append(res[i].roundMedians, median(times))
			fmt.Printf("  %s %v", cs[i].name, median(times).Round(time.Microsecond))
		}
		fmt.Println()
	}
	fmt.Printf("load average at end: %s\n", loadavg())
	ref := res[len(res)-1] // inet_res comes last in cs
	for i, c := range cs {
		r := res[i]
		fmt.Printf("%-9s median %9v  min %9v  first (median) %9v\n", c.name, median(r.times).Round(time.Microsecond),
			slices.Min(r.times).Round(time.Microsecond), median(r.firsts).Round(time.Microsecond))
	}
	for i, c := range cs[:len(cs)-1] {
		r := res[i]
		var perRound []float64 // the contenders of one round ran a few seconds apart
		for k, m := range r.roundMedians {
			perRound = append(perRound, float64(m)/float64(ref.roundMedians[k]))
		}
		slices.Sort(perRound)
		fmt.Printf("ratio %s/inet_res: median %.3f, first %.3f, per round %.3f-%.3f (median %.3f)\n", c.name,
			float64(median(r.times))/float64(median(ref.times)), float64(median(r.firsts))/float64(median(ref.firsts)),
			perRound[0], perRound[len(perRound)-1], perRound[len(perRound)/2])
	}
	fmt.Println("(goal: gonode at most 0.5x inet_res)")
	return nil
}

// gonode times lookups with a new DNSResolver.
func gonode(addr string, records int) func(int) (time.Duration, []time.Duration, error) {
	return func(n int) (time.Duration, []time.Duration, error) {
		r := discovery.NewDNSResolverFrom(discovery.ResolvConf{Nameservers: []string{addr}, Timeout: 5 * time.Second, Attempts: 1})
		q := discovery.Query{Name: "peers.bench.", Type: discovery.TypeA}
		lookup := func() (time.Duration, error) {
			start := time.Now()
			ans, err := r.Lookup(context.Background(), q)
			d := time.Since(start)
			if err != nil {
				return 0, err
			}
			if len(ans.Addrs) != records {
				return 0, fmt.Errorf("got %d addresses, want %d", len(ans.Addrs), records)
			}
			return d, nil
		}
		first, err := lookup()
		if err != nil {
			return 0, nil, err
		}
		times := make([]time.Duration, 0, n)
		for range n {
			d, err := lookup()
			if err != nil {
				return 0, nil, err
			}
			times = append(times, d)
		}
		return first, times, nil
	}
}

// inetRes times lookups with inet_res:resolve in a new erl -noshell.
func inetRes(erl string, port, records int) func(int) (time.Duration, []time.Duration, error) {
	return func(n int) (time.Duration, []time.Duration, error) {
		script := fmt.Sprintf(`
Opts = [{nameservers, [{{127,0,0,1}, %d}]}],
F = fun() -> {ok, Msg} = inet_res:resolve("peers.bench", in, a, Opts), length(inet_dns:msg(Msg, anlist)) end,
{T1, C1} = timer:tc(F),
Ts = [begin {T, C1} = timer:tc(F), T end || _ <- lists:seq(1, %d)],
io:format("RESULT ~p ~p ~w~n", [C1, T1, Ts]),
halt().`, port, n)
		out, err := exec.Command(erl, "-noshell", "-eval", script).CombinedOutput()
		if err != nil {
			return 0, nil, fmt.Errorf("erl: %w: %s", err, out)
		}
		line := ""
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "RESULT ") {
				line = strings.TrimPrefix(l, "RESULT ")
			}
		}
		f := strings.SplitN(line, " ", 3)
		if len(f) != 3 {
			return 0, nil, fmt.Errorf("erl printed no result: %s", out)
		}
		if f[0] != strconv.Itoa(records) {
			return 0, nil, fmt.Errorf("got %s records, want %d", f[0], records)
		}
		firstUS, err := strconv.Atoi(f[1])
		if err != nil {
			return 0, nil, fmt.Errorf("erl output %q: %w", f[1], err)
		}
		var times []time.Duration
		for _, s := range strings.Split(strings.Trim(f[2], "[]"), ",") {
			us, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return 0, nil, fmt.Errorf("erl output %q: %w", f[2], err)
			}
			times = append(times, time.Duration(us)*time.Microsecond)
		}
		return time.Duration(firstUS) * time.Microsecond, times, nil
	}
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
