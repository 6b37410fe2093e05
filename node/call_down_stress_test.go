package node_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
)

// Sizes of TestCallsAtOnceEndWithTheMonitorsReason: each round, over a
// fresh connection, stressWorkers goroutines make stressCalls calls each,
// one after the other.
const (
	stressRounds  = 3 // per kind of callee; the node dropping connections makes one
	stressWorkers = 32
	stressCalls   = 10
	// stressCallTimeout is far beyond the time a call takes: only a call
	// whose DOWN was lost reaches it.
	stressCallTimeout = 15 * time.Second
)

// Many calls at once whose callee is a name nobody registered, a pid that
// already exited, or a process whose node drops the connection on every
// call: each ends with the monitor's reason. The peer answers the monitor
// of a missing callee at once, while the calling goroutine is still
// setting the monitor up (and, with this many, waiting for ergo's monitor
// table): a DOWN lost then leaves the call waiting for its timeout. Before
// the connection ended the monitors it sent, 1 to 2% of these calls did.
func TestCallsAtOnceEndWithTheMonitorsReason(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		gn, _ := startGo(t, uniq("go")+"@127.0.0.1", node.Cookie(cookie))
		erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
		// corpses answers N with N pids of processes that have exited.
		erl.Eval(t, `register(corpses, spawn(fun L() -> receive {'$gen_call', From, N} ->
			gen:reply(From, [begin P = spawn(fun() -> ok end), R = monitor(process, P),
				receive {'DOWN', R, process, P, _} -> P end end || _ <- lists:seq(1, N)]), L() end end)), ok.`)
		// dropper never answers: it disconnects the caller's node.
		erl.Eval(t, `register(dropper, spawn(fun L() -> receive {'$gen_call', {Pid, _}, _} ->
			erlang:disconnect_node(node(Pid)), L() end end)), ok.`)

		// fresh makes the next calls go over a new connection.
		fresh := func(t *testing.T) {
			t.Helper()
			if gn.IsConnected(erl.Name) {
				if err := gn.Disconnect(erl.Name); err != nil {
					t.Fatal(err)
				}
			}
			testutil.Eventually(t, 10*time.Second, func() (bool, string) {
				return !gn.IsConnected(erl.Name), fmt.Sprintf("connected to %v", gn.Connected())
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := gn.Connect(ctx, erl.Name); err != nil {
				t.Fatal(err)
			}
		}
		// rounds runs n rounds: worker w calls callees[w][i] for each i;
		// every call must end with a *genserver.DownError of the reason.
		rounds := func(t *testing.T, n int, reason string, callees func(t *testing.T, round int) [][]any) {
			for round := range n {
				fresh(t)
				work := callees(t, round)
				errs := make([][]error, len(work))
				var wg sync.WaitGroup
				for w, tos := range work {
					errs[w] = make([]error, len(tos))
					wg.Go(func() {
						for i, to := range tos {
							ctx, cancel := context.WithTimeout(context.Background(), stressCallTimeout)
							_, errs[w][i] = gn.Call(ctx, to, etf.Atom("hello"))
							cancel()
						}
					})
				}
				wg.Wait()
				bad, total := 0, 0
				for w := range errs {
					for i, err := range errs[w] {
						total++
						var down *genserver.DownError
						if errors.As(err, &down) && down.Reason == reason {
							continue
						}
						if bad++; bad <= 3 {
							t.Errorf("call %v: error = %v, want a DownError with reason %s", work[w][i], err, reason)
						}
					}
				}
				if bad > 0 {
					t.Fatalf("round %d: %d of %d calls did not end with %s", round, bad, total, reason)
				}
			}
		}
		grid := func(f func(w, i int) any) [][]any {
			work := make([][]any, stressWorkers)
			for w := range work {
				work[w] = make([]any, stressCalls)
				for i := range work[w] {
					work[w][i] = f(w, i)
				}
			}
			return work
		}

		t.Run("names nobody registered", func(t *testing.T) {
			rounds(t, stressRounds, "noproc", func(t *testing.T, round int) [][]any {
				return grid(func(w, i int) any {
					return gen.ProcessID{Name: fmt.Sprintf("nobody_%d_%d_%d", round, w, i), Node: erl.Name}
				})
			})
		})
		t.Run("pids that exited", func(t *testing.T) {
			rounds(t, stressRounds, "noproc", func(t *testing.T, _ int) [][]any {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				v, err := gn.Call(ctx, gen.ProcessID{Name: "corpses", Node: erl.Name}, int64(stressWorkers*stressCalls))
				if err != nil {
					t.Fatal(err)
				}
				pids, ok := v.(etf.List)
				if !ok || len(pids) != stressWorkers*stressCalls {
					t.Fatalf("corpses answered %v, want %d pids", v, stressWorkers*stressCalls)
				}
				return grid(func(w, i int) any { return pids[w*stressCalls+i] })
			})
		})
		// Every call connects anew (hundreds of connections in a round), and
		// some of them set their monitor while the previous call's
		// connection goes down.
		t.Run("a node that drops the connection", func(t *testing.T) {
			rounds(t, 1, "noconnection", func(*testing.T, int) [][]any {
				return grid(func(int, int) any { return gen.ProcessID{Name: "dropper", Node: erl.Name} })
			})
		})
	})
}
