// Command suite is `make bench`: gonode against BEAM nodes, in one run on a
// quiet machine. It measures
//   - calls: Elixir callers -> a Go genserver.Server echo and -> a BEAM
//     GenServer echo; Go callers -> the BEAM echo through genserver's
//     Process.Call from long-lived processes and through Node.Call; 1, 16
//     and 256 concurrent callers; small, 1 KiB and 64 KiB terms; calls per
//     second, latency percentiles, and the CPU time and context switches per
//     call of the server's and the callers' operating system processes;
//   - one-way messages BEAM -> Go and Go -> BEAM against BEAM -> BEAM;
//   - memory: a fresh node's resident set, and what an idle registered
//     gen_server (fresh, and again after it handled 65,536 messages) and a
//     connected peer add, gonode against `erl`;
//
// on each OTP release asked for, and writes the generated section of
// BENCHMARKS.md (between its markers) and bench/results/latest.json, from
// which bench/plot draws the charts. It refuses to publish when the machine
// was busy: a 1-minute load average above -max-load at the start or at the
// end (after the run's own load has decayed, -cooldown) makes it exit
// non-zero without writing anything but bench/results/refused.json;
// -allow-busy writes anyway and marks the output NOT PUBLISHABLE.
//
// It needs root: it re-executes itself in a network namespace of its own
// (internal/beamtest), where its BEAM nodes and EPMD run. scripts/bench.sh
// runs it and then the chart program.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
)

type options struct {
	quick, allowBusy bool
	maxLoad          float64
	cooldown         time.Duration
	releases         []string
	benchmarks       string // BENCHMARKS.md
	resultsDir       string
	chartDir         string // relative to BENCHMARKS.md's directory
	rounds           int
	cell, warmup     time.Duration
	callers          []int
	sizes            []string
	messages         map[string]int
	servers, peers   int
}

func main() {
	var o options
	var rels string
	probe := flag.Bool("probe-memory", false, "internal: run the memory probe (a fresh gonode node) and print its resident set sizes")
	probeName := flag.String("probe-name", "", "internal: the probe's node name")
	probeCookie := flag.String("probe-cookie", "", "internal: the probe's cookie")
	probePeers := flag.String("probe-peers", "", "internal: comma-separated peers the probe connects to")
	flag.BoolVar(&o.quick, "quick", false, "development mode: OTP 25 only, one short round per cell, fewer messages (under 2 minutes); not publishable, so it writes only with -allow-busy")
	flag.BoolVar(&o.allowBusy, "allow-busy", false, "development: write BENCHMARKS.md and the charts even when the load average was above -max-load, marked NOT PUBLISHABLE")
	flag.Float64Var(&o.maxLoad, "max-load", DefaultMaxLoad, "the highest 1-minute load average at the start and at the end at which the figures are published; a limit above 1.5 makes the run not publishable (it then writes only with -allow-busy)")
	flag.DurationVar(&o.cooldown, "cooldown", 150*time.Second, "after the run, wait up to this long for the load average (which the run itself raised) to fall to -max-load before reading the end load")
	flag.StringVar(&rels, "otp", "otp25,otp27,otp29", "comma-separated OTP releases of the matrix (internal/beamtest.Matrix) to measure against")
	flag.StringVar(&o.benchmarks, "benchmarks", "BENCHMARKS.md", "the file whose generated section is replaced")
	flag.StringVar(&o.resultsDir, "results", "bench/results", "where latest.json (or refused.json) is written")
	flag.StringVar(&o.chartDir, "charts", "docs/bench", "the charts' directory, as BENCHMARKS.md links them (bench/plot writes them)")
	from := flag.String("render", "", "render BENCHMARKS.md's generated section from this results file (a latest.json) without running anything; its publishability is the file's")
	flag.IntVar(&o.servers, "servers", 0, "idle gen_servers started for the memory cells (0: 200, quick 50)")
	flag.IntVar(&o.peers, "peers", 0, "peers connected for the memory cells (0: 8, quick 4)")
	flag.Parse()
	o.servers = *flagOr(&o.servers, 200, 50, o.quick)
	o.peers = *flagOr(&o.peers, 8, 4, o.quick)
	if *probe {
		if err := runProbe(*probeName, *probeCookie, o.servers, *probePeers); err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			os.Exit(1)
		}
		return
	}
	if *from != "" {
		if err := render(*from, o); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	o.releases = strings.Split(rels, ",")
	o.callers = []int{1, 16, 256}
	o.sizes = []string{"small", "1KiB", "64KiB"}
	if o.quick {
		if rels == "otp25,otp27,otp29" {
			o.releases = []string{"otp25"}
		}
		o.rounds, o.cell, o.warmup = 1, 400*time.Millisecond, 100*time.Millisecond
		o.messages = map[string]int{"small": 20000, "1KiB": 10000, "64KiB": 500}
		if !isSet("cooldown") {
			o.cooldown = 0
		}
	} else {
		o.rounds, o.cell, o.warmup = 3, time.Second, 200*time.Millisecond
		o.messages = map[string]int{"small": 200000, "1KiB": 100000, "64KiB": 4000}
	}
	os.Exit(run(o))
}

