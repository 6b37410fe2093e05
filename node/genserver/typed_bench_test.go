package genserver_test

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/nodetest"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
)

// lowInventory is the inventory's get/put written on the low-level
// callbacks, with the type assertions typed handlers spare their users.
type lowInventory struct {
	genserver.Server
	stock map[string]int
}

func (s *lowInventory) HandleCall(p *genserver.Process, from gen.ServerFrom, m etf.Term) (etf.Term, gen.ServerStatus) {
	t, ok := m.(etf.Tuple)
	if !ok || len(t) < 2 {
		return etf.Tuple{etf.Atom("error"), etf.Tuple{etf.Atom("unknown_call"), m}}, gen.ServerStatusOK
	}
	sku, ok := t[1].([]byte)
	if !ok {
		return etf.Tuple{etf.Atom("error"), etf.Atom("badarg")}, gen.ServerStatusOK
	}
	switch {
	case t[0] == etf.Atom("get") && len(t) == 2:
		return int64(s.stock[string(sku)]), gen.ServerStatusOK
	case t[0] == etf.Atom("put") && len(t) == 3:
		qty, ok := t[2].(int64)
		if !ok {
			return etf.Tuple{etf.Atom("error"), etf.Atom("badarg")}, gen.ServerStatusOK
		}
		s.stock[string(sku)] = int(qty)
		return etf.Atom("ok"), gen.ServerStatusOK
	}
	return etf.Tuple{etf.Atom("error"), etf.Tuple{etf.Atom("unknown_call"), m}}, gen.ServerStatusOK
}

// typedInventory is the same server with typed handlers.
func typedInventory() *genserver.TypedServer {
	stock := map[string]int{"sku-1": 7}
	s := genserver.NewServer()
	s.Call("get", func(sku string) int { return stock[sku] })
	s.Call("put", func(sku string, qty int) error { stock[sku] = qty; return nil })
	return s
}

// BenchmarkTypedDispatch is the Go-side cost of a typed handler against
// the low-level HandleCall doing the same by hand, without a process or a
// network: the message as it arrives decoded, the reply term out.
func BenchmarkTypedDispatch(b *testing.B) {
	msg := etf.Tuple{etf.Atom("get"), []byte("sku-1")}
	b.Run("low", func(b *testing.B) {
		s := &lowInventory{stock: map[string]int{"sku-1": 7}}
		b.ReportAllocs()
		for b.Loop() {
			if r, _ := s.HandleCall(nil, gen.ServerFrom{}, msg); r != int64(7) {
				b.Fatal(r)
			}
		}
	})
	b.Run("typed", func(b *testing.B) {
		s := typedInventory()
		b.ReportAllocs()
		for b.Loop() {
			if r, _ := s.HandleCall(nil, gen.ServerFrom{}, msg); r != int64(7) {
				b.Fatal(r)
			}
		}
	})
}

// typedBenchCalls is the number of sequential calls per measurement.
const typedBenchCalls = 5000

// erlCallLatency times n sequential gen_server:calls {get, <<"sku-1">>}
// from one BEAM process and answers {P50, P99} in nanoseconds.
const erlCallLatency = `T = %s, N = %d,
L = lists:sort([begin T0 = erlang:monotonic_time(nanosecond), 7 = gen_server:call(T, {get, <<"sku-1">>}),
  erlang:monotonic_time(nanosecond) - T0 end || _ <- lists:seq(1, N)]),
{lists:nth(N div 2, L), lists:nth(N * 99 div 100, L)}.`

// BenchmarkTypedCallVsLowLevel times typedBenchCalls sequential
// gen_server:calls from a BEAM node to the inventory's get on a Go node,
// written with typed handlers and with the low-level HandleCall, in the
// same round (alternating which goes first). Metrics are microseconds and
// typed/low ratios of the medians over b.N rounds; run with -benchtime=3x.
func BenchmarkTypedCallVsLowLevel(b *testing.B) {
	for _, rel := range beamtest.Releases(b) {
		b.Run(rel.Name, func(b *testing.B) {
			cookie := beamtest.RandomCookie()
			goName := uniq("tbgo") + "@127.0.0.1"
			cfg := node.DefaultConfig()
			cfg.Name, cfg.Cookie = goName, node.Cookie(cookie)
			n := nodetest.Start(b, cfg, nil)
			if _, err := n.RegisterServer("low_inv", &lowInventory{stock: map[string]int{"sku-1": 7}}); err != nil {
				b.Fatal(err)
			}
			if _, err := n.RegisterServer("typed_inv", typedInventory()); err != nil {
				b.Fatal(err)
			}
			erl := beamtest.Start(b, rel, beamtest.Options{Name: uniq("tberl") + "@127.0.0.1", Cookie: cookie})
			measure := func(name string) (float64, float64) {
				out := erl.Eval(b, fmt.Sprintf(erlCallLatency, fmt.Sprintf("{%s, '%s'}", name, goName), typedBenchCalls))
				f := strings.Split(strings.Trim(out, "{}"), ",")
				p50, err1 := strconv.ParseFloat(f[0], 64)
				p99, err2 := strconv.ParseFloat(f[1], 64)
				if len(f) != 2 || err1 != nil || err2 != nil {
					b.Fatalf("latency answer %q", out)
				}
				return p50 / 1e3, p99 / 1e3
			}
			measure("low_inv") // warm up both paths and the connection
			measure("typed_inv")
			var v [4][]float64
			for i := 0; i < b.N; i++ {
				var l50, l99, t50, t99 float64
				if i%2 == 0 {
					l50, l99 = measure("low_inv")
					t50, t99 = measure("typed_inv")
				} else {
					t50, t99 = measure("typed_inv")
					l50, l99 = measure("low_inv")
				}
				for j, x := range []float64{l50, l99, t50, t99} {
					v[j] = append(v[j], x)
				}
			}
			med := func(xs []float64) float64 {
				s := append([]float64(nil), xs...)
				sort.Float64s(s)
				return s[len(s)/2]
			}
			l50, l99, t50, t99 := med(v[0]), med(v[1]), med(v[2]), med(v[3])
			b.ReportMetric(l50, "low_p50_us")
			b.ReportMetric(l99, "low_p99_us")
			b.ReportMetric(t50, "typed_p50_us")
			b.ReportMetric(t99, "typed_p99_us")
			b.ReportMetric(t50/l50, "typed_x_low_p50")
			b.ReportMetric(t99/l99, "typed_x_low_p99")
		})
	}
}
