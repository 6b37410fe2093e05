package dist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"
	ergodist "github.com/ergo-services/ergo/proto/dist"

	"github.com/gonode/gonode/internal/beamtest"
)

// ptSrv is a gen.Server that answers calls and records what it receives.
type ptSrv struct {
	gen.Server
	infos chan etf.Term
	casts chan etf.Term
}

func newPTSrv() *ptSrv {
	return &ptSrv{infos: make(chan etf.Term, 4096), casts: make(chan etf.Term, 64)}
}

func (s *ptSrv) HandleCall(p *gen.ServerProcess, from gen.ServerFrom, m etf.Term) (etf.Term, gen.ServerStatus) {
	if t, ok := m.(etf.Tuple); ok && len(t) == 2 && t[0] == etf.Atom("is_auth") {
		return etf.Atom("yes"), gen.ServerStatusOK // net_kernel's answer to net_adm:ping
	}
	if m == etf.Atom("pid") {
		return p.Self(), gen.ServerStatusOK
	}
	return etf.Tuple{etf.Atom("echo"), m}, gen.ServerStatusOK
}

// Requests a test makes a ptSrv perform through Process.Direct, since calls
// and sends need a process context.
type (
	ptCallReq struct {
		to  any
		msg etf.Term
	}
	ptCastReq struct {
		to  any
		msg etf.Term
	}
	ptSendReq struct {
		to   any
		n    int
		make func(i int) etf.Term
	}
)

func (s *ptSrv) HandleDirect(p *gen.ServerProcess, ref etf.Ref, m interface{}) (interface{}, gen.DirectStatus) {
	switch r := m.(type) {
	case ptCallReq:
		v, err := p.Call(r.to, r.msg)
		return v, err
	case ptCastReq:
		return nil, p.Cast(r.to, r.msg)
	case ptSendReq:
		return nil, r.run(p)
	}
	return nil, lib.ErrUnsupportedRequest
}

// run sends the request's n messages from p.
func (r ptSendReq) run(p gen.Process) error {
	for i := 1; i <= r.n; i++ {
		if err := p.Send(r.to, r.make(i)); err != nil {
			return fmt.Errorf("send %d: %w", i, err)
		}
	}
	return nil
}

func (s *ptSrv) HandleCast(p *gen.ServerProcess, m etf.Term) gen.ServerStatus {
	s.casts <- m
	return gen.ServerStatusOK
}

func (s *ptSrv) HandleInfo(p *gen.ServerProcess, m etf.Term) gen.ServerStatus {
	if stop, ok := m.(ptStop); ok {
		return gen.ServerStatus(errors.New(stop.reason))
	}
	select {
	case s.infos <- m:
	default:
	}
	return gen.ServerStatusOK
}

func (s *ptSrv) next(t *testing.T, what string, match func(etf.Term) bool) etf.Term {
	t.Helper()
	deadline := time.After(20 * time.Second)
	var seen []string
	for {
		select {
		case m := <-s.infos:
			if match(m) {
				return m
			}
			seen = append(seen, fmt.Sprintf("%#v", m))
		case <-deadline:
			t.Fatalf("%s: not received within 20s; received instead: %v", what, seen)
		}
	}
}

// ptSink checks the order of {seq, I} messages and counts binaries.
type ptSink struct {
	gen.Server
	next     int64
	count    atomic.Int64
	bad      atomic.Int64
	binBytes atomic.Int64
}

func (s *ptSink) HandleInfo(p *gen.ServerProcess, m etf.Term) gen.ServerStatus {
	switch v := m.(type) {
	case etf.Tuple:
		if len(v) == 2 && v[0] == etf.Atom("seq") {
			if i, _ := v[1].(int64); i != s.next+1 {
				s.bad.Add(1)
			}
			s.next++
		}
	case []byte:
		s.binBytes.Add(int64(len(v)))
	}
	s.count.Add(1)
	return gen.ServerStatusOK
}

// ptEventually polls cond until it holds, failing with the last state seen.
func ptEventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: still not true after 30s; last state: %s", what, last)
}

// ptGoNode starts an ergo node with this package's handshake and proto,
// whose config each of opts may change.
func ptGoNode(t testing.TB, name, cookie string, tick time.Duration, opts ...func(*ProtoConfig)) node.Node {
	t.Helper()
	return ptGoNodeTLS(t, name, cookie, tick, nil, opts...)
}

