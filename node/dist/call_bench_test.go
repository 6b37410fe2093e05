package dist

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/node/genserver"
)

// clbCalls is the number of sequential calls per measurement.
const clbCalls = 5000

// clbLoop asks a Go process to make n sequential calls to `to` itself and
// time each one (so the Go caller is timed the way the BEAM caller is: in
// one process, without a hand-off per call).
type clbLoop struct {
	to  any
	msg etf.Term
	n   int
}

// clbErgo is ergo's gen.Server: echo for calls, a call loop for Direct.
type clbErgo struct{ gen.Server }

func (clbErgo) HandleCall(p *gen.ServerProcess, from gen.ServerFrom, m etf.Term) (etf.Term, gen.ServerStatus) {
	return m, gen.ServerStatusOK
}

func (clbErgo) HandleDirect(p *gen.ServerProcess, ref etf.Ref, m interface{}) (interface{}, gen.DirectStatus) {
	r, ok := m.(clbLoop)
	if !ok {
		return nil, fmt.Errorf("unexpected %T", m)
	}
	lat := make([]time.Duration, 0, r.n)
	for i := 0; i < r.n; i++ {
		t0 := time.Now()
		if _, err := p.Call(r.to, r.msg); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}

// clbFast is the same server on genserver.Server.
type clbFast struct{ genserver.Server }

func (clbFast) HandleCall(p *genserver.Process, from gen.ServerFrom, m etf.Term) (etf.Term, gen.ServerStatus) {
	return m, gen.ServerStatusOK
}

func (clbFast) HandleDirect(p *genserver.Process, ref etf.Ref, m any) (any, gen.DirectStatus) {
	r, ok := m.(clbLoop)
	if !ok {
		return nil, fmt.Errorf("unexpected %T", m)
	}
	lat := make([]time.Duration, 0, r.n)
	for i := 0; i < r.n; i++ {
		t0 := time.Now()
		if _, err := p.Call(r.to, r.msg); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}

// clbGoLatency runs a clbLoop in p and returns the median and p99 in
// microseconds.
func clbGoLatency(b *testing.B, p gen.Process, to any, kind string) (p50, p99 float64) {
	b.Helper()
	v, err := p.DirectWithTimeout(clbLoop{to: to, msg: ptMsgGo(kind), n: clbCalls}, 300)
	if err != nil {
		b.Fatalf("call loop in %s: %v", p.Name(), err)
	}
	lat := v.([]time.Duration)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return float64(lat[len(lat)/2].Nanoseconds()) / 1e3, float64(lat[len(lat)*99/100].Nanoseconds()) / 1e3
}

// BenchmarkCallLatencyVsBEAM times clbCalls sequential gen_server:calls per
// direction and term size, with three servers/callers on the Go side, each
// against BEAM -> BEAM in the same round: ergo's gen.Server ("ergo_"),
// genserver.Server ("fast_"), and the BEAM itself ("beam_"). Metrics are
// microseconds and ratios to BEAM (<= 1.0 meets the goal). Run with
// -benchtime=1x; each iteration is one round, and the reported values are
// the medians over b.N rounds (-benchtime=3x for three).
func BenchmarkCallLatencyVsBEAM(b *testing.B) {
	for _, rel := range beamtest.Releases(b) {
		b.Run(rel.Name, func(b *testing.B) {
			cookie := beamtest.RandomCookie()
			a := beamtest.Start(b, rel, beamtest.Options{Name: "cla_" + rel.Name + "@127.0.0.1", Cookie: cookie})
			c := beamtest.Start(b, rel, beamtest.Options{Name: "clc_" + rel.Name + "@127.0.0.1", Cookie: cookie})
			c.Eval(b, ptBenchSetup)
			goName := "clgo_" + rel.Name + "@127.0.0.1"
			n := ptGoNode(b, goName, cookie, 60*time.Second)
			ptSpawn(b, n, "net_kernel", newPTSrv())
			ergoP := ptSpawn(b, n, "ergo_echo", &clbErgo{})
			fastP := ptSpawn(b, n, "fast_echo", &clbFast{})
			a.Eval(b, fmt.Sprintf("pong = net_adm:ping('%s'), pong = net_adm:ping('%s'), ok.", c.Name, goName))
			if err := n.Connect(c.Name); err != nil {
				b.Fatal(err)
			}
			beamEcho := gen.ProcessID{Name: "pt_echo", Node: c.Name}
			for _, kind := range []string{"small", "1KiB", "64KiB"} {
				b.Run("beam_to_go/"+kind, func(b *testing.B) {
					var r clbRounds
					for i := 0; i < b.N; i++ {
						b50, b99 := ptBeamCallLatency(b, a, fmt.Sprintf("{pt_echo, '%s'}", c.Name), clbCalls, kind)
						ergo := func() (float64, float64) {
							return ptBeamCallLatency(b, a, fmt.Sprintf("{ergo_echo, '%s'}", goName), clbCalls, kind)
						}
						fast := func() (float64, float64) {
							return ptBeamCallLatency(b, a, fmt.Sprintf("{fast_echo, '%s'}", goName), clbCalls, kind)
						}
						r.add(i, b50, b99, ergo, fast)
					}
					r.report(b)
				})
				b.Run("go_to_beam/"+kind, func(b *testing.B) {
					var r clbRounds
					for i := 0; i < b.N; i++ {
						b50, b99 := ptBeamCallLatency(b, a, fmt.Sprintf("{pt_echo, '%s'}", c.Name), clbCalls, kind)
						ergo := func() (float64, float64) { return clbGoLatency(b, ergoP, beamEcho, kind) }
						fast := func() (float64, float64) { return clbGoLatency(b, fastP, beamEcho, kind) }
						r.add(i, b50, b99, ergo, fast)
					}
					r.report(b)
				})
			}
		})
	}
}

// clbRounds collects the per-round numbers: beam, ergo, fast; p50 and p99.
type clbRounds struct{ v [6][]float64 }

// add records one round, running the two Go measurements in an order that
// alternates between rounds so drift in machine load favours neither.
func (r *clbRounds) add(round int, b50, b99 float64, ergo, fast func() (float64, float64)) {
	var e50, e99, f50, f99 float64
	if round%2 == 0 {
		e50, e99 = ergo()
		f50, f99 = fast()
	} else {
		f50, f99 = fast()
		e50, e99 = ergo()
	}
	for i, v := range []float64{b50, b99, e50, e99, f50, f99} {
		r.v[i] = append(r.v[i], v)
	}
}

func clbMedian(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func (r *clbRounds) report(b *testing.B) {
	var m [6]float64
	for i := range m {
		m[i] = clbMedian(r.v[i])
	}
	b.ReportMetric(m[0], "beam_p50_us")
	b.ReportMetric(m[1], "beam_p99_us")
	b.ReportMetric(m[2], "ergo_p50_us")
	b.ReportMetric(m[3], "ergo_p99_us")
	b.ReportMetric(m[4], "fast_p50_us")
	b.ReportMetric(m[5], "fast_p99_us")
	b.ReportMetric(m[2]/m[0], "ergo_x_beam_p50")
	b.ReportMetric(m[3]/m[1], "ergo_x_beam_p99")
	b.ReportMetric(m[4]/m[0], "fast_x_beam_p50")
	b.ReportMetric(m[5]/m[1], "fast_x_beam_p99")
}

// BenchmarkCallLocal is the server's own overhead without a network or a
// BEAM: one Go process calls another on the same node, b.N times in a row
// (a clbLoop), for ergo's gen.Server and for genserver.Server on both ends.
func BenchmarkCallLocal(b *testing.B) {
	cookie := beamtest.RandomCookie()
	// The BEAM node only brings up EPMD, which the Go node registers with.
	beamtest.Start(b, beamtest.Host, beamtest.Options{Name: "cllocal_epmd@127.0.0.1", Cookie: cookie})
	n := ptGoNode(b, "cllocal@127.0.0.1", cookie, 60*time.Second)
	for _, tc := range []struct {
		name string
		make func() gen.ProcessBehavior
	}{
		{"ergo", func() gen.ProcessBehavior { return &clbErgo{} }},
		{"fast", func() gen.ProcessBehavior { return &clbFast{} }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := ptSpawn(b, n, "", tc.make())
			caller := ptSpawn(b, n, "", tc.make())
			b.Cleanup(func() { srv.Kill(); caller.Kill() })
			b.ResetTimer()
			v, err := caller.DirectWithTimeout(clbLoop{to: srv.Self(), msg: etf.Atom("ping"), n: b.N}, 300)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			lat := v.([]time.Duration)
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50_us")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99_us")
		})
	}
}
