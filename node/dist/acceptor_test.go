package dist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ergo-services/ergo/node"

	"github.com/gonode/gonode/internal/ratelog"
	"github.com/gonode/gonode/internal/testutil"
)

// Tests of Serve: incoming handshakes over real sockets on the loopback
// interface, handed off to a stand-in for ergo's accept loop (ergoLoop),
// which calls Accept as ergo does. Sources are spread over 127.0.0.0/8,
// which Linux routes to the loopback interface without configuration.

// ergoLoop is ergo's accept loop as far as Serve sees it: it accepts on a
// loopback listener and calls Accept for each connection, one at a time.
type ergoLoop struct {
	ln   net.Listener
	done chan struct{}

	mu    sync.Mutex
	peers []string
	conns []net.Conn
	errs  []error
}

func startErgoLoop(t *testing.T, h *Handshake) *ergoLoop {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &ergoLoop{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := h.Accept(c.RemoteAddr(), c, false, testCookie)
			l.mu.Lock()
			if err != nil {
				l.errs = append(l.errs, err)
				_ = c.Close()
			} else {
				l.peers = append(l.peers, d.Name)
				l.conns = append(l.conns, c)
			}
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-l.done
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, c := range l.conns {
			_ = c.Close()
		}
	})
	return l
}

func (l *ergoLoop) accepted() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.peers...)
}

// serveTest runs Serve for h on 127.0.0.1:0 with an ergoLoop; it returns
// the address to dial.
func serveTest(t *testing.T, h *Handshake) (string, *ergoLoop) {
	t.Helper()
	loop := startErgoLoop(t, h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Serve(ln, testCookie, loop.ln.Addr().String()) }()
	t.Cleanup(func() {
		_ = ln.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), loop
}

// newFrontedHS is newTestHS(testSelf) for Serve (HandshakeConfig.Fronted).
func newFrontedHS(t *testing.T, mutate func(*HandshakeConfig)) testHS {
	t.Helper()
	return newTestHS(t, testSelf, func(c *HandshakeConfig) {
		c.Fronted = true
		if mutate != nil {
			mutate(c)
		}
	})
}

// dialFrom connects to addr from the source IP src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	return c
}

// handshakeFrom runs a whole outgoing handshake of a from src.
func handshakeFrom(t *testing.T, a testHS, src, addr, cookie string) (node.HandshakeDetails, error) {
	t.Helper()
	c := dialFrom(t, src, addr)
	t.Cleanup(func() { _ = c.Close() })
	return a.Start(c.RemoteAddr(), c, false, cookie)
}

// waitClosed reports whether the peer closed c within d (reading nothing).
func waitClosed(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

func TestServeSilentConnectionsDoNotStallOthers(t *testing.T) {
	// Long step timeouts: the silent connections stay open for the whole
	// test, so only concurrency can let the real peer through.
	b := newFrontedHS(t, func(c *HandshakeConfig) { c.StepTimeout = time.Minute; c.HandshakeTimeout = time.Minute })
	addr, loop := serveTest(t, b.Handshake)
	for i := range 100 {
		c := dialFrom(t, netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)}).String(), addr)
		defer c.Close()
		if i%10 == 0 { // half a name message
			var hdr [2]byte
			binary.BigEndian.PutUint16(hdr[:], 40)
			_, _ = c.Write(append(hdr[:], 'N', 0, 0))
		}
	}
	a := newTestHS(t, testPeer, nil)
	errc := make(chan error, 1)
	go func() { _, err := handshakeFrom(t, a, "127.0.0.1", addr, testCookie); errc <- err }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("handshake behind 100 silent connections: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no handshake behind 100 silent connections within 30 s (their step timeout is a minute)")
	}
	testutil.EventuallyNamed(t, 30*time.Second, "the peer handed off to ergo's loop", func() (bool, string) { return len(loop.accepted()) == 1, "" })
	if got := loop.accepted(); got[0] != testPeer {
		t.Errorf("ergo's loop accepted %v, want %s", got, testPeer)
	}
}

