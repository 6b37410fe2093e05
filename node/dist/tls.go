package dist

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// secure runs the TLS handshake on r's connection when the handshake is
// configured for TLS (HandshakeConfig.TLS), as the server when server is
// set, and makes the distribution handshake run inside it. The TLS
// handshake must end before the handshake's deadline and, for an incoming
// connection, within StepTimeout of its start: a peer that says nothing, or
// speaks plain distribution to a TLS node, is dropped as fast as a silent
// plain one.
func (r *hsRun) secure(server bool) error {
	cfg := r.h.cfg.TLS
	if cfg == nil {
		return nil
	}
	nc, ok := r.c.rw.(net.Conn)
	if !ok {
		return fmt.Errorf("%w: the connection (%T) is not a net.Conn", ErrTLS, r.c.rw)
	}
	deadline := r.c.deadline
	if r.c.step > 0 {
		if d := time.Now().Add(r.c.step); d.Before(deadline) {
			deadline = d
		}
	}
	var tc *tls.Conn
	if server {
		tc = tls.Server(nc, cfg.Server)
	} else {
		tc = tls.Client(nc, cfg.Client)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	_ = nc.SetDeadline(deadline)
	err := tc.HandshakeContext(ctx)
	_ = nc.SetReadDeadline(r.c.deadline)
	_ = nc.SetWriteDeadline(r.c.deadline)
	if err != nil {
		return tlsError(err, server, deadline)
	}
	r.tls, r.c.rw, r.c.first, r.c.tls = tc, tc, false, true
	return nil
}

// tlsError says why a TLS handshake failed, wrapping ErrTLS.
func tlsError(err error, server bool, deadline time.Time) error {
	var rec tls.RecordHeaderError
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		if server {
			return fmt.Errorf("%w: no TLS handshake from the peer by %s (does it run plain TCP distribution?): %w",
				ErrTLS, deadline.Format(time.RFC3339), err)
		}
		return fmt.Errorf("%w: no answer to the TLS handshake by %s (does the peer run plain TCP distribution?): %w",
			ErrTLS, deadline.Format(time.RFC3339), err)
	case errors.As(err, &rec):
		return fmt.Errorf("%w: the peer does not speak TLS (it runs plain TCP distribution?): %w", ErrTLS, err)
	case server && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		// The connecting peer went away without a TLS alert: not a TLS
		// problem. A BEAM does so when it drops a connection attempt
		// (another connection between us won a simultaneous connect); a
		// refusal of our certificate comes as an alert. (An initiator that
		// sees the acceptor close on its ClientHello, on the other hand,
		// most likely talks to a plain node: that stays a TLS failure.)
		return fmt.Errorf("%w during the TLS handshake: %w", ErrConnectionClosed, err)
	}
	return fmt.Errorf("%w handshake failed: %w", ErrTLS, err)
}

// looksLikeTLS reports whether a handshake message's length prefix is the
// start of a TLS record: a handshake (22) or an alert (21) of TLS 1.x.
func looksLikeTLS(hdr [2]byte) bool {
	return (hdr[0] == 22 || hdr[0] == 21) && hdr[1] == 3
}
