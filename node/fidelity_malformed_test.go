package node_test

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	ergonode "github.com/ergo-services/ergo/node"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/dist"
	"github.com/gonode/gonode/node/term"
)

// malformedCounter counts the node's MalformedFrame events.
type malformedCounter struct {
	node.NopObserver
	frames atomic.Int64
}

func (m *malformedCounter) MalformedFrame(string) { m.frames.Add(1) }

// rawPeer is a distribution peer written in the test: it completes a real
// handshake with gonode (package dist's, as a BEAM would) and then writes
// frames byte by byte, so it can send what no BEAM sends.
type rawPeer struct {
	name string
	nc   net.Conn
}

func dialRawPeer(t *testing.T, name, addr, cookie string) *rawPeer {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	hs, err := dist.NewHandshake(dist.DefaultHandshakeConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := hs.Init(name, 7, ergonode.Flags{}); err != nil {
		t.Fatal(err)
	}
	if _, err := hs.Start(nc.RemoteAddr(), nc, false, cookie); err != nil {
		t.Fatalf("handshake with gonode: %v", err)
	}
	// Whatever gonode sends (ticks) is read and discarded.
	go func() { _, _ = io.Copy(io.Discard, nc) }()
	return &rawPeer{name: name, nc: nc}
}

// send writes one pass-through frame: 112, then the given terms, each
// already encoded (with its 131 version byte).
func (p *rawPeer) send(t *testing.T, parts ...[]byte) {
	t.Helper()
	body := []byte{112}
	for _, b := range parts {
		body = append(body, b...)
	}
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := p.nc.Write(append(frame, body...)); err != nil {
		t.Fatalf("raw peer write: %v", err)
	}
}

func encoded(t *testing.T, v etf.Term) []byte {
	t.Helper()
	b, err := term.Encode([]byte{131}, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMalformedTermDroppedConnectionKept(t *testing.T) {
	beamtest.RequireNetns(t) // the node serves EPMD on 4369 and listens on a fixed port
	cookie := "malformed-test-cookie"
	counter := &malformedCounter{}
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie, cfg.DistPort = uniq("go")+"@127.0.0.1", node.Cookie(cookie), 16123
	gn, err := node.New(cfg, node.WithObserver(counter), node.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gn.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = gn.Stop(ctx)
	})
	sink := &recorder{got: make(chan etf.Term, 16)}
	if _, err := gn.RegisterServer("sink", sink); err != nil {
		t.Fatal(err)
	}
	events, unsubscribe := gn.Subscribe(16)
	defer unsubscribe()

	peer := dialRawPeer(t, "raw@127.0.0.1", "127.0.0.1:16123", cookie)
	waitEvent(t, events, node.Event{Peer: peer.name, Up: true})

	from := etf.Pid{Node: etf.Atom(peer.name), ID: 1, Creation: 7}
	regSend := encoded(t, etf.Tuple{int64(6), from, etf.Atom(""), etf.Atom("sink")})
	good := encoded(t, etf.Tuple{etf.Atom("hello"), []byte("bin"), term.Map{{Key: []byte("k"), Value: int64(1)}}})

	bad := []struct {
		name  string
		parts [][]byte
	}{
		{"truncated message", [][]byte{regSend, good[:len(good)-3]}},
		{"unknown term tag", [][]byte{regSend, {131, 200, 1, 2}}},
		{"map with a truncated key", [][]byte{regSend, {131, 116, 0, 0, 0, 1, 109, 0, 0, 0, 9, 'k'}}},
		{"atom longer than its bytes", [][]byte{regSend, {131, 119, 50, 'a', 'b'}}},
		{"bytes after the message", [][]byte{regSend, good, {131, 106}}},
		{"broken control message", [][]byte{{131, 104, 4, 97, 6}, good}},
		{"control message that is no tuple", [][]byte{{131, 97, 6}, good}},
		{"missing version byte", [][]byte{regSend, good[1:]}},
	}
	for i, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			peer.send(t, b.parts...)
			// A good message right behind it arrives, alone: the bad frame
			// was dropped (frames are handled in order, so it was counted first).
			marker := etf.Tuple{etf.Atom("good"), int64(i)}
			peer.send(t, regSend, encoded(t, marker))
			got := testutil.Receive(t, sink.got, 10*time.Second)
			if !term.Equal(got, marker) {
				t.Fatalf("sink got %s, want %s", term.Format(got), term.Format(marker))
			}
			if n := counter.frames.Load(); n != int64(i+1) {
				t.Fatalf("MalformedFrame called %d times after %d bad frames", n, i+1)
			}
		})
	}
	// A full term still crosses, and the connection never went down.
	peer.send(t, regSend, good)
	if got := testutil.Receive(t, sink.got, 10*time.Second); !term.Equal(got, mustDecode(t, good)) {
		t.Fatalf("sink got %s", term.Format(got))
	}
	select {
	case e := <-events:
		t.Fatalf("connection event after the bad frames: %+v", e)
	default:
	}
	if !gn.IsConnected(peer.name) {
		t.Fatalf("gonode dropped the connection; connected: %v", gn.Connected())
	}
	if tr := gn.Traffic(); tr.MessagesIn < uint64(2*len(bad)+1) {
		t.Fatalf("traffic in: %d messages, want at least %d", tr.MessagesIn, 2*len(bad)+1)
	}
}

func mustDecode(t *testing.T, b []byte) etf.Term {
	t.Helper()
	v, _, err := term.Decode(b[1:])
	if err != nil {
		t.Fatal(err)
	}
	return v
}
