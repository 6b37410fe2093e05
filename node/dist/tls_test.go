package dist

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/tlstest"
)

// testTLS returns a TLSConfig whose server and client both present a
// certificate of one CA and verify the other's against it.
func testTLS(t *testing.T) *TLSConfig {
	t.Helper()
	ca := tlstest.NewCA(t, "test CA")
	leaf := ca.Valid(t, "node")
	dir := t.TempDir()
	certFile, keyFile := leaf.Write(t, dir, "node")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &TLSConfig{
		Server: &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert},
		Client: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "localhost"},
	}
}

// runTLSPair runs a Start of a against an Accept of b over a loopback TCP
// connection (the TLS handshake needs a net.Conn), and returns their errors
// and details.
func runTLSPair(t *testing.T, a, b testHS) (out, in hsOutcome) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			in.err = err
			return
		}
		t.Cleanup(func() { c.Close() })
		d, err := b.Accept(c.RemoteAddr(), c, false, testCookie)
		in = hsOutcome{details: d.Custom, name: d.Name, err: err}
		if err != nil {
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	d, err := a.Start(c.RemoteAddr(), c, false, testCookie)
	out = hsOutcome{details: d.Custom, name: d.Name, err: err}
	if err != nil {
		c.Close()
	}
	wg.Wait()
	return out, in
}

// Over TLS both sides complete the handshake (its messages framed with 4
// bytes, as OTP's inet_tls_dist frames them) and give the proto the TLS
// connection to serve.
func TestHandshakeTLSGoToGo(t *testing.T) {
	cfg := testTLS(t)
	a := newTestHS(t, testPeer, func(c *HandshakeConfig) { c.TLS = cfg })
	b := newTestHS(t, testSelf, func(c *HandshakeConfig) { c.TLS = cfg })
	out, in := runTLSPair(t, a, b)
	if out.err != nil || in.err != nil {
		t.Fatalf("start: %v, accept: %v", out.err, in.err)
	}
	for _, o := range []hsOutcome{out, in} {
		acc, ok := o.details.(accepted)
		if !ok {
			t.Fatalf("details carry %T, want the TLS connection", o.details)
		}
		if _, ok := acc.conn.(*tls.Conn); !ok {
			t.Fatalf("the connection to serve is %T, want *tls.Conn", acc.conn)
		}
	}
	if out.name != testSelf || in.name != testPeer {
		t.Errorf("names: start got %q, accept got %q", out.name, in.name)
	}
}

// A plain node refuses a TLS peer, and a TLS node a plain one, each with
// ErrTLS and the tls result, saying which side speaks what.
func TestHandshakeTLSAgainstPlain(t *testing.T) {
	cfg := testTLS(t)
	short := func(c *HandshakeConfig) { c.HandshakeTimeout = 2 * time.Second }
	t.Run("TLS initiator, plain acceptor", func(t *testing.T) {
		a := newTestHS(t, testPeer, func(c *HandshakeConfig) { short(c); c.TLS = cfg })
		b := newTestHS(t, testSelf, short)
		out, in := runTLSPair(t, a, b)
		if !errors.Is(in.err, ErrTLS) || !strings.Contains(in.err.Error(), "the peer speaks TLS") {
			t.Errorf("plain acceptor: %v, want ErrTLS saying the peer speaks TLS", in.err)
		}
		if !errors.Is(out.err, ErrTLS) {
			t.Errorf("TLS initiator: %v, want ErrTLS", out.err)
		}
		if !b.obs.has(observation{DirectionIn, ResultTLS}) || !a.obs.has(observation{DirectionOut, ResultTLS}) {
			t.Errorf("observations: a %v, b %v", a.obs.all(), b.obs.all())
		}
	})
	t.Run("plain initiator, TLS acceptor", func(t *testing.T) {
		a := newTestHS(t, testPeer, short)
		b := newTestHS(t, testSelf, func(c *HandshakeConfig) { short(c); c.TLS = cfg })
		out, in := runTLSPair(t, a, b)
		if !errors.Is(in.err, ErrTLS) || !strings.Contains(in.err.Error(), "does not speak TLS") {
			t.Errorf("TLS acceptor: %v, want ErrTLS saying the peer does not speak TLS", in.err)
		}
		if out.err == nil {
			t.Error("the plain initiator completed its handshake")
		}
		if !b.obs.has(observation{DirectionIn, ResultTLS}) {
			t.Errorf("observations of b: %v", b.obs.all())
		}
	})
}

// An incoming TLS handshake that never starts ends within StepTimeout.
func TestHandshakeTLSSilentPeer(t *testing.T) {
	cfg := testTLS(t)
	b := newTestHS(t, testSelf, func(c *HandshakeConfig) { c.TLS = cfg; c.StepTimeout = 100 * time.Millisecond })
	ca, cb := net.Pipe()
	defer ca.Close()
	_, _, err := b.accept(cb, testCookie)
	if !errors.Is(err, ErrTLS) || !strings.Contains(err.Error(), "no TLS handshake from the peer") {
		t.Fatalf("accept of a silent peer: %v, want ErrTLS saying no TLS handshake came", err)
	}
}

func TestHandshakeConfigTLSNeedsBoth(t *testing.T) {
	cfg := DefaultHandshakeConfig()
	cfg.TLS = &TLSConfig{Server: &tls.Config{}}
	if err := cfg.Validate(); err == nil {
		t.Fatal("a TLS configuration without a client side was accepted")
	}
}

// A peer that connects to a TLS acceptor and goes away without a word (a
// BEAM whose attempt lost a simultaneous connect does) is a closed
// connection, not a TLS failure: the tls result counts only what TLS
// refused.
func TestHandshakeTLSPeerGoneIsNotATLSFailure(t *testing.T) {
	cfg := testTLS(t)
	b := newTestHS(t, testSelf, func(c *HandshakeConfig) { c.TLS = cfg })
	ca, cb := net.Pipe()
	_ = ca.Close()
	_, _, err := b.accept(cb, testCookie)
	if !errors.Is(err, ErrConnectionClosed) || errors.Is(err, ErrTLS) {
		t.Fatalf("accept: %v, want ErrConnectionClosed and not ErrTLS", err)
	}
	if got := hsClassify(err); got != ResultError {
		t.Fatalf("result %s, want %s", got, ResultError)
	}
}
