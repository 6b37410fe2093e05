package metrics

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/epmd"
	"github.com/gonode/gonode/node"
)

// Namespace prefixes every metric this package defines.
const Namespace = "gonode"

// ErrNoRegisterer is returned by New when it is given no Registerer.
var ErrNoRegisterer = errors.New("metrics: a prometheus.Registerer is required")

// BuildInfo labels gonode_build_info.
type BuildInfo struct {
	// Version is gonode's version (node.Version). Empty means "unknown".
	Version string
	// GoVersion is the Go release the binary was built with. Empty means
	// runtime.Version().
	GoVersion string
}

// PeerSource reports the connected peers; it is read at every scrape.
// *node.Node satisfies it. Connected must be safe for concurrent use and
// return quickly.
type PeerSource interface {
	Connected() []string
}

// PeerSourceFunc adapts a function to PeerSource.
type PeerSourceFunc func() []string

// Connected implements PeerSource.
func (f PeerSourceFunc) Connected() []string { return f() }

// TrafficSource reports the distribution traffic of the node since it
// started, summed over every connection (closed ones included); it is read at
// every scrape. *node.Node satisfies it. The totals must never decrease while
// the node runs. It must be safe for concurrent use and return quickly.
type TrafficSource interface {
	Traffic() node.Traffic
}

// TrafficSourceFunc adapts a function to TrafficSource.
type TrafficSourceFunc func() node.Traffic

// Traffic implements TrafficSource.
func (f TrafficSourceFunc) Traffic() node.Traffic { return f() }

// TLSSource reports when the certificate the node presents to peers
// expires, and false when the node runs without TLS; it is read at every
// scrape, so a rotated certificate shows at the next one. *node.Node
// satisfies it. It must be safe for concurrent use and return quickly.
type TLSSource interface {
	TLSCertificateExpiry() (time.Time, bool)
}

// Metrics holds gonode's metrics, registered on one Registerer. Its observer
// adapters and sources may be used from many goroutines at once.
type Metrics struct {
	connects         *prometheus.CounterVec
	disconnects      *prometheus.CounterVec
	mailboxOverflows prometheus.Counter
	malformedFrames  prometheus.Counter
	serverRestarts   *prometheus.CounterVec
	polls            *prometheus.CounterVec
	pollDuration     prometheus.Histogram
	lookupDuration   *prometheus.HistogramVec
	discoveryPeers   *prometheus.GaugeVec
	answerRecords    prometheus.Histogram
	actions          *prometheus.CounterVec
	watchRequests    *prometheus.CounterVec
	watchErrors      *prometheus.CounterVec
	epmdRequests     *prometheus.CounterVec
	peerSource       atomic.Pointer[PeerSource]
	trafficSource    atomic.Pointer[TrafficSource]
	tlsSource        atomic.Pointer[TLSSource]
	peersDesc        *prometheus.Desc
	tlsExpiryDesc    *prometheus.Desc
	messagesDesc     *prometheus.Desc
	bytesDesc        *prometheus.Desc
}

// Option configures New.
type Option func(*options)

type options struct{ runtime bool }

// WithoutRuntimeCollectors leaves out the Go and process collectors, for a
// caller that registers them itself (by default New registers them).
func WithoutRuntimeCollectors() Option { return func(o *options) { o.runtime = false } }

// Buckets of the duration histograms, in seconds: a DNS lookup inside a
// cluster takes around a millisecond, a poll that times out takes seconds.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Buckets of gonode_discovery_answer_records: 1 to 8192 records, doubling.
var recordBuckets = prometheus.ExponentialBuckets(1, 2, 14)

// Label values of the node's events. They mirror the constants of package
// node; a value outside these sets is counted under the set's catch-all, so
// a label never takes an unbounded set of values.
var (
	directions = []string{string(node.Incoming), string(node.Outgoing)}
	results    = []string{string(node.ConnectOK), string(node.ConnectBadCookie), string(node.ConnectMissingFlags),
		string(node.ConnectTimeout), string(node.ConnectRefused), string(node.ConnectUnreachable), string(node.ConnectError),
		string(node.ConnectThrottled), string(node.ConnectOverloaded), string(node.ConnectTLS)}
	reasons = []string{string(node.DisconnectPeerClosed), string(node.DisconnectTickTimeout), string(node.DisconnectLocal),
		string(node.DisconnectShutdown), string(node.DisconnectError)}
)

