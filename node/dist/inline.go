package dist

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
)

// Inline delivery. A message for a local process whose behaviour lets the
// reader run its callbacks (inlineServer: node/genserver's Server does) is
// queued with the process, and when the process is idle the reader runs the
// callback itself, as a BEAM scheduler that read a packet runs the process
// it is for: no goroutine hand-off to the process's loop, and the reply
// leaves from the same goroutine. Order, one callback at a time per process
// and backpressure are the behaviour's to keep (genserver's inline.go says
// how); the connection keeps two rules of its own:
//
//   - Every message of the connection for a local process goes the same
//     way (sendToPid, sendToName, sendToAlias, and the exit signals a
//     trapping process receives as messages), in the order read.
//   - A callback that runs long must not keep the connection's other
//     messages waiting: when one has run for between one and two
//     watchPeriods, another goroutine takes the reading role over
//     (leader/follower) and the one in the callback ends once it returns.
//     The reader's state (frame reader, assembler, decode budget) passes
//     with the role. The watchdog that sees it is one goroutine per Proto
//     that runs only while readers run callbacks: a timer armed per
//     callback would cost a wake-up of the runtime's network poller per
//     message (measured: about 0.8 context switches per call).

// watchPeriod is how often the watchdog looks at the readers that run
// callbacks.
const watchPeriod = 2 * time.Millisecond

// inlineServer is a process behaviour that lets a connection reader queue
// messages for it and run its callbacks (genserver.Server implements it).
// EnqueueRemote calls route instead when the process does not take inline
// delivery (yet); run reports that the caller must call RunRemote.
type inlineServer interface {
	EnqueueRemote(to etf.Pid, message etf.Term, route func() error) (run bool, err error)
	RunRemote()
	// InboxLen is how many messages wait for the process to in the
	// behaviour's own queue; false when to does not take inline delivery.
	InboxLen(to etf.Pid) (int, bool)
}

// processLookup is the part of ergo's core router that finds local
// processes (the router ergo passes to Serve implements it).
type processLookup interface {
	ProcessByPid(etf.Pid) gen.Process
	ProcessByName(string) gen.Process
	ProcessByAlias(etf.Alias) gen.Process
}

// errDeposed ends a reader goroutine whose callback ran past
// inlineHandoff: another goroutine reads the connection now.
var errDeposed = errors.New("dist: the reading role was handed over")

// Reader role states in conn.inline, with the round in the bits above.
const (
	roleIdle    = 0
	roleInline  = 1 // running callbacks
	roleDeposed = 2 // the timer handed the role over
)

// sendToPid delivers a message of the peer to the local process to.
func (c *conn) sendToPid(from, to etf.Pid, msg etf.Term) error {
	route := func() error { return c.router.RouteSend(from, to, msg) }
	var p gen.Process
	if pl, ok := c.router.(processLookup); ok && string(to.Node) == c.nodename {
		if p = pl.ProcessByPid(to); p != nil && p.Self() != to {
			p = nil // an earlier incarnation's pid: ergo's router answers
		}
	}
	return c.deliverTo(toPid(to), p, msg, route)
}

// sendToName delivers a message of the peer to the local process
// registered as name.
func (c *conn) sendToName(from etf.Pid, name string, msg etf.Term) error {
	to := gen.ProcessID{Name: name, Node: c.nodename}
	route := func() error { return c.router.RouteSendReg(from, to, msg) }
	var p gen.Process
	if pl, ok := c.router.(processLookup); ok {
		p = pl.ProcessByName(name)
	}
	return c.deliverTo(toName(name), p, msg, route)
}

// sendToAlias delivers a message of the peer to the local alias to.
func (c *conn) sendToAlias(from etf.Pid, to etf.Alias, msg etf.Term) error {
	route := func() error { return c.router.RouteSendAlias(from, to, msg) }
	var p gen.Process
	if pl, ok := c.router.(processLookup); ok && string(to.Node) == c.nodename {
		p = pl.ProcessByAlias(to)
	}
	return c.deliverTo(toAlias(to), p, msg, route)
}

