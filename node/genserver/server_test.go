package genserver_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/nodetest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
)

// uniq returns a node basename unique within this test binary.
var uniq = nodetest.Uniq

// testServer is the server under test. Calls:
//
//	{echo, X}            -> X
//	{relay, To, Msg}     -> {ok, Reply} | {error, timeout | {down, Reason} |
//	                        other}: a nested call to To ({Name, Node})
//	{relay, To, Msg, Ms} -> the same with a timeout in milliseconds
//	{later, X}           -> no reply now; X is sent by the next HandleInfo
//	panic                -> panics
//	{stop, Reason}       -> ends the process with Reason
//
// Casts and infos are recorded on events, in the order handled.
type testServer struct {
	genserver.Server
	events chan string
	later  *gen.ServerFrom
	laterX etf.Term
}

func newTestServer() *testServer { return &testServer{events: make(chan string, 64)} }

func (s *testServer) HandleCall(p *genserver.Process, from gen.ServerFrom, m etf.Term) (etf.Term, gen.ServerStatus) {
	if m == etf.Atom("panic") {
		panic("boom")
	}
	t, ok := m.(etf.Tuple)
	if !ok || len(t) < 2 {
		return etf.Tuple{etf.Atom("bad"), m}, gen.ServerStatusOK
	}
	switch t[0] {
	case etf.Atom("echo"):
		return t[1], gen.ServerStatusOK
	case etf.Atom("stop"):
		return nil, gen.ServerStatus(errors.New(fmt.Sprint(t[1])))
	case etf.Atom("later"):
		s.later, s.laterX = &from, t[1]
		return nil, gen.ServerStatusIgnore
	case etf.Atom("relay"):
		timeout := genserver.DefaultCallTimeout
		if len(t) == 4 {
			ms, _ := t[3].(int64)
			timeout = time.Duration(ms) * time.Millisecond
		}
		id, ok := t[1].(etf.Tuple)
		if !ok || len(id) != 2 {
			return etf.Tuple{etf.Atom("bad"), m}, gen.ServerStatusOK
		}
		to := gen.ProcessID{Name: fmt.Sprint(id[0]), Node: fmt.Sprint(id[1])}
		reply, err := p.CallWithTimeout(to, t[2], timeout)
		s.events <- "relay returned"
		if err != nil {
			var down *genserver.DownError
			switch {
			case errors.Is(err, genserver.ErrCallTimeout):
				return etf.Tuple{etf.Atom("error"), etf.Atom("timeout")}, gen.ServerStatusOK
			case errors.As(err, &down) && errors.Is(err, genserver.ErrServerDown):
				return etf.Tuple{etf.Atom("error"), etf.Tuple{etf.Atom("down"), etf.Atom(down.Reason)}}, gen.ServerStatusOK
			}
			return etf.Tuple{etf.Atom("error"), etf.Atom("other")}, gen.ServerStatusOK
		}
		return etf.Tuple{etf.Atom("ok"), reply}, gen.ServerStatusOK
	}
	return etf.Tuple{etf.Atom("bad"), m}, gen.ServerStatusOK
}

func (s *testServer) HandleCast(p *genserver.Process, m etf.Term) gen.ServerStatus {
	s.events <- fmt.Sprintf("cast %v", m)
	return gen.ServerStatusOK
}

func (s *testServer) HandleInfo(p *genserver.Process, m etf.Term) gen.ServerStatus {
	s.events <- fmt.Sprintf("info %v", m)
	if s.later != nil {
		_ = p.SendReply(*s.later, s.laterX)
		s.later = nil
	}
	return gen.ServerStatusOK
}

func startGo(t *testing.T, name, cookie string) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = name, node.Cookie(cookie)
	n := nodetest.Start(t, cfg, nil)
	return n
}

// nextEvent returns the server's next recorded event.
func nextEvent(t *testing.T, s *testServer) string {
	t.Helper()
	select {
	case e := <-s.events:
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("no event from the server within 20s")
		return ""
	}
}

// erlEcho registers erl_echo on the BEAM node, speaking the gen_server
// protocol: {echo, X} -> X; {ping_then_echo, X} first sends the atom pinged
// to the caller's pid, then replies X; silent never replies; {exit, R}
// ends it with reason R (and a new erl_echo takes its place).
const erlEcho = `Echo = fun L() -> receive
    {'$gen_call', From, {echo, X}} -> gen_server:reply(From, X), L();
    {'$gen_call', _, {exit, R}} -> unregister(erl_echo), register(erl_echo, spawn(L)), exit(R);
    {'$gen_call', {Pid, _} = From, {ping_then_echo, X}} -> Pid ! pinged, gen_server:reply(From, X), L();
    {'$gen_call', _, silent} -> L()
  end end,
register(erl_echo, spawn(Echo)), ok.`

