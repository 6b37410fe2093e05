package dist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"
	"github.com/gonode/gonode/node/term"
)

// Control message operations (OTP erl_dist_protocol, "Protocol between
// connected nodes").
const (
	opLink                = 1
	opSend                = 2
	opExit                = 3
	opUnlink              = 4
	opNodeLink            = 5
	opRegSend             = 6
	opGroupLeader         = 7
	opExit2               = 8
	opSendTT              = 12
	opExitTT              = 13
	opRegSendTT           = 16
	opExit2TT             = 18
	opMonitorP            = 19
	opDemonitorP          = 20
	opMonitorPExit        = 21
	opSendSender          = 22
	opSendSenderTT        = 23
	opPayloadExit         = 24
	opPayloadExitTT       = 25
	opPayloadExit2        = 26
	opPayloadExit2TT      = 27
	opPayloadMonitorPExit = 28
	opSpawnRequest        = 29
	opSpawnRequestTT      = 30
	opSpawnReply          = 31
	opSpawnReplyTT        = 32
	opAliasSend           = 33
	opAliasSendTT         = 34
	opUnlinkID            = 35
	opUnlinkIDAck         = 36
	opAltactSigSend       = 37
)

// dropLogEvery is the least time between two log lines about dropped frames
// on one connection; the drops in between are counted in the next line.
const dropLogEvery = 10 * time.Second

type linkPair struct{ local, remote etf.Pid }

// conn is one connected peer. It implements ergo's node.ConnectionInterface.
type conn struct {
	cfg      ProtoConfig
	log      *slog.Logger
	obs      Observer
	ctx      context.Context
	nc       lib.NetReadWriter
	src      io.Reader
	nodename string
	peer     Peer
	flags    Flags
	router   node.CoreRouter

	// outgoing queue, drained by the writer goroutine
	mu     sync.Mutex
	space  *sync.Cond // signalled when queued bytes drop or the conn closes
	queue  []frameBuf
	queued int
	closed bool
	// wmu is held by whoever writes to the socket: the writer goroutine
	// for a batch, or a sender writing its frame itself (writeDirect).
	wmu  sync.Mutex
	raw  syscall.RawConn // the socket's, for writeDirect; nil: no direct writes
	sent atomic.Bool     // something was sent since the tick period began
	// corked: the reader has more messages buffered; frames queue without
	// waking the writer, and the reader writes them together before it
	// waits for the peer again (uncork).
	corked  atomic.Bool
	corkBuf []byte // uncork's, under wmu
	wake    chan struct{}
	done    chan struct{}
	once    sync.Once

	msgsIn, msgsOut, bytesIn, bytesOut atomic.Uint64
	dropped                            atomic.Uint64
	tickTimeouts                       atomic.Uint64

	unlinkID atomic.Uint64
	fragSeq  atomic.Uint64

	// suppress holds the links the reader is removing on the peer's request:
	// ergo's router then calls Unlink, which must not signal back.
	suppressMu sync.Mutex
	suppress   map[linkPair]int

	// monitors local processes set on the peer's processes (monitors.go)
	monMu    sync.Mutex
	monitors map[etf.Ref]*sentMonitor // sent, not ended
	ending   map[etf.Ref]*sentMonitor // exit received or connection ended
	monEnded bool                     // the connection ended its monitors
	monWait  sync.WaitGroup           // goroutines ending monitors

	// the peer's messages waiting for a full mailbox (overflow.go)
	overflow overflow

	// the reading role (inline.go): who reads, and its hand-off timer
	inline   atomic.Uint64 // round<<2 | roleIdle, roleInline or roleDeposed
	watch    *watchdog
	seen     uint64        // inline as the watchdog last saw it (its own)
	handoffs atomic.Uint64 // reading roles handed over
	readErr  chan error    // the error that ended the reader
	// follow is lead, for takeOver (through a field: the recvHandlers
	// table would otherwise refer to itself).
	follow func()

	// reader-only state (it passes with the reading role)
	fr          *frameReader
	asm         *assembler
	round       uint64 // of inline runs
	unknownOps  map[int64]bool
	lastDropLog time.Time
	dropsSince  int
	budget      term.DecodeBudget // of the message being decoded
}

