package genserver_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node/genserver"
)

// guardServer checks the guarantees a connection reader that runs callbacks
// itself (inline delivery) must keep. Every callback counts how many
// callbacks of the process run at that moment (more than one is a
// violation) and yields a few times while it runs, so that an overlap has
// room to happen. Messages {seq, From, I} are checked per sender: I must
// grow (gaps are allowed, going back is not). Calls:
//
//	pid                -> the server's pid
//	{seq, From, I}     -> ok, checked as above
//	{report, From}     -> {Highest I seen from From, order errors, overlaps}
//	block              -> blocks until the test closes release
//	{echo, X}          -> X
//	{stop, Reason}     -> ends the process with Reason
type guardServer struct {
	genserver.Server
	running  atomic.Int32
	overlaps atomic.Int32
	last     map[etf.Term]int64
	disorder int64
	blocked  chan struct{} // closed when block is entered
	release  chan struct{}
	events   chan string
}

func newGuardServer() *guardServer {
	return &guardServer{last: map[etf.Term]int64{}, blocked: make(chan struct{}), release: make(chan struct{}),
		events: make(chan string, 16)}
}

func (s *guardServer) enter() {
	if s.running.Add(1) > 1 {
		s.overlaps.Add(1)
	}
	for range 3 {
		runtime.Gosched()
	}
}

func (s *guardServer) leave() { s.running.Add(-1) }

// seq checks {seq, From, I}; it reports whether m was one.
func (s *guardServer) seq(m etf.Term) bool {
	t, ok := m.(etf.Tuple)
	if !ok || len(t) != 3 || t[0] != etf.Atom("seq") {
		return false
	}
	i, _ := t[2].(int64)
	if last, seen := s.last[t[1]]; seen && i <= last {
		s.disorder++
	}
	s.last[t[1]] = i
	return true
}

func (s *guardServer) HandleCall(p *genserver.Process, from gen.ServerFrom, m etf.Term) (etf.Term, gen.ServerStatus) {
	s.enter()
	defer s.leave()
	if s.seq(m) {
		return etf.Atom("ok"), gen.ServerStatusOK
	}
	switch m {
	case etf.Atom("pid"):
		return p.Self(), gen.ServerStatusOK
	case etf.Atom("block"):
		close(s.blocked)
		<-s.release
		return etf.Atom("released"), gen.ServerStatusOK
	}
	t, _ := m.(etf.Tuple)
	switch {
	case len(t) == 2 && t[0] == etf.Atom("report"):
		return etf.Tuple{s.last[t[1]], s.disorder, int64(s.overlaps.Load())}, gen.ServerStatusOK
	case len(t) == 2 && t[0] == etf.Atom("echo"):
		return t[1], gen.ServerStatusOK
	case len(t) == 2 && t[0] == etf.Atom("stop"):
		return nil, gen.ServerStatus(fmt.Errorf("%v", t[1]))
	}
	return etf.Tuple{etf.Atom("bad"), m}, gen.ServerStatusOK
}

func (s *guardServer) HandleCast(p *genserver.Process, m etf.Term) gen.ServerStatus {
	s.enter()
	defer s.leave()
	s.seq(m)
	return gen.ServerStatusOK
}

func (s *guardServer) HandleInfo(p *genserver.Process, m etf.Term) gen.ServerStatus {
	s.enter()
	defer s.leave()
	if ex, ok := m.(gen.MessageExit); ok {
		s.events <- "exit " + ex.Reason
		return gen.ServerStatusOK
	}
	if !s.seq(m) {
		s.events <- fmt.Sprintf("info %v", m)
	}
	return gen.ServerStatusOK
}

func (s *guardServer) HandleDirect(p *genserver.Process, ref etf.Ref, m any) (any, gen.DirectStatus) {
	s.enter()
	defer s.leave()
	return m, gen.DirectStatusOK
}

func (s *guardServer) Terminate(p *genserver.Process, reason string) {
	s.events <- "terminate " + reason
}

// erlSenders defines Send(Target, N, K) on the BEAM node: N processes each
// send K messages {seq, self(), I} to Target (a {Name, Node}) and to the
// pid behind it, in turns: plain sends by name and by pid, casts, and every
// tenth a call. Each then asks for its report; Send returns the list of
// reports, one per process. Follow it with the expression that calls Send.
const erlSenders = `Send = fun(T, N, K) ->
  Pid = gen_server:call(T, pid), Self = self(),
  One = fun() ->
    lists:foreach(fun(I) -> M = {seq, self(), I},
      case I rem 10 of
        0 -> ok = gen_server:call(T, M);
        1 -> gen_server:cast(Pid, M);
        2 -> gen_server:cast(T, M);
        X when X rem 2 =:= 0 -> T ! M;
        _ -> Pid ! M
      end end, lists:seq(1, K)),
    Self ! {report, self(), gen_server:call(T, {report, self()})}
  end,
  Ps = [spawn_link(One) || _ <- lists:seq(1, N)],
  [receive {report, P, R} -> R end || P <- Ps]
end,`

