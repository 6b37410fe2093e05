package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
)

// TestStopClosesConnectionsErgoDidNotTake: a connection whose handshake
// completed but which ergo has not taken yet (the node began to stop
// meanwhile) is closed when the node stops, so the peer does not keep a
// connection to a stopped node. The peer would otherwise answer
// Node.connect of the node's next incarnation "true" over the old
// connection and never meet the new one.
func TestStopClosesConnectionsErgoDidNotTake(t *testing.T) {
	defer node.SetOutTakeTimeoutForTest(time.Hour)()
	cookie := node.Cookie("untaken")
	a, _ := startGo(t, uniq("a")+"@127.0.0.1", cookie)
	b, _ := startGo(t, uniq("b")+"@127.0.0.1", cookie)
	if err := node.ResolveUntakenForTest(a, b.Name()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, func() (bool, string) {
		return b.IsConnected(a.Name()), fmt.Sprintf("%s connected to %v", b.Name(), b.Connected())
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() (bool, string) {
		return !b.IsConnected(a.Name()), fmt.Sprintf("%s still connected to %v after %s stopped", b.Name(), b.Connected(), a.Name())
	})
}
