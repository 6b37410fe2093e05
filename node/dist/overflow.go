package dist

import (
	"errors"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
)

// A connection's overflow holds the peer's messages for local processes
// whose mailbox was full, so that the reader goes on delivering to the
// others (a slow receiver does not hold up the whole connection) and no
// message is dropped because a mailbox is small.
//
//   - The reader routes a message straight into the receiver's mailbox. When
//     the mailbox is full, the message starts a queue for that process, and
//     a drainer goroutine moves the queue into the mailbox, in order, as the
//     process makes room.
//   - While a process has a queue, every later message to it from this
//     connection joins the queue, so the peer's messages to it keep their
//     order (Erlang's per-pair ordering).
//   - The queues of a connection hold at most ProtoConfig.MaxOverflowBytes
//     (an estimate of the messages' Go memory, see termSize). A message that
//     would go over waits, and with it the reader: the peer's sender is held
//     back by TCP, as a BEAM process is suspended on a busy distribution
//     port. A message larger than the bound alone waits for the queues to
//     empty.
//   - A process that is gone frees its queue (its messages are dropped, as
//     messages to a dead process are). After the connection ended, a queue
//     whose process took nothing from it for mailboxFullWait is dropped,
//     logged and counted (Observer.MessageDropped), so a stuck process does
//     not keep a closed connection's memory.
//
// Exit signals and links are routed at once, as before: ergo's processes
// take exit signals from a channel of their own, not in mailbox order.
type overflow struct {
	mu     sync.Mutex
	queues map[etf.Pid]*pending
	bytes  int64 // held by all queues
	// active counts the queues, so that the reader checks for none without
	// the lock.
	active atomic.Int32
	// freed is signalled when a drainer freed bytes.
	freed chan struct{}
	// peak is the most bytes the queues held at once (tests, debugging).
	peak int64
	// lastFullLog is when the connection last logged that the overflow
	// was full (at most once per dropLogEvery); fullSince counts the waits
	// since.
	lastFullLog time.Time
	fullSince   int
}

// pending is one process's queue.
type pending struct {
	items []overflowItem
	head  int
	// the process and its mailbox, looked up once by its drainer
	// (queueLen); the drainer's own.
	proc    gen.Process
	mailbox <-chan gen.ProcessMailboxMessage
}

type overflowItem struct {
	route func() error
	size  int64
}

// destKind says how a delivery names its receiver.
type destKind uint8

const (
	destPid destKind = iota
	destName
	destAlias
)

// dest is the local receiver of a delivery as the peer named it: a pid, a
// registered name or an alias.
type dest struct {
	kind  destKind
	pid   etf.Pid
	name  string
	alias etf.Alias
}

func toPid(p etf.Pid) dest        { return dest{kind: destPid, pid: p} }
func toName(name string) dest     { return dest{kind: destName, name: name} }
func toAlias(a etf.Alias) dest    { return dest{kind: destAlias, alias: a} }
func (o *overflow) holding() bool { return o.active.Load() > 0 }

// Pauses of a drainer between two attempts at a full mailbox: ergo tells
// no one when a mailbox has room again. The first is short, for a process
// that is busy with one message; the longest bounds the wake-ups of a
// drainer whose process is stuck.
const (
	drainPauseMin = 20 * time.Microsecond
	drainPauseMax = 2 * time.Millisecond
)

// overflowItemOverhead is what a queued message costs beyond its term:
// the item, the route closure and what it captures.
const overflowItemOverhead = 128

