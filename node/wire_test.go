package node

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// fakePeers is a connectedPeers whose connections go away a little after
// Disconnect, as ergo's do, or never (stuck).
type fakePeers struct {
	mu     sync.Mutex
	peers  map[string]bool
	stuck  bool
	closes chan string
}

func (f *fakePeers) IsConnected(peer string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peers[peer]
}

func (f *fakePeers) Disconnect(peer string) error {
	if !f.IsConnected(peer) {
		return errors.New("not connected")
	}
	if !f.stuck {
		f.closes <- peer
	}
	return nil
}

func (f *fakePeers) drop(peer string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.peers, peer)
}

// handshakeConns is the handshake's view of the node's connections:
// Disconnect returns once the connection is gone, or when ctx ends.
func TestHandshakeConns(t *testing.T) {
	f := &fakePeers{peers: map[string]bool{"x@h": true}, closes: make(chan string, 1)}
	c := handshakeConns{f}
	if !c.Connected("x@h") || c.Connected("y@h") {
		t.Fatalf("Connected: x %v, y %v; want true, false", c.Connected("x@h"), c.Connected("y@h"))
	}
	go func() { f.drop(<-f.closes) }()
	if err := c.Disconnect(context.Background(), "x@h"); err != nil {
		t.Fatal(err)
	}
	if c.Connected("x@h") {
		t.Fatalf("still connected after Disconnect")
	}
	// Disconnecting a peer that is not connected (any more) is done.
	if err := c.Disconnect(context.Background(), "x@h"); err != nil {
		t.Fatalf("Disconnect of a gone peer = %v", err)
	}
	// A connection that never goes away: Disconnect ends with ctx.
	f.mu.Lock()
	f.peers["y@h"], f.stuck = true, true
	f.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Disconnect(ctx, "y@h"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Disconnect of a stuck connection = %v, want context.Canceled", err)
	}
}