var _ node.ConnectionInterface = (*conn)(nil)

func newConn(ctx context.Context, p *Proto, nc lib.NetReadWriter, src io.Reader, nodename string, peer Peer) *conn {
	c := &conn{
		cfg:        p.cfg,
		log:        p.log.With("peer", peer.Name),
		obs:        p.cfg.Observer,
		ctx:        ctx,
		nc:         nc,
		src:        src,
		nodename:   nodename,
		peer:       peer,
		flags:      peer.Negotiated(),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		suppress:   map[linkPair]int{},
		unknownOps: map[int64]bool{},
		readErr:    make(chan error, 1),
	}
	c.space = sync.NewCond(&c.mu)
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	c.fr = newFrameReader(src, readSlab, c.cfg.MaxFrameSize)
	c.asm = newAssembler(c.cfg.MaxFrameSize)
	c.asm.extend = c.fr.extend
	c.watch = &p.watch
	c.follow = c.lead
	return c
}

// serve runs the writer goroutine and the reader loop until the connection
// ends, then waits for the writer.
func (c *conn) serve(router node.CoreRouter) {
	c.router = router
	werr := make(chan error, 1)
	go func() { werr <- c.writeLoop() }()
	stop := context.AfterFunc(c.ctx, func() { c.shutdown(c.ctx.Err()) })
	c.watch.add(c)
	go c.lead()
	rerr := <-c.readErr
	c.watch.remove(c)
	stop()
	c.shutdown(rerr)
	wrerr := <-werr
	// Before ergo routes the node-down: it would miss a monitor not
	// recorded yet.
	c.endMonitors()
	err := rerr
	if isClosedErr(err) && wrerr != nil && !isClosedErr(wrerr) {
		err = wrerr
	}
	switch {
	case c.ctx.Err() != nil:
		c.log.Debug("connection closed: node stopping")
	case errors.Is(err, io.EOF) || isClosedErr(err):
		c.log.Info("connection closed by peer or locally", "err", err)
	default:
		c.log.Warn("connection closed", "err", err)
	}
	if c.obs != nil {
		c.obs.Disconnected(c.peer.Name, c.endReason(rerr, err))
	}
}

// endReason classifies the end of the connection: rerr is the error that
// ended the reader, err the one that ended the connection (the writer's
// when the reader only saw the connection closed).
func (c *conn) endReason(rerr, err error) DisconnectReason {
	switch {
	case c.ctx.Err() != nil:
		return DisconnectShutdown
	case isTimeout(rerr):
		return DisconnectTickTimeout
	case isClosedErr(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		// The peer closed or reset the connection, or this node closed it
		// (the node tells a disconnect it asked for apart itself).
		return DisconnectPeerClosed
	default:
		return DisconnectError
	}
}

func isClosedErr(err error) bool {
	return err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, ErrClosed)
}

// shutdown closes the network connection and releases blocked senders. It
// is idempotent.
func (c *conn) shutdown(cause error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		q := c.queue
		c.queue = nil
		c.queued = 0
		c.space.Broadcast()
		c.mu.Unlock()
		for _, fb := range q {
			releaseBuf(fb)
		}
		close(c.done)
		if cl, ok := c.nc.(io.Closer); ok {
			_ = cl.Close()
		}
	})
}

