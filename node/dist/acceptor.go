package dist

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ergo-services/ergo/node"
)

// Incoming connections: ergo accepts them in a loop that runs each handshake
// to its end before it accepts the next one, so one peer that says nothing
// would hold up every other. Serve puts a listener of ours in front of it:
// Serve accepts on the distribution port, runs every incoming handshake in a
// goroutine of its own under per-message deadlines, bounds how many may be
// under way (in all and per source address) and throttles addresses whose
// handshakes keep failing. Only a completed handshake reaches ergo: Serve
// then opens a connection to ergo's listener on the loopback interface, and
// when ergo's loop calls Accept for it, Accept answers at once with the
// details of the completed handshake, whose peer connection the Proto then
// serves (see Proto.Init). ergo holds the loopback connection as the peer's
// connection: when ergo closes it (Disconnect, a connection that lost the
// race to register, the node stopping) the peer connection is closed too.

// Defaults of the incoming-handshake bounds (HandshakeConfig).
const (
	// DefaultStepTimeout: OTP's acceptor gives a whole handshake
	// net_setuptime (7 s); a peer that is not a stranger sends each of its
	// messages within milliseconds, so 2 s per message costs a loaded peer
	// nothing and lets a silent connection go five times sooner.
	DefaultStepTimeout = 2 * time.Second
	// DefaultMaxPending: far more than a cluster ever connects at once (a
	// whole cluster restarting is one handshake per peer), few enough that
	// the goroutines and buffers of half-open handshakes stay under a few
	// megabytes.
	DefaultMaxPending = 256
	// DefaultMaxPendingPerAddr: a node opens one connection to a peer at a
	// time, so even a host running several nodes needs few; one address
	// cannot take every slot.
	DefaultMaxPendingPerAddr = 16
	// DefaultFailureBurst and DefaultFailureInterval: an address may fail 10
	// handshakes in a row (a peer with a stale cookie retrying, a rolling
	// restart), then one per second; handshakes that succeed cost nothing.
	// A cookie guesser gets 1 guess a second instead of thousands.
	DefaultFailureBurst    = 10
	DefaultFailureInterval = time.Second
)

// maxTrackedAddrs bounds the source addresses whose failures are
// remembered; beyond it the address with the oldest failure is forgotten.
const maxTrackedAddrs = 4096

// handoffWait bounds how long Accept waits for the completed handshake of a
// loopback connection to be filed. Serve files it right after its dial
// returns, so a wait is only ever a few scheduler rounds; a connection to
// ergo's loopback listener from anyone else is refused after it.
const handoffWait = time.Second

// errNotHandedOff: a connection reached ergo's loopback listener without a
// completed handshake (someone else connected to it).
var errNotHandedOff = errors.New("dist: connection to the internal listener carries no completed handshake")

// accepted is what a handshake gives the Proto when the connection to
// serve is not the one ergo holds: the peer and its real connection. Serve
// hands off every connection this way (ergo holds the loopback one), and a
// handshake over TLS gives the TLS connection layered on ergo's.
type accepted struct {
	Peer
	conn net.Conn
}

// gate decides whether an incoming connection may start a handshake: the
// bounds on handshakes under way and the per-address failure throttle. It
// is safe for concurrent use.
type gate struct {
	maxPending, maxPerAddr int
	burst                  int
	interval               time.Duration

	mu      sync.Mutex
	pending int
	perAddr map[netip.Addr]int
	fails   map[netip.Addr]*bucket
}

// bucket is a token bucket of failed handshakes: tokens at last.
type bucket struct {
	tokens float64
	last   time.Time
}

func newGate(cfg HandshakeConfig) *gate {
	return &gate{
		maxPending: cfg.MaxPending, maxPerAddr: cfg.MaxPendingPerAddr,
		burst: cfg.FailureBurst, interval: cfg.FailureInterval,
		perAddr: map[netip.Addr]int{}, fails: map[netip.Addr]*bucket{},
	}
}

