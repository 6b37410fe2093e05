package global_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/nodetest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/global"
)

// cluster starts a visible gonode running global's name server and count
// Elixir nodes of rel in one mesh.
func cluster(t *testing.T, rel beamtest.Release, count int) (*node.Node, *global.Server, []*beamtest.Node) {
	t.Helper()
	return clusterNamed(t, rel, count, nodetest.Uniq("go"))
}

// clusterNamed is cluster with the gonode's basename.
func clusterNamed(t *testing.T, rel beamtest.Release, count int, goBase string) (*node.Node, *global.Server, []*beamtest.Node) {
	t.Helper()
	cookie := beamtest.RandomCookie()
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = goBase+"@127.0.0.1", node.Cookie(cookie)
	logs := &testutil.SyncBuffer{}
	gn := nodetest.Start(t, cfg, logs)
	srv, err := global.Start(gn, global.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	var exs []*beamtest.Node
	for i := 0; i < count; i++ {
		exs = append(exs, beamtest.Start(t, rel, beamtest.Options{
			Name: nodetest.Uniq("ex") + "@127.0.0.1", Cookie: cookie, Elixir: true,
		}))
	}
	for i, ex := range exs {
		targets := []string{cfg.Name}
		for _, other := range exs[:i] {
			targets = append(targets, other.Name)
		}
		for _, to := range targets {
			if out := ex.Eval(t, fmt.Sprintf(`Node.connect(:"%s")`, to)); out != "true" {
				t.Fatalf("%s: Node.connect(%s) = %s", ex.Name, to, out)
			}
		}
	}
	return gn, srv, exs
}

// syncOn runs :global.sync() on an Elixir node, waiting at most 60 s, and
// returns its result (nil when it was still blocked) and how long it took.
const syncOn = `t0 = System.monotonic_time(:millisecond)
task = Task.async(fn -> :global.sync() end)
res = Task.yield(task, 15_000) || Task.shutdown(task, :brutal_kill)
{res, System.monotonic_time(:millisecond) - t0}`

// transOn runs global:trans/4 over every visible node and this one.
const transOn = `task = Task.async(fn ->
  :global.trans({:fid_lock, self()}, fn -> :done end, Node.list([:this, :visible]), 0)
end)
Task.yield(task, 15_000) || Task.shutdown(task, :brutal_kill)`

func TestGlobalSyncWithVisibleGonode(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		gn, srv, exs := cluster(t, rel, 3)
		for _, ex := range exs {
			if out := ex.Eval(t, `Node.list() |> length()`); out != "3" {
				t.Fatalf("%s: Node.list() has %s nodes, want 3", ex.Name, out)
			}
			out := ex.Eval(t, syncOn)
			t.Logf("%s (OTP %s): global.sync() with the gonode connected: %s", ex.Name, rel.Name, out)
			var ms int
			if _, err := fmt.Sscanf(out, "{{:ok, :ok}, %d}", &ms); err != nil {
				t.Fatalf("%s: global.sync() = %s, want {{:ok, :ok}, ms}", ex.Name, out)
			}
			// global's own view: the gonode is among the synced nodes.
			if got := ex.Eval(t, fmt.Sprintf(`:"%s" in :gen_server.call(:global_name_server, :get_synced)`, gn.Name())); got != "true" {
				t.Fatalf("%s: the gonode is not in global's synced list", ex.Name)
			}
		}
		// trans over every visible node, the gonode included: each trans
		// sets the lock on the gonode's name server too, with 0 retries
		// (one refusal would abort it).
		for _, ex := range exs {
			if out := ex.Eval(t, transOn); out != "{:ok, :done}" {
				t.Fatalf("%s: global.trans over Node.list([:this, :visible]) = %s, want {:ok, :done}", ex.Name, out)
			}
		}
		testutil.Eventually(t, 30*time.Second, func() (bool, string) {
			got := srv.Synced()
			return len(got) == 3, fmt.Sprint(got)
		})
		// A name registered on an Elixir node after the sync reaches the
		// gonode through the registration's calls.
		pid := exs[0].Eval(t, `pid = spawn(fn -> Process.sleep(:infinity) end)
			:yes = :global.register_name(:fid_pricing, pid)
			inspect(pid)`)
		testutil.Eventually(t, 30*time.Second, func() (bool, string) {
			p, ok := srv.Whereis(etf.Atom("fid_pricing"))
			return ok && string(p.Node) == exs[0].Name, fmt.Sprint(p, ok)
		})
		_ = pid
	})
}

