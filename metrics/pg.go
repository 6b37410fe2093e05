package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// PG holds the metrics of pg scopes (package node/pg) and Phoenix.PubSub
// servers (package node/pubsub). It implements both packages' Observer
// interfaces without importing them; pass it as pg.Options.Observer and
// pubsub.Options.Observer. Labels: the scope's or the PubSub server's
// name, which the configuration fixes (a few values), and fixed words.
type PG struct {
	groups      *prometheus.GaugeVec
	memberships *prometheus.GaugeVec
	syncs       *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	broadcasts  *prometheus.CounterVec
	psDropped   *prometheus.CounterVec
}

// NewPG registers the pg and PubSub metrics on reg.
func NewPG(reg prometheus.Registerer) (*PG, error) {
	if reg == nil {
		return nil, ErrNoRegisterer
	}
	p := &PG{
		groups: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "pg", Name: "groups",
			Help: "Groups with at least one member, as this node sees the scope."}, []string{"scope"}),
		memberships: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "pg", Name: "members",
			Help: "Memberships (a process in a group, once per join) in the scope, on every node."}, []string{"scope"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "pg", Name: "syncs_total",
			Help: "Full membership syncs received from peer scopes."}, []string{"scope"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "pg", Name: "dropped_messages_total",
			Help: "Messages from peer scopes not applied, by reason (malformed, too_many, unknown)."}, []string{"scope", "reason"}),
		broadcasts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "pubsub", Name: "broadcasts_total",
			Help: "Phoenix.PubSub broadcasts received from peers (in) or sent to them (out)."}, []string{"pubsub", "direction"}),
		psDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "pubsub", Name: "dropped_messages_total",
			Help: "Phoenix.PubSub messages not delivered, by reason (malformed, queue_full)."}, []string{"pubsub", "reason"}),
	}
	for _, c := range []prometheus.Collector{p.groups, p.memberships, p.syncs, p.dropped, p.broadcasts, p.psDropped} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Membership implements pg.Observer.
func (p *PG) Membership(scope string, groups, memberships int) {
	p.groups.WithLabelValues(scope).Set(float64(groups))
	p.memberships.WithLabelValues(scope).Set(float64(memberships))
}

// Synced implements pg.Observer.
func (p *PG) Synced(scope string) { p.syncs.WithLabelValues(scope).Inc() }

// Dropped implements pg.Observer.
func (p *PG) Dropped(scope, reason string) { p.dropped.WithLabelValues(scope, reason).Inc() }

// BroadcastIn implements pubsub.Observer.
func (p *PG) BroadcastIn(pubsub string) { p.broadcasts.WithLabelValues(pubsub, "in").Inc() }

// BroadcastOut implements pubsub.Observer: one broadcast, whatever the
// number of peers it went to.
func (p *PG) BroadcastOut(pubsub string, _ int) { p.broadcasts.WithLabelValues(pubsub, "out").Inc() }

// PubSubObserver returns the pubsub.Observer view of p (its Dropped has
// pubsub's meaning).
func (p *PG) PubSubObserver() PubSubObserver { return PubSubObserver{p} }

// PubSubObserver is PG as a pubsub.Observer: Dropped counts undelivered
// PubSub messages, not pg drops.
type PubSubObserver struct{ p *PG }

// BroadcastIn implements pubsub.Observer.
func (o PubSubObserver) BroadcastIn(pubsub string) { o.p.BroadcastIn(pubsub) }

// BroadcastOut implements pubsub.Observer.
func (o PubSubObserver) BroadcastOut(pubsub string, peers int) { o.p.BroadcastOut(pubsub, peers) }

// Dropped implements pubsub.Observer.
func (o PubSubObserver) Dropped(pubsub, reason string) {
	o.p.psDropped.WithLabelValues(pubsub, reason).Inc()
}