// enqueue hands one frame unit to the writer. Messages (data) wait while the
// queue is over MaxQueueBytes; control signals never wait. While the
// reader runs callbacks (inline.go), a frame that finds nothing queued and
// the writer idle is written by its sender (writeDirect): a reply from a
// callback the reader ran leaves without a goroutine hand-off.
func (c *conn) enqueue(fb frameBuf, data bool) error {
	c.mu.Lock()
	if data {
		for c.queued >= c.cfg.MaxQueueBytes && !c.closed {
			c.wakeWriter() // corked frames wait for no one
			c.space.Wait()
		}
	}
	if c.closed {
		c.mu.Unlock()
		releaseBuf(fb)
		return ErrClosed
	}
	corked := c.corked.Load()
	// Only while the reader runs callbacks: measured on a Go caller's
	// requests (BenchmarkDistVsBEAM call_go_to_beam), writing them from
	// the caller made the round trip slower than the writer's hand-off.
	inline := c.inline.Load()&3 == roleInline
	if inline && !corked && len(c.queue) == 0 && c.raw != nil && fb.segs == nil && c.wmu.TryLock() {
		c.mu.Unlock()
		c.writeDirect(fb.b, fb)
		return nil
	}
	wasEmpty := len(c.queue) == 0
	c.queue = append(c.queue, fb)
	c.queued += fb.size
	c.mu.Unlock()
	if wasEmpty && !corked {
		c.wakeWriter()
	}
	return nil
}

// uncork ends a cork: the reader writes what queued meanwhile itself, in
// one non-blocking write, when the frames are small and the writer idle;
// otherwise it wakes the writer.
func (c *conn) uncork() {
	if !c.corked.Swap(false) {
		return
	}
	if c.raw == nil || !c.wmu.TryLock() {
		c.wakeWriter()
		return
	}
	c.mu.Lock()
	n, msgs := 0, 0
	simple := len(c.queue) > 0
	for _, fb := range c.queue {
		if fb.segs != nil || n+len(fb.b) > scratchCap {
			simple = false
			break
		}
		n += len(fb.b)
		msgs += fb.msgs
	}
	if !simple {
		c.mu.Unlock()
		c.wmu.Unlock()
		c.wakeWriter()
		return
	}
	buf := c.corkBuf[:0]
	for i, fb := range c.queue {
		buf = append(buf, fb.b...)
		releaseBuf(fb)
		c.queue[i] = frameBuf{}
	}
	c.queue = c.queue[:0]
	c.queued = 0
	c.space.Broadcast()
	c.mu.Unlock()
	c.corkBuf = buf
	c.writeDirect(buf, frameBuf{size: n, msgs: msgs})
}

func (c *conn) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// writeDirect writes fb on the caller's goroutine, which holds wmu with
// nothing queued before fb, with one write that does not wait: what the
// socket does not take at once goes to the head of the queue, for the
// writer goroutine (a sender, possibly the reader running a callback, must
// never block on a peer that does not read). Frames queued meanwhile
// follow it: the writer takes wmu before it writes them.
//
// b is the bytes to write: fb's own, or, from uncork, a copy of several
// frames (fb then only counts them, and b belongs to the caller).
func (c *conn) writeDirect(b []byte, fb frameBuf) {
	n := 0
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			k, err := syscall.Write(int(fd), b[n:])
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				if err != syscall.EAGAIN {
					werr = err
				}
				break
			}
			n += k
		}
		return true
	})
	if err == nil {
		err = werr
	}
	if n > 0 {
		c.sent.Store(true)
		c.bytesOut.Add(uint64(n))
	}
	if n == len(b) {
		c.msgsOut.Add(uint64(fb.msgs))
		if c.obs != nil {
			c.obs.Traffic(c.peer.Name, DirectionOut, fb.msgs, fb.size)
		}
		releaseBuf(fb)
		c.wmu.Unlock()
		return
	}
	if err != nil {
		// The writer meets the error too, and ends the connection.
		c.log.Debug("direct write failed: left to the writer", "err", err)
	}
	rest := fb
	switch {
	case fb.b == nil || &b[0] != &fb.b[0]:
		// b is uncork's buffer: the queue gets a copy of what is left.
		rest = frameBuf{b: append([]byte(nil), b[n:]...), size: len(b) - n, msgs: fb.msgs}
	case n > 0:
		// The pooled buffer is not returned: its tail is queued.
		rest = frameBuf{b: fb.b[n:], size: len(fb.b) - n, msgs: fb.msgs}
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		releaseBuf(rest)
		c.wmu.Unlock()
		return
	}
	c.queue = append(c.queue, frameBuf{})
	copy(c.queue[1:], c.queue)
	c.queue[0] = rest
	c.queued += rest.size
	c.mu.Unlock()
	c.wmu.Unlock()
	c.wakeWriter()
}

