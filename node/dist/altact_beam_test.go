package dist

import (
	"fmt"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
)

// altactSrv is a Go server that hands out aliases of its own and records
// the messages that reach it.
type altactSrv struct {
	ptSrv
}

func (s *altactSrv) HandleCall(p *gen.ServerProcess, from gen.ServerFrom, m etf.Term) (etf.Term, gen.ServerStatus) {
	if m == etf.Atom("alias") {
		a, err := p.CreateAlias()
		if err != nil {
			return etf.Tuple{etf.Atom("error"), etf.Atom(err.Error())}, gen.ServerStatusOK
		}
		return a, gen.ServerStatusOK
	}
	return s.ptSrv.HandleCall(p, from, m)
}

// TestAltactSigBEAM proves the alternative activation signals against every
// release of the matrix. An OTP 28+ peer that sees ALTACT_SIG in our
// handshake sends every message to an alias, and every priority message or
// exit signal, as ALTACT_SIG_SEND (without the flag it sends alias
// messages as ALIAS_SEND and drops exit signals to aliases); we answer a
// gen_server:call's alias the same way. OTP 25 and 27 know nothing of it:
// there the flag must change nothing.
func TestAltactSigBEAM(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		a := beamtest.Start(t, rel, beamtest.Options{Name: "alt_" + rel.Name + "@127.0.0.1", Cookie: cookie})
		a.Eval(t, ptBeamSetup)
		goName := "goalt_" + rel.Name + "@127.0.0.1"
		obs := &ptObserver{}
		n := ptGoNode(t, goName, cookie, 60*time.Second, func(c *ProtoConfig) { c.Observer = obs })
		srv := &altactSrv{ptSrv: *newPTSrv()}
		sp := ptSpawn(t, n, "galt", srv)
		sp.SetTrapExit(true)
		g := fmt.Sprintf("'%s'", goName)
		a.Eval(t, fmt.Sprintf("persistent_term:put(pt_go, %s).", g))
		agent := ptDirect(t, sp, ptCallReq{gen.ProcessID{Name: "becho", Node: a.Name}, etf.Tuple{etf.Atom("whereis"), etf.Atom("bagent")}}).(etf.Pid)

		// Features of the release, probed rather than assumed; OTP 29 must
		// have them all, so that a failing probe cannot skip the proof.
		prio := a.Eval(t, "try erlang:unalias(erlang:alias([priority])) catch error:badarg -> false end.") == "true"
		exitAlias := a.Eval(t, "try exit(make_ref(), normal) catch error:badarg -> false end.") == "true"
		if rel.Name == "otp29" && !(prio && exitAlias) {
			t.Fatalf("OTP 29 without priority aliases (%v) or exit signals to aliases (%v)", prio, exitAlias)
		}
		galias := func(name string) string {
			return fmt.Sprintf("gen_server:call({%s, persistent_term:get(pt_go)}, alias)", name)
		}
		// received waits for the messages want (printed as fmt prints them),
		// in this order, on srv.
		received := func(t *testing.T, want ...string) {
			t.Helper()
			for _, w := range want {
				srv.next(t, w, func(m etf.Term) bool { return fmt.Sprint(m) == w })
			}
		}

		t.Run("gen_server call from the BEAM: the reply goes to its alias", func(t *testing.T) {
			for i := 0; i < 3; i++ {
				want := fmt.Sprintf("{echo,{hello,%d}}", i)
				if got := a.Eval(t, fmt.Sprintf("gen_server:call({galt, %s}, {hello, %d}).", g, i)); got != want {
					t.Fatalf("gen_server:call to Go = %s, want %s", got, want)
				}
			}
		})

		t.Run("messages to a Go alias, with and without a trace token", func(t *testing.T) {
			got := ptRun(t, a, "A = "+galias("galt")+", A ! {plain, 1}, "+
				"seq_trace:set_token(label, 17), A ! {traced, 2}, seq_trace:set_token([]), ok.")
			if got != "ok" {
				t.Fatal(got)
			}
			received(t, "[plain 1]", "[traced 2]")
		})

		t.Run("priority messages", func(t *testing.T) {
			if !prio {
				t.Logf("%s has no priority messages: nothing to send", rel.Name)
				return
			}
			got := ptRun(t, a, "A = "+galias("galt")+", G = persistent_term:get(pt_go), "+
				"Pid = gen_server:call({galt, G}, pid), "+
				"ok = erlang:send(A, {prio_alias, 3}, [priority]), "+
				"ok = erlang:send({galt, G}, {prio_name, 4}, [priority]), "+
				"ok = erlang:send(Pid, {prio_pid, 5}, [priority]), "+
				"seq_trace:set_token(label, 18), ok = erlang:send(A, {prio_traced, 6}, [priority]), seq_trace:set_token([]), ok.")
			if got != "ok" {
				t.Fatal(got)
			}
			received(t, "[prio_alias 3]", "[prio_name 4]", "[prio_pid 5]", "[prio_traced 6]")
		})

		t.Run("exit signals to an alias and priority exit signals", func(t *testing.T) {
			if !exitAlias {
				t.Logf("%s sends no exit signals to aliases", rel.Name)
				return
			}
			got := ptRun(t, a, "A = "+galias("galt")+", exit(A, {shutdown, by_alias}), "+
				"exit(gen_server:call({galt, persistent_term:get(pt_go)}, pid), {shutdown, by_prio}, [priority]).")
			if got != "true" {
				t.Fatal(got)
			}
			for _, want := range []string{"{shutdown,by_alias}", "{shutdown,by_prio}"} {
				m := srv.next(t, "trapped exit "+want, func(m etf.Term) bool { _, ok := m.(gen.MessageExit); return ok }).(gen.MessageExit)
				if m.Reason != want || m.Pid != agent {
					t.Fatalf("trapped %+v, want reason %s from the BEAM's %v", m, want, agent)
				}
			}
			victim := ptSpawn(t, n, "galtvictim", &altactSrv{ptSrv: *newPTSrv()})
			if got := ptRun(t, a, "exit("+galias("galtvictim")+", kill)."); got != "true" {
				t.Fatal(got)
			}
			ptEventually(t, "the process killed through its alias exits", func() (bool, string) {
				return !victim.IsAlive(), "alive"
			})
		})

		// Every frame the BEAM sent was understood.
		if got := obs.dropped.Load(); got != 0 {
			t.Fatalf("%d frames from %s dropped", got, rel.Name)
		}
	})
}
