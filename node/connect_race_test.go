package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
)

// TestConnectLosingSimultaneousConnect: when our Connect loses a
// simultaneous connect (the peer, whose name is greater, is dialing us and
// answers nok), the connection the peer makes is the one that stays, as in
// OTP; Connect waits for it and succeeds instead of reporting a failure
// (discovery would log and count one, at every cluster start-up where two
// nodes find each other in the same poll).
func TestConnectLosingSimultaneousConnect(t *testing.T) {
	low, _ := startGo(t, "a"+uniq("race")+"@127.0.0.1", "race-cookie")
	high, _ := startGo(t, "z"+uniq("race")+"@127.0.0.1", "race-cookie")

	// high is dialing low: low's attempt to high is a simultaneous connect
	// that high wins.
	highDialing := node.DialingForTest(high, low.Name())
	refused := node.GaveWayForTest(low)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	result := make(chan error, 1)
	go func() { result <- low.Connect(ctx, high.Name()) }()

	testutil.Eventually(t, 10*time.Second, func() (bool, string) {
		return node.GaveWayForTest(low) > refused, "low's attempt has not been refused by high yet"
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
