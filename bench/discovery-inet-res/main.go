// Command discovery-inet-res compares gonode's DNS resolver with Erlang's
// inet_res on the same 4,000-record A answer, served in the same run by the
// same in-process miekg/dns server on 127.0.0.1.
//
// It times N lookups with each (the first call separately: it includes
// connection set-up and, for BEAM, loading inet_res), and prints the
// medians and the ratio gonode/inet_res. Run it through
// bench/discovery-inet-res.sh; it needs `erl` on PATH.
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
	runs := flag.Int("n", 50, "timed lookups per resolver")
	erl := flag.String("erl", "erl", "the erl executable")
	flag.Parse()
	if err := run(*records, *runs, *erl); err != nil {
		fmt.Fprintln(os.Stderr, "discovery-inet-res:", err)
		os.Exit(1)
	}
}

func run(records, runs int, erl string) error {
	if runs < 1 || records < 1 {
		return fmt.Errorf("-n and -records must be positive")
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
	fmt.Printf("server %s, %d A records, %d runs each\n", srv.Addr, records, runs)

	// gonode
	r := discovery.NewDNSResolverFrom(discovery.ResolvConf{Nameservers: []string{srv.Addr}, Timeout: 5 * time.Second, Attempts: 1})
	q := discovery.Query{Name: "peers.bench.", Type: discovery.TypeA}
	lookup := func() (time.Duration, error) {
		start := time.Now()
		ans, err := r.Lookup(context.Background(), q)
		d := time.Since(start)
		if err != nil {
			return 0, err
		}
		if len(ans.Addrs) != records {
			return 0, fmt.Errorf("gonode got %d addresses, want %d", len(ans.Addrs), records)
		}
		return d, nil
	}
	goFirst, err := lookup()
	if err != nil {
		return err
	}
	goTimes := make([]time.Duration, 0, runs)
	for range runs {
		d, err := lookup()
		if err != nil {
			return err
		}
		goTimes = append(goTimes, d)
	}

	// inet_res, same server, same answer
	script := fmt.Sprintf(`
Opts = [{nameservers, [{{127,0,0,1}, %d}]}],
F = fun() -> {ok, Msg} = inet_res:resolve("peers.bench", in, a, Opts), length(inet_dns:msg(Msg, anlist)) end,
{T1, C1} = timer:tc(F),
Ts = [begin {T, C1} = timer:tc(F), T end || _ <- lists:seq(1, %d)],
io:format("RESULT ~p ~p ~w~n", [C1, T1, Ts]),
halt().`, port, runs)
	out, err := exec.Command(erl, "-noshell", "-eval", script).CombinedOutput()
	if err != nil {
		return fmt.Errorf("erl: %w: %s", err, out)
	}
	line := ""
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "RESULT ") {
			line = strings.TrimPrefix(l, "RESULT ")
		}
	}
	f := strings.SplitN(line, " ", 3)
	if len(f) != 3 {
		return fmt.Errorf("erl printed no result: %s", out)
	}
	if f[0] != strconv.Itoa(records) {
		return fmt.Errorf("inet_res got %s records, want %d", f[0], records)
	}
	erlFirstUS, _ := strconv.Atoi(f[1])
	var erlTimes []time.Duration
	for _, s := range strings.Split(strings.Trim(f[2], "[]"), ",") {
		us, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("erl output %q: %w", f[2], err)
		}
		erlTimes = append(erlTimes, time.Duration(us)*time.Microsecond)
	}
	goMed, erlMed := median(goTimes), median(erlTimes)
	fmt.Printf("%-10s first %10v  median %10v  min %10v\n", "gonode", goFirst.Round(time.Microsecond), goMed.Round(time.Microsecond), slices.Min(goTimes).Round(time.Microsecond))
	fmt.Printf("%-10s first %10v  median %10v  min %10v\n", "inet_res", (time.Duration(erlFirstUS) * time.Microsecond), erlMed, slices.Min(erlTimes))
	fmt.Printf("ratio gonode/inet_res: median %.3f, first %.3f (goal <= 0.5)\n",
		float64(goMed)/float64(erlMed), float64(goFirst)/float64(time.Duration(erlFirstUS)*time.Microsecond))
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
