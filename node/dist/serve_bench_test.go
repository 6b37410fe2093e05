package dist

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/node/genserver"
)

// scbTotal is the number of calls per measurement, shared among the callers.
const scbTotal = 20000

// scbEcho is the Go server of BenchmarkServeCallsVsBEAM: a genserver.Server
// that answers every call with its request.
type scbEcho struct{ genserver.Server }

func (scbEcho) HandleCall(p *genserver.Process, from gen.ServerFrom, m etf.Term) (etf.Term, gen.ServerStatus) {
	return m, gen.ServerStatusOK
}

// scbRun is one measurement: callers on BEAM node a making gen_server:calls
// to one server, on the Go node or on BEAM node c.
type scbRun struct {
	rate     float64 // calls per second, all callers together
	p50, p99 float64 // round trip, microseconds
	cpu      float64 // the server node's CPU per call, microseconds
	csw      float64 // the server node's context switches per call
}

// scbCalls has n processes on from make total/n gen_server:calls each to
// target with a message of kind, and returns the throughput and the
// percentiles of every round trip (computed on the BEAM node, so only four
// numbers cross back).
func scbCalls(b *testing.B, from *beamtest.Node, target string, n int, kind string) (rate, p50, p99 float64) {
	b.Helper()
	k := max(scbTotal/n, 1)
	expr := fmt.Sprintf(`T = %s, M = %s, Self = self(),
W = fun() -> [begin S = erlang:monotonic_time(nanosecond), _ = gen_server:call(T, M), erlang:monotonic_time(nanosecond) - S end || _ <- lists:seq(1, %d)] end,
T0 = erlang:monotonic_time(nanosecond),
Ps = [spawn_link(fun() -> Self ! {scb, self(), W()} end) || _ <- lists:seq(1, %d)],
L = lists:sort(lists:append([receive {scb, P, X} -> X end || P <- Ps])),
Wall = erlang:monotonic_time(nanosecond) - T0, Len = length(L),
io_lib:format("~b ~b ~b ~b", [Wall, lists:nth(Len div 2 + 1, L), lists:nth(Len * 99 div 100 + 1, L), Len]).`,
		target, ptMsgExpr(kind), k, n)
	out := strings.Trim(from.Eval(b, expr), `"`)
	f := strings.Fields(out)
	if len(f) != 4 {
		b.Fatalf("call run: %q", out)
	}
	var v [4]float64
	for i, s := range f {
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			b.Fatalf("call run: %q", out)
		}
		v[i] = x
	}
	if int(v[3]) != k*n {
		b.Fatalf("call run: %v calls, want %d", v[3], k*n)
	}
	return v[3] / (v[0] / 1e9), v[1] / 1e3, v[2] / 1e3
}

// scbSwitches returns the context switches, voluntary and not, of every
// thread of process pid ("self" for this one).
func scbSwitches(b *testing.B, pid string) float64 {
	b.Helper()
	tasks, err := os.ReadDir("/proc/" + pid + "/task")
	if err != nil {
		b.Fatalf("context switches of %s: %v", pid, err)
	}
	var n float64
	for _, task := range tasks {
		st, err := os.ReadFile("/proc/" + pid + "/task/" + task.Name() + "/status")
		if err != nil {
			continue // the thread exited
		}
		for _, line := range strings.Split(string(st), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || (k != "voluntary_ctxt_switches" && k != "nonvoluntary_ctxt_switches") {
				continue
			}
			x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				b.Fatalf("status of %s: %q", pid, line)
			}
			n += x
		}
	}
	return n
}

// scbMeasure runs scbCalls and charges the server process serverPid with
// its CPU time and context switches.
func scbMeasure(b *testing.B, from *beamtest.Node, target, serverPid string, n int, kind string) scbRun {
	b.Helper()
	cpu0, sw0 := ptCPU(b, serverPid), scbSwitches(b, serverPid)
	var r scbRun
	r.rate, r.p50, r.p99 = scbCalls(b, from, target, n, kind)
	cpu1, sw1 := ptCPU(b, serverPid), scbSwitches(b, serverPid)
	calls := float64(max(scbTotal/n, 1) * n)
	r.cpu = (cpu1 - cpu0) * 1e3 / calls
	r.csw = (sw1 - sw0) / calls
	return r
}

