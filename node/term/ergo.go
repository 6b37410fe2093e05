package term

import "github.com/ergo-services/ergo/etf"

// AdaptGenCall rewrites the one message shape that ergo's gen.Server cannot
// recognise in its faithful decoded form, and returns every other message
// unchanged. It rewrites msg in place (the reply tag inside it), so msg must
// be the caller's own, as a message just decoded is.
//
// Since OTP 24, gen_server:call sends {'$gen_call', {Pid, [alias | Ref]},
// Request}: the reply tag is the improper list [alias | Ref], which Decode
// returns as etf.ListImproper{alias, Ref}. ergo v1.999.221's gen.Server only
// accepts that tag as the two-element etf.List{alias, Ref} (its own decoder
// flattens improper lists) and silently ignores the call otherwise. The
// connection layer should pass messages it delivers to local ergo processes
// through AdaptGenCall. ergo then replies with {[alias | Ref], Reply} built
// as etf.ListImproper, which Encode writes correctly.
func AdaptGenCall(msg etf.Term) etf.Term {
	t, ok := msg.(etf.Tuple)
	if !ok || len(t) != 3 {
		return msg
	}
	if tag, ok := t[0].(etf.Atom); !ok || tag != "$gen_call" {
		return msg
	}
	from, ok := t[1].(etf.Tuple)
	if !ok || len(from) != 2 {
		return msg
	}
	l, ok := from[1].(etf.ListImproper)
	if !ok || len(l) != 2 {
		return msg
	}
	if a, ok := l[0].(etf.Atom); !ok || a != "alias" {
		return msg
	}
	// In place, as the hot path of every call a BEAM makes to a Go server
	// wants: the message was just decoded and belongs to the caller.
	from[1] = etf.List(l)
	return msg
}