// TestGlobalNamesBothWays: a Go server registered from Go as :inventory
// answers GenServer.call({:global, :inventory}, :ping) on every Elixir
// node; an Elixir process registered as :pricing is resolved and called
// from Go; each name disappears everywhere when its node or process goes.
func TestGlobalNamesBothWays(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		gn, srv, exs := cluster(t, rel, 3)
		for _, ex := range exs {
			if out := ex.Eval(t, syncOn); !strings.HasPrefix(out, "{{:ok, :ok}, ") {
				t.Fatalf("%s: global.sync() = %s", ex.Name, out)
			}
		}
		inv := node.NewServer()
		inv.Call("ping", func() string { return "pong from go" })
		p, err := gn.RegisterServer("", inv)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if ok, err := srv.Register(ctx, etf.Atom("inventory"), p.Self()); err != nil || !ok {
			t.Fatalf("Register(:inventory) = %v, %v; want true", ok, err)
		}
		// The name is taken now: :no, as global:register_name says.
		other, err := gn.RegisterServer("", node.NewServer())
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := srv.Register(ctx, etf.Atom("inventory"), other.Self()); err != nil || ok {
			t.Fatalf("second Register(:inventory) = %v, %v; want false", ok, err)
		}
		for _, ex := range exs {
			if out := ex.Eval(t, `GenServer.call({:global, :inventory}, :ping)`); out != `"pong from go"` {
				t.Fatalf("%s: GenServer.call({:global, :inventory}, :ping) = %s", ex.Name, out)
			}
		}

		// Unregister from Go: every Elixir node drops the name.
		if ok, err := srv.Register(ctx, etf.Atom("spare"), other.Self()); err != nil || !ok {
			t.Fatalf("Register(:spare) = %v, %v", ok, err)
		}
		for _, ex := range exs {
			testutil.Eventually(t, 30*time.Second, func() (bool, string) {
				out := ex.Eval(t, `:global.whereis_name(:spare) |> node() |> Atom.to_string()`)
				return out == `"`+gn.Name()+`"`, out
			})
		}
		if err := srv.Unregister(ctx, etf.Atom("spare")); err != nil {
			t.Fatal(err)
		}
		for _, ex := range exs {
			if out := ex.Eval(t, `:global.whereis_name(:spare)`); out != ":undefined" {
				t.Fatalf("%s: :spare after Unregister = %s", ex.Name, out)
			}
		}
		if _, ok := srv.Whereis(etf.Atom("spare")); ok {
			t.Fatal("Whereis(:spare) after Unregister found it")
		}

		// An Elixir process registered as :pricing: resolved and called
		// from Go.
		exs[1].Eval(t, `pid = spawn(fn ->
			receive do
				{:"$gen_call", from, :price} -> GenServer.reply(from, 42)
			end
			Process.sleep(:infinity)
		end)
		:yes = :global.register_name(:pricing, pid)`)
		testutil.Eventually(t, 30*time.Second, func() (bool, string) {
			p, ok := srv.Whereis(etf.Atom("pricing"))
			return ok && string(p.Node) == exs[1].Name, fmt.Sprint(p, ok)
		})
		if v, err := srv.Call(ctx, etf.Atom("pricing"), etf.Atom("price")); err != nil || fmt.Sprint(v) != "42" {
			t.Fatalf("Call({:global, :pricing}, :price) = %v, %v; want 42", v, err)
		}

		// The node of :pricing goes down: the name goes from Go too.
		exs[1].Kill()
		testutil.Eventually(t, 30*time.Second, func() (bool, string) {
			p, ok := srv.Whereis(etf.Atom("pricing"))
			return !ok, fmt.Sprint(p, ok)
		})
		// The Go process exits: every Elixir node drops :inventory.
		p.Kill()
		for _, ex := range []*beamtest.Node{exs[0], exs[2]} {
			testutil.Eventually(t, 30*time.Second, func() (bool, string) {
				out := ex.Eval(t, `:global.whereis_name(:inventory)`)
				return out == ":undefined", out
			})
		}
		if _, ok := srv.Whereis(etf.Atom("inventory")); ok {
			t.Fatal("the Go side still lists :inventory after its process exited")
		}
	})
}

