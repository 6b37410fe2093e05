package node_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/epmd"
	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
)

// connectCauses are the sentinels a failed connection attempt may carry.
var connectCauses = []error{node.ErrNotRegistered, node.ErrBadCookie, node.ErrHostUnreachable, node.ErrNotAllowed, node.ErrConnectTimeout}

// checkCause fails unless err is want and none of the other causes.
func checkCause(t *testing.T, what string, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %v", what, want)
	}
	if !errors.Is(err, want) {
		t.Errorf("%s: error %q is not %v", what, err, want)
	}
	for _, other := range connectCauses {
		if other != want && errors.Is(err, other) {
			t.Errorf("%s: error %q is also %v", what, err, other)
		}
	}
	t.Logf("%s: %v", what, err)
	if strings.Contains(err.Error(), "no route to node") {
		t.Errorf("%s: error %q still says ergo's %q", what, err, "no route to node")
	}
}

// checkCall calls {nobody, peer} and checks that the call ends as
// gen_server:call would (noconnection) and carries the cause.
func checkCall(t *testing.T, gn *node.Node, peer string, want error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := gn.Call(ctx, gen.ProcessID{Name: "nobody", Node: peer}, etf.Atom("hello"))
	var down *genserver.DownError
	if !errors.Is(err, genserver.ErrServerDown) || !errors.As(err, &down) || down.Reason != "noconnection" {
		t.Fatalf("call error = %v, want a DownError with reason noconnection", err)
	}
	checkCause(t, "Call", err, want)
}

func connect(gn *node.Node, peer string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return gn.Connect(ctx, peer)
}

