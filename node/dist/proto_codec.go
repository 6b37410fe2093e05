package dist

import (
	"encoding/binary"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/node/term"
)

// Outgoing frame buffers up to this capacity are reused.
const maxPooledBuf = 64 << 10

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

func releaseBuf(fb frameBuf) {
	if fb.pooled && cap(fb.b) <= maxPooledBuf {
		b := fb.b[:0]
		bufPool.Put(&b)
	}
}

// send encodes one distribution message and queues it. data marks messages
// (subject to the queue bound); signals never wait.
func (c *conn) send(control etf.Tuple, payload etf.Term, hasPayload, data bool) error {
	fb, err := c.encode(control, payload, hasPayload)
	if err != nil {
		return err
	}
	return c.enqueue(fb, data)
}

// encode builds the frame(s) of one message. A peer that negotiated
// FRAGMENTS (or the atom cache) gets every message behind a distribution
// header (OTP then no longer accepts the pass-through format): a normal
// header without atom cache references, or fragments when the message is
// larger than FragmentSize. Other peers get the pass-through format (112).
func (c *conn) encode(control etf.Tuple, payload etf.Term, hasPayload bool) (frameBuf, error) {
	headers := c.flags&(FlagFragments|FlagDistHdrAtomCache) != 0
	bp := bufPool.Get().(*[]byte)
	var b []byte
	if headers {
		b = append((*bp)[:0], 0, 0, 0, 0, tagVersion, tagDistHeader, 0)
	} else {
		b = append((*bp)[:0], 0, 0, 0, 0, tagPassThrough, tagVersion)
	}
	fail := func(err error) (frameBuf, error) {
		*bp = b[:0]
		bufPool.Put(bp)
		return frameBuf{}, err
	}
	ctrlStart := len(b)
	b, err := term.Encode(b, control)
	if err != nil {
		return fail(fmt.Errorf("dist: encode control message: %w", err))
	}
	ctrlEnd, payStart := len(b), len(b)
	if hasPayload {
		if !headers {
			b = append(b, tagVersion)
		}
		payStart = len(b)
		if b, err = term.Encode(b, payload); err != nil {
			return fail(fmt.Errorf("dist: encode message: %w", err))
		}
	}
	size := len(b) - 4
	if size > c.cfg.FragmentSize && c.flags.Has(FlagFragments) {
		ctrl, pay := b[ctrlStart:ctrlEnd], b[payStart:]
		total := len(ctrl) + len(pay)
		n := (total + c.cfg.FragmentSize - 1) / c.cfg.FragmentSize
		out := make([]byte, 0, total+n*(4+2+16)+1)
		out = fragmentFrames(out, c.fragSeq.Add(1), c.cfg.FragmentSize, ctrl, pay)
		*bp = b[:0]
		bufPool.Put(bp)
		return frameBuf{b: out, msgs: 1}, nil
	}
	if size > c.cfg.MaxFrameSize {
		return fail(fmt.Errorf("%w: message of %d bytes to a peer without FRAGMENTS", ErrFrameTooLarge, size))
	}
	binary.BigEndian.PutUint32(b, uint32(size))
	return frameBuf{b: b, msgs: 1, pooled: true}, nil
}

// decodeMessage decodes the control term and the optional payload term of
// a complete message. Errors wrap ErrMalformedFrame.
func decodeMessage(m rawMessage) (control, payload etf.Term, hasPayload bool, err error) {
	var opts []term.DecodeOption
	if m.atoms != nil {
		opts = []term.DecodeOption{term.WithAtomCache(m.atoms)}
	}
	next := func(b []byte, what string) (etf.Term, []byte, error) {
		if m.versioned {
			if len(b) == 0 || b[0] != tagVersion {
				return nil, nil, malformed("%s lacks the version byte", what)
			}
			b = b[1:]
		}
		t, rest, err := term.Decode(b, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrMalformedFrame, what, err)
		}
		return t, rest, nil
	}
	control, rest, err := next(m.data, "control message")
	if err != nil {
		return nil, nil, false, err
	}
	if len(rest) == 0 {
		return control, nil, false, nil
	}
	payload, rest, err = next(rest, "message")
	if err != nil {
		return nil, nil, false, err
	}
	if len(rest) != 0 {
		return nil, nil, false, malformed("%d bytes after the message", len(rest))
	}
	return control, payload, true, nil
}

// reasonTerm turns ergo's string reason into the term sent to the peer: the
// term it spells in Erlang syntax ({shutdown,foo}), else an atom, else (over
// 255 characters) a binary.
func reasonTerm(s string) etf.Term {
	switch s {
	case "normal", "kill", "killed", "shutdown", "noproc", "noconnection":
		return etf.Atom(s)
	}
	if t, err := term.Parse(s); err == nil {
		return t
	}
	if utf8.RuneCountInString(s) <= 255 && utf8.ValidString(s) {
		return etf.Atom(s)
	}
	return []byte(s)
}

// reasonString turns a reason received from the peer into ergo's string
// form: Erlang syntax, which reasonTerm reads back.
func reasonString(t etf.Term) string {
	if a, ok := t.(etf.Atom); ok && plainAtom(a) {
		return string(a)
	}
	return term.Format(t)
}

// plainAtom reports an atom that Erlang prints without quotes.
func plainAtom(a etf.Atom) bool {
	if len(a) == 0 || a[0] < 'a' || a[0] > 'z' {
		return false
	}
	for i := 1; i < len(a); i++ {
		ch := a[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '@') {
			return false
		}
	}
	switch a {
	case "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case", "catch",
		"cond", "div", "else", "end", "fun", "if", "let", "maybe", "not", "of", "or", "orelse", "receive",
		"rem", "try", "when", "xor":
		return false
	}
	return true
}