// New creates gonode's metrics and registers them on reg, together with the
// Go and process collectors (unless WithoutRuntimeCollectors). Every label
// combination known in advance is created at zero. It fails when reg is nil
// or refuses a collector (for instance one registered twice).
func New(reg prometheus.Registerer, info BuildInfo, opts ...Option) (*Metrics, error) {
	if reg == nil {
		return nil, ErrNoRegisterer
	}
	o := options{runtime: true}
	for _, opt := range opts {
		opt(&o)
	}
	if info.Version == "" {
		info.Version = "unknown"
	}
	if info.GoVersion == "" {
		info.GoVersion = runtime.Version()
	}
	m := &Metrics{
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "node", Name: "connects_total",
			Help: "Distribution connection attempts by direction and result, in attempts.",
		}, []string{"direction", "result"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "node", Name: "disconnects_total",
			Help: "Distribution connections that ended, by reason, in connections.",
		}, []string{"reason"}),
		mailboxOverflows: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "node", Name: "mailbox_overflows_total",
			Help: "Messages dropped because the receiving process's mailbox was full, in messages.",
		}),
		malformedFrames: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "dist", Name: "malformed_frames_total",
			Help: "Distribution frames dropped because they could not be decoded, in frames.",
		}),
		serverRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "server", Name: "restarts_total",
			Help: "Restarts of registered servers by their restart policy, by registered name, in restarts.",
		}, []string{"server"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "discovery", Name: "polls_total",
			Help: "Discovery polls by strategy and result, in polls.",
		}, []string{"strategy", "result"}),
		pollDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "discovery", Name: "poll_duration_seconds",
			Help:    "Time one discovery poll took, lookups and reconcile included, in seconds.",
			Buckets: durationBuckets,
		}),
		lookupDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "discovery", Name: "lookup_duration_seconds",
			Help:    "Time one DNS lookup took, by the transport of its final answer, in seconds.",
			Buckets: durationBuckets,
		}, []string{"transport"}),
		discoveryPeers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "discovery", Name: "peers",
			Help: "Discovered peers by set (desired, connected, backoff), in peers.",
		}, []string{"set"}),
		answerRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "discovery", Name: "answer_records",
			Help:    "Resource records in the answer of one successful DNS lookup, in records.",
			Buckets: recordBuckets,
		}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "discovery", Name: "actions_total",
			Help: "Connects and disconnects discovery asked for, by action and result, in actions.",
		}, []string{"action", "result"}),
		watchRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "discovery", Name: "watch_requests_total",
			Help: "Kubernetes API requests of the kubernetes strategy, by request (list, watch) and result, in requests.",
		}, []string{"request", "result"}),
		watchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "discovery", Name: "watch_errors_total",
			Help: "Failed Kubernetes API requests and broken watches of the kubernetes strategy, by reason, in errors.",
		}, []string{"reason"}),
		epmdRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "epmd", Name: "requests_total",
			Help: "Requests the embedded EPMD server handled, by request and result, in requests.",
		}, []string{"request", "result"}),
		peersDesc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "node", "peers"),
			"Connected distribution peers, discovered or not, in peers.", nil, nil),
		messagesDesc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "dist", "messages_total"),
			"Distribution messages by direction (in, out), in messages.", []string{"direction"}, nil),
		bytesDesc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "dist", "bytes_total"),
			"Distribution bytes by direction (in, out), framing included, in bytes.", []string{"direction"}, nil),
		tlsExpiryDesc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "tls", "certificate_expiry_timestamp_seconds"),
			"When the TLS certificate presented to peers expires, as a Unix time in seconds (absent without TLS).", nil, nil),
	}
	m.preinit()

	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help: "Always 1; the labels name the gonode version and the Go release it was built with.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(info.Version, info.GoVersion).Set(1)

	cs := []prometheus.Collector{
		buildInfo, m.connects, m.disconnects, m.mailboxOverflows, m.malformedFrames, m.serverRestarts,
		m.polls, m.pollDuration, m.lookupDuration, m.discoveryPeers, m.answerRecords, m.actions,
		m.watchRequests, m.watchErrors, m.epmdRequests, (*sourceCollector)(m),
	}
	if o.runtime {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return m, nil
}

