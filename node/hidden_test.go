package node_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/global"
)

// recorder forwards every message it receives to got.
type recorder struct {
	gen.Server
	got chan etf.Term
}

func (r *recorder) HandleInfo(_ *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	r.got <- message
	return gen.ServerStatusOK
}

func (r *recorder) HandleCast(_ *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	r.got <- etf.Tuple{etf.Atom("$gen_cast"), message}
	return gen.ServerStatusOK
}

// connectAndObserve connects the Elixir node to the gonode and reports
// what the BEAM made of it: {Node.list(), the gonode is in
// Node.list(:hidden), the node_type its nodeup reported, whether a plain
// net_kernel:monitor_nodes(true) subscriber (as global and pg are) got a
// nodeup}. It then sends :marker to the gonode's pg scope process, after
// the BEAM's pg scope :fid_scope handled everything before it.
//
// Ordering makes the "no nodeup" answer exact: net_kernel sends the typed
// and the plain nodeup while handling the connection, so once a call to
// net_kernel returns after the typed one arrived, a plain one would be in
// the mailbox too.
const connectAndObserve = `
:net_kernel.monitor_nodes(true)
:net_kernel.monitor_nodes(true, node_type: :all)
true = Node.connect(go)
type = receive do
  {:nodeup, ^go, info} -> info[:node_type]
after 10_000 -> :no_nodeup
end
:sys.get_state(:net_kernel)
plain = receive do
  {:nodeup, ^go} -> :plain_nodeup
after 0 -> :no_plain_nodeup
end
:sys.get_state(:fid_scope)
send({:fid_scope, go}, :marker)
{Node.list(), go in Node.list(:hidden), type, plain}
`

func TestHiddenAndVisible(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		for _, hidden := range []bool{true, false} {
			t.Run(fmt.Sprintf("hidden=%v", hidden), func(t *testing.T) {
				cookie := beamtest.RandomCookie()
				goName := uniq("go") + "@127.0.0.1"
				gn, _ := startGo(t, goName, node.Cookie(cookie), func(c *node.Config) { c.Hidden = hidden })
				scope := &recorder{got: make(chan etf.Term, 16)}
				if _, err := gn.RegisterServer("fid_scope", scope); err != nil {
					t.Fatal(err)
				}
				if !hidden {
					// A visible gonode runs global's name server (cmd/gonode
					// starts it); a hidden one runs none.
					gs, err := global.Start(gn, global.Options{})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(gs.Stop)
				}
				ex := beamtest.Start(t, rel, beamtest.Options{Name: uniq("ex") + "@127.0.0.1", Cookie: cookie, Elixir: true})
				ex.Eval(t, `{:ok, _} = :pg.start_link(:fid_scope)`)

				got := ex.Eval(t, fmt.Sprintf(`go = :"%s"
					%s`, goName, connectAndObserve))
				want := fmt.Sprintf(`{[:"%s"], false, :visible, :plain_nodeup}`, goName)
				if hidden {
					want = `{[], true, :hidden, :no_plain_nodeup}`
				}
				if got != want {
					t.Fatalf("{Node.list, in Node.list(:hidden), nodeup type, plain nodeup} = %s, want %s", got, want)
				}

				// pg contacts the scope process of a visible node (and would wait
				// for its sync); a hidden node's scope hears nothing before the marker.
				first := testutil.Receive(t, scope.got, 10*time.Second)
				if hidden && first != etf.Atom("marker") {
					t.Fatalf("the hidden node's pg scope got %v before the marker", first)
				}
				if !hidden {
					d, ok := first.(etf.Tuple)
					if !ok || len(d) < 2 || d[0] != etf.Atom("discover") {
						t.Fatalf("the visible node's pg scope got %v, want {discover, ScopePid...}", first)
					}
				}

				// Global names work either way.
				if out, err := ex.EvalE(`{:global.register_name(:fid_name, self()), :global.whereis_name(:fid_name) == self()}`,
					30*time.Second); err != nil || out != "{:yes, true}" {
					t.Fatalf("global register and whereis = %q, %v", out, err)
				}
				if hidden {
					// global ignores hidden nodes: global:sync() returns.
					if out, err := ex.EvalE(`:global.sync()`, 30*time.Second); err != nil || out != ":ok" {
						t.Fatalf("global.sync with a hidden gonode connected = %q, %v", out, err)
					}
					return
				}
				// global waits for every visible node's global_name_server: the
				// gonode's answers, and global:sync() returns (bounded wait, the
				// time is logged), as does global:trans/4 over every visible node.
				out := ex.Eval(t, `t0 = System.monotonic_time(:millisecond)
					t = Task.async(fn -> :global.sync() end)
					{Task.yield(t, 30_000) || Task.shutdown(t, :brutal_kill), System.monotonic_time(:millisecond) - t0}`)
				t.Logf("global.sync() with a visible gonode connected: %s", out)
				if !strings.HasPrefix(out, "{{:ok, :ok}, ") {
					t.Fatalf("global.sync with a visible gonode connected = %s, want {{:ok, :ok}, ms}", out)
				}
				out = ex.Eval(t, `t = Task.async(fn -> :global.trans({:fid_lock, self()}, fn -> :done end, Node.list([:this, :visible]), 0) end)
					Task.yield(t, 30_000) || Task.shutdown(t, :brutal_kill)`)
				if out != "{:ok, :done}" {
					t.Fatalf("global.trans over the visible nodes = %s, want {:ok, :done}", out)
				}
				if err := gn.Disconnect(ex.Name); err != nil {
					t.Fatal(err)
				}
				testutil.Eventually(t, 10*time.Second, func() (bool, string) {
					out := ex.Eval(t, `Node.list()`)
					return out == "[]", out
				})
				if out, err := ex.EvalE(`:global.sync()`, 30*time.Second); err != nil || out != ":ok" {
					t.Fatalf("global.sync after the gonode left = %q, %v", out, err)
				}
			})
		}
	})
}
