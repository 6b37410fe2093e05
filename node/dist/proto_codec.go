package dist

import (
	"encoding/binary"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/node/term"
)

// Outgoing frame buffers are reused through two pools: small ones for
// ordinary messages, large ones for messages carrying a large binary, so a
// 64 KiB message neither allocates its buffer nor pins a large buffer under
// a small message.
const (
	maxSmallBuf = 64 << 10 // largest buffer kept in smallBufs
	maxLargeBuf = 4 << 20  // largest buffer kept in largeBufs
	// largeFrom is the size of binary payload for which encode starts
	// from a large buffer.
	largeFrom = 16 << 10
)

var (
	smallBufs = sync.Pool{New: func() any {
		b := make([]byte, 0, 1024)
		return &b
	}}
	largeBufs = sync.Pool{New: func() any {
		b := make([]byte, 0, 128<<10)
		return &b
	}}
)

// releaseBuf returns the buffer of a written (or abandoned) frame unit to
// its pool.
func releaseBuf(fb frameBuf) {
	if fb.bp == nil {
		return
	}
	*fb.bp = fb.b[:0]
	switch c := cap(fb.b); {
	case c <= maxSmallBuf:
		smallBufs.Put(fb.bp)
	case c <= maxLargeBuf:
		largeBufs.Put(fb.bp)
	}
}

// sendMessage queues a message to a process (SEND, REG_SEND, ...): it waits
// while the queue is over MaxQueueBytes.
func (c *conn) sendMessage(control etf.Tuple, message etf.Term) error {
	return c.send(control, message, true, true)
}

// sendSignal queues a signal without a payload (LINK, MONITOR_P,
// SPAWN_REPLY, ...). Signals never wait for queue space.
func (c *conn) sendSignal(control etf.Tuple) error {
	return c.send(control, nil, false, false)
}

// sendSignalWith queues a signal that carries a term after its control
// message: the reason of a PAYLOAD_ exit, the arguments of SPAWN_REQUEST.
func (c *conn) sendSignalWith(control etf.Tuple, payload etf.Term) error {
	return c.send(control, payload, true, false)
}

// sendExit queues a signal that carries an exit reason (see encodeExit).
func (c *conn) sendExit(op, payloadOp int64, reason etf.Term, elems ...etf.Term) error {
	fb, err := c.encodeExit(op, payloadOp, reason, elems...)
	if err != nil {
		return err
	}
	return c.enqueue(fb, false)
}

// encodeExit encodes a signal that carries an exit reason: to a peer that
// negotiated EXIT_PAYLOAD, operation payloadOp with elems and the reason as
// its payload; to others, operation op with elems and the reason as the
// last element.
func (c *conn) encodeExit(op, payloadOp int64, reason etf.Term, elems ...etf.Term) (frameBuf, error) {
	if c.flags.Has(FlagExitPayload) {
		return c.encode(append(etf.Tuple{payloadOp}, elems...), reason, true)
	}
	return c.encode(append(append(etf.Tuple{op}, elems...), reason), nil, false)
}

// send encodes one distribution message and queues it; data marks messages
// (subject to the queue bound). Call it through the named senders above.
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
// Fragment headers are separate segments around the encoded data, which is
// not copied again.
func (c *conn) encode(control etf.Tuple, payload etf.Term, hasPayload bool) (frameBuf, error) {
	headers := c.flags&(FlagFragments|FlagDistHdrAtomCache) != 0
	pool := &smallBufs
	if bin, ok := payload.([]byte); ok && len(bin) >= largeFrom {
		pool = &largeBufs
	}
	bp := pool.Get().(*[]byte)
	var b []byte
	if headers {
		b = append((*bp)[:0], 0, 0, 0, 0, tagVersion, tagDistHeader, 0)
	} else {
		b = append((*bp)[:0], 0, 0, 0, 0, tagPassThrough, tagVersion)
	}
	fail := func(err error) (frameBuf, error) {
		releaseBuf(frameBuf{b: b, bp: bp})
		return frameBuf{}, err
	}
	ctrlStart := len(b)
	b, err := term.Encode(b, control)
	if err != nil {
		return fail(fmt.Errorf("dist: encode control message: %w", err))
	}
	if hasPayload {
		if !headers {
			b = append(b, tagVersion)
		}
		if b, err = term.Encode(b, payload); err != nil {
			return fail(fmt.Errorf("dist: encode message: %w", err))
		}
	}
	size := len(b) - 4
	if size > c.cfg.FragmentSize && c.flags.Has(FlagFragments) {
		// With headers the payload follows the control term directly.
		segs := fragment(b[ctrlStart:], c.fragSeq.Add(1), c.cfg.FragmentSize)
		wire := 0
		for _, s := range segs {
			wire += len(s)
		}
		return frameBuf{b: b, segs: segs, size: wire, msgs: 1, bp: bp}, nil
	}
	if size > c.cfg.MaxFrameSize {
		return fail(fmt.Errorf("%w: message of %d bytes to a peer without FRAGMENTS", ErrFrameTooLarge, size))
	}
	binary.BigEndian.PutUint32(b, uint32(size))
	return frameBuf{b: b, size: len(b), msgs: 1, bp: bp}, nil
}

// shareFrom is the smallest message whose binaries may share its memory
// (term.WithSharedBinaries shares one of at least half the message). A
// shared binary keeps its whole slab (readSlab) alive: from 64 KiB that is
// at most eight times the binary's size, four times for one of 64 KiB or
// more, about what a sub-binary of a 64 KiB fragment costs on the BEAM.
// Smaller messages are copied out of the slab.
const shareFrom = 64 << 10

// decodeMessage decodes the control term and the optional payload term of
// a complete message, charging both to budget (nil: no budget). Errors wrap
// ErrMalformedFrame, and also term.ErrDecodeBudget when the message is
// over its budget.
func decodeMessage(m rawMessage, budget *term.DecodeBudget) (control, payload etf.Term, hasPayload bool, err error) {
	var opts []term.DecodeOption
	if budget != nil {
		opts = append(opts, term.WithDecodeBudget(budget))
	}
	if m.atoms != nil {
		opts = append(opts, term.WithAtomCache(m.atoms))
	}
	if m.owned && len(m.data) >= shareFrom {
		// The message is the caller's to give away: a binary that makes up
		// most of it keeps its bytes there (in the reader's slab) instead of
		// being copied out.
		opts = append(opts, term.WithSharedBinaries())
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
func reasonString(t etf.Term) string { return term.Format(t) }