// TestInlineOrderAndExclusion: messages from many BEAM processes at once,
// sent by name and by pid, as calls, casts and plain messages, reach a
// genserver.Server in each sender's order, with never two callbacks at once,
// while Go processes on the server's node send it messages and direct
// requests through ergo's mailbox.
func TestInlineOrderAndExclusion(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		gn := startGo(t, goName, cookie)
		srv := newGuardServer()
		sp, err := gn.RegisterServer("guard", srv)
		if err != nil {
			t.Fatal(err)
		}
		erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
		local, err := gn.RegisterServer("", newGuardServer())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(local.Kill)
		// Go senders: messages through ergo's mailbox and direct requests,
		// until the BEAM senders are done.
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := int64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_ = local.Send(sp.Self(), etf.Tuple{etf.Atom("seq"), local.Self(), i})
				if i%8 == 0 {
					_, _ = sp.DirectWithTimeout(i, 5)
				}
			}
		}()
		out := strings.Join(strings.Fields(erl.Eval(t, erlSenders+fmt.Sprintf("Send({guard, '%s'}, 16, 2000).", goName))), "")
		close(stop)
		<-done
		want := strings.TrimSuffix(strings.Repeat("{2000,0,0},", 16), ",")
		if out != "["+want+"]" {
			t.Fatalf("reports (highest seq, order errors, overlapping callbacks) per sender:\n%s\nwant [%s]", out, want)
		}
	})
}

// lateServer is a guardServer whose Init waits (bounded) until ergo's
// mailbox holds messages: they came before the loop ran.
type lateServer struct{ *guardServer }

func (s lateServer) Init(p *genserver.Process, args ...etf.Term) error {
	deadline := time.Now().Add(20 * time.Second)
	for p.Info().MessageQueueLen < 20 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return nil
}

// TestInlineOrderFromTheStart: a BEAM process that sends to a name before
// and while the Go server is registered under it: what reached the server
// before its loop ran (through ergo's mailbox, while Init ran) is not
// overtaken by what follows.
func TestInlineOrderFromTheStart(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		gn := startGo(t, goName, cookie)
		erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
		for round := range 5 {
			name := fmt.Sprintf("late%d", round)
			erl.Eval(t, fmt.Sprintf(`T = {%s, '%s'}, pong = net_adm:ping('%s'),
				register(%s_sender, spawn(fun() -> (fun L(I) -> T ! {seq, sender, I},
				  receive stop -> ok after 0 -> L(I + 1) end end)(1) end)), ok.`, name, goName, goName, name))
			if _, err := gn.RegisterServer(name, lateServer{newGuardServer()}); err != nil {
				t.Fatal(err)
			}
			// Wait until the server took messages, then stop the sender.
			report := func() string {
				return erl.Eval(t, fmt.Sprintf("gen_server:call({%s, '%s'}, {report, sender}).", name, goName))
			}
			testutil.Eventually(t, 20*time.Second, func() (bool, string) {
				r := report()
				return !strings.HasPrefix(r, "{nil,") && !strings.HasPrefix(r, "{0,"), r
			})
			erl.Eval(t, fmt.Sprintf("%s_sender ! stop, ok.", name))
			if r := report(); !strings.HasSuffix(r, ",0,0}") {
				t.Fatalf("round %d: report (highest seq, order errors, overlapping callbacks) %s, want no errors", round, r)
			}
		}
	})
}

