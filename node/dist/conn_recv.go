package dist

import (
	"errors"
	"fmt"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	"github.com/gonode/gonode/node/term"
)

// mailboxFullWait is how long, after the connection ended, the overflow
// keeps the messages of a process that takes none of them (overflow.go).
const mailboxFullWait = 10 * time.Second

// readSlab is the size of the reader's slabs (frameReader): the most one
// read system call takes from the socket, and the most memory a body given
// to a process can hold on to beyond its own.
const readSlab = 256 << 10

// readLoop reads frames in arrival order and routes each complete message
// before reading the next, which keeps Erlang's per-pair ordering. It
// returns the error that ended the connection, or errDeposed when a
// callback it ran took long enough for another goroutine to take the
// reading role over (inline.go).
func (c *conn) readLoop() error {
	fr, asm := c.fr, c.asm
	for {
		if !fr.ready() {
			// About to wait for the peer: what was held back goes out.
			c.uncork()
		}
		body, owned, err := fr.next()
		if err != nil {
			switch {
			case isTimeout(err):
				c.tickTimeouts.Add(1)
				c.log.Warn("peer silent for net_ticktime: disconnecting", "net_ticktime", c.cfg.NetTickTime)
				return fmt.Errorf("dist: nothing received from %s for %s: %w", c.peer.Name, c.cfg.NetTickTime, err)
			case errors.Is(err, ErrFrameTooLarge):
				c.log.Error("oversized frame: closing the connection", "err", err, "max_frame_size", c.cfg.MaxFrameSize)
			}
			return err
		}
		n := 4 + len(body)
		c.bytesIn.Add(uint64(n))
		if len(body) == 0 { // tick
			if c.obs != nil {
				c.obs.Traffic(c.peer.Name, DirectionIn, 0, n)
			}
			continue
		}
		msg, complete, err := asm.feed(body, owned)
		if err != nil {
			if errors.Is(err, ErrFrameTooLarge) {
				c.log.Error("oversized fragmented message: closing the connection", "err", err, "max_frame_size", c.cfg.MaxFrameSize)
				return err
			}
			c.drop(err)
			continue
		}
		msgs := 0
		if complete {
			msgs = 1
			c.msgsIn.Add(1)
		}
		if c.obs != nil {
			c.obs.Traffic(c.peer.Name, DirectionIn, msgs, n)
		}
		if !complete {
			continue
		}
		if fr.ready() {
			// More is buffered: replies wait and leave together (cork).
			c.corked.Store(true)
		}
		if err := c.dispatchSafely(msg); err != nil {
			if errors.Is(err, errDeposed) {
				return err
			}
			c.drop(err)
		}
	}
}

// dispatchSafely is dispatch, with a panic inside the runtime it calls (ergo's
// router and processes) turned into a dropped frame: whatever a peer sends,
// it must not take the connection's reader, and with it the node, down.
func (c *conn) dispatchSafely(m rawMessage) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: delivering it panicked: %v", ErrMalformedFrame, r)
		}
	}()
	return c.dispatch(m)
}

// drop counts a dropped frame and logs it, at most once per dropLogEvery.
func (c *conn) drop(err error) {
	c.dropped.Add(1)
	if c.obs != nil {
		c.obs.FrameDropped(c.peer.Name, err)
	}
	c.dropsSince++
	now := time.Now()
	if now.Sub(c.lastDropLog) < dropLogEvery {
		return
	}
	msg := "dropped a frame that could not be understood"
	if errors.Is(err, term.ErrDecodeBudget) {
		msg = "dropped a message that would take more memory than its decode budget"
	}
	c.log.Warn(msg, "err", err, "dropped", c.dropsSince, "dropped_total", c.dropped.Load())
	c.lastDropLog = now
	c.dropsSince = 0
}

// dispatch routes one decoded message through the handler of its
// operation (recvHandlers). An error means the message did not have the
// shape its operation requires; it is dropped.
func (c *conn) dispatch(m rawMessage) error {
	d, err := c.decodeControl(m)
	if err != nil {
		return err
	}
	if h := handlerFor(d.op); h != nil {
		return h(c, d)
	}
	c.warnOnce(d.op, "unsupported control message: dropped (logged once per operation)", "op", d.op, "arity", len(d.t))
	return nil
}

// decodeControl decodes a message within its decode budget and reads its
// operation. A message for a local process is adapted to ergo's gen.Server
// (term.AdaptGenCall): its reply goes back in the form OTP expects.
func (c *conn) decodeControl(m rawMessage) (*decoder, error) {
	budget := c.cfg.decodeBudget(len(m.data))
	c.budget = *term.NewDecodeBudget(budget)
	control, payload, hasPayload, err := decodeMessage(m, &c.budget)
	if err != nil {
		if errors.Is(err, term.ErrDecodeBudget) {
			return nil, fmt.Errorf("message of %d bytes over its decode budget of %d bytes: %w", len(m.data), budget, err)
		}
		return nil, err
	}
	t, ok := control.(etf.Tuple)
	if !ok || len(t) == 0 {
		return nil, malformed("control message is %T, not a tuple", control)
	}
	op, ok := asInt(t[0])
	if !ok {
		return nil, malformed("control message operation %v", t[0])
	}
	if hasPayload {
		payload = term.AdaptGenCall(payload)
	}
	return &decoder{t: t, op: op, payload: payload, hasPayload: hasPayload}, nil
}