// registerFake registers name at the namespace's EPMD (served by the node
// started first) with the given distribution port, until the test ends.
func registerFake(t *testing.T, name string, port int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg, err := (&epmd.Client{Addr: "127.0.0.1:4369"}).Register(ctx, epmd.NodeInfo{Name: name, Port: uint16(port),
		Type: epmd.NodeTypeNormal, Protocol: epmd.ProtocolTCP, HighestVersion: epmd.DistVersion6, LowestVersion: epmd.DistVersion6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
}

// fakePeer listens on 127.0.0.1 and gives every connection to serve.
func fakePeer(t *testing.T, serve func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// Each way a connection attempt fails comes back from Connect and Call as
// its own sentinel, not as ergo's "no route to node".
func TestConnectFailureCauses(t *testing.T) {
	cookie := node.Cookie(beamtest.RandomCookie())
	gn, _ := startGo(t, uniq("go")+"@127.0.0.1", cookie, func(c *node.Config) { c.HandshakeTimeout = time.Second })

	t.Run("not registered", func(t *testing.T) {
		peer := uniq("absent") + "@127.0.0.1"
		err := connect(gn, peer)
		checkCause(t, "Connect", err, node.ErrNotRegistered)
		if !errors.Is(err, node.ErrPeerUnresolved) || !errors.Is(err, epmd.ErrNotFound) {
			t.Errorf("Connect error %q is not ErrPeerUnresolved and epmd.ErrNotFound", err)
		}
		checkCall(t, gn, peer, node.ErrNotRegistered)
	})
	t.Run("bad cookie", func(t *testing.T) {
		other, _ := startGo(t, uniq("other")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie()))
		checkCause(t, "Connect", connect(gn, other.Name()), node.ErrBadCookie)
		checkCall(t, gn, other.Name(), node.ErrBadCookie)
	})
	t.Run("host unreachable: no EPMD", func(t *testing.T) {
		// 198.18.0.0/15 is for benchmarks; the test's namespace has no route
		// to it.
		peer := uniq("far") + "@198.18.0.1"
		err := connect(gn, peer)
		checkCause(t, "Connect", err, node.ErrHostUnreachable)
		if !errors.Is(err, node.ErrPeerUnresolved) {
			t.Errorf("Connect error %q is not ErrPeerUnresolved", err)
		}
		checkCall(t, gn, peer, node.ErrHostUnreachable)
	})
	t.Run("host unreachable: distribution port closed", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		base := uniq("closed")
		registerFake(t, base, port)
		peer := base + "@127.0.0.1"
		err = connect(gn, peer)
		checkCause(t, "Connect", err, node.ErrHostUnreachable)
		if errors.Is(err, node.ErrPeerUnresolved) {
			t.Errorf("Connect error %q is ErrPeerUnresolved, but the peer resolved", err)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d", port)) {
			t.Errorf("Connect error %q does not name the address dialled", err)
		}
		checkCall(t, gn, peer, node.ErrHostUnreachable)
	})
	t.Run("not allowed", func(t *testing.T) {
		// A peer that answers our name with not_allowed.
		port := fakePeer(t, func(c net.Conn) {
			var hdr [2]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			if _, err := io.CopyN(io.Discard, c, int64(hdr[0])<<8|int64(hdr[1])); err != nil {
				return
			}
			status := "snot_allowed"
			_, _ = c.Write(append([]byte{0, byte(len(status))}, status...))
		})
		base := uniq("picky")
		registerFake(t, base, port)
		checkCause(t, "Connect", connect(gn, base+"@127.0.0.1"), node.ErrNotAllowed)
		checkCall(t, gn, base+"@127.0.0.1", node.ErrNotAllowed)
	})
	t.Run("handshake timeout", func(t *testing.T) {
		// A peer that accepts and never answers.
		port := fakePeer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
		base := uniq("mute")
		registerFake(t, base, port)
		checkCause(t, "Connect", connect(gn, base+"@127.0.0.1"), node.ErrConnectTimeout)
		checkCall(t, gn, base+"@127.0.0.1", node.ErrConnectTimeout)
	})
	t.Run("ConnectFailures keeps the last cause", func(t *testing.T) {
		peer := uniq("gone") + "@127.0.0.1"
		_ = connect(gn, peer)
		for _, f := range gn.ConnectFailures() {
			if f.Peer == peer {
				if !errors.Is(f.Err, node.ErrNotRegistered) || f.At.IsZero() {
					t.Errorf("ConnectFailures has %s: %v at %v, want ErrNotRegistered with a time", peer, f.Err, f.At)
				}
				return
			}
		}
		t.Errorf("ConnectFailures = %v, has no %s", gn.ConnectFailures(), peer)
	})
}

// The same causes from real Erlang nodes: a cookie they reject, and a
// node that allows only others (net_kernel:allow/1).
func TestConnectFailureCausesBEAM(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		gn, _ := startGo(t, uniq("go")+"@127.0.0.1", node.Cookie(cookie))
		t.Run("bad cookie", func(t *testing.T) {
			erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: beamtest.RandomCookie()})
			checkCause(t, "Connect", connect(gn, erl.Name), node.ErrBadCookie)
			checkCall(t, gn, erl.Name, node.ErrBadCookie)
		})
		t.Run("not allowed", func(t *testing.T) {
			erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
			if got := erl.Eval(t, "net_kernel:allow(['someone@127.0.0.1'])."); got != "ok" {
				t.Fatalf("net_kernel:allow = %s", got)
			}
			checkCause(t, "Connect", connect(gn, erl.Name), node.ErrNotAllowed)
			checkCall(t, gn, erl.Name, node.ErrNotAllowed)
		})
	})
}

// A failed outgoing connection is logged once, by gonode, with its cause:
// ergo, which prints a warning of its own through the log package for a
// failed dial or handshake it ran ("WARNING! Handshake error: ..."), prints
// nothing, with or without WithErgoLogs.
func TestFailedConnectLoggedOnce(t *testing.T) {
	var std testutil.SyncBuffer
	prev := log.Writer()
	log.SetOutput(&std)
	t.Cleanup(func() { log.SetOutput(prev) })

	gn, logs := startGo(t, uniq("go")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie()))
	other, _ := startGo(t, uniq("other")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie()))
	checkCause(t, "Connect", connect(gn, other.Name()), node.ErrBadCookie)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	base := uniq("closed")
	registerFake(t, base, port)
	checkCause(t, "Connect", connect(gn, base+"@127.0.0.1"), node.ErrHostUnreachable)

	if strings.Contains(std.String(), "WARNING!") {
		t.Errorf("ergo logged the failures through the log package:\n%s", std.String())
	}
	if n := strings.Count(logs.String(), "distribution handshake failed: cookie mismatch"); n != 1 {
		t.Errorf("the failed handshake is in gonode's log %d times, want once:\n%s", n, logs.String())
	}
}