// flagOr returns v, set to full or quick when it is zero.
func flagOr(v *int, full, quick int, isQuick bool) *int {
	if *v == 0 {
		*v = full
		if isQuick {
			*v = quick
		}
	}
	return v
}

func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func loadNow() (float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, err
	}
	return parseLoadavg(string(b))
}

// run is the whole suite; it returns the exit code.
func run(o options) int {
	if !beamtest.InNetns() {
		// Refuse a busy machine before building a namespace and nodes.
		if l, err := loadNow(); err == nil && l > o.maxLoad && !o.allowBusy {
			fmt.Fprintf(os.Stderr, "bench: refusing to run: %s (-allow-busy runs anyway, marked NOT PUBLISHABLE)\n",
				startReason(l, o.maxLoad))
			return 2
		}
		if code, ran := beamtest.ReexecInNetns(); ran {
			return code
		}
		fmt.Fprintln(os.Stderr, "bench: needs root, to run its BEAM nodes in a network namespace of its own (internal/beamtest)")
		return 1
	}
	start := time.Now()
	loadStart, err := loadNow()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	r := &Results{
		Date: start.UTC().Format(time.RFC3339), GoVersion: runtime.Version(), CPU: cpuModel(), NumCPU: runtime.NumCPU(),
		Mode: "full", Rounds: o.rounds, CellSeconds: o.cell.Seconds(), LoadStart: loadStart, MaxLoad: o.maxLoad,
	}
	if o.quick {
		r.Mode = "quick"
	}
	r.Commit, r.Dirty = gitCommit()
	logf("load average %.2f; %s mode; releases %s", loadStart, r.Mode, strings.Join(o.releases, ", "))
	matrix := map[string]beamtest.Release{}
	for _, rel := range beamtest.Matrix() {
		matrix[rel.Name] = rel
	}
	for i, name := range o.releases {
		rel, ok := matrix[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "bench: no release %q in the matrix (otp25, otp27, otp29)\n", name)
			return 1
		}
		if err := releaseReady(rel); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		if i == 0 {
			m, err := measureMemory(rel, o)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench: memory:", err)
				return 1
			}
			r.Memory = m
		}
		rr, err := measureRelease(rel, o)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", name, err)
			return 1
		}
		r.Releases = append(r.Releases, *rr)
	}
	if o.allowBusy && r.LoadStart > o.maxLoad {
		o.cooldown = 0 // the run is not publishable whatever the end load
	}
	r.LoadEnd = cooldown(o)
	r.WallSeconds = time.Since(start).Seconds()
	v := checkLoad(r.LoadStart, r.LoadEnd, o.maxLoad, o.allowBusy, o.quick)
	r.Publishable, r.NotPublishable = v.Publishable, v.Reasons
	if !v.Write {
		path := filepath.Join(o.resultsDir, "refused.json")
		_ = writeJSON(path, r)
		fmt.Fprintf(os.Stderr, "bench: refusing to publish: %s. Nothing written but %s; run on a quiet machine (-allow-busy writes anyway, marked NOT PUBLISHABLE)\n",
			strings.Join(v.Reasons, "; "), path)
		return 3
	}
	if err := writeJSON(filepath.Join(o.resultsDir, "latest.json"), r); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if err := writeSection(o.benchmarks, r, o.chartDir); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	logf("wrote %s and %s in %.0f s", o.benchmarks, filepath.Join(o.resultsDir, "latest.json"), r.WallSeconds)
	if !r.Publishable {
		logf("NOT PUBLISHABLE: %s", strings.Join(r.NotPublishable, "; "))
	}
	return 0
}

