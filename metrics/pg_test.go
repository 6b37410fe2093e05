package metrics_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gonode/gonode/metrics"
	"github.com/gonode/gonode/node/pg"
	"github.com/gonode/gonode/node/pubsub"
)

// TestPGMetrics feeds the pg and PubSub observers and reads the metrics
// back; they pass the registry's lint.
func TestPGMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := metrics.NewPG(reg)
	if err != nil {
		t.Fatal(err)
	}
	var po pg.Observer = m
	var so pubsub.Observer = m.PubSubObserver()
	po.Membership("pg", 2, 5)
	po.Synced("pg")
	po.Synced("pg")
	po.Dropped("pg", pg.DropMalformed)
	so.BroadcastIn("Elixir.MyApp.PubSub")
	so.BroadcastOut("Elixir.MyApp.PubSub", 3)
	so.Dropped("Elixir.MyApp.PubSub", "queue_full")
	want := `# HELP gonode_pg_groups Groups with at least one member, as this node sees the scope.
# TYPE gonode_pg_groups gauge
gonode_pg_groups{scope="pg"} 2
# HELP gonode_pg_members Memberships (a process in a group, once per join) in the scope, on every node.
# TYPE gonode_pg_members gauge
gonode_pg_members{scope="pg"} 5
# HELP gonode_pg_syncs_total Full membership syncs received from peer scopes.
# TYPE gonode_pg_syncs_total counter
gonode_pg_syncs_total{scope="pg"} 2
# HELP gonode_pg_dropped_messages_total Messages from peer scopes not applied, by reason (malformed, too_many, unknown).
# TYPE gonode_pg_dropped_messages_total counter
gonode_pg_dropped_messages_total{reason="malformed",scope="pg"} 1
# HELP gonode_pubsub_broadcasts_total Phoenix.PubSub broadcasts received from peers (in) or sent to them (out).
# TYPE gonode_pubsub_broadcasts_total counter
gonode_pubsub_broadcasts_total{direction="in",pubsub="Elixir.MyApp.PubSub"} 1
gonode_pubsub_broadcasts_total{direction="out",pubsub="Elixir.MyApp.PubSub"} 1
# HELP gonode_pubsub_dropped_messages_total Phoenix.PubSub messages not delivered, by reason (malformed, queue_full).
# TYPE gonode_pubsub_dropped_messages_total counter
gonode_pubsub_dropped_messages_total{pubsub="Elixir.MyApp.PubSub",reason="queue_full"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}
