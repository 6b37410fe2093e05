package genserver

import (
	"sync/atomic"
	"unsafe"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
)

// Inline delivery: a connection reader of node/dist that decoded a message
// for a Server runs the callback itself when the process is idle, instead
// of handing the message to the process's loop goroutine through ergo's
// mailbox (a goroutine switch per message, and another back). The rules:
//
//   - run (a mutex) is held by whichever goroutine runs callbacks; one
//     callback at a time, and Process's fields belong to the holder.
//   - Everything waits in one inbox, in arrival order: what readers queue
//     (EnqueueRemote) and what the loop goroutine takes from ergo's
//     channels. Whoever holds run takes from it, so a message queued while
//     a callback ran is never overtaken by a later one from the same
//     sender: a reader routes the messages of a connection one after the
//     other, and each goes to the inbox's tail.
//   - Until the loop runs (open) and after it ended (close) readers route
//     through ergo's mailbox; the loop's first act is to move what is
//     already there into the inbox, under the inbox lock, so nothing routed
//     that way is overtaken either.
//   - The inbox holds at most the process's mailbox size from readers:
//     beyond it EnqueueRemote answers as a full mailbox does, and the
//     reader waits and retries (backpressure), as for ergo's mailbox.
//   - Messages ergo itself puts in the mailbox for a connection (a linked
//     process's EXIT when trapping exits, a monitor's DOWN) come from a
//     process that has ended, so nothing from it can follow them.

// bind records sp as the process running s, for EnqueueRemote. A Server
// value spawned again while a process still runs it leaves that one bound:
// the new process gets its messages through ergo's mailbox (EnqueueRemote
// compares pids). The binding only changes from a process that ended, so
// it stays put while a reader holds the bound process's run.
func (s *Server) bind(sp *Process) {
	for {
		old := atomic.LoadPointer(&s.running)
		if old != nil && !(*Process)(old).closed() {
			return
		}
		if atomic.CompareAndSwapPointer(&s.running, old, unsafe.Pointer(sp)) {
			return
		}
	}
}

// open makes the inbox take messages from readers. It runs on the loop
// goroutine before anything else: what ergo's mailbox already holds moves
// to the inbox first.
func (sp *Process) open() {
	sp.qmu.Lock()
	defer sp.qmu.Unlock()
	for {
		select {
		case m := <-sp.channels.Mailbox:
			sp.inbox = append(sp.inbox, pendingItem{mail: &m})
		default:
			sp.ready = true
			return
		}
	}
}

// close makes readers route through ergo again; the process is ending.
func (sp *Process) close() {
	sp.qmu.Lock()
	sp.dead = true
	sp.qmu.Unlock()
}

func (sp *Process) closed() bool {
	sp.qmu.Lock()
	defer sp.qmu.Unlock()
	return sp.dead
}

// push appends it to the inbox; false when the inbox is full and force is
// not set.
func (sp *Process) push(it pendingItem, force bool) bool {
	sp.qmu.Lock()
	defer sp.qmu.Unlock()
	if !force && len(sp.inbox) >= sp.limit() {
		return false
	}
	sp.inbox = append(sp.inbox, it)
	return true
}

// limit is the most the inbox holds before senders wait: the mailbox size
// the process was spawned with.
func (sp *Process) limit() int {
	return max(cap(sp.channels.Mailbox), 1)
}

// takeInbox empties the inbox and returns what it held (holder only).
func (sp *Process) takeInbox() []pendingItem {
	sp.qmu.Lock()
	defer sp.qmu.Unlock()
	items := sp.inbox
	sp.inbox = nil
	return items
}

// next returns the next item to run (holder only): what a Call kept first,
// then the inbox.
func (sp *Process) next() (pendingItem, bool) {
	if len(sp.pending) > 0 {
		it := sp.pending[0]
		sp.pending[0] = pendingItem{}
		sp.pending = sp.pending[1:]
		return it, true
	}
	sp.qmu.Lock()
	defer sp.qmu.Unlock()
	if len(sp.inbox) == 0 {
		return pendingItem{}, false
	}
	it := sp.inbox[0]
	sp.inbox[0] = pendingItem{}
	sp.inbox = sp.inbox[1:]
	if len(sp.inbox) == 0 {
		sp.inbox = nil
	}
	return it, true
}

