package node_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"go.uber.org/goleak"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
)

// collector hands what it receives to a channel.
type collector struct {
	genserver.Server
	got chan etf.Term
}

func (c *collector) HandleInfo(_ *genserver.Process, m etf.Term) gen.ServerStatus {
	c.got <- m
	return gen.ServerStatusOK
}

// processCount is how many processes gn runs.
func processCount(gn *node.Node) int { return len(gn.Ergo().ProcessList()) }

// Node-level Send, Monitor and Link against Elixir processes: DOWN and exit
// reasons arrive as terms ({:shutdown, %{at: 1}} as the tuple with the map),
// and no helper process is left after Demonitor and Unlink.
func TestNodeSendMonitorLinkWithElixir(t *testing.T) {
	rel := beamtest.Host
	beamtest.RequireNetns(t)
	beamtest.RequireRelease(t, rel, "elixir")
	cookie := beamtest.RandomCookie()
	goName := uniq("go") + "@127.0.0.1"
	gn, _ := startGo(t, goName, node.Cookie(cookie))
	exName := uniq("ex") + "@127.0.0.1"
	ex := beamtest.Start(t, rel, beamtest.Options{Name: exName, Cookie: cookie, Elixir: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := gn.Connect(ctx, exName); err != nil {
		t.Fatal(err)
	}
	col := &collector{got: make(chan etf.Term, 8)}
	if _, err := gn.RegisterServer("collector", col); err != nil {
		t.Fatal(err)
	}
	// spawnExit registers an Elixir process as name that exits with the
	// reason it is sent, and sends its pid to the collector.
	spawnExit := func(t *testing.T, name string) etf.Pid {
		t.Helper()
		ex.Eval(t, fmt.Sprintf(`pid = spawn(fn -> receive do {:exit, r} -> exit(r) end end)
			Process.register(pid, :%s); send({:collector, :"%s"}, {:pid, pid}); :ok`, name, goName))
		m := testutil.Receive(t, col.got, 10*time.Second)
		if tu, ok := m.(etf.Tuple); ok && len(tu) == 2 && tu[0] == etf.Atom("pid") {
			if pid, ok := tu[1].(etf.Pid); ok {
				return pid
			}
		}
		t.Fatalf("collector got %#v, want {pid, Pid}", m)
		return etf.Pid{}
	}

	t.Run("Send to a name on the Elixir node", func(t *testing.T) {
		ex.Eval(t, `pid = spawn(fn -> receive do {:hello, _} = m -> receive do {:get, from} -> send(from, m) end end end)
			Process.register(pid, :inbox); :ok`)
		if err := gn.Send(gen.ProcessID{Name: "inbox", Node: exName}, etf.Tuple{etf.Atom("hello"), int64(1)}); err != nil {
			t.Fatal(err)
		}
		if got := ex.Eval(t, `send(:inbox, {:get, self()}); receive do m -> m after 10000 -> :none end`); got != "{:hello, 1}" {
			t.Fatalf("inbox got %s", got)
		}
	})
	t.Run("Send to a local name nobody registered fails", func(t *testing.T) {
		if err := gn.Send("nobody_here", etf.Atom("x")); err == nil {
			t.Fatal("Send succeeded")
		}
	})

	t.Run("Monitor: the DOWN reason is a term", func(t *testing.T) {
		before := processCount(gn)
		spawnExit(t, "victim")
		mon, err := gn.Monitor(gen.ProcessID{Name: "victim", Node: exName})
		if err != nil {
			t.Fatal(err)
		}
		ex.Eval(t, `send(:victim, {:exit, {:shutdown, %{at: 1}}}); :ok`)
		d := testutil.Receive(t, mon.Down(), 10*time.Second)
		want := etf.Tuple{etf.Atom("shutdown"), etf.Map{etf.Atom("at"): int64(1)}}
		if !reflect.DeepEqual(d.Reason, want) {
			t.Fatalf("DOWN reason %#v, want %#v", d.Reason, want)
		}
		if got := d.ReasonText(); got != "{shutdown,#{at => 1}}" {
			t.Fatalf("ReasonText = %s", got)
		}
		if d.Ref != mon.Ref() {
			t.Fatalf("DOWN ref %v, want %v", d.Ref, mon.Ref())
		}
		if _, open := <-mon.Down(); open {
			t.Fatal("Down still open after the DOWN")
		}
		mon.Demonitor() // after the DOWN: nothing to do, returns
		testutil.EventuallyNamed(t, 10*time.Second, "no helper process left", func() (bool, string) {
			n := processCount(gn)
			return n == before, fmt.Sprintf("%d processes, %d before", n, before)
		})
	})
	t.Run("Monitor a name nobody registered: noproc", func(t *testing.T) {
		mon, err := gn.Monitor(gen.ProcessID{Name: "nobody", Node: exName})
		if err != nil {
			t.Fatal(err)
		}
		d := testutil.Receive(t, mon.Down(), 10*time.Second)
		if d.Reason != etf.Atom("noproc") {
			t.Fatalf("DOWN reason %#v, want noproc", d.Reason)
		}
	})
	t.Run("Demonitor: no DOWN, the channel closes, nothing left", func(t *testing.T) {
		before := processCount(gn)
		spawnExit(t, "kept")
		mon, err := gn.Monitor(gen.ProcessID{Name: "kept", Node: exName})
		if err != nil {
			t.Fatal(err)
		}
		mon.Demonitor()
		if d, open := <-mon.Down(); open {
			t.Fatalf("a Down after Demonitor: %+v", d)
		}
		testutil.EventuallyNamed(t, 10*time.Second, "no helper process left", func() (bool, string) {
			n := processCount(gn)
			return n == before, fmt.Sprintf("%d processes, %d before", n, before)
		})
		testutil.EventuallyNamed(t, 10*time.Second, "the Elixir process is no longer monitored", func() (bool, string) {
			got := ex.Eval(t, `Process.info(Process.whereis(:kept), :monitored_by)`)
			return got == "{:monitored_by, []}", got
		})
	})

	t.Run("Link: the exit arrives as a term", func(t *testing.T) {
		pid := spawnExit(t, "linked")
		l, err := gn.Link(pid)
		if err != nil {
			t.Fatal(err)
		}
		testutil.EventuallyNamed(t, 10*time.Second, "the Elixir process is linked", func() (bool, string) {
			got := ex.Eval(t, `{:links, l} = Process.info(Process.whereis(:linked), :links); length(l)`)
			return got == "1", got
		})
		ex.Eval(t, `send(:linked, {:exit, {:boom, %{n: 2}}}); :ok`)
		e := testutil.Receive(t, l.Exits(), 10*time.Second)
		want := etf.Tuple{etf.Atom("boom"), etf.Map{etf.Atom("n"): int64(2)}}
		if e.From != pid || !reflect.DeepEqual(e.Reason, want) {
			t.Fatalf("exit from %v reason %#v, want from %v reason %#v", e.From, e.Reason, pid, want)
		}
		if e.ReasonText() != "{boom,#{n => 2}}" {
			t.Fatalf("ReasonText = %s", e.ReasonText())
		}
		l.Unlink()
	})
	t.Run("Unlink: the Elixir process is no longer linked, and lives", func(t *testing.T) {
		before := processCount(gn)
		pid := spawnExit(t, "unlinked")
		l, err := gn.Link(pid)
		if err != nil {
			t.Fatal(err)
		}
		testutil.EventuallyNamed(t, 10*time.Second, "linked", func() (bool, string) {
			got := ex.Eval(t, `{:links, l} = Process.info(Process.whereis(:unlinked), :links); length(l)`)
			return got == "1", got
		})
		l.Unlink()
		if e, open := <-l.Exits(); open {
			t.Fatalf("an Exit after Unlink: %+v", e)
		}
		testutil.EventuallyNamed(t, 10*time.Second, "unlinked", func() (bool, string) {
			got := ex.Eval(t, `{:links, l} = Process.info(Process.whereis(:unlinked), :links); length(l)`)
			return got == "0", got
		})
		if got := ex.Eval(t, `Process.alive?(Process.whereis(:unlinked))`); got != "true" {
			t.Fatalf("alive? = %s", got)
		}
		testutil.EventuallyNamed(t, 10*time.Second, "no helper process left", func() (bool, string) {
			n := processCount(gn)
			return n == before, fmt.Sprintf("%d processes, %d before", n, before)
		})
	})
	t.Run("Link to a remote name is refused", func(t *testing.T) {
		if _, err := gn.Link(gen.ProcessID{Name: "linked", Node: exName}); !errors.Is(err, node.ErrLinkTarget) {
			t.Fatalf("Link = %v, want ErrLinkTarget", err)
		}
	})
}

// Monitor and Link of local processes, and what node Stop does to them: the
// channels close, and no goroutine is left.
func TestNodeMonitorLinkLocal(t *testing.T) {
	beamtest.RequireNetns(t)
	others := goleak.IgnoreCurrent()
	gn, _ := startGo(t, uniq("go")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie()))
	f := &flaky{}
	if _, err := gn.RegisterServerWith("target", node.ServerOptions{Restart: node.Temporary}, f); err != nil {
		t.Fatal(err)
	}
	mon, err := gn.Monitor("target")
	if err != nil {
		t.Fatal(err)
	}
	l, err := gn.Link("target")
	if err != nil {
		t.Fatal(err)
	}
	crash(t, gn, "target", "{shutdown,#{at => 1}}")
	want := etf.Tuple{etf.Atom("shutdown"), etf.Map{etf.Atom("at"): int64(1)}}
	if d := testutil.Receive(t, mon.Down(), 10*time.Second); !reflect.DeepEqual(d.Reason, want) || d.To != "target" {
		t.Fatalf("Down %+v, want reason %v", d, want)
	}
	if e := testutil.Receive(t, l.Exits(), 10*time.Second); !reflect.DeepEqual(e.Reason, want) {
		t.Fatalf("Exit %+v, want reason %v", e, want)
	}
	mon.Demonitor()
	l.Unlink()

	// Left open, they close when the node stops.
	if _, err := gn.RegisterServer("other", &flaky{}); err != nil {
		t.Fatal(err)
	}
	mon2, err := gn.Monitor("other")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := gn.Link("other")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gn.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan struct{}{drain(mon2.Down()), drain(l2.Exits())} {
		testutil.Receive(t, ch, 10*time.Second)
	}
	mon2.Demonitor()
	l2.Unlink()
	if _, err := gn.Monitor("other"); err == nil {
		t.Fatal("Monitor on a stopped node succeeded")
	}
	goleak.VerifyNone(t, others)
}

// drain returns a channel closed once ch is closed (values read are
// dropped: a stopping node may deliver its DOWN first).
func drain[T any](ch <-chan T) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for range ch {
		}
		close(done)
	}()
	return done
}

// A Call whose callee exits gives a *genserver.DownError whose Term is the
// exit reason as a term.
func TestCallDownErrorTerm(t *testing.T) {
	beamtest.RequireNetns(t)
	gn, _ := startGo(t, uniq("go")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie()))
	if _, err := gn.RegisterServerWith("dying", node.ServerOptions{Restart: node.Temporary}, &flaky{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := gn.Call(ctx, "dying", etf.Tuple{etf.Atom("exit"), "{shutdown,#{at => 1}}"})
	var down *genserver.DownError
	if !errors.As(err, &down) {
		t.Fatalf("Call = %v, want a *genserver.DownError", err)
	}
	want := etf.Tuple{etf.Atom("shutdown"), etf.Map{etf.Atom("at"): int64(1)}}
	if !reflect.DeepEqual(down.Term(), want) || down.Reason != "{shutdown,#{at => 1}}" {
		t.Fatalf("DownError reason %q term %#v, want %#v", down.Reason, down.Term(), want)
	}
}