// TestInlineBlockedCallback: a callback that blocks until the test
// releases it does not stop another Go process from answering calls that
// come over the same connection meanwhile; what was sent to the blocked
// process meanwhile is handled, in order, once it is released.
func TestInlineBlockedCallback(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		gn := startGo(t, goName, cookie)
		blocker, echo := newGuardServer(), newGuardServer()
		if _, err := gn.RegisterServer("blocker", blocker); err != nil {
			t.Fatal(err)
		}
		if _, err := gn.RegisterServer("echo", echo); err != nil {
			t.Fatal(err)
		}
		erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
		erl.Eval(t, fmt.Sprintf(`B = {blocker, '%s'}, Self = self(),
			register(blocked_caller, spawn(fun() -> R = gen_server:call(B, block, infinity), Self ! {blocked_call, R} end)),
			ok.`, goName))
		testutil.Receive(t, blocker.blocked, 20*time.Second)
		// The blocker's callback runs: the echo still answers, many times,
		// and the blocker takes messages (it handles them later).
		got := erl.Eval(t, fmt.Sprintf(`E = {echo, '%s'}, B = {blocker, '%s'},
			[begin B ! {seq, t, I}, gen_server:call(E, {echo, I}, 10000) end || I <- lists:seq(1, 50)] =:= lists:seq(1, 50).`,
			goName, goName))
		if got != "true" {
			t.Fatalf("calls to echo while blocker's callback blocks: %s, want true", got)
		}
		close(blocker.release)
		got = erl.Eval(t, fmt.Sprintf(`receive {blocked_call, R} -> R after 20000 -> no_reply end,
			gen_server:call({blocker, '%s'}, {report, t}).`, goName))
		if got != "{50,0,0}" {
			t.Fatalf("blocker's report (highest seq, order errors, overlapping callbacks) after release: %s, want {50,0,0}", got)
		}
	})
}

// TestInlineLinksMonitorsExits: with callbacks run by the connection
// reader, a Go server's end reaches a linked and a monitoring BEAM process
// with its reason, a stop from a callback ends it, an exit signal from the
// BEAM ends one that does not trap exits and reaches one that does as a
// message after the messages its sender sent first.
func TestInlineLinksMonitorsExits(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		gn := startGo(t, goName, cookie)
		erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
		start := func(t *testing.T, name string, trap bool) *guardServer {
			srv := newGuardServer()
			p, err := gn.RegisterServer(name, srv)
			if err != nil {
				t.Fatal(err)
			}
			p.SetTrapExit(trap)
			if trap {
				// The others end in the test (ergo's Kill races with the
				// end of a process that already ended).
				t.Cleanup(p.Kill)
			}
			return srv
		}
		t.Run("a stop from a callback reaches links and monitors", func(t *testing.T) {
			srv := start(t, "stopper", false)
			got := erl.Eval(t, fmt.Sprintf(`T = {stopper, '%s'}, Pid = gen_server:call(T, pid),
				process_flag(trap_exit, true), link(Pid), Ref = monitor(process, Pid),
				C = (catch gen_server:call(T, {stop, gone})),
				D = receive {'DOWN', Ref, process, Pid, R1} -> R1 after 10000 -> no_down end,
				X = receive {'EXIT', Pid, R2} -> R2 after 10000 -> no_exit end,
				process_flag(trap_exit, false),
				{element(1, element(2, C)), D, X}.`, goName))
			if got != "{gone,gone,gone}" {
				t.Fatalf("{call exit, DOWN, EXIT} = %s, want {gone,gone,gone}", got)
			}
			if e := testutil.Receive(t, srv.events, 20*time.Second); e != "terminate gone" {
				t.Fatalf("event %q, want terminate gone", e)
			}
		})
		t.Run("an exit signal ends a server that does not trap exits", func(t *testing.T) {
			srv := start(t, "victim", false)
			got := erl.Eval(t, fmt.Sprintf(`Pid = gen_server:call({victim, '%s'}, pid), Ref = monitor(process, Pid),
				exit(Pid, boom), receive {'DOWN', Ref, process, Pid, R} -> R after 10000 -> no_down end.`, goName))
			if got != "boom" {
				t.Fatalf("DOWN reason %s, want boom", got)
			}
			if e := testutil.Receive(t, srv.events, 20*time.Second); e != "terminate boom" {
				t.Fatalf("event %q, want terminate boom", e)
			}
		})
		t.Run("a trapped exit signal comes after its sender's messages", func(t *testing.T) {
			srv := start(t, "trapper", true)
			erl.Eval(t, fmt.Sprintf(`Pid = gen_server:call({trapper, '%s'}, pid),
				[Pid ! {note, I} || I <- lists:seq(1, 20)], exit(Pid, first), Pid ! {note, 21}, ok.`, goName))
			var got []string
			for range 22 {
				got = append(got, testutil.Receive(t, srv.events, 20*time.Second))
			}
			var want []string
			for i := 1; i <= 20; i++ {
				want = append(want, fmt.Sprintf("info %v", etf.Tuple{etf.Atom("note"), int64(i)}))
			}
			want = append(want, "exit first", fmt.Sprintf("info %v", etf.Tuple{etf.Atom("note"), int64(21)}))
			if strings.Join(got, "; ") != strings.Join(want, "; ") {
				t.Fatalf("events:\n%s\nwant\n%s", strings.Join(got, "; "), strings.Join(want, "; "))
			}
		})
	})
}
