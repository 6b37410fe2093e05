package pg_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/nodetest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
	"github.com/gonode/gonode/node/pg"
)

// idle is a Go process that does nothing: a group member.
type idle struct{ genserver.Server }

// spawnIdle starts an unregistered Go process.
func spawnIdle(t *testing.T, n *node.Node) gen.Process {
	t.Helper()
	p, err := n.RegisterServer("", &idle{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cluster starts a visible gonode running scope "pg" and count Elixir
// nodes of rel (each with kernel's default pg scope) in one mesh.
func cluster(t *testing.T, rel beamtest.Release, count int, extraArgs ...string) (*node.Node, *pg.Scope, []*beamtest.Node) {
	t.Helper()
	cookie := beamtest.RandomCookie()
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = nodetest.Uniq("go")+"@127.0.0.1", node.Cookie(cookie)
	logs := &testutil.SyncBuffer{}
	gn := nodetest.Start(t, cfg, logs)
	scope, err := pg.Start(gn, pg.DefaultScope, pg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var exs []*beamtest.Node
	for i := 0; i < count; i++ {
		ex := beamtest.Start(t, rel, beamtest.Options{
			Name: nodetest.Uniq("ex") + "@127.0.0.1", Cookie: cookie, Elixir: true,
			ErlArgs: append([]string{"-kernel", "start_pg", "true"}, extraArgs...),
		})
		exs = append(exs, ex)
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
	return gn, scope, exs
}

// nodesOf lists, on an Elixir node, the node of each member of group in
// scope, sorted.
func nodesOf(scope, group string) string {
	return fmt.Sprintf(`:pg.get_members(%s, %s) |> Enum.map(&node/1) |> Enum.sort() |> inspect()`, scope, group)
}

func goNodes(members []etf.Pid) string {
	var b []string
	for _, p := range members {
		b = append(b, string(p.Node))
	}
	return strings.Join(b, ",")
}

func countOn(members []etf.Pid, nodeName string) int {
	n := 0
	for _, p := range members {
		if string(p.Node) == nodeName {
			n++
		}
	}
	return n
}

const wait = 15 * time.Second

func TestPGThreeElixirNodesAndGo(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		gn, scope, exs := cluster(t, rel, 3)
		scopePids := make([]string, len(exs))
		for i, ex := range exs {
			scopePids[i] = ex.Eval(t, `inspect(Process.whereis(:pg))`)
		}
		jobs := etf.Atom("jobs")

		// A Go process joins :jobs: every Elixir node lists it.
		member := spawnIdle(t, gn)
		if err := scope.Join(jobs, member.Self()); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`"[:\"%s\"]"`, gn.Name())
		for _, ex := range exs {
			testutil.EventuallyNamed(t, wait, ex.Name+" lists the Go member", func() (bool, string) {
				out := ex.Eval(t, nodesOf(":pg", ":jobs"))
				return out == want, out
			})
		}

		// An Elixir process joins on each node: the Go side sees all three.
		for _, ex := range exs {
			ex.Eval(t, `pid = spawn(fn -> receive do :stop -> :ok end end)
				Process.register(pid, :member)
				:ok = :pg.join(:jobs, pid)`)
		}
		testutil.EventuallyNamed(t, wait, "Go sees the Elixir members", func() (bool, string) {
			m := scope.Members(jobs)
			for _, ex := range exs {
				if countOn(m, ex.Name) != 1 {
					return false, goNodes(m)
				}
			}
			return countOn(m, gn.Name()) == 1, goNodes(m)
		})

		// Killing the Elixir member removes it from the Go view.
		exs[0].Eval(t, `Process.exit(Process.whereis(:member), :kill)`)
		testutil.EventuallyNamed(t, wait, "the killed Elixir member leaves the Go view", func() (bool, string) {
			m := scope.Members(jobs)
			return countOn(m, exs[0].Name) == 0 && countOn(m, exs[1].Name) == 1, goNodes(m)
		})

		// Killing the Go member removes it everywhere.
		member.Kill()
		for _, ex := range exs {
			testutil.EventuallyNamed(t, wait, ex.Name+" drops the killed Go member", func() (bool, string) {
				out := ex.Eval(t, fmt.Sprintf(`Enum.count(:pg.get_members(:jobs), &(node(&1) == :"%s"))`, gn.Name()))
				return out == "0", out
			})
		}
		if got := scope.LocalMembers(jobs); len(got) != 0 {
			t.Fatalf("local members after the Go member died: %v", got)
		}

		// Killing an Elixir node removes its member from the Go view.
		exs[2].Kill()
		testutil.EventuallyNamed(t, wait, "the killed node's member leaves the Go view", func() (bool, string) {
			m := scope.Members(jobs)
			return countOn(m, exs[2].Name) == 0 && countOn(m, exs[1].Name) == 1, goNodes(m)
		})

		// The Go node going away (every Elixir node disconnects it) removes
		// its members everywhere; when it comes back they return.
		second := spawnIdle(t, gn)
		if err := scope.Join(jobs, second.Self()); err != nil {
			t.Fatal(err)
		}
		live := exs[:2]
		for _, ex := range live {
			testutil.EventuallyNamed(t, wait, ex.Name+" lists the second Go member", func() (bool, string) {
				out := ex.Eval(t, fmt.Sprintf(`Enum.count(:pg.get_members(:jobs), &(node(&1) == :"%s"))`, gn.Name()))
				return out == "1", out
			})
		}
		for _, ex := range live {
			ex.Eval(t, fmt.Sprintf(`:erlang.disconnect_node(:"%s")`, gn.Name()))
		}
		for _, ex := range live {
			testutil.EventuallyNamed(t, wait, ex.Name+" drops the disconnected node's member", func() (bool, string) {
				out := ex.Eval(t, fmt.Sprintf(`Enum.count(:pg.get_members(:jobs), &(node(&1) == :"%s"))`, gn.Name()))
				return out == "0", out
			})
		}
		testutil.EventuallyNamed(t, wait, "Go drops the disconnected nodes' members", func() (bool, string) {
			m := scope.Members(jobs)
			return countOn(m, gn.Name()) == 1 && len(m) == 1, goNodes(m)
		})
		reconnect := time.Now()
		for _, ex := range live {
			if out := ex.Eval(t, fmt.Sprintf(`Node.connect(:"%s")`, gn.Name())); out != "true" {
				t.Fatalf("reconnect: %s", out)
			}
		}
		for _, ex := range live {
			testutil.EventuallyNamed(t, wait, ex.Name+" lists the Go member again", func() (bool, string) {
				out := ex.Eval(t, fmt.Sprintf(`Enum.count(:pg.get_members(:jobs), &(node(&1) == :"%s"))`, gn.Name()))
				return out == "1", out
			})
		}
		testutil.EventuallyNamed(t, wait, "Go sees ex1's member again", func() (bool, string) {
			m := scope.Members(jobs)
			return countOn(m, exs[1].Name) == 1, goNodes(m)
		})
		// Not asserted (the machine is noisy): how long the views took to
		// converge after the reconnect, polls included.
		t.Logf("%s: memberships converged %v after the reconnect", rel.Name, time.Since(reconnect).Round(time.Millisecond))

		// No BEAM scope crashed on anything the Go scope sent.
		for i, ex := range live {
			if got := ex.Eval(t, `inspect(Process.whereis(:pg))`); got != scopePids[i] {
				t.Fatalf("%s: the pg scope is %s, was %s: it crashed", ex.Name, got, scopePids[i])
			}
		}
	})
}

// TestPGGoNodeRestart stops the gonode and starts it again under the same
// name: the Elixir nodes drop the old incarnation's member, list the new
// one's once they reconnect, and the new scope learns the Elixir members;
// no BEAM scope crashes.
func TestPGGoNodeRestart(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		gn, scope, exs := cluster(t, rel, 2)
		jobs := etf.Atom("jobs")
		scopePids := make([]string, len(exs))
		for i, ex := range exs {
			scopePids[i] = ex.Eval(t, `inspect(Process.whereis(:pg))`)
			ex.Eval(t, `pid = spawn(fn -> receive do :stop -> :ok end end)
				:ok = :pg.join(:jobs, pid)`)
		}
		if err := scope.Join(jobs, spawnIdle(t, gn).Self()); err != nil {
			t.Fatal(err)
		}
		goCount := fmt.Sprintf(`Enum.count(:pg.get_members(:jobs), &(node(&1) == :"%s"))`, gn.Name())
		for _, ex := range exs {
			testutil.EventuallyNamed(t, wait, ex.Name+" lists the Go member", func() (bool, string) {
				out := ex.Eval(t, goCount)
				return out == "1", out
			})
		}

		cfg := gn.Config()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := gn.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		for _, ex := range exs {
			testutil.EventuallyNamed(t, wait, ex.Name+" drops the stopped node's member", func() (bool, string) {
				out := ex.Eval(t, goCount)
				return out == "0", out
			})
		}

		gn2 := nodetest.Start(t, cfg, &testutil.SyncBuffer{})
		scope2, err := pg.Start(gn2, pg.DefaultScope, pg.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := scope2.Join(jobs, spawnIdle(t, gn2).Self()); err != nil {
			t.Fatal(err)
		}
		for _, ex := range exs {
			// The first incarnation served the EPMD the Elixir nodes had
			// registered with: they reconnect to the new one themselves.
			if out := ex.Eval(t, fmt.Sprintf(`Node.connect(:"%s")`, gn2.Name())); out != "true" {
				t.Fatalf("%s: reconnect: %s", ex.Name, out)
			}
		}
		for _, ex := range exs {
			// The old incarnation's member was dropped above: the one listed
			// now is the new one's.
			testutil.EventuallyNamed(t, wait, ex.Name+" lists the restarted node's member", func() (bool, string) {
				out := ex.Eval(t, goCount)
				return out == "1", out
			})
		}
		testutil.EventuallyNamed(t, wait, "the restarted scope sees the Elixir members", func() (bool, string) {
			m := scope2.Members(jobs)
			return countOn(m, exs[0].Name) == 1 && countOn(m, exs[1].Name) == 1, goNodes(m)
		})
		for i, ex := range exs {
			if got := ex.Eval(t, `inspect(Process.whereis(:pg))`); got != scopePids[i] {
				t.Fatalf("%s: the pg scope is %s, was %s: it crashed", ex.Name, got, scopePids[i])
			}
		}
	})
}

// drops records the scope's Dropped events.
type drops struct {
	pg.NopObserver
	mu  sync.Mutex
	got []string
}

func (d *drops) Dropped(_, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, reason)
}