func TestServerWithErlang(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		gn := startGo(t, goName, cookie)
		srv := newTestServer()
		if _, err := gn.RegisterServer("fast", srv); err != nil {
			t.Fatal(err)
		}
		erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
		erl.Eval(t, erlEcho)
		// eval runs Erlang expressions on the BEAM node with Fast bound to
		// the Go server's {Name, Node}.
		eval := func(t *testing.T, expr string) string {
			t.Helper()
			return erl.Eval(t, fmt.Sprintf("Fast = {fast, '%s'}, %s", goName, expr))
		}

		calls := []struct{ name, expr, want string }{
			{"gen_server:call (alias reply tag)", `gen_server:call(Fast, {echo, hello}).`, "hello"},
			{"a large term", `B = binary:copy(<<"x">>, 70000), B =:= gen_server:call(Fast, {echo, B}).`, "true"},
			{"plain reference reply tag", `R = make_ref(), Fast ! {'$gen_call', {self(), R}, {echo, plain}},
				receive {R, X} -> X after 10000 -> no_reply end.`, "plain"},
			{"nested call to erlang", `gen_server:call(Fast, {relay, {erl_echo, node()}, {echo, nested}}).`, "{ok,nested}"},
			{"nested call timeout", `gen_server:call(Fast, {relay, {erl_echo, node()}, silent, 200}).`, "{error,timeout}"},
			// The nested call monitors its callee, as gen_server:call does:
			// these end with the monitor's reason, not at the 4 s timeout.
			{"nested call to a name nobody registered", `gen_server:call(Fast, {relay, {nobody, node()}, {echo, x}, 4000}).`, "{error,{down,noproc}}"},
			{"nested call to a process that exits", `gen_server:call(Fast, {relay, {erl_echo, node()}, {exit, boom}, 4000}).`, "{error,{down,boom}}"},
		}
		for _, c := range calls {
			t.Run(c.name, func(t *testing.T) {
				if got := eval(t, c.expr); got != c.want {
					t.Fatalf("%s\n = %s\nwant %s", c.expr, got, c.want)
				}
				if strings.HasPrefix(c.name, "nested call") {
					if e := nextEvent(t, srv); e != "relay returned" {
						t.Fatalf("event %q, want relay returned", e)
					}
				}
			})
		}

		t.Run("a nested call leaves no monitor behind", func(t *testing.T) {
			if got := eval(t, `gen_server:call(Fast, {relay, {erl_echo, node()}, {echo, y}}).`); got != "{ok,y}" {
				t.Fatalf("relay = %s", got)
			}
			if e := nextEvent(t, srv); e != "relay returned" {
				t.Fatalf("event %q, want relay returned", e)
			}
			// The demonitor follows the reply: the BEAM drops the monitor
			// soon after, and no DOWN reaches HandleInfo.
			var got string
			for range 100 {
				if got = erl.Eval(t, `{monitored_by, L} = process_info(whereis(erl_echo), monitored_by), L.`); got == "[]" {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if got != "[]" {
				t.Fatalf("erl_echo is still monitored by %s", got)
			}
			eval(t, `Fast ! marker, ok.`)
			if e := nextEvent(t, srv); e != "info marker" {
				t.Fatalf("event %q, want info marker (nothing before it)", e)
			}
		})
		t.Run("messages during a nested call are handled after it", func(t *testing.T) {
			got := eval(t, `gen_server:call(Fast, {relay, {erl_echo, node()}, {ping_then_echo, x}}).`)
			if got != "{ok,x}" {
				t.Fatalf("relay = %s", got)
			}
			for _, want := range []string{"relay returned", "info pinged"} {
				if e := nextEvent(t, srv); e != want {
					t.Fatalf("event %q, want %q", e, want)
				}
			}
		})
		t.Run("gen_server:cast", func(t *testing.T) {
			eval(t, `gen_server:cast(Fast, hi).`)
			if e := nextEvent(t, srv); e != "cast hi" {
				t.Fatalf("event %q, want cast hi", e)
			}
		})
		t.Run("reply from a later callback", func(t *testing.T) {
			got := eval(t, `R = make_ref(), Fast ! {'$gen_call', {self(), R}, {later, deferred}}, Fast ! wake,
				receive {R, X} -> X after 10000 -> no_reply end.`)
			if got != "deferred" {
				t.Fatalf("reply = %s, want deferred", got)
			}
			if e := nextEvent(t, srv); e != "info wake" {
				t.Fatalf("event %q, want info wake", e)
			}
		})

		crashes := []struct{ name, call, reason string }{
			{"a callback panics", "panic", `{panic,<<"boom">>}`},
			{"a callback returns an error status", "{stop, gone_away}", "gone_away"},
		}
		for _, c := range crashes {
			t.Run(c.name, func(t *testing.T) {
				name := uniq("crash")
				if _, err := gn.RegisterServer(name, newTestServer()); err != nil {
					t.Fatal(err)
				}
				// The caller exits as a gen_server:call to a crashing OTP
				// gen_server does: {Reason, {gen_server, call, [...]}}.
				got := erl.Eval(t, fmt.Sprintf(`case catch gen_server:call({%s, '%s'}, %s) of
					{'EXIT', {R, {gen_server, call, _}}} -> {exit, R}; Other -> {returned, Other} end.`, name, goName, c.call))
				if want := fmt.Sprintf("{exit,%s}", c.reason); got != want {
					t.Fatalf("call = %s, want %s", got, want)
				}
			})
		}
	})
}

