package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/metrics"
	"github.com/gonode/gonode/node"
)

// /debug/peers shows why the node could not reach a peer that is not
// connected, also one that only user code tried (a Connect, a Call).
func TestDebugPeersShowsConnectFailureCause(t *testing.T) {
	reg, m := newMetrics(t)
	n := startNode(t, m, uniq("gof")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie()), &testutil.SyncBuffer{})
	other := startNode(t, m, uniq("other")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie()), &testutil.SyncBuffer{})
	absent := uniq("absent") + "@127.0.0.1"
	_, url := serve(t, metrics.DefaultServerConfig(), reg, nodeState{n}, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, peer := range []string{absent, other.Name()} {
		if err := n.Connect(ctx, peer); err == nil {
			t.Fatalf("Connect(%s) succeeded", peer)
		}
	}
	body, rep := debugPeers(t, url)
	want := map[string]string{absent: "not_registered", other.Name(): "bad_cookie"}
	for _, p := range rep.Peers {
		cause, ok := want[p.Name]
		if !ok {
			continue
		}
		delete(want, p.Name)
		if p.Cause != cause || p.State != discovery.StateDisconnected || p.FailedAt.IsZero() || p.Discovered {
			t.Errorf("row of %s: cause %q, state %q, failed_at %v, discovered %v; want cause %q, disconnected, a time, not discovered",
				p.Name, p.Cause, p.State, p.FailedAt, p.Discovered, cause)
		}
		if strings.Contains(p.LastError, "no route to node") || p.LastError == "" {
			t.Errorf("row of %s: last_error %q, want the cause's text", p.Name, p.LastError)
		}
	}
	if len(want) > 0 {
		t.Errorf("/debug/peers has no row for %v:\n%s", want, body)
	}
}
