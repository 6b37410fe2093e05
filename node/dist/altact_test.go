package dist

import (
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
)

// altactProc is a local process for exit signals sent by alias or name: it
// traps exits, so the connection turns an exit signal into a MessageExit the
// fake router records as a Send.
type altactProc struct {
	gen.Process // nil: the connection uses only the methods below
	self        etf.Pid
	name        string
	alias       etf.Alias
}

func (p *altactProc) Self() etf.Pid  { return p.self }
func (p *altactProc) TrapExit() bool { return true }

// Behavior: not a behaviour the reader may run inline (inline.go), so
// messages reach the router.
func (p *altactProc) Behavior() gen.ProcessBehavior { return nil }

// ProcessByAlias and ProcessByName make ptRouter a procLookup over the
// altactProcs a test put in procs.
func (r *ptRouter) ProcessByAlias(alias etf.Alias) gen.Process {
	r.procsMu.Lock()
	defer r.procsMu.Unlock()
	for _, p := range r.procs {
		if ap, ok := p.(*altactProc); ok && ap.alias == alias {
			return ap
		}
	}
	return nil
}

func (r *ptRouter) ProcessByName(name string) gen.Process {
	r.procsMu.Lock()
	defer r.procsMu.Unlock()
	for _, p := range r.procs {
		if ap, ok := p.(*altactProc); ok && ap.name == name {
			return ap
		}
	}
	return nil
}

var ptLocalAlias = etf.Alias{Node: ptLocal, Creation: 3, ID: [5]uint32{9, 8, 7, 6, 5}}

// ptAltactStart is a connection whose router knows one local process,
// ptLocalPid, registered as "srv" with the alias ptLocalAlias.
func ptAltactStart(t *testing.T) *ptHarness {
	t.Helper()
	h := ptStart(t, DefaultProtoConfig(), ptFlags())
	h.router.procsMu.Lock()
	h.router.procs = map[etf.Pid]gen.Process{ptLocalPid: &altactProc{self: ptLocalPid, name: "srv", alias: ptLocalAlias}}
	h.router.procsMu.Unlock()
	return h
}

