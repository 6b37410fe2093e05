package pubsub_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/nodetest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/pg"
	"github.com/gonode/gonode/node/pubsub"
	"github.com/gonode/gonode/node/term"
)

func TestMain(m *testing.M) { testutil.MainInNetns(m) }

// order is the Elixir struct %Order{sender: "...", seq: n} of the tests.
type order struct {
	Sender string `erl:"sender"`
	Seq    int    `erl:"seq"`
}

// elixirTestCode defines the test's struct and a subscriber that keeps
// what Go broadcast ({:from_go, _}) and answers {:get, pid}.
const elixirTestCode = `
defmodule Order do
  defstruct [:sender, :seq]
end
defmodule Collector do
  def loop(acc) do
    receive do
      {:from_go, _} = m -> loop([m | acc])
      {:get, from} -> send(from, {:got, Enum.reverse(acc)}); loop(acc)
      _ -> loop(acc)
    end
  end
end
me = self()
pid = spawn(fn ->
  :ok = Phoenix.PubSub.subscribe(MyApp.PubSub, "orders")
  send(me, :subscribed)
  Collector.loop([])
end)
receive do :subscribed -> :ok end
Process.register(pid, :collector)
:ok`

const wait = 20 * time.Second

type cluster struct {
	gn    *node.Node
	scope *pg.Scope
	ps    *pubsub.PubSub
	exs   []*beamtest.Node
}