// drain runs callbacks until nothing waits or the process must stop
// (holder only).
func (sp *Process) drain() {
	for !sp.stopping {
		it, ok := sp.next()
		if !ok {
			return
		}
		if reason, stop := sp.dispatch(it); stop {
			sp.stopping, sp.stopReason = true, reason
		}
	}
}

// release gives run up, and takes it back to run what was queued by a
// goroutine that found it held meanwhile. When a callback stopped the
// process, it tells the loop goroutine instead.
func (sp *Process) release() {
	for {
		if sp.stopping {
			sp.stopFlag.Store(true)
			sp.run.Unlock()
			sp.nudge(sp.wake)
			return
		}
		sp.run.Unlock()
		sp.qmu.Lock()
		waiting := len(sp.inbox) > 0
		sp.qmu.Unlock()
		if !waiting || !sp.run.TryLock() {
			return
		}
		sp.drain()
	}
}

func (sp *Process) nudge(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// EnqueueRemote is for node/dist's connection readers, not for
// applications: it queues message, received from the network for the
// process to, for the process running s. When the process is not running
// s inline delivery (not started yet, ended, or the value spawned twice)
// it calls route instead, which hands the message to ergo's router. run
// reports that the caller now holds the right to run callbacks and must
// call RunRemote. The error is route's, or lib.ErrProcessMailboxFull when
// the inbox is full (the caller waits and retries, as for ergo's mailbox).
func (s *Server) EnqueueRemote(to etf.Pid, message etf.Term, route func() error) (run bool, err error) {
	p := atomic.LoadPointer(&s.running)
	if p == nil {
		return false, route()
	}
	sp := (*Process)(p)
	if sp.Self() != to {
		return false, route()
	}
	sp.qmu.Lock()
	if !sp.ready || sp.dead || sp.stopFlag.Load() {
		// Routed under the inbox lock: open moves it to the inbox before
		// anything this reader queues later.
		err := route()
		sp.qmu.Unlock()
		return false, err
	}
	if len(sp.inbox) >= sp.limit() {
		sp.qmu.Unlock()
		return false, lib.ErrProcessMailboxFull
	}
	sp.inbox = append(sp.inbox, pendingItem{mail: &gen.ProcessMailboxMessage{Message: message}})
	sp.qmu.Unlock()
	if sp.run.TryLock() {
		return true, nil
	}
	// The holder runs it, or takes it in a Call's wait.
	sp.nudge(sp.kick)
	return false, nil
}

// InboxLen is for node/dist's connection readers, not for applications:
// how many messages wait in the inbox of the process to, false when that
// process does not take inline delivery from s (its messages then wait in
// ergo's mailbox).
func (s *Server) InboxLen(to etf.Pid) (int, bool) {
	p := atomic.LoadPointer(&s.running)
	if p == nil {
		return 0, false
	}
	sp := (*Process)(p)
	if sp.Self() != to {
		return 0, false
	}
	sp.qmu.Lock()
	defer sp.qmu.Unlock()
	return len(sp.inbox), sp.ready && !sp.dead
}

// RunRemote runs what waits for the process of s, on the caller's
// goroutine, after EnqueueRemote returned run; then it gives the right to
// run callbacks up.
func (s *Server) RunRemote() {
	sp := (*Process)(atomic.LoadPointer(&s.running))
	sp.drain()
	sp.release()
}

// runHere runs what waits, on the loop goroutine, when no other goroutine
// does; it reports that the process must stop (run then stays held).
func (sp *Process) runHere() bool {
	if !sp.run.TryLock() {
		return false
	}
	sp.onLoop = true
	sp.drain()
	sp.onLoop = false
	if sp.stopping {
		return true
	}
	sp.release()
	return false
}