// ALTACT_SIG_SEND, what OTP 28+ sends a peer that advertises ALTACT_SIG for
// every message to an alias and every priority message or exit signal,
// reaches the process its flags name, with and without a trace token.
func TestConnAltactSigSend(t *testing.T) {
	tok := etf.Tuple{int64(0), etf.Atom("label"), int64(1), ptRemotePid, int64(0)}
	hugeFlags := new(big.Int).Lsh(big.NewInt(1), 70) // a bignum whose low byte is 0
	hugeFlags.Or(hugeFlags, big.NewInt(altactAlias))
	exitTo := func(to etf.Pid, reason string) string {
		return fmt.Sprint(ptCall{"Send", []any{ptRemotePid, to, gen.MessageExit{Pid: ptRemotePid, Reason: reason}}})
	}
	shutdownFoo := etf.Tuple{etf.Atom("shutdown"), etf.Atom("foo")}
	tests := []struct {
		name    string
		control etf.Tuple
		payload etf.Term
		want    string
	}{
		{"message to a pid", etf.Tuple{int64(opAltactSigSend), int64(0), ptRemotePid, ptLocalPid}, etf.Atom("m"),
			fmt.Sprint(ptCall{"Send", []any{ptRemotePid, ptLocalPid, etf.Atom("m")}})},
		{"priority message to a pid", etf.Tuple{int64(opAltactSigSend), int64(altactPrio), ptRemotePid, ptLocalPid}, etf.Atom("p"),
			fmt.Sprint(ptCall{"Send", []any{ptRemotePid, ptLocalPid, etf.Atom("p")}})},
		{"message to an alias", etf.Tuple{int64(opAltactSigSend), int64(altactAlias), ptRemotePid, etf.Ref(ptLocalAlias)}, etf.Atom("a"),
			fmt.Sprint(ptCall{"SendAlias", []any{ptRemotePid, ptLocalAlias, etf.Atom("a")}})},
		{"message to an alias with a token", etf.Tuple{int64(opAltactSigSend), int64(altactAlias | altactToken), ptRemotePid, etf.Ref(ptLocalAlias), tok}, etf.Atom("t"),
			fmt.Sprint(ptCall{"SendAlias", []any{ptRemotePid, ptLocalAlias, etf.Atom("t")}})},
		{"priority message to an alias with a token", etf.Tuple{int64(opAltactSigSend), int64(altactAlias | altactToken | altactPrio), ptRemotePid, etf.Ref(ptLocalAlias), tok}, etf.Atom("pt"),
			fmt.Sprint(ptCall{"SendAlias", []any{ptRemotePid, ptLocalAlias, etf.Atom("pt")}})},
		{"priority message to a name", etf.Tuple{int64(opAltactSigSend), int64(altactName | altactPrio), ptRemotePid, etf.Atom("srv")}, int64(5),
			fmt.Sprint(ptCall{"SendReg", []any{ptRemotePid, gen.ProcessID{Name: "srv", Node: ptLocal}, int64(5)}})},
		{"message to a name with a token", etf.Tuple{int64(opAltactSigSend), int64(altactName | altactToken), ptRemotePid, etf.Atom("srv"), tok}, int64(6),
			fmt.Sprint(ptCall{"SendReg", []any{ptRemotePid, gen.ProcessID{Name: "srv", Node: ptLocal}, int64(6)}})},
		{"a fifth element without the token flag is ignored", etf.Tuple{int64(opAltactSigSend), int64(altactAlias), ptRemotePid, etf.Ref(ptLocalAlias), etf.Atom("x")}, etf.Atom("e"),
			fmt.Sprint(ptCall{"SendAlias", []any{ptRemotePid, ptLocalAlias, etf.Atom("e")}})},
		{"elements after the token are ignored", etf.Tuple{int64(opAltactSigSend), int64(altactAlias | altactToken), ptRemotePid, etf.Ref(ptLocalAlias), tok, etf.Atom("future")}, etf.Atom("f"),
			fmt.Sprint(ptCall{"SendAlias", []any{ptRemotePid, ptLocalAlias, etf.Atom("f")}})},
		{"unknown flag bits are ignored", etf.Tuple{int64(opAltactSigSend), int64(0x80 | 0x100 | altactAlias), ptRemotePid, etf.Ref(ptLocalAlias)}, etf.Atom("u"),
			fmt.Sprint(ptCall{"SendAlias", []any{ptRemotePid, ptLocalAlias, etf.Atom("u")}})},
		{"flags as a bignum", etf.Tuple{int64(opAltactSigSend), hugeFlags, ptRemotePid, etf.Ref(ptLocalAlias)}, etf.Atom("b"),
			fmt.Sprint(ptCall{"SendAlias", []any{ptRemotePid, ptLocalAlias, etf.Atom("b")}})},
		{"exit signal to a pid", etf.Tuple{int64(opAltactSigSend), int64(altactExit | altactPrio), ptRemotePid, ptLocalPid}, shutdownFoo,
			exitTo(ptLocalPid, "{shutdown,foo}")},
		{"exit signal to an alias", etf.Tuple{int64(opAltactSigSend), int64(altactExit | altactAlias), ptRemotePid, etf.Ref(ptLocalAlias)}, etf.Atom("bye"),
			exitTo(ptLocalPid, "bye")},
		{"priority exit signal to an alias with a token", etf.Tuple{int64(opAltactSigSend), int64(altactExit | altactAlias | altactPrio | altactToken), ptRemotePid, etf.Ref(ptLocalAlias), tok}, etf.Atom("prio_bye"),
			exitTo(ptLocalPid, "prio_bye")},
		{"exit signal to a name", etf.Tuple{int64(opAltactSigSend), int64(altactExit | altactName), ptRemotePid, etf.Atom("srv")}, etf.Atom("named_bye"),
			exitTo(ptLocalPid, "named_bye")},
	}
	h := ptAltactStart(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.write(t, ptPassThrough(t, tt.control, tt.payload))
			if got := h.router.next(t).String(); got != tt.want {
				t.Fatalf("router got %s\nwant %s", got, tt.want)
			}
		})
	}
	if n := h.obs.dropped.Load(); n != 0 {
		t.Fatalf("%d frames dropped", n)
	}
}

// An exit signal to an alias nobody owns, or a name nobody registered, goes
// nowhere, as on a BEAM; it is not a malformed frame.
func TestConnAltactSigExitToNobody(t *testing.T) {
	h := ptAltactStart(t)
	other := ptLocalAlias
	other.ID[0]++
	h.write(t, ptPassThrough(t, etf.Tuple{int64(opAltactSigSend), int64(altactExit | altactAlias), ptRemotePid, etf.Ref(other)}, etf.Atom("lost")))
	h.write(t, ptPassThrough(t, etf.Tuple{int64(opAltactSigSend), int64(altactExit | altactName), ptRemotePid, etf.Atom("nobody")}, etf.Atom("lost")))
	h.write(t, ptPassThrough(t, etf.Tuple{int64(opSendSender), ptRemotePid, ptLocalPid}, etf.Atom("after")))
	if got, want := h.router.next(t).String(), fmt.Sprint(ptCall{"Send", []any{ptRemotePid, ptLocalPid, etf.Atom("after")}}); got != want {
		t.Fatalf("router got %s, want only the message sent after the lost exit signals", got)
	}
	if n := h.obs.dropped.Load(); n != 0 {
		t.Fatalf("%d frames dropped, want none", n)
	}
}