// TestGlobalNameClashAfterPartition: the gonode is cut from two Elixir
// nodes, the same name is registered on both sides meanwhile, and the link
// heals: exactly one holder remains on every node, the process of the
// lower node as global's default resolve function keeps, and the other
// exits. Run with the gonode's name sorting first (this node resolves the
// clash) and last (the BEAM node does). The Elixir nodes stay connected.
func TestGlobalNameClashAfterPartition(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		for _, base := range []string{"a" + nodetest.Uniq("go"), "z" + nodetest.Uniq("go")} {
			t.Run(base[:1], func(t *testing.T) {
				gn, srv, exs := clusterNamed(t, rel, 2, base)
				for _, ex := range exs {
					if out := ex.Eval(t, syncOn); !strings.HasPrefix(out, "{{:ok, :ok}, ") {
						t.Fatalf("%s: global.sync() = %s", ex.Name, out)
					}
				}
				for _, ex := range exs {
					// Once the first Elixir node has lost the gonode, the
					// other may drop it too before this loop gets to it (the
					// prevent_overlapping_partitions notices): not an error.
					if err := gn.Disconnect(ex.Name); err != nil && gn.IsConnected(ex.Name) {
						t.Fatal(err)
					}
				}
				for _, ex := range exs {
					testutil.Eventually(t, 30*time.Second, func() (bool, string) {
						out := ex.Eval(t, fmt.Sprintf(`:"%s" in Node.list()`, gn.Name()))
						return out == "false", out
					})
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				goProc, err := gn.RegisterServer("", node.NewServer())
				if err != nil {
					t.Fatal(err)
				}
				if ok, err := srv.Register(ctx, etf.Atom("dup"), goProc.Self()); err != nil || !ok {
					t.Fatalf("Register(:dup) during the partition = %v, %v", ok, err)
				}
				exPid := exs[0].Eval(t, `pid = spawn(fn -> Process.sleep(:infinity) end)
					:yes = :global.register_name(:dup, pid)
					Process.register(pid, :fid_dup)
					inspect(pid)`)
				for _, ex := range exs {
					if err := gn.Connect(ctx, ex.Name); err != nil {
						t.Fatal(err)
					}
				}
				goWins := base[0] == 'a'
				var want string
				if goWins {
					want = fmt.Sprintf(`"%s"`, gn.Name())
				} else {
					want = fmt.Sprintf(`"%s"`, exs[0].Name)
				}
				for _, ex := range exs {
					testutil.EventuallyNamed(t, 30*time.Second, ex.Name+" resolves :dup to the winner", func() (bool, string) {
						out := ex.Eval(t, `case :global.whereis_name(:dup) do
							:undefined -> "undefined"
							pid -> Atom.to_string(node(pid))
						end`)
						return out == want, out
					})
				}
				testutil.EventuallyNamed(t, 30*time.Second, "the gonode resolves :dup to the winner", func() (bool, string) {
					p, ok := srv.Whereis(etf.Atom("dup"))
					return ok && fmt.Sprintf(`"%s"`, p.Node) == want, fmt.Sprint(p, ok)
				})
				// The loser exited.
				if goWins {
					testutil.EventuallyNamed(t, 30*time.Second, "the Elixir loser exits", func() (bool, string) {
						out := exs[0].Eval(t, `Process.whereis(:fid_dup) == nil`)
						return out == "true", out + " " + exPid
					})
				} else {
					testutil.EventuallyNamed(t, 30*time.Second, "the Go loser exits", func() (bool, string) {
						return !goProc.IsAlive(), "alive"
					})
				}
				if out := exs[0].Eval(t, fmt.Sprintf(`:"%s" in Node.list()`, exs[1].Name)); out != "true" {
					t.Fatalf("the Elixir nodes were disconnected from each other: %s", out)
				}
			})
		}
	})
}