// scbLoad returns the one-minute load average.
func scbLoad(b *testing.B) float64 {
	b.Helper()
	st, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		b.Fatal(err)
	}
	v, err := strconv.ParseFloat(strings.Fields(string(st))[0], 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkServeCallsVsBEAM is the Go-as-server matrix: 1, 16 and 256
// processes on BEAM node a call an echo server, small and 1 KiB requests,
// once served by a genserver.Server on the Go node and once by an Erlang
// echo on BEAM node c, in alternating order per round (-benchtime=Nx runs N
// rounds; the reported values are the medians). Metrics: go_/beam_
// throughput (calls/s), p50 and p99 round trip (us), the server node's CPU
// (us) and context switches per call, the ratios Go / BEAM (x_rate >= 1 and
// the others <= 1 meet the goal), and the load average at start and end.
//
//	go test -run XXX -bench BenchmarkServeCallsVsBEAM -benchtime 3x ./node/dist/
func BenchmarkServeCallsVsBEAM(b *testing.B) {
	rel := beamtest.Host
	beamtest.RequireNetns(b)
	cookie := beamtest.RandomCookie()
	a := beamtest.Start(b, rel, beamtest.Options{Name: "scba@127.0.0.1", Cookie: cookie})
	c := beamtest.Start(b, rel, beamtest.Options{Name: "scbc@127.0.0.1", Cookie: cookie})
	c.Eval(b, ptBenchSetup)
	cPid := ptOSPid(b, c)
	goName := "scbgo@127.0.0.1"
	n := ptGoNode(b, goName, cookie, 60*time.Second)
	ptSpawn(b, n, "net_kernel", newPTSrv())
	ptSpawn(b, n, "scb_echo", &scbEcho{})
	a.Eval(b, fmt.Sprintf("pong = net_adm:ping('%s'), pong = net_adm:ping('%s'), ok.", c.Name, goName))
	goTarget := fmt.Sprintf("{scb_echo, '%s'}", goName)
	beamTarget := fmt.Sprintf("{pt_echo, '%s'}", c.Name)
	// Warm both paths up.
	scbCalls(b, a, goTarget, 16, "small")
	scbCalls(b, a, beamTarget, 16, "small")
	for _, kind := range []string{"small", "1KiB"} {
		for _, callers := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("%s/callers=%d", kind, callers), func(b *testing.B) {
				load0 := scbLoad(b)
				var gos, beams []scbRun
				for i := 0; i < b.N; i++ {
					goRun := func() { gos = append(gos, scbMeasure(b, a, goTarget, "self", callers, kind)) }
					beamRun := func() { beams = append(beams, scbMeasure(b, a, beamTarget, cPid, callers, kind)) }
					if i%2 == 0 {
						goRun()
						beamRun()
					} else {
						beamRun()
						goRun()
					}
				}
				med := func(rs []scbRun, f func(scbRun) float64) float64 {
					xs := make([]float64, len(rs))
					for i, r := range rs {
						xs[i] = f(r)
					}
					return clbMedian(xs)
				}
				for _, m := range []struct {
					name string
					f    func(scbRun) float64
				}{
					{"rate", func(r scbRun) float64 { return r.rate }},
					{"p50_us", func(r scbRun) float64 { return r.p50 }},
					{"p99_us", func(r scbRun) float64 { return r.p99 }},
					{"cpu_us", func(r scbRun) float64 { return r.cpu }},
					{"csw", func(r scbRun) float64 { return r.csw }},
				} {
					g, bm := med(gos, m.f), med(beams, m.f)
					b.ReportMetric(g, "go_"+m.name)
					b.ReportMetric(bm, "beam_"+m.name)
					b.ReportMetric(g/bm, "x_"+m.name)
				}
				b.ReportMetric(load0, "load_start")
				b.ReportMetric(scbLoad(b), "load_end")
			})
		}
	}
}