// maxWarnedOps bounds the operations warnOnce remembers per connection: a
// peer that sends every operation number there is gets this many lines, and
// the table stays small.
const maxWarnedOps = 64

// warnOnce logs msg the first time it is about op on this connection, for
// at most maxWarnedOps operations (the reader's own state: call it from the
// reader only).
func (c *conn) warnOnce(op int64, msg string, args ...any) {
	if c.unknownOps[op] || len(c.unknownOps) >= maxWarnedOps {
		return
	}
	c.unknownOps[op] = true
	c.log.Warn(msg, args...)
}

// deliver runs one delivery of msg to the local receiver to (route puts it
// in the mailbox). A message for a process whose mailbox is full, or that
// has messages waiting in the connection's overflow, joins the overflow
// (overflow.go) and the reader goes on with the next message: no message
// is dropped because a mailbox is small, and a slow receiver holds up only
// itself. When the overflow is at its bound, deliver waits, which stops
// reading from the peer: the peer's sender is then held back by TCP, as a
// BEAM process is suspended on a busy distribution port.
func (c *conn) deliver(to dest, msg etf.Term, route func() error) {
	if !c.overflow.holding() {
		if err := route(); !errors.Is(err, lib.ErrProcessMailboxFull) {
			return
		}
		if pid, ok := c.resolve(to); ok {
			c.overflowAppend(pid, msg, route, true)
		}
		return
	}
	pid, ok := c.resolve(to)
	if !ok {
		_ = route()
		return
	}
	if c.overflowAppend(pid, msg, route, false) {
		return
	}
	if err := route(); errors.Is(err, lib.ErrProcessMailboxFull) {
		c.overflowAppend(pid, msg, route, true)
	}
}

// remoteUnlink removes the link the peer's process remote asked to remove.
// It asks ergo's router for the unlink from the local side, which clears
// both of ergo's link entries (unlinking from the remote side would leave a
// stale entry that later kills the local process with noconnection), and
// keeps the router's resulting Unlink call from signalling back.
func (c *conn) remoteUnlink(remote, local etf.Pid) {
	key := linkPair{local, remote}
	c.suppressMu.Lock()
	c.suppress[key]++
	c.suppressMu.Unlock()
	_ = c.router.RouteUnlink(local, remote)
	c.suppressMu.Lock()
	if n := c.suppress[key]; n > 1 {
		c.suppress[key] = n - 1
	} else if n == 1 {
		delete(c.suppress, key)
	}
	c.suppressMu.Unlock()
}

// processFinder is the part of ergo's core router that finds a local
// process (the router ergo passes to Serve implements it).
type processFinder interface {
	ProcessByPid(etf.Pid) gen.Process
}

// exit2 delivers an exit signal sent with erlang:exit/2 to the local process
// to, with Erlang's semantics: kill is untrappable; a process trapping exits
// receives gen.MessageExit; normal is ignored by a process not trapping.
// The error is errDeposed (deliverTo).
func (c *conn) exit2(from, to etf.Pid, reason string) error {
	if string(to.Node) != c.nodename {
		return nil
	}
	pf, ok := c.router.(processFinder)
	if !ok {
		c.warnOnce(opExit2, "exit signal dropped: the router cannot look up processes", "router", fmt.Sprintf("%T", c.router))
		return nil
	}
	p := pf.ProcessByPid(to)
	if p == nil {
		return nil
	}
	// ergo's Exit and Kill dereference the process's kill function, which the
	// process clears when it terminates: an exit signal that races with the
	// process's own end (two EXIT2 in a row, say) panics inside ergo. The
	// process is gone either way; a peer's signal must not take the reader,
	// and with it the node, down.
	defer func() {
		if r := recover(); r != nil {
			c.log.Debug("exit signal met a process that was already terminating", "to", to.String(), "panic", fmt.Sprint(r))
		}
	}()
	switch {
	case reason == "kill":
		p.Kill()
	case p.TrapExit():
		// As a message, the way the peer's messages to it go (inline.go).
		return c.deliverTo(toPid(to), p, gen.MessageExit{Pid: from, Reason: reason}, func() error {
			return c.router.RouteSend(from, to, gen.MessageExit{Pid: from, Reason: reason})
		})
	case reason == "normal":
	default:
		_ = p.Exit(reason)
	}
	return nil
}
