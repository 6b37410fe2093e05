package node

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/testutil"
)

// startRaceNode starts a node for the simultaneous-connect test (the
// package's internal tests cannot use internal/nodetest, which imports it).
func startRaceNode(t *testing.T, name string) (*Node, *testutil.SyncBuffer) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Name, cfg.Cookie = name, "race-cookie"
	logs := &testutil.SyncBuffer{}
	n, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Stop(ctx); err != nil {
			t.Errorf("stop %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, logs.String())
		}
	})
	return n, logs
}

// TestConnectLosingSimultaneousConnect: when our Connect loses a
// simultaneous connect (the peer, whose name is greater, is dialing us and
// answers nok), the connection the peer makes is the one that stays, as in
// OTP; Connect waits for it and succeeds instead of reporting a failure
// (discovery would log and count one, at every cluster start-up where two
// nodes find each other in the same poll).
func TestConnectLosingSimultaneousConnect(t *testing.T) {
	suffix := time.Now().UnixNano()
	low, _ := startRaceNode(t, fmt.Sprintf("a_race%d@127.0.0.1", suffix))
	high, _ := startRaceNode(t, fmt.Sprintf("z_race%d@127.0.0.1", suffix))

	// high is dialing low: low's attempt to high is a simultaneous connect
	// that high wins.
	highDialing := high.wire.handshake.Dialing(low.Name())
	refused := low.wire.handshake.GaveWay()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	result := make(chan error, 1)
	go func() { result <- low.Connect(ctx, high.Name()) }()

	testutil.Eventually(t, 10*time.Second, func() (bool, string) {
		return low.wire.handshake.GaveWay() > refused, "low's attempt has not been refused by high yet"
	})
	// high's own attempt now goes ahead (as OTP's would, it was under way).
	highDialing()
	if err := high.Connect(ctx, low.Name()); err != nil {
		t.Fatalf("the winning side's connect: %v", err)
	}
	if err := testutil.Receive(t, result, 15*time.Second); err != nil {
		t.Fatalf("the losing side's Connect = %v, want nil: the peer's connection stands", err)
	}
	if !low.IsConnected(high.Name()) || !high.IsConnected(low.Name()) {
		t.Fatalf("connected: low %v, high %v", low.Connected(), high.Connected())
	}
}
