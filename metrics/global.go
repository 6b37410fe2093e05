package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Global holds the metrics of global's name server (package node/global).
// It implements that package's Observer without importing it; pass it as
// global.Options.Observer. Labels take fixed words only (never node
// names).
type Global struct {
	names     prometheus.Gauge
	syncs     prometheus.Counter
	syncTime  prometheus.Histogram
	conflicts prometheus.Counter
	dropped   *prometheus.CounterVec
}

// NewGlobal registers global's metrics on reg.
func NewGlobal(reg prometheus.Registerer) (*Global, error) {
	if reg == nil {
		return nil, ErrNoRegisterer
	}
	g := &Global{
		names: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "global", Name: "names",
			Help: "Global names this node knows, registered on any node."}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "global", Name: "syncs_total",
			Help: "Nodes that became in sync with this node's name server."}),
		syncTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: "global", Name: "sync_seconds",
			Help:    "Time from a peer's nodeup to global being in sync with it.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "global", Name: "conflicts_total",
			Help: "Global name clashes this node resolved after a partition healed."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "global", Name: "dropped_messages_total",
			Help: "Messages from peers' name servers not applied, by reason (malformed, too_many, stale, unknown)."}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{g.names, g.syncs, g.syncTime, g.conflicts, g.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Names implements global.Observer.
func (g *Global) Names(count int) { g.names.Set(float64(count)) }

// Synced implements global.Observer: since is zero when the nodeup was not
// seen, and then not observed.
func (g *Global) Synced(_ string, since time.Duration) {
	g.syncs.Inc()
	if since > 0 {
		g.syncTime.Observe(since.Seconds())
	}
}

// Conflicts implements global.Observer.
func (g *Global) Conflicts(count int) { g.conflicts.Add(float64(count)) }

// Dropped implements global.Observer.
func (g *Global) Dropped(reason string) { g.dropped.WithLabelValues(reason).Inc() }