// An ALTACT_SIG_SEND of the wrong shape is dropped and counted; the
// connection goes on.
func TestConnAltactSigMalformed(t *testing.T) {
	h := ptAltactStart(t)
	op := int64(opAltactSigSend)
	alias := etf.Ref(ptLocalAlias)
	bad := []struct {
		name    string
		control etf.Tuple
		payload []etf.Term
	}{
		{"three elements", etf.Tuple{op, int64(altactAlias), ptRemotePid}, []etf.Term{etf.Atom("m")}},
		{"flags not an integer", etf.Tuple{op, etf.Atom("alias"), ptRemotePid, alias}, []etf.Term{etf.Atom("m")}},
		{"negative flags", etf.Tuple{op, int64(-4), ptRemotePid, alias}, []etf.Term{etf.Atom("m")}},
		{"negative bignum flags", etf.Tuple{op, new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 70)), ptRemotePid, alias}, []etf.Term{etf.Atom("m")}},
		{"sender not a pid", etf.Tuple{op, int64(altactAlias), etf.Atom("me"), alias}, []etf.Term{etf.Atom("m")}},
		{"alias flag, pid target", etf.Tuple{op, int64(altactAlias), ptRemotePid, ptLocalPid}, []etf.Term{etf.Atom("m")}},
		{"name flag, reference target", etf.Tuple{op, int64(altactName), ptRemotePid, alias}, []etf.Term{etf.Atom("m")}},
		{"no target flag, reference target", etf.Tuple{op, int64(0), ptRemotePid, alias}, []etf.Term{etf.Atom("m")}},
		{"alias and name flags", etf.Tuple{op, int64(altactAlias | altactName), ptRemotePid, alias}, []etf.Term{etf.Atom("m")}},
		{"token flag without a token", etf.Tuple{op, int64(altactAlias | altactToken), ptRemotePid, alias}, []etf.Term{etf.Atom("m")}},
		{"message missing", etf.Tuple{op, int64(altactAlias), ptRemotePid, alias}, nil},
		{"exit reason missing", etf.Tuple{op, int64(altactExit), ptRemotePid, ptLocalPid}, nil},
		{"exit flag, reference target", etf.Tuple{op, int64(altactExit), ptRemotePid, alias}, []etf.Term{etf.Atom("r")}},
	}
	for _, b := range bad {
		h.write(t, ptPassThrough(t, b.control, b.payload...))
	}
	h.write(t, ptPassThrough(t, etf.Tuple{op, int64(altactAlias), ptRemotePid, alias}, etf.Atom("after")))
	if got, want := h.router.next(t).String(), fmt.Sprint(ptCall{"SendAlias", []any{ptRemotePid, ptLocalAlias, etf.Atom("after")}}); got != want {
		t.Fatalf("router got %s, want the message sent after the bad frames", got)
	}
	if got := h.obs.dropped.Load(); got != int64(len(bad)) {
		t.Fatalf("dropped %d frames, want %d (one per bad frame)", got, len(bad))
	}
}

// SendAlias sends what the peer understands: ALTACT_SIG_SEND to a peer that
// advertises ALTACT_SIG (OTP 28+, which deprecates ALIAS_SEND), ALIAS_SEND to
// one that only has ALIAS (OTP 24-27), nothing to one that has neither.
func TestConnSendAliasByPeerFlags(t *testing.T) {
	proc := ptProcess{self: ptLocalPid}
	tests := []struct {
		name  string
		flags Flags
		want  etf.Tuple
	}{
		{"ALTACT_SIG peer", ptFlags() | FlagAltactSig, etf.Tuple{int64(opAltactSigSend), int64(altactAlias), ptLocalPid, ptRef}},
		{"ALTACT_SIG peer without ALIAS", (ptFlags() | FlagAltactSig) &^ FlagAlias, etf.Tuple{int64(opAltactSigSend), int64(altactAlias), ptLocalPid, ptRef}},
		{"ALIAS peer", ptFlags() &^ FlagAltactSig, etf.Tuple{int64(opAliasSend), ptLocalPid, ptRef}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ptStart(t, DefaultProtoConfig(), tt.flags)
			if err := h.c.SendAlias(proc, etf.Alias(ptRef), etf.Atom("reply")); err != nil {
				t.Fatal(err)
			}
			ctrl, payload := h.nextMessage(t)
			if fmt.Sprint(ctrl) != fmt.Sprint(tt.want) || payload != etf.Atom("reply") {
				t.Fatalf("sent %v + %v, want %v + reply", ctrl, payload, tt.want)
			}
		})
	}
	t.Run("peer with neither", func(t *testing.T) {
		h := ptStart(t, DefaultProtoConfig(), ptFlags()&^(FlagAltactSig|FlagAlias))
		if err := h.c.SendAlias(proc, etf.Alias(ptRef), etf.Atom("reply")); !errors.Is(err, lib.ErrPeerUnsupported) {
			t.Fatalf("SendAlias = %v, want lib.ErrPeerUnsupported", err)
		}
	})
}