// TestGlobalTwoGonodes: two gonodes and two Elixir nodes in one mesh:
// global:sync() returns on the Elixir nodes, and a name registered from one
// gonode is resolved and called from the other and from Elixir.
func TestGlobalTwoGonodes(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		g1, s1, exs := cluster(t, rel, 2)
		cfg := node.DefaultConfig()
		cfg.Name, cfg.Cookie = nodetest.Uniq("go")+"@127.0.0.1", g1.Config().Cookie
		g2 := nodetest.Start(t, cfg, &testutil.SyncBuffer{})
		s2, err := global.Start(g2, global.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s2.Stop)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, to := range []string{g1.Name(), exs[0].Name, exs[1].Name} {
			if err := g2.Connect(ctx, to); err != nil {
				t.Fatal(err)
			}
		}
		for _, ex := range exs {
			if out := ex.Eval(t, syncOn); !strings.HasPrefix(out, "{{:ok, :ok}, ") {
				t.Fatalf("%s: global.sync() = %s", ex.Name, out)
			}
		}
		// Each gonode counts the other as in sync (through the Elixir nodes'
		// new_nodes and in_sync).
		for _, pair := range []struct {
			s     *global.Server
			other string
		}{{s1, g2.Name()}, {s2, g1.Name()}} {
			testutil.Eventually(t, 30*time.Second, func() (bool, string) {
				got := pair.s.Synced()
				return slices.Contains(got, pair.other), fmt.Sprint(got)
			})
		}
		inv := node.NewServer()
		inv.Call("ping", func() string { return "pong from g1" })
		p, err := g1.RegisterServer("", inv)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := s1.Register(ctx, etf.Atom("inv1"), p.Self()); err != nil || !ok {
			t.Fatalf("Register = %v, %v", ok, err)
		}
		if v, err := s2.Call(ctx, etf.Atom("inv1"), etf.Atom("ping")); err != nil || fmt.Sprintf("%s", v) != "pong from g1" {
			t.Fatalf("the other gonode's Call({:global, :inv1}, :ping) = %v, %v", v, err)
		}
		for _, ex := range exs {
			if out := ex.Eval(t, `GenServer.call({:global, :inv1}, :ping)`); out != `"pong from g1"` {
				t.Fatalf("%s: GenServer.call({:global, :inv1}, :ping) = %s", ex.Name, out)
			}
		}
		// The gonode holding :inv1 stops: the name goes on every node.
		s1.Stop()
		if err := g1.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 30*time.Second, func() (bool, string) {
			p, ok := s2.Whereis(etf.Atom("inv1"))
			return !ok, fmt.Sprint(p, ok)
		})
		for _, ex := range exs {
			testutil.Eventually(t, 30*time.Second, func() (bool, string) {
				out := ex.Eval(t, `:global.whereis_name(:inv1)`)
				return out == ":undefined", out
			})
		}
	})
}

// TestGlobalNamesReachALateNode: a name an Elixir node registered (its
// resolve function is a fun of global's module) is in the gonode's
// exchange with a node that connects later to the gonode alone: that node
// resolves it, and its sync completes (the exchange, with the fun in it,
// reached it: a sync whose exchange is lost never completes). The late
// node connects to the name's node afterwards, to monitor its process.
func TestGlobalNamesReachALateNode(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		gn, srv, exs := cluster(t, rel, 1)
		exs[0].Eval(t, `pid = spawn(fn -> Process.sleep(:infinity) end)
			:yes = :global.register_name(:early, pid)`)
		testutil.Eventually(t, 30*time.Second, func() (bool, string) {
			_, ok := srv.Whereis(etf.Atom("early"))
			return ok, "not yet"
		})
		late := beamtest.Start(t, rel, beamtest.Options{
			Name: nodetest.Uniq("ex") + "@127.0.0.1", Cookie: gn.Config().Cookie.Reveal(), Elixir: true,
		})
		if out := late.Eval(t, fmt.Sprintf(`Node.connect(:"%s")`, gn.Name())); out != "true" {
			t.Fatalf("Node.connect = %s", out)
		}
		if out := late.Eval(t, syncOn); !strings.HasPrefix(out, "{{:ok, :ok}, ") {
			t.Fatalf("late node's global.sync() = %s", out)
		}
		want := exs[0].Name
		testutil.Eventually(t, 30*time.Second, func() (bool, string) {
			out := late.Eval(t, `case :global.whereis_name(:early) do
				:undefined -> "undefined"
				pid -> Atom.to_string(node(pid))
			end`)
			return out == `"`+want+`"`, out
		})
	})
}