func TestServeSilentConnectionTimesOutAtStep(t *testing.T) {
	b := newFrontedHS(t, func(c *HandshakeConfig) { c.StepTimeout = 200 * time.Millisecond })
	addr, _ := serveTest(t, b.Handshake)
	c := dialFrom(t, "127.0.0.9", addr)
	defer c.Close()
	if !waitClosed(c, 30*time.Second) {
		t.Fatal("a silent connection was not closed (step timeout 200 ms, handshake timeout 10 s)")
	}
	testutil.EventuallyNamed(t, 30*time.Second, "a timeout observed", func() (bool, string) { return b.obs.has(observation{DirectionIn, ResultTimeout}), "" })
}

func TestServeBoundsPendingHandshakes(t *testing.T) {
	b := newFrontedHS(t, func(c *HandshakeConfig) {
		c.StepTimeout, c.HandshakeTimeout = time.Minute, time.Minute
		c.MaxPending, c.MaxPendingPerAddr = 6, 3
	})
	addr, _ := serveTest(t, b.Handshake)
	var conns []net.Conn
	for range 5 { // 3 admitted from .20, the next 2 refused at once
		c := dialFrom(t, "127.0.0.20", addr)
		defer c.Close()
		conns = append(conns, c)
	}
	for _, c := range conns[3:] {
		if !waitClosed(c, 30*time.Second) {
			t.Fatal("a 4th connection from one address was not closed at once (MaxPendingPerAddr 3)")
		}
	}
	for _, c := range conns[:3] {
		if waitClosed(c, 100*time.Millisecond) {
			t.Fatal("an admitted silent connection was closed before its step timeout")
		}
	}
	for i := range 3 { // 3 more from other addresses fill MaxPending 6
		defer dialFrom(t, netip.AddrFrom4([4]byte{127, 0, 0, byte(21 + i)}).String(), addr).Close()
	}
	testutil.EventuallyNamed(t, 30*time.Second, "6 handshakes under way", func() (bool, string) { return b.gate.pendingCount() == 6, "" })
	c := dialFrom(t, "127.0.0.30", addr)
	defer c.Close()
	if !waitClosed(c, 30*time.Second) {
		t.Fatal("a connection beyond MaxPending 6 was not closed at once")
	}
	testutil.EventuallyNamed(t, 30*time.Second, "3 overloaded observed", func() (bool, string) { return b.obs.count(observation{DirectionIn, ResultOverloaded}) == 3, "" })
}

func TestServeThrottlesFailingAddress(t *testing.T) {
	b := newFrontedHS(t, func(c *HandshakeConfig) { c.FailureBurst, c.FailureInterval = 5, time.Hour })
	addr, loop := serveTest(t, b.Handshake)
	guesser := newTestHS(t, testPeer, nil)
	// The guesser's first 5 wrong cookies are heard; every later attempt is
	// closed unheard.
	const attempts = 40
	var wrong, closed int
	for range attempts {
		_, err := handshakeFrom(t, guesser, "127.0.0.40", addr, "guess")
		switch {
		case errors.Is(err, ErrWrongCookie):
			wrong++
		case errors.Is(err, ErrConnectionClosed):
			closed++
		default:
			t.Fatalf("guess: %v", err)
		}
	}
	if wrong != 5 || closed != attempts-5 {
		t.Errorf("%d wrong-cookie answers and %d closed unheard, want 5 and %d", wrong, closed, attempts-5)
	}
	testutil.EventuallyNamed(t, 30*time.Second, "every throttled attempt observed", func() (bool, string) {
		return b.obs.count(observation{DirectionIn, ResultThrottled}) == attempts-5, ""
	})
	// Another address is unaffected, and so are reconnects that succeed,
	// however many.
	for i := range 20 {
		peer := newTestHS(t, "p"+string(rune('a'+i))+"@127.0.0.1", nil)
		if _, err := handshakeFrom(t, peer, "127.0.0.41", addr, testCookie); err != nil {
			t.Fatalf("handshake %d from another address: %v", i, err)
		}
	}
	testutil.EventuallyNamed(t, 30*time.Second, "20 peers handed off", func() (bool, string) { return len(loop.accepted()) == 20, "" })
}