func (d *drops) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.got)
}

// TestPGScopeSurvivesJunk: an Elixir node sends the Go scope messages that
// are not of the protocol, or have bad fields; the scope drops and counts
// each, and goes on working.
func TestPGScopeSurvivesJunk(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		cfg := node.DefaultConfig()
		cfg.Name, cfg.Cookie = nodetest.Uniq("go")+"@127.0.0.1", node.Cookie(cookie)
		gn := nodetest.Start(t, cfg, &testutil.SyncBuffer{})
		obs := &drops{}
		scope, err := pg.Start(gn, "junk", pg.Options{Observer: obs})
		if err != nil {
			t.Fatal(err)
		}
		ex := beamtest.Start(t, rel, beamtest.Options{Name: nodetest.Uniq("ex") + "@127.0.0.1", Cookie: cookie, Elixir: true})
		ex.Eval(t, fmt.Sprintf(`true = Node.connect(:"%s")
			{:ok, _} = :pg.start(:junk)
			:ok`, cfg.Name))
		testutil.EventuallyNamed(t, wait, "the scopes discovered each other", func() (bool, string) {
			out := ex.Eval(t, `:sys.get_state(:junk) |> inspect()`)
			return strings.Contains(out, "#PID<"), out
		})
		ex.Eval(t, fmt.Sprintf(`to = {:junk, :"%s"}
			send(to, :garbage)
			send(to, {:discover, :not_a_pid})
			send(to, {:join, Process.whereis(:junk), :g, [:not_a_pid]})
			send(to, {:join, self(), :g, self()})
			send(to, {:leave, Process.whereis(:junk), self(), :not_a_list})
			GenServer.cast(to, {:sync, Process.whereis(:junk), :not_a_list})
			GenServer.cast(to, {:sync, Process.whereis(:junk), [{:g, [1, 2]}]})
			:ok`, cfg.Name))
		want := []string{pg.DropMalformed, pg.DropMalformed, pg.DropMalformed, pg.DropUnknown, pg.DropMalformed, pg.DropMalformed, pg.DropMalformed}
		testutil.EventuallyNamed(t, wait, "every junk message dropped and counted", func() (bool, string) {
			got := obs.list()
			return slices.Equal(got, want), fmt.Sprint(got)
		})
		ex.Eval(t, `:ok = :pg.join(:junk, :after, spawn(fn -> receive do :stop -> :ok end end))`)
		testutil.EventuallyNamed(t, wait, "the Go scope still applies joins", func() (bool, string) {
			m := scope.Members(etf.Atom("after"))
			return countOn(m, ex.Name) == 1, goNodes(m)
		})
	})
}