// writeLoop is the writer goroutine. It gathers queued frames and writes
// them with vectored writes (small frames copied together, large ones
// written from their own memory), flushing when the queue is empty, so a
// burst goes out in few system calls; and it sends a tick when nothing was
// sent for NetTickTime/4. It holds wmu while it writes, so it and
// writeDirect never write at once.
func (c *conn) writeLoop() error {
	w := newVecWriter(c.nc)
	defer w.release()
	tick := time.NewTicker(c.cfg.NetTickTime / 4)
	defer tick.Stop()
	var batch []frameBuf
	for {
		c.wmu.Lock()
		closed, err := c.writeQueue(w, &batch)
		c.wmu.Unlock()
		if err != nil {
			return err
		}
		if closed {
			return nil
		}
		select {
		case <-c.wake:
		case <-c.done:
		case <-tick.C:
			if c.sent.Swap(false) {
				continue
			}
			c.wmu.Lock()
			err := w.add(frameBuf{b: tickFrame[:], size: len(tickFrame)})
			if err == nil {
				err = w.flush()
			}
			c.wmu.Unlock()
			if err != nil {
				return err
			}
			c.bytesOut.Add(4)
			if c.obs != nil {
				c.obs.Traffic(c.peer.Name, DirectionOut, 0, 4)
			}
		}
	}
}

// writeQueue writes what is queued until the queue is empty, then flushes
// (the caller holds wmu). closed reports that the connection is closed and
// nothing is left.
func (c *conn) writeQueue(w *vecWriter, batch *[]frameBuf) (closed bool, err error) {
	for {
		c.mu.Lock()
		*batch, c.queue = c.queue, (*batch)[:0]
		freed := c.queued
		c.queued = 0
		closed := c.closed
		if freed > 0 {
			c.space.Broadcast()
		}
		c.mu.Unlock()
		if len(*batch) == 0 {
			if closed {
				return true, nil
			}
			return false, w.flush()
		}
		msgs, n := 0, 0
		for i, fb := range *batch {
			(*batch)[i] = frameBuf{}
			if err := w.add(fb); err != nil {
				for _, rest := range (*batch)[i+1:] {
					releaseBuf(rest)
				}
				return false, err
			}
			msgs += fb.msgs
			n += fb.size
		}
		c.sent.Store(true)
		c.msgsOut.Add(uint64(msgs))
		c.bytesOut.Add(uint64(n))
		if c.obs != nil {
			c.obs.Traffic(c.peer.Name, DirectionOut, msgs, n)
		}
	}
}

// tickFrame is the empty frame sent as a tick.
var tickFrame = [4]byte{}

// Limits of one vectored write.
const (
	copyBelow  = 2048     // segments shorter than this are copied together
	scratchCap = 64 << 10 // bytes of small segments gathered per write
	maxVecs    = 512      // segments per write
	maxPending = 1 << 20  // bytes per write
)

// vecWriter gathers frames for vectored writes. Small segments are copied
// into a scratch buffer (consecutive ones form one segment); larger ones
// are written from the frame's own memory, so the frame is held until the
// write and released after it. The writer goroutine owns it.
type vecWriter struct {
	w       io.Writer
	scratch []byte
	open    int // start in scratch of the last segment of iov, or -1
	iov     net.Buffers
	held    []frameBuf
	pending int
}