// deliverTo delivers msg to p (the receiver to names) inline when its
// behaviour takes it, else through route (ergo's router); p nil means
// route. A message for a full mailbox or inline queue waits in the
// connection's overflow (overflow.go), and so does every later one for the
// same process while its queue exists. It returns errDeposed when this
// goroutine lost the reading role while it ran a callback.
func (c *conn) deliverTo(to dest, p gen.Process, msg etf.Term, route func() error) error {
	var is inlineServer
	if p != nil {
		is, _ = p.Behavior().(inlineServer)
	}
	if is == nil {
		c.deliver(to, msg, func() error { return c.uncorkIfFull(route()) })
		return nil
	}
	self := p.Self()
	if !c.overflowing(self) {
		run, err := is.EnqueueRemote(self, msg, route)
		if run {
			return c.runInline(is)
		}
		if !errors.Is(err, lib.ErrProcessMailboxFull) {
			return nil
		}
		c.uncork()
	}
	// Behind the process's queue in the overflow. Its drainer enqueues the
	// message later, from its own goroutine, and runs the callbacks itself
	// when that makes it the holder; the reader does when deliver enqueued
	// it at once. handoff decides who, once: 0 while deliver runs on the
	// reader, 1 after, 2 when the reader must run them.
	var handoff atomic.Int32
	c.deliver(to, msg, func() error {
		run, err := is.EnqueueRemote(self, msg, route)
		if run && !handoff.CompareAndSwap(0, 2) {
			is.RunRemote()
		}
		return err
	})
	if !handoff.CompareAndSwap(0, 1) {
		return c.runInline(is)
	}
	return nil
}

// uncorkIfFull sends what the reader held back when it is about to wait
// for a full mailbox, and returns err.
func (c *conn) uncorkIfFull(err error) error {
	if errors.Is(err, lib.ErrProcessMailboxFull) {
		c.uncork()
	}
	return err
}

// runInline runs the process's waiting callbacks on the reader goroutine,
// under the watchdog's eye.
func (c *conn) runInline(is inlineServer) error {
	c.round++
	round := c.round // c.round is the next reader's once this one is deposed
	running := round<<2 | roleInline
	c.inline.Store(running)
	c.watch.busy()
	is.RunRemote()
	if c.inline.CompareAndSwap(running, round<<2|roleIdle) {
		return nil
	}
	return errDeposed
}

// takeOver hands the reading role (and the reader's state) to a new
// goroutine when the reader still runs the callbacks it ran at v.
func (c *conn) takeOver(v uint64) {
	if v&3 != roleInline || !c.inline.CompareAndSwap(v, v-roleInline+roleDeposed) {
		return
	}
	c.handoffs.Add(1)
	// What the deposed reader held back must not wait for its callback.
	c.corked.Store(false)
	c.wakeWriter()
	go c.follow()
}

// watchdog hands the reading role of a connection over when its reader
// has run callbacks for a watchPeriod or more. Its goroutine runs while
// readers run callbacks and ends after a period without any.
type watchdog struct {
	mu     sync.Mutex
	conns  map[*conn]struct{}
	runs   atomic.Uint64 // inline runs begun
	active atomic.Bool   // the goroutine runs
}

func (w *watchdog) add(c *conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conns == nil {
		w.conns = map[*conn]struct{}{}
	}
	w.conns[c] = struct{}{}
}

func (w *watchdog) remove(c *conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.conns, c)
}

// busy tells the watchdog a reader begins running callbacks; it starts the
// goroutine when it is not running.
func (w *watchdog) busy() {
	w.runs.Add(1)
	if !w.active.Load() && w.active.CompareAndSwap(false, true) {
		go w.run()
	}
}

func (w *watchdog) run() {
	last := w.runs.Load()
	for {
		time.Sleep(watchPeriod)
		running := w.scan()
		now := w.runs.Load()
		if now != last || running {
			last = now
			continue
		}
		w.active.Store(false)
		// A reader that began after the load above and saw active set
		// started nobody: look again.
		if w.runs.Load() == now || !w.active.CompareAndSwap(false, true) {
			return
		}
	}
}

// scan hands over the readers that run the same callbacks as at the last
// scan, and reports whether any reader runs callbacks.
func (w *watchdog) scan() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	running := false
	for c := range w.conns {
		v := c.inline.Load()
		if v&3 != roleInline {
			c.seen = v
			continue
		}
		running = true
		if v == c.seen {
			c.takeOver(v)
		}
		c.seen = v
	}
	return running
}

// lead runs the reader until the connection ends, then reports why to
// serve; a goroutine that handed the role over reports nothing.
func (c *conn) lead() {
	err := c.readLoop()
	if errors.Is(err, errDeposed) {
		return
	}
	c.readErr <- err
}