// overflowing reports whether local process pid has messages from this
// connection waiting in the overflow: a delivery to it that does not go
// through deliver would overtake them.
func (c *conn) overflowing(pid etf.Pid) bool {
	o := &c.overflow
	if !o.holding() {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.queues[pid] != nil
}

// resolve finds the pid of a delivery's receiver, false when it names no
// local process.
func (c *conn) resolve(to dest) (etf.Pid, bool) {
	if to.kind == destPid {
		return to.pid, string(to.pid.Node) == c.nodename
	}
	f, ok := c.router.(procLookup)
	if !ok {
		return etf.Pid{}, false
	}
	var p gen.Process
	if to.kind == destName {
		p = f.ProcessByName(to.name)
	} else {
		p = f.ProcessByAlias(to.alias)
	}
	if p == nil {
		return etf.Pid{}, false
	}
	return p.Self(), true
}

// overflowAppend appends a delivery to pid's queue. With start it creates the queue
// (and its drainer) when there is none; without, it queues only behind an
// existing queue and reports whether it did. It waits while the overflow is
// over its bound, and gives up (reporting the message dropped) when the
// connection ends meanwhile.
func (c *conn) overflowAppend(pid etf.Pid, msg etf.Term, route func() error, start bool) bool {
	o := &c.overflow
	limit := int64(c.cfg.maxOverflowBytes())
	size := overflowItemOverhead + termSize(msg, limit)
	o.mu.Lock()
	if o.queues == nil { // the zero overflow, made on first use
		o.queues, o.freed = map[etf.Pid]*pending{}, make(chan struct{}, 1)
	}
	for {
		q := o.queues[pid]
		if q == nil && !start {
			o.mu.Unlock()
			return false
		}
		if o.bytes == 0 || o.bytes+size <= limit {
			if q == nil {
				q = &pending{}
				o.queues[pid] = q
				o.active.Add(1)
				go c.drain(pid, q)
			}
			q.items = append(q.items, overflowItem{route: route, size: size})
			o.bytes += size
			o.peak = max(o.peak, o.bytes)
			o.mu.Unlock()
			return true
		}
		o.fullSince++
		var logWait bool
		if now := time.Now(); now.Sub(o.lastFullLog) >= dropLogEvery {
			logWait, o.lastFullLog = true, now
		}
		held, waits := o.bytes, o.fullSince
		if logWait {
			o.fullSince = 0
		}
		o.mu.Unlock()
		if logWait {
			c.log.Warn("overflow full: reading from the peer paused until a receiver makes room",
				"overflow_bytes", held, "max_overflow_bytes", limit, "waits", waits)
		}
		select {
		case <-o.freed:
		case <-c.done:
			c.log.Warn("message dropped: the connection ended while it waited for the overflow to have room")
			if c.obs != nil {
				c.obs.MessageDropped(c.peer.Name)
			}
			return true
		}
		o.mu.Lock()
	}
}

// drain moves pid's queue into its mailbox, in order, until the queue is
// empty, the process is gone, or the connection ended and the process took
// nothing for mailboxFullWait.
func (c *conn) drain(pid etf.Pid, q *pending) {
	o := &c.overflow
	pause := drainPauseMin
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	progress := time.Now()
	for {
		o.mu.Lock()
		it := q.items[q.head]
		o.mu.Unlock()
		err := it.route()
		if errors.Is(err, lib.ErrProcessMailboxFull) {
			// Wait until the process took a message before trying again:
			// each attempt at a full mailbox costs a warning line of ergo's.
			level, known := c.queueLen(pid, q)
			if known && level < 0 {
				// Not alive, though still registered: it takes nothing
				// more, and its queue goes as a dead process's messages do.
				err = lib.ErrProcessTerminated
			} else {
				// Refill once the process took half of its mailbox: a
				// batch per wake-up, while the other half keeps it busy.
				// The pause grows only while it takes nothing.
				last := level
				for {
					select {
					case <-c.done:
						if time.Since(progress) > mailboxFullWait {
							c.discard(pid, q)
							return
						}
					default:
					}
					timer.Reset(pause)
					<-timer.C
					now, _ := c.queueLen(pid, q)
					if !known || now <= level/2 {
						break
					}
					if now >= last {
						pause = min(2*pause, drainPauseMax)
					} else {
						pause = drainPauseMin
					}
					last = now
				}
				continue
			}
		}
		pause, progress = drainPauseMin, time.Now()
		gone := errors.Is(err, lib.ErrProcessUnknown) || errors.Is(err, lib.ErrProcessTerminated)
		o.mu.Lock()
		q.items[q.head] = overflowItem{}
		q.head++
		o.bytes -= it.size
		if gone {
			for _, rest := range q.items[q.head:] {
				o.bytes -= rest.size
			}
			q.head = len(q.items)
		}
		done := q.head == len(q.items)
		if done {
			delete(o.queues, pid)
			o.active.Add(-1)
		} else if q.head >= 64 && 2*q.head >= len(q.items) {
			n := copy(q.items, q.items[q.head:])
			clear(q.items[n:])
			q.items, q.head = q.items[:n], 0
		}
		o.mu.Unlock()
		select {
		case o.freed <- struct{}{}:
		default:
		}
		if done {
			return
		}
	}
}

// queueLen returns the number of messages waiting for local process pid
// (its mailbox, and an inline server's own queue), -1 when there is no such
// live process; known is false when the router cannot tell. The process
// and its mailbox are looked up once per queue (q.proc, q.mailbox): not
// through the process's Info, which reads ergo's monitor tables without
// their lock and can crash the node ("concurrent map iteration and map
// write") while the process is monitored or demonitored meanwhile.
func (c *conn) queueLen(pid etf.Pid, q *pending) (n int, known bool) {
	if q.proc == nil {
		f, ok := c.router.(processFinder)
		if !ok {
			return 0, false
		}
		p := f.ProcessByPid(pid)
		if p == nil {
			return -1, true
		}
		q.proc, q.mailbox = p, p.ProcessChannels().Mailbox
	}
	if !q.proc.IsAlive() {
		return -1, true
	}
	n = len(q.mailbox)
	// An inline server's messages wait in its own queue (inline.go).
	if is, ok := q.proc.Behavior().(inlineServer); ok {
		if queued, inline := is.InboxLen(pid); inline {
			n += queued
		}
	}
	return n, true
}

// discard drops what is left of pid's queue, once the connection has ended
// and the process took nothing from it for mailboxFullWait.
func (c *conn) discard(pid etf.Pid, q *pending) {
	o := &c.overflow
	o.mu.Lock()
	n := len(q.items) - q.head
	for _, it := range q.items[q.head:] {
		o.bytes -= it.size
	}
	q.items, q.head = nil, 0
	delete(o.queues, pid)
	o.active.Add(-1)
	o.mu.Unlock()
	c.log.Warn("messages dropped: the connection ended and the receiver's mailbox stayed full", "dropped", n, "waited", mailboxFullWait, "to", pid.String())
	if c.obs != nil {
		for range n {
			c.obs.MessageDropped(c.peer.Name)
		}
	}
}

// termSize estimates the Go memory of a decoded term, in bytes, stopping
// once it passes limit. The decoder bounded the term (its decode budget and
// depth), so the walk is bounded too.
func termSize(t etf.Term, limit int64) int64 {
	var n int64
	var walk func(etf.Term)
	walk = func(t etf.Term) {
		if n > limit {
			return
		}
		n += 16 // the interface
		switch v := t.(type) {
		case string:
			n += int64(len(v))
		case etf.String:
			n += int64(len(v))
		case etf.Charlist:
			n += int64(len(v))
		case etf.Atom:
			n += int64(len(v))
		case []byte:
			n += 24 + int64(cap(v))
		case *big.Int:
			n += 32 + int64(len(v.Bits()))*8
		case etf.List:
			n += 24
			for _, e := range v {
				walk(e)
			}
		case etf.Tuple:
			n += 24
			for _, e := range v {
				walk(e)
			}
		case etf.Map:
			n += 48
			for k, e := range v {
				n += 16
				walk(k)
				walk(e)
			}
		case etf.ListImproper:
			n += 24
			for _, e := range v {
				walk(e)
			}
		case etf.Pid, etf.Ref, etf.Alias, etf.Port:
			n += 48
		case etf.Export, etf.Function:
			n += 96
		}
	}
	walk(t)
	return n
}
