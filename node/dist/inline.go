package dist

import (
	"errors"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
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
//     messages waiting: when one has run for inlineHandoff, another
//     goroutine takes the reading role over (leader/follower) and the one
//     in the callback ends once it returns. The reader's state (frame
//     reader, assembler, decode budget) passes with the role.

// inlineHandoff is how long a callback run by the reader may run before
// another goroutine takes over reading.
const inlineHandoff = 200 * time.Microsecond

// inlineServer is a process behaviour that lets a connection reader queue
// messages for it and run its callbacks (genserver.Server implements it).
// EnqueueRemote calls route instead when the process does not take inline
// delivery (yet); run reports that the caller must call RunRemote.
type inlineServer interface {
	EnqueueRemote(to etf.Pid, message etf.Term, route func() error) (run bool, err error)
	RunRemote()
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
	return c.deliverTo(p, msg, route)
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
	return c.deliverTo(p, msg, route)
}

// sendToAlias delivers a message of the peer to the local alias to.
func (c *conn) sendToAlias(from etf.Pid, to etf.Alias, msg etf.Term) error {
	route := func() error { return c.router.RouteSendAlias(from, to, msg) }
	var p gen.Process
	if pl, ok := c.router.(processLookup); ok && string(to.Node) == c.nodename {
		p = pl.ProcessByAlias(to)
	}
	return c.deliverTo(p, msg, route)
}

// deliverTo delivers msg to p inline when its behaviour takes it, else
// through route (ergo's router); p nil means route. It returns errDeposed
// when this goroutine lost the reading role while it ran a callback.
func (c *conn) deliverTo(p gen.Process, msg etf.Term, route func() error) error {
	var is inlineServer
	if p != nil {
		is, _ = p.Behavior().(inlineServer)
	}
	if is == nil {
		c.deliver(route)
		return nil
	}
	self := p.Self()
	run := false
	c.deliver(func() error {
		var err error
		run, err = is.EnqueueRemote(self, msg, route)
		return err
	})
	if !run {
		return nil
	}
	return c.runInline(is)
}

// runInline runs the process's waiting callbacks on the reader goroutine,
// with the hand-off timer armed.
func (c *conn) runInline(is inlineServer) error {
	c.round++
	running := c.round<<2 | roleInline
	c.inline.Store(running)
	c.handoff.Reset(inlineHandoff)
	is.RunRemote()
	c.handoff.Stop()
	if c.inline.CompareAndSwap(running, c.round<<2|roleIdle) {
		return nil
	}
	return errDeposed
}

// takeOver runs when a callback run by the reader reaches inlineHandoff: a
// new goroutine takes the reading role (and the reader's state) over. A
// timer that fires late, into a later round, hands over early: harmless.
func (c *conn) takeOver() {
	v := c.inline.Load()
	if v&3 != roleInline || !c.inline.CompareAndSwap(v, v-roleInline+roleDeposed) {
		return
	}
	c.handoffs.Add(1)
	go c.lead()
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