func newVecWriter(w io.Writer) *vecWriter {
	// The scratch buffer grows as writes need it, up to scratchCap: a
	// connection that only ticks or answers now and then stays small.
	return &vecWriter{w: w, open: -1}
}

// add queues the frames of fb for the next write; it writes first when a
// limit would be exceeded. fb is released once its bytes are written.
func (v *vecWriter) add(fb frameBuf) error {
	kept := false
	if fb.segs == nil {
		k, err := v.seg(fb.b)
		if err != nil {
			releaseBuf(fb)
			return err
		}
		kept = k
	} else {
		for _, s := range fb.segs {
			k, err := v.seg(s)
			if err != nil {
				if !kept {
					releaseBuf(fb)
				}
				return err
			}
			kept = kept || k
		}
	}
	if kept {
		v.held = append(v.held, fb)
	} else {
		releaseBuf(fb)
	}
	if len(v.iov) >= maxVecs || v.pending >= maxPending {
		return v.flush()
	}
	return nil
}

// seg queues one segment and reports whether the write will read it from
// its own memory (the caller must then hold it until flush).
func (v *vecWriter) seg(p []byte) (bool, error) {
	if len(p) >= copyBelow {
		v.iov = append(v.iov, p)
		v.open = -1
		v.pending += len(p)
		return true, nil
	}
	if len(v.scratch)+len(p) > scratchCap {
		if err := v.flush(); err != nil {
			return false, err
		}
	}
	at := len(v.scratch)
	v.scratch = append(v.scratch, p...)
	if v.open >= 0 {
		v.iov[len(v.iov)-1] = v.scratch[v.open:len(v.scratch):len(v.scratch)]
	} else {
		v.open = at
		v.iov = append(v.iov, v.scratch[at:len(v.scratch):len(v.scratch)])
	}
	v.pending += len(p)
	return false, nil
}

// flush writes everything gathered (writev on a TCP connection; one write
// per segment on other connections) and releases the frames held for it.
func (v *vecWriter) flush() error {
	if len(v.iov) == 0 {
		return nil
	}
	bufs := v.iov // WriteTo consumes its receiver
	_, err := bufs.WriteTo(v.w)
	clear(v.iov)
	v.iov = v.iov[:0]
	v.scratch = v.scratch[:0]
	v.open = -1
	v.pending = 0
	v.release()
	return err
}

// release returns the held frames to their pools.
func (v *vecWriter) release() {
	for i, fb := range v.held {
		releaseBuf(fb)
		v.held[i] = frameBuf{}
	}
	v.held = v.held[:0]
}

// isTimeout reports a read deadline expiry.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// --- node.ConnectionInterface: messages ---

// Send sends message to the remote process to.
func (c *conn) Send(from gen.Process, to etf.Pid, message etf.Term) error {
	if c.flags.Has(FlagSendSender) && from != nil {
		return c.sendMessage(etf.Tuple{int64(opSendSender), from.Self(), to}, message)
	}
	return c.sendMessage(etf.Tuple{int64(opSend), etf.Atom(""), to}, message)
}

// SendReg sends message to the process registered as to.Name on the peer.
func (c *conn) SendReg(from gen.Process, to gen.ProcessID, message etf.Term) error {
	var self etf.Pid
	if from != nil {
		self = from.Self()
	}
	return c.sendMessage(etf.Tuple{int64(opRegSend), self, etf.Atom(""), etf.Atom(to.Name)}, message)
}

// SendAlias sends message to the process alias to: as ALTACT_SIG_SEND when
// the peer negotiated ALTACT_SIG (what OTP 28+ nodes send each other; OTP 28
// deprecates ALIAS_SEND and schedules it for removal in OTP 30), else as
// ALIAS_SEND.
func (c *conn) SendAlias(from gen.Process, to etf.Alias, message etf.Term) error {
	var self etf.Pid
	if from != nil {
		self = from.Self()
	}
	switch {
	case c.flags.Has(FlagAltactSig):
		return c.sendMessage(etf.Tuple{int64(opAltactSigSend), int64(altactAlias), self, etf.Ref(to)}, message)
	case c.flags.Has(FlagAlias):
		return c.sendMessage(etf.Tuple{int64(opAliasSend), self, etf.Ref(to)}, message)
	}
	return lib.ErrPeerUnsupported
}

