package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/lib"
	ergonode "github.com/ergo-services/ergo/node"

	"github.com/gonode/gonode/node/dist"
)

// Outgoing connections timings.
const (
	// outDialTimeout bounds the TCP connect to a peer: 3 s, what ergo's own
	// dialer allowed before the node dialled itself.
	outDialTimeout = 3 * time.Second
)

// outTakeTimeout is how long a completed connection waits for ergo to take
// it (ergo dials the stand-in listener right after Resolve returns); past
// it the connection is closed. A variable for the package's tests.
var outTakeTimeout = 10 * time.Second

// outgoing makes the node's outgoing connections itself, inside the
// registrar's Resolve, which ergo calls first for every connection it
// makes: the dial and the handshake (dist.Handshake.Dial) run there, so a
// failure is seen whole, recorded for Connect and Call (peerCauses) and
// logged once, by the handshake. ergo reports a failed Resolve as its "no
// route to node" without a log line of its own, where it prints a warning
// for a failed dial or handshake ("Handshake error: ...") whatever the
// logging the program chose.
//
// A completed connection is given to ergo the way an incoming one is
// (wire.serve): Resolve returns a route to the stand-in listener, on the
// loopback interface, whose handshake (handedOff) answers at once with the
// details of the connection made; ergo's Proto serves that connection, and
// the loopback connection ergo holds stands for it: when ergo closes it,
// the peer's connection is closed.
type outgoing struct {
	handshake *dist.Handshake
	cookie    string
	causes    *peerCauses
	ln        net.Listener
	port      uint16
	// pending counts the routes to the stand-in listener given out and not
	// yet dialled by ergo; a connection to the listener beyond them (not
	// ergo's) is closed at once.
	pending atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{} // the listener's ends of ergo's connections
	// handed are the connections made and not yet taken by ergo: close
	// closes them at once, so that a peer does not keep for outTakeTimeout
	// a connection to a node that has stopped.
	handed map[*handedOff]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newOutgoing(h *dist.Handshake, cookie string, causes *peerCauses) (*outgoing, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("outgoing connections' stand-in listener: %w", err)
	}
	return &outgoing{handshake: h, cookie: cookie, causes: causes, ln: ln,
		port: uint16(ln.Addr().(*net.TCPAddr).Port), conns: map[net.Conn]struct{}{},
		handed: map[*handedOff]struct{}{}}, nil
}

// serve accepts ergo's connections to the stand-in listener until close.
func (o *outgoing) serve() {
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			c, err := o.ln.Accept()
			if err != nil {
				return
			}
			if o.pending.Add(-1) < 0 {
				o.pending.Add(1)
				_ = c.Close()
				continue
			}
			o.mu.Lock()
			if o.closed {
				o.mu.Unlock()
				_ = c.Close()
				continue
			}
			o.conns[c] = struct{}{}
			o.wg.Add(1)
			o.mu.Unlock()
			go func() {
				defer o.wg.Done()
				// ergo never writes to its end; a read returns when it
				// closes it.
				_, _ = io.Copy(io.Discard, c)
				_ = c.Close()
				o.mu.Lock()
				delete(o.conns, c)
				o.mu.Unlock()
			}()
		}
	}()
}

// close stops the stand-in listener and closes what it holds.
func (o *outgoing) close() {
	_ = o.ln.Close()
	o.mu.Lock()
	o.closed = true
	for c := range o.conns {
		_ = c.Close()
	}
	handed := o.handed
	o.handed = map[*handedOff]struct{}{}
	o.mu.Unlock()
	for h := range handed {
		h.expire()
	}
	o.wg.Wait()
}

// connect dials peer at the address route gives and runs the handshake;
// on success it returns the route ergo then takes the connection by.
func (o *outgoing) connect(peer string, route ergonode.Route) (ergonode.Route, error) {
	addr := net.JoinHostPort(route.Host, strconv.Itoa(int(route.Port)))
	details, conn, err := o.handshake.Dial(context.Background(), addr, outDialTimeout, o.cookie)
	if err != nil {
		var cause error
		if isDialError(err) {
			cause = fmt.Errorf("%w: %w", ErrHostUnreachable, err)
		} else {
			cause = handshakeCause(err)
		}
		if !errors.Is(err, dist.ErrPeerRefused) {
			// A refusal makes way for the peer's own connection
			// (Connect waits for it): not a failure.
			o.causes.failed(peer, cause)
		}
		return ergonode.Route{}, fmt.Errorf("connect to %s: %w", peer, cause)
	}
	o.causes.succeeded(peer)
	h := &handedOff{Handshake: o.handshake, details: details, conn: conn, owner: o}
	o.mu.Lock()
	if o.closed {
		// The node began to stop while the handshake ran: ergo will not
		// take the connection, so the peer must not keep it.
		o.mu.Unlock()
		_ = conn.Close()
		return ergonode.Route{}, fmt.Errorf("connect to %s: %w", peer, ErrStopping)
	}
	o.handed[h] = struct{}{}
	o.mu.Unlock()
	time.AfterFunc(outTakeTimeout, h.expire)
	o.pending.Add(1)
	return ergonode.Route{Node: route.Node, Host: "127.0.0.1", Port: o.port,
		Options: ergonode.RouteOptions{Handshake: h}}, nil
}

// handedOff is the handshake of a route to the stand-in listener: it
// answers ergo's Start with the details of the connection already made.
type handedOff struct {
	*dist.Handshake
	details ergonode.HandshakeDetails
	conn    net.Conn // the connection to the peer
	owner   *outgoing
	taken   atomic.Bool
}

// settle removes h from the connections its owner waits for ergo to take.
func (h *handedOff) settle() {
	h.owner.mu.Lock()
	delete(h.owner.handed, h)
	h.owner.mu.Unlock()
}

var errHandedOffTwice = errors.New("outgoing connection already taken")

// Start gives ergo the connection made; it is closed when ergo closes the
// loopback connection c that stands for it.
func (h *handedOff) Start(_ net.Addr, c lib.NetReadWriter, _ bool, _ string) (ergonode.HandshakeDetails, error) {
	if !h.taken.CompareAndSwap(false, true) {
		return ergonode.HandshakeDetails{}, errHandedOffTwice
	}
	h.settle()
	go func() {
		_, _ = io.Copy(io.Discard, c)
		_ = h.conn.Close()
	}()
	return h.details, nil
}

// expire closes the connection when ergo did not take it in time.
func (h *handedOff) expire() {
	if h.taken.CompareAndSwap(false, true) {
		_ = h.conn.Close()
		h.settle()
	}
}