// start runs MyApp.PubSub with pool_size pool on a gonode and on three
// Elixir nodes running the stand-in, all connected, and waits until
// every node sees every node's worker in every group.
func start(t *testing.T, rel beamtest.Release, pool int) *cluster {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "phoenix_pubsub.ex"))
	if err != nil {
		t.Fatal(err)
	}
	hostDir, beamDir := rel.TempDir(t)
	if err := os.WriteFile(filepath.Join(hostDir, "phoenix_pubsub.ex"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	cookie := beamtest.RandomCookie()
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = nodetest.Uniq("go")+"@127.0.0.1", node.Cookie(cookie)
	c := &cluster{gn: nodetest.Start(t, cfg, &testutil.SyncBuffer{})}
	if c.scope, err = pg.Start(c.gn, pubsub.Scope, pg.Options{}); err != nil {
		t.Fatal(err)
	}
	if c.ps, err = pubsub.Start(c.gn, c.scope, "MyApp.PubSub", pubsub.Options{PoolSize: pool}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		ex := beamtest.Start(t, rel, beamtest.Options{Name: nodetest.Uniq("ex") + "@127.0.0.1", Cookie: cookie, Elixir: true})
		ex.Eval(t, fmt.Sprintf(`Code.require_file(%q)
			{:ok, _} = :pg.start(Phoenix.PubSub)
			{:ok, _} = Supervisor.start_link([{Phoenix.PubSub, name: MyApp.PubSub, pool_size: %d}], strategy: :one_for_one)
			:ok`, filepath.Join(beamDir, "phoenix_pubsub.ex"), pool))
		for _, to := range append([]string{cfg.Name}, names(c.exs)...) {
			if out := ex.Eval(t, fmt.Sprintf(`Node.connect(:"%s")`, to)); out != "true" {
				t.Fatalf("%s: Node.connect(%s) = %s", ex.Name, to, out)
			}
		}
		c.exs = append(c.exs, ex)
	}
	groups := pubsub.Groups("Elixir.MyApp.PubSub", pool)
	for _, ex := range c.exs {
		testutil.EventuallyNamed(t, wait, ex.Name+" sees 4 workers in each group", func() (bool, string) {
			out := ex.Eval(t, fmt.Sprintf(`for g <- %s, do: length(:pg.get_members(Phoenix.PubSub, g))`, elixirList(groups)))
			return out == elixirList4(len(groups)), out
		})
	}
	testutil.EventuallyNamed(t, wait, "Go sees 4 workers in each group", func() (bool, string) {
		var got []int
		for _, g := range groups {
			got = append(got, len(c.scope.Members(g)))
		}
		return !slices.ContainsFunc(got, func(n int) bool { return n != 4 }), fmt.Sprint(got)
	})
	return c
}

func names(exs []*beamtest.Node) []string {
	var out []string
	for _, ex := range exs {
		out = append(out, ex.Name)
	}
	return out
}

func elixirList(groups []etf.Atom) string {
	s := "["
	for i, g := range groups {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf(`:"%s"`, g)
	}
	return s + "]"
}

func elixirList4(n int) string {
	s := "["
	for i := 0; i < n; i++ {
		if i > 0 {
			s += ", "
		}
		s += "4"
	}
	return s + "]"
}

func TestPubSubWithElixir(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		for _, pool := range []int{1, 4} {
			t.Run(fmt.Sprintf("pool_size=%d", pool), func(t *testing.T) {
				c := start(t, rel, pool)
				scopePids := make([]string, len(c.exs))
				for i, ex := range c.exs {
					scopePids[i] = ex.Eval(t, `inspect(Process.whereis(Phoenix.PubSub))`)
					ex.Eval(t, elixirTestCode)
				}
				sub, err := c.ps.Subscribe("orders")
				if err != nil {
					t.Fatal(err)
				}
				defer sub.Cancel()

				// 1,000 broadcasts from six Elixir processes, two per node, each
				// ended by {:done, sender}: the Go subscriber gets each once, in
				// each sender's order, decoded into a Go struct.
				counts := []int{167, 167, 167, 167, 166, 166}
				want := map[string]int{}
				for i, ex := range c.exs {
					for k := 0; k < 2; k++ {
						want[fmt.Sprintf("%s/%d", ex.Name, k)] = counts[2*i+k]
					}
					ex.Eval(t, fmt.Sprintf(`counts = {%d, %d}
						for k <- 0..1 do
						  spawn(fn ->
						    sender = "#{node()}/#{k}"
						    for i <- 1..elem(counts, k), do: Phoenix.PubSub.broadcast(MyApp.PubSub, "orders", %%Order{sender: sender, seq: i})
						    Phoenix.PubSub.broadcast(MyApp.PubSub, "orders", {:done, sender})
						  end)
						end
						:ok`, counts[2*i], counts[2*i+1]))
				}
				last := map[string]int{}
				total, done := 0, 0
				for done < len(want) {
					m := testutil.Receive(t, sub.C(), wait)
					if tup, ok := m.Payload.(etf.Tuple); ok && len(tup) == 2 && tup[0] == etf.Atom("done") {
						s := string(tup[1].([]byte))
						if last[s] != want[s] {
							t.Fatalf("%s done after %d of its %d broadcasts", s, last[s], want[s])
						}
						done++
						continue
					}
					var o order
					if err := m.Unmarshal(&o, term.WithStructName("Elixir.Order")); err != nil {
						t.Fatalf("decode %v: %v", m.Payload, err)
					}
					if o.Seq != last[o.Sender]+1 {
						t.Fatalf("from %s: seq %d after %d (lost, repeated or out of order)", o.Sender, o.Seq, last[o.Sender])
					}
					last[o.Sender] = o.Seq
					total++
				}
				if total != 1000 {
					t.Fatalf("received %d broadcasts, want 1000", total)
				}

				// A Go broadcast reaches every Elixir subscriber once, in
				// order, and the Go subscriber too; a direct broadcast only
				// the node it names.
				for i := 1; i <= 100; i++ {
					if err := c.ps.Broadcast("orders", etf.Tuple{etf.Atom("from_go"), int64(i)}); err != nil {
						t.Fatal(err)
					}
				}
				if err := c.ps.DirectBroadcast(c.exs[0].Name, "orders", etf.Tuple{etf.Atom("from_go"), etf.Atom("direct")}); err != nil {
					t.Fatal(err)
				}
				if err := c.ps.Broadcast("orders", etf.Tuple{etf.Atom("from_go"), etf.Atom("end")}); err != nil {
					t.Fatal(err)
				}
				seq := "Enum.to_list(1..100) ++ [:end]"
				for i, ex := range c.exs {
					expect := seq
					if i == 0 {
						expect = "Enum.to_list(1..100) ++ [:direct, :end]"
					}
					testutil.EventuallyNamed(t, wait, ex.Name+" got the Go broadcasts once each", func() (bool, string) {
						out := ex.Eval(t, fmt.Sprintf(`send(:collector, {:get, self()})
							got = receive do {:got, l} -> Enum.map(l, &elem(&1, 1)) end
							cond do
							  got == %s -> "ok"
							  :end in got -> "wrong: " <> inspect(got, limit: :infinity)
							  true -> "waiting: #{length(got)}"
							end`, expect))
						if len(out) > 8 && out[:8] == `"wrong: ` {
							t.Fatalf("%s: %s", ex.Name, out)
						}
						return out == `"ok"`, out
					})
				}
				for i := 1; i <= 101; i++ {
					m := testutil.Receive(t, sub.C(), wait)
					tup, ok := m.Payload.(etf.Tuple)
					want := etf.Term(int64(i))
					if i == 101 {
						want = etf.Atom("end")
					}
					if !ok || len(tup) != 2 || tup[1] != want {
						t.Fatalf("Go subscriber: message %d is %v, want {from_go, %v}", i, m.Payload, want)
					}
				}

				for i, ex := range c.exs {
					if got := ex.Eval(t, `inspect(Process.whereis(Phoenix.PubSub))`); got != scopePids[i] {
						t.Fatalf("%s: the Phoenix.PubSub scope is %s, was %s: it crashed", ex.Name, got, scopePids[i])
					}
				}
			})
		}
	})
}