// --- links ---

// Link asks the peer to link remote with local.
func (c *conn) Link(local, remote etf.Pid) error {
	return c.sendSignal(etf.Tuple{int64(opLink), local, remote})
}

// Unlink removes the link between local and remote on the peer: UNLINK_ID
// when negotiated (the old UNLINK kills OTP 26+ connections), UNLINK
// otherwise. It sends nothing when the peer itself asked for the unlink.
func (c *conn) Unlink(local, remote etf.Pid) error {
	key := linkPair{local, remote}
	c.suppressMu.Lock()
	if n := c.suppress[key]; n > 0 {
		if n == 1 {
			delete(c.suppress, key)
		} else {
			c.suppress[key] = n - 1
		}
		c.suppressMu.Unlock()
		return nil
	}
	c.suppressMu.Unlock()
	if c.flags.Has(FlagUnlinkID) {
		id := c.unlinkID.Add(1)
		return c.sendSignal(etf.Tuple{int64(opUnlinkID), int64(id), local, remote})
	}
	return c.sendSignal(etf.Tuple{int64(opUnlink), local, remote})
}

// LinkExit tells the remote process to, linked with the local process
// terminated, that terminated exited with reason.
func (c *conn) LinkExit(to, terminated etf.Pid, reason string) error {
	return c.sendExit(opExit, opPayloadExit, reasonTerm(reason), terminated, to)
}

// --- monitors ---

// Monitor makes local monitor the remote process.
func (c *conn) Monitor(local, remote etf.Pid, ref etf.Ref) error {
	return c.sendMonitor(ref, &sentMonitor{by: local, pid: remote}, remote)
}

// Demonitor removes the monitor ref of local on remote.
func (c *conn) Demonitor(local, remote etf.Pid, ref etf.Ref) error {
	if c.monitorGone(ref) {
		return nil
	}
	return c.sendSignal(etf.Tuple{int64(opDemonitorP), local, remote, ref})
}

// MonitorExit tells the remote monitoring process to that the local process
// terminated exited with reason.
func (c *conn) MonitorExit(to, terminated etf.Pid, reason string, ref etf.Ref) error {
	return c.monitorExit(to, terminated, reason, ref)
}

// MonitorReg makes local monitor the process registered as remote.Name on
// the peer.
func (c *conn) MonitorReg(local etf.Pid, remote gen.ProcessID, ref etf.Ref) error {
	return c.sendMonitor(ref, &sentMonitor{by: local, name: remote.Name}, etf.Atom(remote.Name))
}

// DemonitorReg removes the monitor ref of local on the registered name.
func (c *conn) DemonitorReg(local etf.Pid, remote gen.ProcessID, ref etf.Ref) error {
	if c.monitorGone(ref) {
		return nil
	}
	return c.sendSignal(etf.Tuple{int64(opDemonitorP), local, etf.Atom(remote.Name), ref})
}

// MonitorExitReg tells the remote process to that the process registered
// as terminated.Name here exited with reason.
func (c *conn) MonitorExitReg(to etf.Pid, terminated gen.ProcessID, reason string, ref etf.Ref) error {
	return c.monitorExit(to, etf.Atom(terminated.Name), reason, ref)
}

func (c *conn) monitorExit(to etf.Pid, from etf.Term, reason string, ref etf.Ref) error {
	return c.sendExit(opMonitorPExit, opPayloadMonitorPExit, reasonTerm(reason), from, to, ref)
}

// --- remote spawn ---