// ptGoNodeTLS is ptGoNode with distribution over TLS when tlsCfg is set.
func ptGoNodeTLS(t testing.TB, name, cookie string, tick time.Duration, tlsCfg *TLSConfig, opts ...func(*ProtoConfig)) node.Node {
	t.Helper()
	hcfg := DefaultHandshakeConfig()
	hcfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	hcfg.TLS = tlsCfg
	hs, err := NewHandshake(hcfg)
	if err != nil {
		t.Fatal(err)
	}
	pcfg := DefaultProtoConfig()
	pcfg.NetTickTime = tick
	pcfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, o := range opts {
		o(&pcfg)
	}
	proto, err := NewProto(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	return startErgoNode(t, name, cookie, hs, proto)
}

// startErgoNode starts an ergo node with our handshake and protocol,
// registered with the EPMD on 127.0.0.1, stopped when the test ends.
func startErgoNode(t testing.TB, name, cookie string, hs node.HandshakeInterface, proto node.ProtoInterface) node.Node {
	t.Helper()
	n, err := node.StartWithContext(context.Background(), name, cookie, node.Options{
		Handshake: hs,
		Proto:     proto,
		Registrar: ergodist.CreateRegistrarWithRemoteEPMD("127.0.0.1", 4369),
		Listeners: []node.Listener{{ListenBegin: 25001, ListenEnd: 26000}},
		Flags:     node.DefaultFlags(),
		System:    node.System{DisableAnonMetrics: true},
	})
	if err != nil {
		t.Fatalf("start ergo node: %v", err)
	}
	t.Cleanup(func() {
		n.Stop()
		n.Wait()
	})
	return n
}

func ptSpawn(t testing.TB, n node.Node, name string, b gen.ProcessBehavior) gen.Process {
	t.Helper()
	p, err := n.Spawn(name, gen.ProcessOptions{MailboxSize: 65535}, b)
	if err != nil {
		t.Fatalf("spawn %s: %v", name, err)
	}
	return p
}

// Erlang helpers evaluated on the BEAM node.
const (
	// becho answers gen_server calls and records casts; brec records every
	// message; bseq checks the order of {seq, I}; bagent runs funs for the
	// test, trapping exits.
	ptBeamSetup = `
Echo = fun L() -> receive
    {'$gen_call', From, {whereis, N}} -> gen_server:reply(From, whereis(N)), L();
    {'$gen_call', From, Req} -> gen_server:reply(From, {beam_echo, Req}), L();
    {'$gen_cast', C} -> persistent_term:put(pt_last_cast, C), L()
  end end,
Rec = fun L(Acc) -> receive {pt_get, From} -> From ! {pt_rec, lists:reverse(Acc)}, L(Acc); M -> L([M | Acc]) end end,
Seq = fun L(N, Bad, Bytes) -> receive
    {seq, I} -> L(N + 1, if I =:= N + 1 -> Bad; true -> Bad + 1 end, Bytes);
    B when is_binary(B) -> L(N, Bad, Bytes + byte_size(B));
    {pt_get, From} -> From ! {pt_seq, N, Bad, Bytes}, L(N, Bad, Bytes)
  end end,
Agent = fun L() -> receive {pt_run, From, F} -> From ! {pt_ran, self(), (catch F())}, L() end end,
register(becho, spawn(Echo)),
register(brec, spawn(fun() -> Rec([]) end)),
register(bseq, spawn(fun() -> Seq(0, 0, 0) end)),
register(bagent, spawn(fun() -> process_flag(trap_exit, true), Agent() end)),
ok.`
)

// ptRun runs body (Erlang expressions) inside bagent and returns its value.
func ptRun(t *testing.T, b *beamtest.Node, body string) string {
	t.Helper()
	body = strings.TrimSuffix(strings.TrimSpace(body), ".")
	return b.Eval(t, `bagent ! {pt_run, self(), fun() -> `+body+` end}, receive {pt_ran, _, R} -> R after 20000 -> pt_timeout end.`)
}

func ptDirect(t testing.TB, p gen.Process, req any) etf.Term {
	t.Helper()
	v, err := p.DirectWithTimeout(req, 120)
	if err != nil {
		t.Fatalf("%T from %s: %v", req, p.Self(), err)
	}
	v2, _ := v.(etf.Term)
	return v2
}

// ptGoPid asks the Go process registered as name for its pid, from the BEAM.
func ptGoPidOnBeam(name string) string {
	return fmt.Sprintf("gen_server:call({%s, persistent_term:get(pt_go)}, pid)", name)
}

// TestProtoBEAM is the acceptance test of the connection protocol against
// real Erlang and Elixir nodes of every release of the matrix.
func TestProtoBEAM(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		tickArgs := []string{"-kernel", "net_ticktime", "4"}
		a := beamtest.Start(t, rel, beamtest.Options{Name: "a_" + rel.Name + "@127.0.0.1", Cookie: cookie, ErlArgs: tickArgs})
		a.Eval(t, ptBeamSetup)
		goName := "go_" + rel.Name + "@127.0.0.1"
		n := ptGoNode(t, goName, cookie, 4*time.Second)
		ptSpawn(t, n, "net_kernel", newPTSrv())
		echoSrv := newPTSrv()
		echo := ptSpawn(t, n, "echo", echoSrv)
		sink := &ptSink{}
		ptSpawn(t, n, "sink", sink)
		g := fmt.Sprintf("'%s'", goName)
		a.Eval(t, fmt.Sprintf("persistent_term:put(pt_go, %s).", g))
		beamRec := func(t *testing.T) string {
			return a.Eval(t, "brec ! {pt_get, self()}, receive {pt_rec, R} -> R after 10000 -> pt_timeout end.")
		}

		t.Run("ping both ways", func(t *testing.T) {
			if got := a.Eval(t, "net_adm:ping("+g+")."); got != "pong" {
				t.Fatalf("net_adm:ping from the BEAM = %s", got)
			}
			got := ptDirect(t, echo, ptCallReq{gen.ProcessID{Name: "net_kernel", Node: a.Name}, etf.Tuple{etf.Atom("is_auth"), etf.Atom(goName)}})
			if got != etf.Atom("yes") {
				t.Fatalf("is_auth call to the BEAM's net_kernel = %v", got)
			}
		})

		t.Run("gen_server call and cast both ways", func(t *testing.T) {
			if got := a.Eval(t, "gen_server:call({echo, "+g+"}, {hello, 1})."); got != "{echo,{hello,1}}" {
				t.Fatalf("gen_server:call to Go = %s", got)
			}
			got := ptDirect(t, echo, ptCallReq{gen.ProcessID{Name: "becho", Node: a.Name}, etf.Atom("ping")})
			if fmt.Sprint(got) != fmt.Sprint(etf.Tuple{etf.Atom("beam_echo"), etf.Atom("ping")}) {
				t.Fatalf("call to the BEAM = %v", got)
			}
			a.Eval(t, "gen_server:cast({echo, "+g+"}, {cast_from_beam, 7}).")
			select {
			case m := <-echoSrv.casts:
				if fmt.Sprint(m) != fmt.Sprint(etf.Tuple{etf.Atom("cast_from_beam"), int64(7)}) {
					t.Fatalf("cast received as %v", m)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the BEAM's cast did not arrive")
			}
			ptDirect(t, echo, ptCastReq{gen.ProcessID{Name: "becho", Node: a.Name}, etf.Atom("cast_from_go")})
			ptEventually(t, "the Go cast reaches the BEAM", func() (bool, string) {
				got := a.Eval(t, "persistent_term:get(pt_last_cast, none).")
				return got == "cast_from_go", got
			})
		})

		t.Run("Elixir GenServer.call", func(t *testing.T) {
			e := beamtest.Start(t, rel, beamtest.Options{Name: "e_" + rel.Name + "@127.0.0.1", Cookie: cookie, Elixir: true, ErlArgs: tickArgs})
			if got := e.Eval(t, `GenServer.call({:echo, :"`+goName+`"}, %{"key" => [1, 2.5, "s"]})`); got != `{:echo, %{"key" => [1, 2.5, "s"]}}` {
				t.Fatalf("GenServer.call = %s", got)
			}
			if got := e.Eval(t, `Process.exit(GenServer.call({:echo, :"`+goName+`"}, :pid), :normal)`); got != "true" {
				t.Fatalf("Process.exit = %s", got)
			}
		})

		t.Run("send to pids and names both ways", func(t *testing.T) {
			a.Eval(t, "{echo, "+g+"} ! {by_name, 1}, "+ptGoPidOnBeam("echo")+" ! {by_pid, 2}, ok.")
			echoSrv.next(t, "by name", func(m etf.Term) bool { return fmt.Sprint(m) == "[by_name 1]" })
			echoSrv.next(t, "by pid", func(m etf.Term) bool { return fmt.Sprint(m) == "[by_pid 2]" })
			brec := ptDirect(t, echo, ptCallReq{gen.ProcessID{Name: "becho", Node: a.Name}, etf.Tuple{etf.Atom("whereis"), etf.Atom("brec")}}).(etf.Pid)
			ptDirect(t, echo, ptSendReq{to: gen.ProcessID{Name: "brec", Node: a.Name}, n: 1, make: func(int) etf.Term { return etf.Atom("go_by_name") }})
			ptDirect(t, echo, ptSendReq{to: brec, n: 1, make: func(int) etf.Term { return etf.Tuple{etf.Atom("go_by_pid"), echo.Self()} }})
			ptEventually(t, "both messages reach the BEAM", func() (bool, string) {
				got := beamRec(t)
				return strings.Contains(got, "go_by_name") && strings.Contains(got, "{go_by_pid,<"), got
			})
		})

		t.Run("100000 messages in order both ways", func(t *testing.T) {
			const count = 100000
			start := sink.count.Load()
			a.Eval(t, fmt.Sprintf("S = {sink, %s}, lists:foreach(fun(I) -> S ! {seq, I} end, lists:seq(1, %d)), ok.", g, count))
			ptEventually(t, "the BEAM's messages arrive", func() (bool, string) {
				got := sink.count.Load() - start
				return got == count, fmt.Sprintf("%d of %d received, %d out of order", got, count, sink.bad.Load())
			})
			if sink.bad.Load() != 0 {
				t.Fatalf("%d messages out of order", sink.bad.Load())
			}
			ptDirect(t, echo, ptSendReq{to: gen.ProcessID{Name: "bseq", Node: a.Name}, n: count,
				make: func(i int) etf.Term { return etf.Tuple{etf.Atom("seq"), int64(i)} }})
			ptEventually(t, "the Go messages arrive in order", func() (bool, string) {
				got := a.Eval(t, "bseq ! {pt_get, self()}, receive {pt_seq, N, Bad, _} -> {N, Bad} after 10000 -> pt_timeout end.")
				return got == fmt.Sprintf("{%d,0}", count), got
			})
		})

		t.Run("large binaries both ways", func(t *testing.T) {
			for _, tt := range []struct {
				size, count int
			}{{64 << 10, 2000}, {1 << 20, 20}} {
				start := sink.binBytes.Load()
				a.Eval(t, fmt.Sprintf("S = {sink, %s}, B = binary:copy(<<\"x\">>, %d), lists:foreach(fun(_) -> S ! B end, lists:seq(1, %d)), ok.", g, tt.size, tt.count))
				want := int64(tt.size * tt.count)
				ptEventually(t, "the BEAM's binaries arrive", func() (bool, string) {
					got := sink.binBytes.Load() - start
					return got == want, fmt.Sprintf("%d of %d bytes", got, want)
				})
				before := a.Eval(t, "bseq ! {pt_get, self()}, receive {pt_seq, _, _, Bytes} -> Bytes after 10000 -> pt_timeout end.")
				base, err := strconv.ParseInt(before, 10, 64)
				if err != nil {
					t.Fatalf("bseq bytes = %s", before)
				}
				bin := make([]byte, tt.size)
				ptDirect(t, echo, ptSendReq{to: gen.ProcessID{Name: "bseq", Node: a.Name}, n: tt.count, make: func(int) etf.Term { return bin }})
				ptEventually(t, "the Go binaries arrive", func() (bool, string) {
					got := a.Eval(t, "bseq ! {pt_get, self()}, receive {pt_seq, _, _, Bytes} -> Bytes after 10000 -> pt_timeout end.")
					return got == strconv.FormatInt(base+want, 10), fmt.Sprintf("%s, want %d", got, base+want)
				})
			}
		})

		t.Run("link and unlink from the BEAM", func(t *testing.T) {
			ls := newPTSrv()
			lp := ptSpawn(t, n, "glink1", ls)
			got := ptRun(t, a, "G = "+ptGoPidOnBeam("glink1")+", link(G), {links, L} = process_info(self(), links), lists:member(G, L).")
			if got != "true" {
				t.Fatalf("link from the BEAM: %s", got)
			}
			agent := ptDirect(t, echo, ptCallReq{gen.ProcessID{Name: "becho", Node: a.Name}, etf.Tuple{etf.Atom("whereis"), etf.Atom("bagent")}}).(etf.Pid)
			ptEventually(t, "ergo records the link", func() (bool, string) {
				l := n.Links(lp.Self())
				return slices.Contains(l, agent), fmt.Sprint(l)
			})
			if got := ptRun(t, a, "G = "+ptGoPidOnBeam("glink1")+", unlink(G), {links, L} = process_info(self(), links), lists:member(G, L)."); got != "false" {
				t.Fatalf("unlink on the BEAM: %s", got)
			}
			ptEventually(t, "ergo forgets the link on both entries", func() (bool, string) {
				l1, l2 := n.Links(lp.Self()), n.Links(agent)
				return len(l1) == 0 && len(l2) == 0, fmt.Sprintf("Links(go)=%v Links(beam)=%v", l1, l2)
			})
			ptExit(lp, "{shutdown,unlinked}")
			// The connection survived the unlink (OTP 26+ kills it on the old UNLINK).
			if got := a.Eval(t, "lists:member("+g+", nodes())."); got != "true" {
				t.Fatalf("Go node not connected after the unlink: %s", got)
			}
			got = ptRun(t, a, "{echo, persistent_term:get(pt_go)} ! {sync, self()}, gen_server:call({echo, persistent_term:get(pt_go)}, sync), receive {'EXIT', _, R} -> {unexpected_exit, R} after 0 -> no_exit end.")
			if got != "no_exit" {
				t.Fatalf("after unlink the BEAM got %s", got)
			}
		})

		t.Run("link and unlink from Go", func(t *testing.T) {
			ls := newPTSrv()
			lp := ptSpawn(t, n, "glink2", ls)
			a.Eval(t, "register(bvictim, spawn(fun() -> receive stop -> ok end end)), ok.")
			victim := ptDirect(t, echo, ptCallReq{gen.ProcessID{Name: "becho", Node: a.Name}, etf.Tuple{etf.Atom("whereis"), etf.Atom("bvictim")}}).(etf.Pid)
			if err := lp.Link(victim); err != nil {
				t.Fatal(err)
			}
			linksOnBeam := func() (bool, string) {
				got := a.Eval(t, "{links, L} = process_info(whereis(bvictim), links), L.")
				return got != "[]", got
			}
			ptEventually(t, "the BEAM records the link", linksOnBeam)
			if err := lp.Unlink(victim); err != nil {
				t.Fatal(err)
			}
			ptEventually(t, "the BEAM forgets the link", func() (bool, string) { ok, s := linksOnBeam(); return !ok, s })
			if l1, l2 := n.Links(lp.Self()), n.Links(victim); len(l1)+len(l2) != 0 {
				t.Fatalf("stale links in ergo: %v %v", l1, l2)
			}
			a.Eval(t, "exit(whereis(bvictim), kill), ok.")
			if got := a.Eval(t, "lists:member("+g+", nodes())."); got != "true" {
				t.Fatalf("Go node not connected after the unlink: %s", got)
			}
			a.Eval(t, "gen_server:call({glink2, "+g+"}, sync).")
			if !lp.IsAlive() {
				t.Fatal("the Go process died with a process it had unlinked from")
			}
		})

		t.Run("exit reasons through links", func(t *testing.T) {
			ls := newPTSrv()
			lp := ptSpawn(t, n, "glink3", ls)
			lp.SetTrapExit(true)
			a.Eval(t, "register(bl3, spawn(fun() -> receive {die, R} -> exit(R) end end)), ok.")
			p3 := ptDirect(t, echo, ptCallReq{gen.ProcessID{Name: "becho", Node: a.Name}, etf.Tuple{etf.Atom("whereis"), etf.Atom("bl3")}}).(etf.Pid)
			if err := lp.Link(p3); err != nil {
				t.Fatal(err)
			}
			ptEventually(t, "the BEAM records the link", func() (bool, string) {
				got := a.Eval(t, "{links, L} = process_info(whereis(bl3), links), L.")
				return got != "[]", got
			})
			a.Eval(t, "bl3 ! {die, {shutdown, foo}}, ok.")
			m := ls.next(t, "EXIT from the BEAM", func(m etf.Term) bool { _, ok := m.(gen.MessageExit); return ok }).(gen.MessageExit)
			if m.Pid != p3 || m.Reason != "{shutdown,foo}" {
				t.Fatalf("got %+v, want the exit of %v with {shutdown,foo}", m, p3)
			}
			vp := ptSpawn(t, n, "gvictim", newPTSrv())
			if got := ptRun(t, a, "link("+ptGoPidOnBeam("gvictim")+")."); got != "true" {
				t.Fatalf("link = %s", got)
			}
			ptEventually(t, "ergo records the link", func() (bool, string) { l := n.Links(vp.Self()); return len(l) == 1, fmt.Sprint(l) })
			ptExit(vp, "{shutdown,foo}")
			if got := ptRun(t, a, "receive {'EXIT', _, R} -> R after 20000 -> pt_timeout end."); got != "{shutdown,foo}" {
				t.Fatalf("the BEAM got exit reason %s", got)
			}
		})

		t.Run("monitors both ways", func(t *testing.T) {
			mp := ptSpawn(t, n, "gmon", newPTSrv())
			got := ptRun(t, a, "erlang:monitor(process, "+ptGoPidOnBeam("gmon")+"), ok.")
			if got != "ok" {
				t.Fatal(got)
			}
			ptEventually(t, "ergo records the monitor", func() (bool, string) { l := n.MonitoredBy(mp.Self()); return len(l) == 1, fmt.Sprint(l) })
			ptExit(mp, "{shutdown,foo}")
			if got := ptRun(t, a, "receive {'DOWN', _, process, _, R} -> R after 20000 -> pt_timeout end."); got != "{shutdown,foo}" {
				t.Fatalf("DOWN reason on the BEAM = %s", got)
			}
			if got := ptRun(t, a, "R = erlang:monitor(process, "+ptGoPidOnBeam("echo")+"), erlang:demonitor(R)."); got != "true" {
				t.Fatal(got)
			}
			ptEventually(t, "ergo forgets the demonitored monitor", func() (bool, string) { l := n.MonitoredBy(echo.Self()); return len(l) == 0, fmt.Sprint(l) })

			ms := newPTSrv()
			gp := ptSpawn(t, n, "gmon2", ms)
			a.Eval(t, "register(bm1, spawn(fun() -> receive {die, R} -> exit(R) end end)), register(bm2, spawn(fun() -> receive {die, R} -> exit(R) end end)), ok.")
			pidOf := func(name string) etf.Pid {
				return ptDirect(t, echo, ptCallReq{gen.ProcessID{Name: "becho", Node: a.Name}, etf.Tuple{etf.Atom("whereis"), etf.Atom(name)}}).(etf.Pid)
			}
			bm1 := pidOf("bm1")
			ref := gp.MonitorProcess(bm1)
			monitoredBy := func(name string) func() (bool, string) {
				return func() (bool, string) {
					got := a.Eval(t, "{monitored_by, L} = process_info(whereis("+name+"), monitored_by), L.")
					return got != "[]", got
				}
			}
			ptEventually(t, "the BEAM records the Go monitor", monitoredBy("bm1"))
			gp.DemonitorProcess(ref)
			ptEventually(t, "the BEAM forgets the Go monitor", func() (bool, string) { ok, s := monitoredBy("bm1")(); return !ok, s })
			gp.MonitorProcess(bm1)
			gp.MonitorProcess(gen.ProcessID{Name: "bm2", Node: a.Name})
			ptEventually(t, "the BEAM records the monitor by name", monitoredBy("bm2"))
			a.Eval(t, "bm1 ! {die, {shutdown, bar}}, bm2 ! {die, {shutdown, baz}}, ok.")
			// The two DOWN signals come from different processes: either may come first.
			reasons := map[string]string{}
			for len(reasons) < 2 {
				d := ms.next(t, "DOWN", func(m etf.Term) bool { _, ok := m.(gen.MessageDown); return ok }).(gen.MessageDown)
				switch {
				case d.Pid == bm1:
					reasons["pid"] = d.Reason
				case d.ProcessID.Name == "bm2":
					reasons["name"] = d.Reason
				default:
					t.Fatalf("unexpected DOWN %+v", d)
				}
			}
			if reasons["pid"] != "{shutdown,bar}" || reasons["name"] != "{shutdown,baz}" {
				t.Fatalf("DOWN reasons %v, want {shutdown,bar} by pid and {shutdown,baz} by name", reasons)
			}
		})

		t.Run("EXIT2 from the BEAM", func(t *testing.T) {
			ts := newPTSrv()
			tp := ptSpawn(t, n, "gtrap", ts)
			tp.SetTrapExit(true)
			a.Eval(t, "exit("+ptGoPidOnBeam("gtrap")+", {shutdown, bye}).")
			m := ts.next(t, "trapped exit", func(m etf.Term) bool { _, ok := m.(gen.MessageExit); return ok }).(gen.MessageExit)
			if m.Reason != "{shutdown,bye}" || string(m.Pid.Node) != a.Name {
				t.Fatalf("trapped %+v", m)
			}
			pp := ptSpawn(t, n, "gplain", newPTSrv())
			e := beamtest.Start(t, rel, beamtest.Options{Name: "e2_" + rel.Name + "@127.0.0.1", Cookie: cookie, Elixir: true, ErlArgs: tickArgs})
			e.Eval(t, `Process.exit(GenServer.call({:gplain, :"`+goName+`"}, :pid), {:shutdown, :elixir})`)
			ptEventually(t, "the Go process exits", func() (bool, string) { return !pp.IsAlive(), "alive" })
		})

		t.Run("silent and killed peers", func(t *testing.T) {
			b := beamtest.Start(t, rel, beamtest.Options{Name: "b_" + rel.Name + "@127.0.0.1", Cookie: cookie, ErlArgs: tickArgs})
			b.Eval(t, "register(bp, spawn(fun() -> receive stop -> ok end end)), ok.")
			ms := newPTSrv()
			gp := ptSpawn(t, n, "gwatch", ms)
			if err := n.Connect(b.Name); err != nil {
				t.Fatal(err)
			}
			gp.MonitorProcess(gen.ProcessID{Name: "bp", Node: b.Name})
			pid, err := strconv.Atoi(strings.Trim(b.Eval(t, "os:getpid()."), `"`))
			if err != nil {
				t.Fatal(err)
			}
			stopped := time.Now()
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			var cont sync.Once
			resume := func() { cont.Do(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) }
			t.Cleanup(resume)
			d := ms.next(t, "noconnection from the silent peer", func(m etf.Term) bool { _, ok := m.(gen.MessageDown); return ok }).(gen.MessageDown)
			t.Logf("%s: silent peer noticed after %s (net_ticktime 4s)", rel.Name, time.Since(stopped).Round(100*time.Millisecond))
			if d.Reason != "noconnection" {
				t.Fatalf("DOWN %+v, want noconnection", d)
			}
			resume()
			ptEventually(t, "the Go node reconnects", func() (bool, string) {
				if err := n.Connect(b.Name); err != nil {
					return false, err.Error()
				}
				got, err := b.EvalE("net_adm:ping("+g+").", 10*time.Second)
				return got == "pong", fmt.Sprint(got, err)
			})
			gp.MonitorProcess(gen.ProcessID{Name: "bp", Node: b.Name})
			ptEventually(t, "the monitor is set", func() (bool, string) {
				got := b.Eval(t, "{monitored_by, L} = process_info(whereis(bp), monitored_by), L.")
				return got != "[]", got
			})
			b.Kill()
			d = ms.next(t, "noconnection from the killed peer", func(m etf.Term) bool { _, ok := m.(gen.MessageDown); return ok }).(gen.MessageDown)
			if d.Reason != "noconnection" {
				t.Fatalf("DOWN %+v, want noconnection", d)
			}
			if got := a.Eval(t, "net_adm:ping("+g+")."); got != "pong" {
				t.Fatalf("the Go node no longer answers: %s", got)
			}
		})
	})
}

// ptExit ends a Go process from the test goroutine. ergo's Exit and Kill
// race with the process's own termination (its kill function is cleared
// while Exit is about to call it) and then panic; the process is ending
// either way, which is all these tests ask for.
// ptStop makes a ptSrv stop with reason.
type ptStop struct{ reason string }

// ptExit ends the ptSrv process p with reason, from its own loop. Not with
// p.Exit: ergo's Exit queues the exit and cancels the process's context at
// once, and ergo's gen.Server loop then picks either at random, ending with
// reason kill about as often as with the reason given (the links and
// monitors then see kill).
func ptExit(p gen.Process, reason string) {
	_ = p.Send(p.Self(), ptStop{reason})
}