// enter admits a handshake from addr at now, or says why not:
// ResultThrottled or ResultOverloaded. An admitted handshake must leave.
func (g *gate) enter(addr netip.Addr, now time.Time) (ConnectResult, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if b := g.fails[addr]; b != nil && g.refill(b, now) < 1 {
		return ResultThrottled, false
	}
	if g.pending >= g.maxPending || g.perAddr[addr] >= g.maxPerAddr {
		return ResultOverloaded, false
	}
	g.pending++
	g.perAddr[addr]++
	return "", true
}

// pendingCount returns the handshakes under way.
func (g *gate) pendingCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pending
}

// leave ends a handshake admitted by enter; a failed one takes a token
// from addr's bucket.
func (g *gate) leave(addr netip.Addr, failed bool, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pending--
	if g.perAddr[addr]--; g.perAddr[addr] <= 0 {
		delete(g.perAddr, addr)
	}
	if !failed {
		return
	}
	b := g.fails[addr]
	if b == nil {
		if len(g.fails) >= maxTrackedAddrs {
			g.forgetOne(now)
		}
		b = &bucket{tokens: float64(g.burst), last: now}
		g.fails[addr] = b
	}
	g.refill(b, now)
	b.tokens--
}

// refill adds the tokens earned since b.last, up to the burst, and returns
// the tokens.
func (g *gate) refill(b *bucket, now time.Time) float64 {
	if d := now.Sub(b.last); d > 0 {
		b.tokens += float64(d) / float64(g.interval)
		if b.tokens > float64(g.burst) {
			b.tokens = float64(g.burst)
		}
		b.last = now
	}
	return b.tokens
}

// forgetOne drops every full bucket, or, when none is full, the one whose
// last failure is the oldest.
func (g *gate) forgetOne(now time.Time) {
	var oldest netip.Addr
	var oldestAt time.Time
	dropped := false
	for a, b := range g.fails {
		if g.refill(b, now) >= float64(g.burst) {
			delete(g.fails, a)
			dropped = true
			continue
		}
		if oldestAt.IsZero() || b.last.Before(oldestAt) {
			oldest, oldestAt = a, b.last
		}
	}
	if !dropped {
		delete(g.fails, oldest)
	}
}

// handoffs pairs the connections Serve opens to ergo's loopback listener
// with their completed handshakes, by the dialing side's address (which is
// the remote address ergo's listener sees).
type handoffs struct {
	mu sync.Mutex
	m  map[string]chan node.HandshakeDetails
}

func (hs *handoffs) slot(addr string) chan node.HandshakeDetails {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.m == nil {
		hs.m = map[string]chan node.HandshakeDetails{}
	}
	ch, ok := hs.m[addr]
	if !ok {
		ch = make(chan node.HandshakeDetails, 1)
		hs.m[addr] = ch
	}
	return ch
}

// drop forgets addr's slot if it is still ch (a later connection from the
// same address has a slot of its own).
func (hs *handoffs) drop(addr string, ch chan node.HandshakeDetails) {
	hs.mu.Lock()
	if hs.m[addr] == ch {
		delete(hs.m, addr)
	}
	hs.mu.Unlock()
}

// take waits (at most handoffWait) for the handshake filed under addr.
func (hs *handoffs) take(addr string) (node.HandshakeDetails, bool) {
	ch := hs.slot(addr)
	defer hs.drop(addr, ch)
	t := time.NewTimer(handoffWait)
	defer t.Stop()
	select {
	case d := <-ch:
		return d, true
	case <-t.C:
		return node.HandshakeDetails{}, false
	}
}