// writeSection replaces the generated section of the file at path with r's.
func writeSection(path string, r *Results, chartDir string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := replaceGenerated(string(doc), renderMarkdown(r, chartDir))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

// render is -render: the section from a results file already written.
func render(from string, o options) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	return writeSection(o.benchmarks, &r, o.chartDir)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %s: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func writeJSON(path string, r *Results) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// cooldown waits, up to o.cooldown, for the 1-minute load average to fall
// to o.maxLoad (the run's own load decays with a time constant of a
// minute), and returns the last reading.
func cooldown(o options) float64 {
	deadline := time.Now().Add(o.cooldown)
	for i := 0; ; i++ {
		l, err := loadNow()
		if err != nil {
			return 0
		}
		if l <= o.maxLoad || !time.Now().Before(deadline) {
			return l
		}
		if i%6 == 0 {
			logf("load average %.2f: waiting for it to fall to %.2f (up to %s more)", l, o.maxLoad, time.Until(deadline).Round(time.Second))
		}
		time.Sleep(5 * time.Second)
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func gitCommit() (string, bool) {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown", false
	}
	st, _ := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(out)), len(strings.TrimSpace(string(st))) > 0
}

// releaseReady is beamtest.RequireRelease without a test: the release's
// erl and elixir must run.
func releaseReady(rel beamtest.Release) error {
	if rel.Root == "" || rel.Root == "/" {
		for _, p := range []string{"erl", "elixir"} {
			if _, err := exec.LookPath(p); err != nil {
				return fmt.Errorf("%s needs %s on the host (scripts/install-deps.sh)", rel.Name, p)
			}
		}
		return nil
	}
	if _, err := os.Stat(filepath.Join(rel.Root, ".gonode-ready")); err != nil {
		return fmt.Errorf("%s needs the chroot %s (scripts/otp-matrix.sh), or leave it out with -otp", rel.Name, rel.Root)
	}
	return nil
}

// rig is the setup of one release: Elixir node c calls and sends, Elixir
// node s serves (Echo, Counter), and this process's gonode node serves
// (goEcho, goCounter), calls (goCaller, Node.Call) and sends (goSender).
type rig struct {
	c, s         *beamtest.Node
	cPid, sPid   string
	g            *node.Node
	counter      *goCounter
	counterP     gen.Process
	sender       gen.Process
	callers      []gen.Process
	sName, gName string
}

func startRig(rel beamtest.Release, o options) (*rig, error) {
	r := &rig{}
	cookie := beamtest.RandomCookie()
	var err error
	if r.s, err = beamtest.StartE(rel, beamtest.Options{Name: "bench_s_" + rel.Name + "@127.0.0.1", Cookie: cookie, Elixir: true}); err != nil {
		return r, err
	}
	if r.c, err = beamtest.StartE(rel, beamtest.Options{Name: "bench_c_" + rel.Name + "@127.0.0.1", Cookie: cookie, Elixir: true}); err != nil {
		return r, err
	}
	for _, n := range []*beamtest.Node{r.s, r.c} {
		if _, err := eval(n, elixirBench); err != nil {
			return r, err
		}
	}
	if _, err := eval(r.s, "{:ok, _} = GenServer.start(GonodeBench.Echo, nil, name: :bench_echo)\nGonodeBench.Counter.start(:bench_cnt)\n:ok"); err != nil {
		return r, err
	}
	if r.cPid, err = osPid(r.c); err != nil {
		return r, err
	}
	if r.sPid, err = osPid(r.s); err != nil {
		return r, err
	}
	r.sName, r.gName = r.s.Name, "bench_go_"+rel.Name+"@127.0.0.1"
	if r.g, err = startGoNode(r.gName, cookie, 0); err != nil {
		return r, err
	}
	if _, err = r.g.RegisterServer("bench_echo", &goEcho{}); err != nil {
		return r, err
	}
	r.counter = &goCounter{done: make(chan struct{}, 1)}
	if r.counterP, err = r.g.RegisterServer("bench_cnt", r.counter); err != nil {
		return r, err
	}
	if r.sender, err = r.g.RegisterServer("", &goSender{}); err != nil {
		return r, err
	}
	for range slices.Max(o.callers) {
		p, err := r.g.RegisterServer("", &goCaller{})
		if err != nil {
			return r, err
		}
		r.callers = append(r.callers, p)
	}
	if out, err := eval(r.c, fmt.Sprintf(`{Node.ping(:"%s"), Node.ping(:"%s")}`, r.sName, r.gName)); err != nil || out != "{:pong, :pong}" {
		return r, fmt.Errorf("connect c: %s %v", out, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.g.Connect(ctx, r.sName); err != nil {
		return r, err
	}
	return r, nil
}

func (r *rig) stop() {
	if r.g != nil {
		stopGoNode(r.g)
	}
	for _, n := range []*beamtest.Node{r.c, r.s} {
		if n != nil {
			n.Stop()
		}
	}
}

func measureRelease(rel beamtest.Release, o options) (*ReleaseResults, error) {
	logf("%s: starting the nodes", rel.Name)
	r, err := startRig(rel, o)
	defer r.stop()
	if err != nil {
		return nil, err
	}
	rr := &ReleaseResults{Name: rel.Name}
	if rr.OTP, rr.Elixir, err = otpVersion(r.c); err != nil {
		return nil, err
	}
	for _, size := range o.sizes {
		for _, callers := range o.callers {
			cell, err := r.callCell(size, callers, o)
			if err != nil {
				return nil, fmt.Errorf("calls %s x %d: %w", size, callers, err)
			}
			g, e := cell.Paths[PathElixirToGo], cell.Paths[PathElixirToBEAM]
			logf("%s calls %s x %d: Elixir->Go %s/s, ->BEAM %s/s (%s); Process.Call %s/s, Node.Call %s/s", rel.Name, size, callers,
				fmtInt(g.CallsPerSec), fmtInt(e.CallsPerSec), fmtRatio(ratio(g.CallsPerSec, e.CallsPerSec)),
				fmtInt(cell.Paths[PathProcessCall].CallsPerSec), fmtInt(cell.Paths[PathNodeCall].CallsPerSec))
			rr.Calls = append(rr.Calls, cell)
		}
	}
	for _, size := range o.sizes {
		t, err := r.throughputCell(size, o.messages[size], o.rounds)
		if err != nil {
			return nil, fmt.Errorf("messages %s: %w", size, err)
		}
		logf("%s messages %s: BEAM->Go %s/s, Go->BEAM %s/s, BEAM->BEAM %s/s", rel.Name, size,
			fmtInt(t.BEAMToGo.MsgPerSec), fmtInt(t.GoToBEAM.MsgPerSec), fmtInt(t.BEAMToBEAM.MsgPerSec))
		rr.Throughput = append(rr.Throughput, t)
	}
	return rr, nil
}

// callRun is one measurement of one call path.
type callRun struct {
	calls          int64
	elapsed        time.Duration
	p50, p90, p99  float64 // microseconds
	server, caller procSample
}

// callCell measures the four paths of a cell in o.rounds rounds, the order
// of the paths rotating from round to round so that a change of load hits
// them alike, after a warm-up of each.
func (r *rig) callCell(size string, callers int, o options) (CallCell, error) {
	cell := CallCell{Size: size, Callers: callers, Paths: map[string]CallStats{}}
	for _, p := range Paths {
		if _, err := r.measure(p, size, callers, o.warmup); err != nil {
			return cell, fmt.Errorf("%s warm-up: %w", p, err)
		}
	}
	runs := map[string][]callRun{}
	for round := range o.rounds {
		for i := range Paths {
			p := Paths[(i+round)%len(Paths)]
			m, err := r.measure(p, size, callers, o.cell)
			if err != nil {
				return cell, fmt.Errorf("%s: %w", p, err)
			}
			runs[p] = append(runs[p], m)
		}
	}
	for p, rs := range runs {
		cell.Paths[p] = aggregateCalls(rs)
	}
	return cell, nil
}

// aggregateCalls sums the rounds of a path: rates and per-call costs over
// all calls, percentiles as the median of the rounds'.
func aggregateCalls(rs []callRun) CallStats {
	var s CallStats
	var el time.Duration
	var srv, clr procSample
	var p50, p90, p99 []float64
	for _, r := range rs {
		s.Calls += r.calls
		el += r.elapsed
		srv.CPU, srv.CtxSwitches = srv.CPU+r.server.CPU, srv.CtxSwitches+r.server.CtxSwitches
		clr.CPU, clr.CtxSwitches = clr.CPU+r.caller.CPU, clr.CtxSwitches+r.caller.CtxSwitches
		p50, p90, p99 = append(p50, r.p50), append(p90, r.p90), append(p99, r.p99)
	}
	s.CallsPerSec = ratio(float64(s.Calls), el.Seconds())
	s.P50, s.P90, s.P99 = median(p50), median(p90), median(p99)
	n := float64(s.Calls)
	s.ServerCPU, s.CallerCPU = ratio(srv.CPU*1e6, n), ratio(clr.CPU*1e6, n)
	s.ServerCS, s.CallerCS = ratio(float64(srv.CtxSwitches), n), ratio(float64(clr.CtxSwitches), n)
	return s
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile returns the q-th percentile of sorted lat, as the Elixir
// caller computes it: element n*q/100.
func percentile(sorted []time.Duration, q int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, len(sorted)*q/100)
	return float64(sorted[i].Nanoseconds()) / 1e3
}

// measure runs one path of a call cell for d.
func (r *rig) measure(path, size string, callers int, d time.Duration) (callRun, error) {
	var m callRun
	serverPid, callerPid := r.sPid, "self"
	switch path {
	case PathElixirToGo:
		serverPid, callerPid = "self", r.cPid
	case PathElixirToBEAM:
		callerPid = r.cPid
	}
	s0, err := readProc("/proc", serverPid)
	if err != nil {
		return m, err
	}
	c0, err := readProc("/proc", callerPid)
	if err != nil {
		return m, err
	}
	switch path {
	case PathElixirToGo, PathElixirToBEAM:
		target := exTarget("bench_echo", r.sName)
		if path == PathElixirToGo {
			target = exTarget("bench_echo", r.gName)
		}
		out, err := eval(r.c, fmt.Sprintf("GonodeBench.Caller.run(%s, %d, %s, %d)", target, callers, exMsg(size), d.Milliseconds()))
		if err != nil {
			return m, err
		}
		v, err := parseInts(out)
		if err != nil || len(v) != 5 {
			return m, fmt.Errorf("caller: %q (%v)", out, err)
		}
		m.calls, m.elapsed = v[0], time.Duration(v[1])
		m.p50, m.p90, m.p99 = float64(v[2])/1e3, float64(v[3])/1e3, float64(v[4])/1e3
	default:
		lat, elapsed, err := r.goCalls(path == PathNodeCall, size, callers, d)
		if err != nil {
			return m, err
		}
		m.calls, m.elapsed = int64(len(lat)), elapsed
		m.p50, m.p90, m.p99 = percentile(lat, 50), percentile(lat, 90), percentile(lat, 99)
	}
	s1, err := readProc("/proc", serverPid)
	if err != nil {
		return m, err
	}
	c1, err := readProc("/proc", callerPid)
	if err != nil {
		return m, err
	}
	m.server, m.caller = s1.sub(s0), c1.sub(c0)
	return m, nil
}

// goCalls runs callers Go callers against the BEAM echo for d: each a
// long-lived goCaller process (Process.Call), or a goroutine calling
// Node.Call in a loop. It returns the sorted latencies and the time until
// the last caller finished.
func (r *rig) goCalls(nodeCall bool, size string, callers int, d time.Duration) ([]time.Duration, time.Duration, error) {
	to := gen.ProcessID{Name: "bench_echo", Node: r.sName}
	msg := goMsg(size)
	var mu sync.Mutex
	var all []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	until := start.Add(d)
	for i := range callers {
		wg.Go(func() {
			var lat []time.Duration
			var err error
			if nodeCall {
				for {
					t0 := time.Now()
					if !t0.Before(until) {
						break
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					_, err = r.g.Call(ctx, to, msg)
					cancel()
					if err != nil {
						break
					}
					lat = append(lat, time.Since(t0))
				}
			} else {
				var v any
				v, err = r.callers[i].DirectWithTimeout(callLoop{to: to, msg: msg, until: until}, 120)
				if err == nil {
					lat = v.([]time.Duration)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			all = append(all, lat...)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return nil, 0, firstErr
	}
	slices.Sort(all)
	return all, elapsed, nil
}

// throughputCell measures the one-way cells of a size: BEAM -> BEAM (c to
// s), BEAM -> Go (c to this node) and Go -> BEAM (this node to s), n
// messages each, in rounds of rotating order.
func (r *rig) throughputCell(size string, n, rounds int) (ThroughputCell, error) {
	t := ThroughputCell{Size: size, Messages: n}
	type acc struct {
		secs   float64
		rx, tx procSample
		n      int
	}
	dirs := []string{"bb", "bg", "gb"}
	accs := map[string]*acc{"bb": {}, "bg": {}, "gb": {}}
	for round := range rounds {
		for i := range dirs {
			dir := dirs[(i+round)%len(dirs)]
			rxPid, txPid := r.sPid, r.cPid
			switch dir {
			case "bg":
				rxPid = "self"
			case "gb":
				txPid = "self"
			}
			rx0, err := readProc("/proc", rxPid)
			if err != nil {
				return t, err
			}
			tx0, err := readProc("/proc", txPid)
			if err != nil {
				return t, err
			}
			var secs float64
			if dir == "gb" {
				secs, err = r.goSend(size, n)
			} else {
				target := exTarget("bench_cnt", r.sName)
				if dir == "bg" {
					target = exTarget("bench_cnt", r.gName)
				}
				var out string
				out, err = eval(r.c, fmt.Sprintf("GonodeBench.Sender.run(%s, %s, %d)", target, exMsg(size), n))
				if err == nil {
					var ns int64
					ns, err = strconv.ParseInt(out, 10, 64)
					secs = float64(ns) / 1e9
					if err != nil {
						err = fmt.Errorf("sender: %q", out)
					}
				}
			}
			if err != nil {
				return t, fmt.Errorf("%s: %w", dir, err)
			}
			rx1, err := readProc("/proc", rxPid)
			if err != nil {
				return t, err
			}
			tx1, err := readProc("/proc", txPid)
			if err != nil {
				return t, err
			}
			a := accs[dir]
			a.secs += secs
			a.n += n
			a.rx, a.tx = a.rx.add(rx1.sub(rx0)), a.tx.add(tx1.sub(tx0))
		}
	}
	stats := func(a *acc) MsgStats {
		k := float64(a.n)
		return MsgStats{MsgPerSec: ratio(k, a.secs), RxCPU: ratio(a.rx.CPU*1e6, k), TxCPU: ratio(a.tx.CPU*1e6, k),
			RxCS: ratio(float64(a.rx.CtxSwitches), k), TxCS: ratio(float64(a.tx.CtxSwitches), k)}
	}
	t.BEAMToBEAM, t.BEAMToGo, t.GoToBEAM = stats(accs["bb"]), stats(accs["bg"]), stats(accs["gb"])
	return t, nil
}

// goSend sends n messages of size from goSender to s's counter, armed to
// report to goCounter, and returns the seconds until the report.
func (r *rig) goSend(size string, n int) (float64, error) {
	select {
	case <-r.counter.done: // a stale report
	default:
	}
	start := time.Now()
	if _, err := r.sender.DirectWithTimeout(sendRun{to: gen.ProcessID{Name: "bench_cnt", Node: r.sName}, msg: goMsg(size), n: n, notify: r.counterP.Self()}, 120); err != nil {
		return 0, err
	}
	select {
	case <-r.counter.done:
		return time.Since(start).Seconds(), nil
	case <-time.After(120 * time.Second):
		return 0, errors.New("the BEAM counter did not report within 120 s")
	}
}

// measureMemory compares a fresh gonode node (a child process, runProbe)
// with a fresh erl node of rel: resident set after start, per idle
// registered gen_server, per connected peer. The peers are gonode nodes in
// this process, the same ones for both.
func measureMemory(rel beamtest.Release, o options) (*MemoryResults, error) {
	logf("memory: %d idle gen_servers, %d peers", o.servers, o.peers)
	m := &MemoryResults{Release: rel.Name, Servers: o.servers, Peers: o.peers}
	cookie := beamtest.RandomCookie()
	var peers []string
	for i := range o.peers {
		name := fmt.Sprintf("bench_peer%d@127.0.0.1", i)
		p, err := startGoNode(name, cookie, 1024)
		if err != nil {
			return nil, err
		}
		defer stopGoNode(p)
		peers = append(peers, name)
	}
	e, err := beamtest.StartE(rel, beamtest.Options{Name: "bench_m@127.0.0.1", Cookie: cookie})
	if err != nil {
		return nil, err
	}
	defer e.Stop()
	ePid, err := erlOSPid(e)
	if err != nil {
		return nil, err
	}
	if _, err := eval(e, erlCompileIdle()); err != nil {
		return nil, err
	}
	beamRSS := func() (int64, error) {
		if _, err := eval(e, "[erlang:garbage_collect(P) || P <- processes()], ok."); err != nil {
			return 0, err
		}
		return readRSS("/proc", ePid)
	}
	idle, err := beamRSS()
	if err != nil {
		return nil, err
	}
	if _, err := eval(e, fmt.Sprintf(`[{ok, _} = gen_server:start({local, list_to_atom("idle_" ++ integer_to_list(I))}, gonode_bench_idle, [], []) || I <- lists:seq(1, %d)], ok.`, o.servers)); err != nil {
		return nil, err
	}
	withServers, err := beamRSS()
	if err != nil {
		return nil, err
	}
	var quoted []string
	for _, p := range peers {
		quoted = append(quoted, "'"+p+"'")
	}
	if _, err := eval(e, fmt.Sprintf("[pong = net_adm:ping(N) || N <- [%s]], ok.", strings.Join(quoted, ", "))); err != nil {
		return nil, err
	}
	withPeers, err := beamRSS()
	if err != nil {
		return nil, err
	}
	m.Worked = min(workedServers, o.servers)
	if _, err := eval(e, fmt.Sprintf(`Ps = [whereis(list_to_atom("idle_" ++ integer_to_list(I))) || I <- lists:seq(1, %d)],
[[begin [P ! x || _ <- lists:seq(1, %d)], sync = gen_server:call(P, sync) end || _ <- lists:seq(1, %d)] || P <- Ps], ok.`,
		m.Worked, workBatch, workBatches)); err != nil {
		return nil, err
	}
	worked, err := beamRSS()
	if err != nil {
		return nil, err
	}
	m.BEAMIdleRSS = idle
	m.BEAMPerServer = float64(withServers-idle) / float64(o.servers)
	m.BEAMPerPeer = float64(withPeers-withServers) / float64(o.peers)
	m.BEAMPerWorkedServer = float64(worked-withPeers) / float64(m.Worked)

	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-probe-memory", "-probe-name", "bench_probe@127.0.0.1", "-probe-cookie", cookie,
		"-servers", strconv.Itoa(o.servers), "-probe-peers", strings.Join(peers, ","))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	rss, err := parseProbe(string(out))
	if err != nil {
		return nil, err
	}
	m.GoIdleRSS, m.GoIdleHeap = rss["rss idle"], rss["heap idle"]
	m.GoPerServer = float64(rss["rss servers"]-rss["rss idle"]) / float64(o.servers)
	m.GoPerPeer = float64(rss["rss peers"]-rss["rss servers"]) / float64(o.peers)
	m.GoHeapPerServer = float64(rss["heap servers"]-rss["heap idle"]) / float64(o.servers)
	m.GoHeapPerPeer = float64(rss["heap peers"]-rss["heap servers"]) / float64(o.peers)
	m.GoPerWorkedServer = float64(rss["rss worked"]-rss["rss prework"]) / float64(m.Worked)
	logf("memory: idle node Go %s / BEAM %s; per gen_server Go %s / BEAM %s, after 65,536 messages Go %s / BEAM %s; per peer Go %s / BEAM %s",
		fmtBytes(float64(m.GoIdleRSS)), fmtBytes(float64(m.BEAMIdleRSS)), fmtBytes(m.GoPerServer), fmtBytes(m.BEAMPerServer),
		fmtBytes(m.GoPerWorkedServer), fmtBytes(m.BEAMPerWorkedServer), fmtBytes(m.GoPerPeer), fmtBytes(m.BEAMPerPeer))
	return m, nil
}

// parseProbe reads the probe's "<kind> <stage> <bytes>" lines (kind rss or
// heap); it needs both kinds of the stages idle, servers and peers. The
// keys of the map are "<kind> <stage>".
func parseProbe(out string) (map[string]int64, error) {
	got := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || (f[0] != "rss" && f[0] != "heap") {
			continue
		}
		v, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("probe: %q", sc.Text())
		}
		got[f[0]+" "+f[1]] = v
	}
	for _, kind := range []string{"rss", "heap"} {
		for _, stage := range []string{"idle", "servers", "peers", "prework", "worked"} {
			if _, ok := got[kind+" "+stage]; !ok {
				return nil, fmt.Errorf("probe: no %s %s line in %q", kind, stage, out)
			}
		}
	}
	return got, nil
}

// runProbe is the memory probe: a fresh gonode node with the default
// configuration; it prints its resident set and its Go heap (live objects
// and goroutine stacks, after a collection) after start, after starting
// servers idle registered genserver.Servers, after connecting to peers, and
// before and after some of the servers handled messages.
func runProbe(name, cookie string, servers int, peers string) error {
	n, err := startGoNode(name, cookie, 0)
	if err != nil {
		return err
	}
	defer stopGoNode(n)
	report := func(stage string) error {
		runtime.GC()
		debug.FreeOSMemory()
		rss, err := readRSS("/proc", "self")
		if err != nil {
			return err
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("rss %s %d\nheap %s %d\n", stage, rss, stage, ms.HeapAlloc+ms.StackInuse)
		return nil
	}
	if err := report("idle"); err != nil {
		return err
	}
	for i := range servers {
		if _, err := n.RegisterServer(fmt.Sprintf("idle_%d", i), &goEcho{}); err != nil {
			return err
		}
	}
	if err := report("servers"); err != nil {
		return err
	}
	for p := range strings.SplitSeq(peers, ",") {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := n.Connect(ctx, p)
		cancel()
		if err != nil {
			return err
		}
	}
	if err := report("peers"); err != nil {
		return err
	}
	// Then the first workedServers servers each handle workBatches x
	// workBatch messages, sent by one process in batches that a call to the
	// server closes (so its mailbox never holds more than a batch): a
	// mailbox's ring buffer becomes resident as messages pass through its
	// slots in turn, which an idle server that was never sent anything does
	// not show.
	pusher, err := n.RegisterServer("", &goPusher{})
	if err != nil {
		return err
	}
	if err := report("prework"); err != nil {
		return err
	}
	for i := range min(workedServers, servers) {
		if _, err := pusher.DirectWithTimeout(pushRun{to: fmt.Sprintf("idle_%d", i), batch: workBatch, batches: workBatches}, 120); err != nil {
			return err
		}
	}
	return report("worked")
}

// The "worked" memory stage: workedServers servers each handle
// workBatches x workBatch = 65,536 messages, as many as the largest mailbox
// ergo allows holds, so every slot of it has been written once. A batch and
// its closing call fit in the default mailbox (node.DefaultMailboxSize, 64),
// so none is dropped and the closing call is never lost.
const (
	workedServers = 16
	workBatch     = 32
	workBatches   = 2048
)

// goPusher sends a server batches of messages, each batch followed by a
// call that returns once the server has handled it.
type goPusher struct{ genserver.Server }

type pushRun struct {
	to             string
	batch, batches int
}

func (goPusher) HandleDirect(p *genserver.Process, _ etf.Ref, m any) (any, gen.DirectStatus) {
	r, ok := m.(pushRun)
	if !ok {
		return nil, fmt.Errorf("goPusher: unexpected %T", m)
	}
	for range r.batches {
		for range r.batch {
			if err := p.Send(r.to, etf.Atom("x")); err != nil {
				return nil, err
			}
		}
		if _, err := p.CallWithTimeout(r.to, etf.Atom("sync"), time.Minute); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