func TestAcceptRefusesAStrangerOnTheInternalListener(t *testing.T) {
	b := newFrontedHS(t, nil)
	_, loop := serveTest(t, b.Handshake)
	c := dialFrom(t, "127.0.0.1", loop.ln.Addr().String())
	defer c.Close()
	if !waitClosed(c, 30*time.Second) {
		t.Fatal("a connection to ergo's loopback listener that carries no handshake was not closed")
	}
	loop.mu.Lock()
	defer loop.mu.Unlock()
	if len(loop.errs) != 1 || !errors.Is(loop.errs[0], errNotHandedOff) {
		t.Errorf("Accept errors = %v, want one errNotHandedOff", loop.errs)
	}
}

func TestGateRefillsAndForgets(t *testing.T) {
	cfg := DefaultHandshakeConfig()
	cfg.FailureBurst, cfg.FailureInterval, cfg.MaxPending, cfg.MaxPendingPerAddr = 2, time.Second, 100, 100
	g := newGate(cfg)
	t0 := time.Unix(1000, 0)
	a := netip.MustParseAddr("198.18.0.1")
	fail := func(at time.Time) {
		t.Helper()
		if r, ok := g.enter(a, at); !ok {
			t.Fatalf("enter at %v refused: %s", at.Sub(t0), r)
		}
		g.leave(a, true, at)
	}
	fail(t0)
	fail(t0)
	if r, ok := g.enter(a, t0.Add(500*time.Millisecond)); ok || r != ResultThrottled {
		t.Fatalf("third attempt within the interval: %v %s, want throttled", ok, r)
	}
	fail(t0.Add(time.Second)) // one token earned back
	if _, ok := g.enter(a, t0.Add(1500*time.Millisecond)); ok {
		t.Fatal("admitted with no token left")
	}
	// Successes never cost a token.
	b := netip.MustParseAddr("198.18.0.2")
	for i := range 100 {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		if _, ok := g.enter(b, at); !ok {
			t.Fatalf("success %d refused", i)
		}
		g.leave(b, false, at)
	}
	// The table of failing addresses stays bounded.
	for i := range maxTrackedAddrs + 50 {
		ip := netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		if _, ok := g.enter(ip, t0); !ok {
			t.Fatalf("address %d refused", i)
		}
		g.leave(ip, true, t0)
	}
	if n := len(g.fails); n > maxTrackedAddrs {
		t.Errorf("%d addresses tracked, want at most %d", n, maxTrackedAddrs)
	}
}

// A flood of failing connections from one address writes a few log lines,
// not one per connection; the observer counts every one.
func TestServeFailureLogsAreRateLimited(t *testing.T) {
	b := newFrontedHS(t, nil)
	addr, _ := serveTest(t, b.Handshake)
	const n = 200
	for range n {
		c := dialFrom(t, "127.0.0.50", addr)
		_, _ = c.Write([]byte{0, 3, 'x', 'y', 'z'}) // not a name message
		waitClosed(c, 30*time.Second)
		_ = c.Close()
	}
	count := func() int {
		return b.obs.count(observation{DirectionIn, ResultError}) + b.obs.count(observation{DirectionIn, ResultThrottled})
	}
	testutil.EventuallyNamed(t, 30*time.Second, "every connection observed", func() (bool, string) {
		return count() == n, fmt.Sprint(count())
	})
	lines := strings.Count(b.logs.String(), "component=dist.handshake")
	if lines > ratelog.DefaultBurst+1 {
		t.Errorf("%d connections that failed from one address wrote %d log lines, want at most %d:\n%s",
			n, lines, ratelog.DefaultBurst+1, b.logs.String())
	}
}

// Serve refuses to run for a handshake whose Accept would still run
// handshakes itself: a stranger on ergo's listener would hold its loop.
func TestServeNeedsFronted(t *testing.T) {
	b := newTestHS(t, testSelf, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := b.Serve(ln, testCookie, "127.0.0.1:1"); err == nil {
		t.Fatal("Serve ran without HandshakeConfig.Fronted")
	}
}