// Serve accepts distribution connections on ln until ln is closed, runs
// their handshakes concurrently with cookie, and hands every completed one
// to ergo through its listener at forward (an address on the loopback
// interface; ergo's loop must call Accept for what arrives there). It
// returns nil once ln is closed, after closing the connections whose
// handshake is still under way and waiting for their goroutines. Init must
// have been called first.
func (h *Handshake) Serve(ln net.Listener, cookie, forward string) error {
	if _, _, err := h.identity(); err != nil {
		return err
	}
	if !h.cfg.Fronted {
		return errors.New("dist: Serve needs HandshakeConfig.Fronted, so that ergo's Accept takes only its hand-offs")
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		pending = map[net.Conn]struct{}{}
	)
	defer func() {
		mu.Lock()
		for c := range pending {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
		h.lim.Flush()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Out of file descriptors and the like: wait a little, as
			// net/http's server does, instead of spinning.
			h.lim.Warn("accept", "accepting a distribution connection failed", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		addr := remoteIP(c.RemoteAddr())
		if result, ok := h.gate.enter(addr, time.Now()); !ok {
			_ = c.Close()
			h.finish(DirectionIn, c.RemoteAddr(), "", time.Now(), refusal(result))
			continue
		}
		mu.Lock()
		pending[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.serveOne(c, addr, cookie, forward)
			mu.Lock()
			delete(pending, c)
			mu.Unlock()
		}()
	}
}

// refusal is the error of a connection the gate closed before its
// handshake.
func refusal(r ConnectResult) error {
	if r == ResultThrottled {
		return fmt.Errorf("%w: too many failed handshakes from this address lately", ErrThrottled)
	}
	return fmt.Errorf("%w: too many handshakes under way", ErrOverloaded)
}

// serveOne runs the handshake of one incoming connection and hands it off.
func (h *Handshake) serveOne(c net.Conn, addr netip.Addr, cookie, forward string) {
	begin := time.Now()
	peer, details, err := h.accept(c, cookie)
	if err == nil {
		err = h.handOff(c, peer, details, forward)
	}
	failed := err != nil && hsClassify(err) != ResultRefused
	h.gate.leave(addr, failed, time.Now())
	h.finish(DirectionIn, c.RemoteAddr(), peer, begin, err)
	if err != nil {
		_ = c.Close()
	}
}

// handOff gives a connection whose handshake completed to ergo: it dials
// ergo's loopback listener and files the details under the dialing address
// for Accept. The loopback connection then stands for the peer's: a
// goroutine closes c when ergo closes its end.
func (h *Handshake) handOff(c net.Conn, peer string, details node.HandshakeDetails, forward string) error {
	switch p := details.Custom.(type) {
	case Peer:
		details.Custom = accepted{Peer: p, conn: c}
	case accepted:
		// Over TLS: the proto serves the TLS connection on c; closing c
		// (below) ends it.
	}
	d := net.Dialer{Timeout: handoffWait}
	lc, err := d.Dial("tcp", forward)
	if err != nil {
		return fmt.Errorf("handing the connection from %s to the node: %w", peer, err)
	}
	key := lc.LocalAddr().String()
	slot := h.handoffs.slot(key)
	slot <- details
	go func() {
		// ergo never writes to its end; a read returns when it is closed.
		_, _ = io.Copy(io.Discard, lc)
		_ = c.Close()
		_ = lc.Close()
		h.handoffs.drop(key, slot) // filed but never taken: ergo had stopped
	}()
	return nil
}

// acceptHandedOff answers ergo's Accept for a connection that reached
// ergo's loopback listener: the details Serve filed for it.
func (h *Handshake) acceptHandedOff(remote net.Addr) (node.HandshakeDetails, error) {
	if remote == nil {
		return node.HandshakeDetails{}, errNotHandedOff
	}
	details, ok := h.handoffs.take(remote.String())
	if !ok {
		return node.HandshakeDetails{}, fmt.Errorf("%w (from %s)", errNotHandedOff, remote)
	}
	return details, nil
}

// remoteIP is the IP of a connection's remote address (the zero Addr when
// it has none, which the gate then treats as one address).
func remoteIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