// preinit creates every label combination known in advance at zero, so a
// series shows 0 rather than being absent until its first event.
func (m *Metrics) preinit() {
	for _, d := range directions {
		for _, r := range results {
			m.connects.WithLabelValues(d, r)
		}
	}
	for _, r := range reasons {
		m.disconnects.WithLabelValues(r)
	}
	// The one server name known in advance: none. A registered server's
	// series appears at its first restart.
	m.serverRestarts.WithLabelValues("")
	for _, s := range discovery.Strategies() {
		for _, r := range discovery.PollResults() {
			m.polls.WithLabelValues(string(s), string(r))
		}
	}
	for _, t := range discovery.Transports() {
		m.lookupDuration.WithLabelValues(string(t))
	}
	for _, s := range discovery.PeerSets() {
		m.discoveryPeers.WithLabelValues(string(s))
	}
	for _, a := range discovery.ActionKinds() {
		for _, r := range discovery.ActionOutcomes() {
			m.actions.WithLabelValues(string(a), string(r))
		}
	}
	for _, q := range discovery.WatchRequests() {
		for _, r := range discovery.ActionOutcomes() {
			m.watchRequests.WithLabelValues(string(q), string(r))
		}
	}
	for _, r := range discovery.WatchErrorReasons() {
		m.watchErrors.WithLabelValues(string(r))
	}
	for _, k := range epmd.RequestKinds {
		for _, r := range epmd.Results {
			m.epmdRequests.WithLabelValues(string(k), string(r))
		}
	}
}

// SetPeerSource makes gonode_node_peers read src at every scrape. Until it is
// called, or after it is called with nil, the gauge reads 0.
func (m *Metrics) SetPeerSource(src PeerSource) {
	if src == nil {
		m.peerSource.Store(nil)
		return
	}
	m.peerSource.Store(&src)
}

// SetTrafficSource makes gonode_dist_messages_total and
// gonode_dist_bytes_total read src at every scrape. Until it is called, or
// after it is called with nil, they read 0.
func (m *Metrics) SetTrafficSource(src TrafficSource) {
	if src == nil {
		m.trafficSource.Store(nil)
		return
	}
	m.trafficSource.Store(&src)
}

// SetTLSSource makes gonode_tls_certificate_expiry_timestamp_seconds read
// src at every scrape. Until it is called, after it is called with nil, or
// while src reports no TLS, the gauge is absent.
func (m *Metrics) SetTLSSource(src TLSSource) {
	if src == nil {
		m.tlsSource.Store(nil)
		return
	}
	m.tlsSource.Store(&src)
}

// sourceCollector reads the scrape-time sources: the state lives in the node,
// not here.
type sourceCollector Metrics

// Describe implements prometheus.Collector.
func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.peersDesc
	ch <- c.messagesDesc
	ch <- c.bytesDesc
	ch <- c.tlsExpiryDesc
}

// Collect implements prometheus.Collector.
func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	peers := 0
	if p := c.peerSource.Load(); p != nil {
		peers = len((*p).Connected())
	}
	ch <- prometheus.MustNewConstMetric(c.peersDesc, prometheus.GaugeValue, float64(peers))
	var t node.Traffic
	if src := c.trafficSource.Load(); src != nil {
		t = (*src).Traffic()
	}
	ch <- prometheus.MustNewConstMetric(c.messagesDesc, prometheus.CounterValue, float64(t.MessagesIn), string(node.Incoming))
	ch <- prometheus.MustNewConstMetric(c.messagesDesc, prometheus.CounterValue, float64(t.MessagesOut), string(node.Outgoing))
	ch <- prometheus.MustNewConstMetric(c.bytesDesc, prometheus.CounterValue, float64(t.BytesIn), string(node.Incoming))
	ch <- prometheus.MustNewConstMetric(c.bytesDesc, prometheus.CounterValue, float64(t.BytesOut), string(node.Outgoing))
	if src := c.tlsSource.Load(); src != nil {
		if notAfter, ok := (*src).TLSCertificateExpiry(); ok {
			ch <- prometheus.MustNewConstMetric(c.tlsExpiryDesc, prometheus.GaugeValue, float64(notAfter.Unix()))
		}
	}
}

// oneOf returns v when it is in set, else fallback: label values stay in a
// small fixed set whatever a caller passes.
func oneOf(v string, set []string, fallback string) string {
	for _, s := range set {
		if v == s {
			return v
		}
	}
	return fallback
}