func TestServerWithElixir(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		gn := startGo(t, goName, cookie)
		srv := newTestServer()
		if _, err := gn.RegisterServer("fast", srv); err != nil {
			t.Fatal(err)
		}
		ex := beamtest.Start(t, rel, beamtest.Options{Name: uniq("ex") + "@127.0.0.1", Cookie: cookie, Elixir: true})
		eval := func(t *testing.T, expr string) string {
			t.Helper()
			return ex.Eval(t, fmt.Sprintf(`fast = {:fast, :"%s"}; %s`, goName, expr))
		}
		t.Run("GenServer.call", func(t *testing.T) {
			if got := eval(t, `GenServer.call(fast, {:echo, %{"k" => [1, 2]}})`); got != `%{"k" => [1, 2]}` {
				t.Fatalf("GenServer.call = %s", got)
			}
		})
		t.Run("GenServer.cast", func(t *testing.T) {
			eval(t, `GenServer.cast(fast, :hi)`)
			if e := nextEvent(t, srv); e != "cast hi" {
				t.Fatalf("event %q, want cast hi", e)
			}
		})
		t.Run("GenServer.call to a crashing callback exits", func(t *testing.T) {
			name := uniq("crash")
			if _, err := gn.RegisterServer(name, newTestServer()); err != nil {
				t.Fatal(err)
			}
			got := ex.Eval(t, fmt.Sprintf(`try do GenServer.call({:%s, :"%s"}, :panic) catch :exit, {r, {GenServer, :call, _}} -> {:exit, r} end`, name, goName))
			if got != `{:exit, {:panic, "boom"}}` {
				t.Fatalf("call = %s, want {:exit, {:panic, \"boom\"}}", got)
			}
		})
	})
}

// TestCallOutsideACallback: Call on a Process that is not running its loop
// fails with an error instead of blocking.
func TestCallOutsideACallback(t *testing.T) {
	var p genserver.Process
	if _, err := p.CallWithTimeout(etf.Atom("x"), etf.Atom("y"), time.Second); !errors.Is(err, genserver.ErrUnhandled) {
		t.Fatalf("err = %v, want ErrUnhandled", err)
	}
}

// exitServer records exit signals (trapped or not) and Terminate.
type exitServer struct {
	genserver.Server
	trap   bool
	events chan string
	// release ends a hold: the message hold keeps the server busy in
	// HandleInfo until release is closed.
	release chan struct{}
}

func (s *exitServer) Init(p *genserver.Process, args ...etf.Term) error {
	p.SetTrapExit(s.trap)
	return nil
}

func (s *exitServer) HandleInfo(p *genserver.Process, m etf.Term) gen.ServerStatus {
	if ex, ok := m.(gen.MessageExit); ok {
		s.events <- "exit message " + ex.Reason
	}
	if m == etf.Atom("hold") {
		s.events <- "holding"
		<-s.release
	}
	return gen.ServerStatusOK
}

func (s *exitServer) Terminate(p *genserver.Process, reason string) {
	s.events <- "terminate " + reason
}

// TestExitSignals: a linked process's exit reaches a trapping server as
// gen.MessageExit and stops a server that does not trap exits, with the
// exit's reason, also when the signal comes while the server is busy (ergo
// queues the signal and cancels the process's context at once: the loop
// then finds both ready).
func TestExitSignals(t *testing.T) {
	gn := startGo(t, uniq("exits")+"@127.0.0.1", beamtest.RandomCookie())
	tests := []struct {
		name   string
		trap   bool
		busy   bool
		rounds int
		want   string
	}{
		{"trapped", true, false, 1, "exit message bye"},
		{"not trapped", false, false, 1, "terminate bye"},
		// Each round ends with "kill" half the time when the loop picks
		// at random between the two.
		{"not trapped, busy", false, true, 20, "terminate bye"},
	}
	for _, tt := range tests {
		for round := range tt.rounds {
			t.Run(fmt.Sprintf("%s/%d", tt.name, round), func(t *testing.T) {
				srv := &exitServer{trap: tt.trap, events: make(chan string, 4), release: make(chan struct{})}
				sp, err := gn.RegisterServer("", srv)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(sp.Kill)
				other, err := gn.RegisterServer("", &exitServer{events: make(chan string, 4)})
				if err != nil {
					t.Fatal(err)
				}
				if tt.busy {
					if err := other.Send(sp.Self(), etf.Atom("hold")); err != nil {
						t.Fatal(err)
					}
					if e := testutil.Receive(t, srv.events, 20*time.Second); e != "holding" {
						t.Fatalf("event %q, want holding", e)
					}
				}
				if err := other.Link(sp.Self()); err != nil {
					t.Fatal(err)
				}
				if err := other.Exit("bye"); err != nil {
					t.Fatal(err)
				}
				if tt.busy {
					testutil.Receive(t, sp.Context().Done(), 20*time.Second)
					close(srv.release)
				}
				if e := testutil.Receive(t, srv.events, 20*time.Second); e != tt.want {
					t.Fatalf("event %q, want %q", e, tt.want)
				}
			})
		}
	}
}
