package dist

import (
	"fmt"
	"math/big"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// Bits of the Flags element of ALTACT_SIG_SEND (the "alternative activation
// signal" OTP 28 added; a peer announces it with FlagAltactSig).
const (
	// altactPrio marks a priority signal. A BEAM handles it as one only when
	// To is an active priority alias of the receiver; ergo has no priority
	// queue, so it is delivered as an ordinary signal.
	altactPrio = 1 << 0
	// altactToken says the control tuple carries a sequential trace token as
	// its fifth element.
	altactToken = 1 << 1
	// altactAlias says To is a process alias (a reference).
	altactAlias = 1 << 2
	// altactName says To is a registered name (an atom). Without altactAlias
	// or altactName, To is a pid.
	altactName = 1 << 3
	// altactExit makes the signal an exit signal whose reason is the
	// payload; without it the payload is a message.
	altactExit = 1 << 4
)

// altactSig routes {37, Flags, SenderPid, To} + Payload, or
// {37, Flags, SenderPid, To, Token} + Payload when Flags has altactToken.
//
// Like OTP's receiver, it takes a tuple longer than that (the operation may
// grow elements), a Flags integer of any size (a bignum included) and
// ignores the bits it does not know: a sender sets new bits only where
// an OTP 28 receiver, which ignores them too, still does the right thing.
// A negative or non-integer Flags, altactAlias together with altactName, a
// To of the wrong type or a missing token or payload is a malformed frame.
//
// A message goes to the pid, alias or name like SEND_SENDER, ALIAS_SEND and
// REG_SEND; an exit signal like EXIT2, to the process that owns the alias or
// name when it is one. Priority is not kept (see altactPrio) and the trace
// token is ignored, as on every _TT operation.
func (c *conn) altactSig(d *decoder) error {
	if len(d.t) < 4 {
		return malformed("ALTACT_SIG_SEND with %d elements", len(d.t))
	}
	flags, err := altactFlags(d.t[1])
	if err != nil {
		return err
	}
	from, to := d.pid(2), d.t[3]
	if d.err != nil {
		return d.err
	}
	if flags&altactToken != 0 && len(d.t) < 5 {
		return malformed("ALTACT_SIG_SEND flags %#x announce a trace token the tuple lacks", flags)
	}
	payload := d.payload
	if !d.hasPayload {
		if flags&altactExit != 0 {
			return malformed("ALTACT_SIG_SEND exit signal without its reason")
		}
		return malformed("ALTACT_SIG_SEND without its message")
	}

	switch {
	case flags&altactAlias != 0 && flags&altactName != 0:
		return malformed("ALTACT_SIG_SEND flags %#x: both alias and name", flags)

	case flags&altactAlias != 0:
		ref, ok := to.(etf.Ref)
		if !ok {
			return malformed("ALTACT_SIG_SEND to %T, not the alias its flags announce", to)
		}
		alias := etf.Alias(ref)
		if flags&altactExit != 0 {
			return c.altactExit(from, reasonString(payload), func(f procLookup) gen.Process { return f.ProcessByAlias(alias) })
		}
		return c.sendToAlias(from, alias, payload)

	case flags&altactName != 0:
		name, ok := to.(etf.Atom)
		if !ok {
			return malformed("ALTACT_SIG_SEND to %T, not the name its flags announce", to)
		}
		if flags&altactExit != 0 {
			return c.altactExit(from, reasonString(payload), func(f procLookup) gen.Process { return f.ProcessByName(string(name)) })
		}
		return c.sendToName(from, string(name), payload)

	default:
		pid, ok := to.(etf.Pid)
		if !ok {
			return malformed("ALTACT_SIG_SEND to %T, not a pid", to)
		}
		if flags&altactExit != 0 {
			return c.exit2(from, pid, reasonString(payload))
		}
		return c.sendToPid(from, pid, payload)
	}
}

// altactFlags reads the Flags element: a non-negative integer of any size,
// of which only the low byte has meaning.
func altactFlags(v etf.Term) (uint8, error) {
	if b, ok := v.(*big.Int); ok {
		if b.Sign() < 0 {
			return 0, malformed("ALTACT_SIG_SEND flags %v: negative", b)
		}
		if w := b.Bits(); len(w) > 0 {
			return uint8(w[0]), nil
		}
		return 0, nil
	}
	n, ok := asInt(v)
	if !ok {
		return 0, malformed("ALTACT_SIG_SEND flags %v (%T): not an integer", v, v)
	}
	if n < 0 {
		return 0, malformed("ALTACT_SIG_SEND flags %d: negative", n)
	}
	return uint8(n), nil
}

// procLookup is the part of ergo's core router (gen.Core) that finds a local
// process by alias or registered name.
type procLookup interface {
	ProcessByAlias(etf.Alias) gen.Process
	ProcessByName(string) gen.Process
}

// altactExit delivers an exit signal addressed to an alias or a name to the
// process find returns, as EXIT2 would; to nobody when it returns nil (the
// alias is inactive, the name unregistered), as on a BEAM.
func (c *conn) altactExit(from etf.Pid, reason string, find func(procLookup) gen.Process) error {
	f, ok := c.router.(procLookup)
	if !ok {
		c.warnOnce(opAltactSigSend, "exit signal to an alias or name dropped: the router cannot look up processes", "router", fmt.Sprintf("%T", c.router))
		return nil
	}
	p := find(f)
	if p == nil {
		return nil
	}
	return c.exit2(from, p.Self(), reason)
}
