package dist

import (
	"context"
	"net"
	"time"

	"github.com/ergo-services/ergo/node"
)

// Dial makes an outgoing connection itself: it connects to addr (within
// dialTimeout, or until ctx ends) and runs the initiator's handshake on the
// new connection, reporting the outcome as Start does. A failed TCP connect
// is returned as the dialer's error (a *net.OpError) and is no handshake
// event.
//
// On success the details carry the connection for the Proto, as those of
// a connection Serve hands off do: ergo, given them by a route's handshake,
// serves this connection, and the connection ergo holds itself only stands
// for it. conn is the TCP connection, for the caller to close when ergo
// never takes the details. A caller that dials through Dial instead of
// letting ergo dial and call Start sees every failure first and whole
// (ergo reports a failed dial or handshake as its own "no route to node",
// and prints a warning of its own for each).
func (h *Handshake) Dial(ctx context.Context, addr string, dialTimeout time.Duration, cookie string) (details node.HandshakeDetails, conn net.Conn, err error) {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return node.HandshakeDetails{}, nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	begin := time.Now()
	peer, details, err := h.start(c, cookie)
	h.finish(DirectionOut, c.RemoteAddr(), peer, begin, err)
	if err != nil {
		_ = c.Close()
		return node.HandshakeDetails{}, nil, err
	}
	if p, ok := details.Custom.(Peer); ok {
		details.Custom = accepted{Peer: p, conn: c}
	}
	return details, c, nil
}