// SpawnRequest asks the peer to spawn behaviorName:Function(args...) for
// request.From.
func (c *conn) SpawnRequest(nodeName string, behaviorName string, request gen.RemoteSpawnRequest, args ...etf.Term) error {
	if !c.flags.Has(FlagSpawn) {
		return lib.ErrPeerUnsupported
	}
	opts := etf.List{}
	if request.Options.Name != "" {
		opts = append(opts, etf.Tuple{etf.Atom("name"), etf.Atom(request.Options.Name)})
	}
	if request.Options.Link {
		opts = append(opts, etf.Atom("link"))
	}
	if request.Options.Monitor != (etf.Ref{}) {
		opts = append(opts, etf.Atom("monitor"))
	}
	mfa := etf.Tuple{etf.Atom(behaviorName), etf.Atom(request.Options.Function), int64(len(args))}
	argList := etf.List(args)
	if argList == nil {
		argList = etf.List{}
	}
	return c.sendSignalWith(etf.Tuple{int64(opSpawnRequest), request.Ref, request.From, request.From, mfa, opts}, argList)
}

// SpawnReply answers a spawn request of the peer with the spawned pid.
func (c *conn) SpawnReply(to etf.Pid, ref etf.Ref, spawned etf.Pid) error {
	return c.sendSignal(etf.Tuple{int64(opSpawnReply), ref, to, int64(0), spawned})
}

// SpawnReplyError answers a spawn request of the peer with a failure.
func (c *conn) SpawnReplyError(to etf.Pid, ref etf.Ref, err error) error {
	return c.sendSignal(etf.Tuple{int64(opSpawnReply), ref, to, int64(0), spawnErrorAtom(err)})
}

// spawnErrorAtom maps a spawn failure to the atoms OTP's spawn_request
// reports.
func spawnErrorAtom(err error) etf.Atom {
	switch {
	case err == nil:
		return "badarg"
	case errors.Is(err, lib.ErrBehaviorUnknown), errors.Is(err, lib.ErrBehaviorGroupUnknown),
		errors.Is(err, lib.ErrUnsupported), errors.Is(err, lib.ErrPeerUnsupported):
		return "notsup"
	case errors.Is(err, lib.ErrTaken):
		return "badopt"
	default:
		return "system_limit"
	}
}

// --- proxies: not part of the Erlang distribution ---

// ProxyConnectRequest is not supported: proxies are an ergo-only feature.
func (c *conn) ProxyConnectRequest(node.ProxyConnectRequest) error { return lib.ErrUnsupported }

// ProxyConnectReply is not supported.
func (c *conn) ProxyConnectReply(node.ProxyConnectReply) error { return lib.ErrUnsupported }

// ProxyConnectCancel is not supported.
func (c *conn) ProxyConnectCancel(node.ProxyConnectCancel) error { return lib.ErrUnsupported }

// ProxyDisconnect is not supported.
func (c *conn) ProxyDisconnect(node.ProxyDisconnect) error { return lib.ErrUnsupported }

// ProxyRegisterSession is not supported.
func (c *conn) ProxyRegisterSession(node.ProxySession) error { return lib.ErrUnsupported }

// ProxyUnregisterSession is not supported.
func (c *conn) ProxyUnregisterSession(string) error { return lib.ErrUnsupported }

// ProxyPacket is not supported.
func (c *conn) ProxyPacket(*lib.Buffer) error { return lib.ErrUnsupported }

// --- information ---

// Creation returns the peer's creation.
func (c *conn) Creation() uint32 { return c.peer.Creation }

// Stats returns the connection's counters.
func (c *conn) Stats() node.NetworkStats {
	return node.NetworkStats{
		NodeName:    c.peer.Name,
		BytesIn:     c.bytesIn.Load(),
		BytesOut:    c.bytesOut.Load(),
		MessagesIn:  c.msgsIn.Load(),
		MessagesOut: c.msgsOut.Load(),
	}
}

// String names the connection in logs.
func (c *conn) String() string { return fmt.Sprintf("dist connection to %s", c.peer.Name) }
