package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gonode/gonode/metrics"
	"github.com/gonode/gonode/node/global"
)

// TestGlobalMetrics feeds global's observer and reads the metrics back;
// they pass the registry's lint.
func TestGlobalMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := metrics.NewGlobal(reg)
	if err != nil {
		t.Fatal(err)
	}
	var o global.Observer = m
	o.Names(3)
	o.Synced("ex@h", 200*time.Millisecond)
	o.Synced("ex2@h", 0) // nodeup not seen: counted, not timed
	o.Conflicts(1)
	o.Dropped(global.DropStale)
	want := `# HELP gonode_global_conflicts_total Global name clashes this node resolved after a partition healed.
# TYPE gonode_global_conflicts_total counter
gonode_global_conflicts_total 1
# HELP gonode_global_dropped_messages_total Messages from peers' name servers not applied, by reason (malformed, too_many, stale, unknown).
# TYPE gonode_global_dropped_messages_total counter
gonode_global_dropped_messages_total{reason="stale"} 1
# HELP gonode_global_names Global names this node knows, registered on any node.
# TYPE gonode_global_names gauge
gonode_global_names 3
# HELP gonode_global_syncs_total Nodes that became in sync with this node's name server.
# TYPE gonode_global_syncs_total counter
gonode_global_syncs_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"gonode_global_conflicts_total", "gonode_global_dropped_messages_total", "gonode_global_names", "gonode_global_syncs_total"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var timed uint64
	for _, mf := range mfs {
		if mf.GetName() == "gonode_global_sync_seconds" {
			timed = mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	if timed != 1 {
		t.Fatalf("gonode_global_sync_seconds observed %d syncs, want 1", timed)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}
