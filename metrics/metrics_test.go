package metrics_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/epmd"
	"github.com/gonode/gonode/metrics"
	"github.com/gonode/gonode/node"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// gonodeMetrics is every metric the package defines: the golden files are
// compared on these names, so one that goes missing fails the test.
var gonodeMetrics = []string{
	"gonode_build_info",
	"gonode_node_peers",
	"gonode_node_connects_total",
	"gonode_node_disconnects_total",
	"gonode_node_mailbox_overflows_total",
	"gonode_dist_malformed_frames_total",
	"gonode_server_restarts_total",
	"gonode_dist_messages_total",
	"gonode_dist_bytes_total",
	"gonode_discovery_polls_total",
	"gonode_discovery_poll_duration_seconds",
	"gonode_discovery_lookup_duration_seconds",
	"gonode_discovery_peers",
	"gonode_discovery_answer_records",
	"gonode_discovery_actions_total",
	"gonode_discovery_watch_requests_total",
	"gonode_discovery_watch_errors_total",
	"gonode_epmd_requests_total",
	"gonode_tls_certificate_expiry_timestamp_seconds", // only while a TLS source says so
}

var testBuild = metrics.BuildInfo{Version: "1.2.3", GoVersion: "go1.26.0"}

func newMetrics(t *testing.T, opts ...metrics.Option) (*prometheus.Registry, *metrics.Metrics) {
	return newMetricsB(t, opts...)
}

func newMetricsB(t testing.TB, opts ...metrics.Option) (*prometheus.Registry, *metrics.Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, testBuild, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return reg, m
}

// peers is a PeerSource whose list the test sets.
type peers struct {
	mu    sync.Mutex
	names []string
}

func (p *peers) set(names ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.names = names
}

func (p *peers) Connected() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.names)
}

// traffic is a TrafficSource with fixed totals.
type traffic node.Traffic

func (t traffic) Traffic() node.Traffic { return node.Traffic(t) }

// compareGolden compares every gonode metric of g with testdata/<name>.prom,
// rewriting the file first under -update.
func compareGolden(t *testing.T, g prometheus.Gatherer, name string) {
	t.Helper()
	path := filepath.Join("testdata", name+".prom")
	if *update {
		mfs, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if slices.Contains(gonodeMetrics, mf.GetName()) {
				if err := enc.Encode(mf); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	defer f.Close()
	if err := testutil.GatherAndCompare(g, f, gonodeMetrics...); err != nil {
		t.Fatal(err)
	}
}

func TestNewErrors(t *testing.T) {
	t.Run("no registerer", func(t *testing.T) {
		if _, err := metrics.New(nil, testBuild); !errors.Is(err, metrics.ErrNoRegisterer) {
			t.Fatalf("New(nil) = %v, want ErrNoRegisterer", err)
		}
	})
	t.Run("registered twice", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		if _, err := metrics.New(reg, testBuild); err != nil {
			t.Fatal(err)
		}
		_, err := metrics.New(reg, testBuild)
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			t.Fatalf("second New on one registry = %v, want an AlreadyRegisteredError", err)
		}
	})
	t.Run("runtime collectors registered by the caller", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		if _, err := metrics.New(reg, testBuild, metrics.WithoutRuntimeCollectors()); err != nil {
			t.Fatal(err)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if !strings.HasPrefix(mf.GetName(), "gonode_") {
				t.Errorf("WithoutRuntimeCollectors still registers %s", mf.GetName())
			}
		}
	})
}

func TestRuntimeCollectorsRegistered(t *testing.T) {
	reg, _ := newMetrics(t)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if !have[name] {
			t.Errorf("%s is not registered", name)
		}
	}
}

func TestGolden(t *testing.T) {
	cases := []struct {
		name  string
		drive func(m *metrics.Metrics)
	}{
		{"fresh", func(*metrics.Metrics) {}},
		{"node", func(m *metrics.Metrics) {
			o := m.NodeObserver()
			o.Connected("a@10.0.0.1", node.Incoming)
			o.Connected("b@10.0.0.2", node.Outgoing)
			o.Connected("c@10.0.0.3", node.Outgoing)
			o.ConnectFailed("", node.Incoming, node.ConnectBadCookie)
			o.ConnectFailed("d@10.0.0.4", node.Outgoing, node.ConnectTimeout)
			o.ConnectFailed("e@10.0.0.5", node.Outgoing, node.ConnectUnreachable)
			o.ConnectFailed("f@10.0.0.6", node.Outgoing, node.ConnectOK)        // a failure is never ok: error
			o.ConnectFailed("g@10.0.0.7", node.Outgoing, "something new")       // unknown: error
			o.ConnectFailed("h@10.0.0.8", "sideways", node.ConnectMissingFlags) // unknown direction: in
			o.Disconnected("a@10.0.0.1", node.DisconnectTickTimeout)
			o.Disconnected("b@10.0.0.2", node.DisconnectLocal)
			o.Disconnected("x@10.0.0.9", "cosmic ray") // unknown: error
			o.MailboxOverflow("<0.1.0>")
			o.MessageDropped("c@10.0.0.3") // a peer's message at a full mailbox: an overflow too
			o.MalformedFrame("c@10.0.0.3")
			o.ServerRestarted("inventory") // a registered name: the label
			o.ServerRestarted("inventory")
			o.ServerRestarted("") // an unnamed server
			p := &peers{}
			p.set("b@10.0.0.2", "c@10.0.0.3")
			m.SetPeerSource(p)
			m.SetTrafficSource(traffic{MessagesIn: 10, MessagesOut: 7, BytesIn: 1500, BytesOut: 900})
		}},
		{"discovery", func(m *metrics.Metrics) {
			o := m.DiscoveryObserver()
			o.Lookup(discovery.LookupEvent{Duration: 800 * time.Microsecond, Transport: discovery.TransportUDP, Records: 3, Result: discovery.PollOK})
			o.Lookup(discovery.LookupEvent{Duration: 30 * time.Millisecond, Transport: discovery.TransportTCP, Records: 600, Result: discovery.PollOK})
			o.Lookup(discovery.LookupEvent{Duration: 2 * time.Millisecond, Transport: discovery.TransportUDP, Records: 0, Result: discovery.PollEmpty})
			o.Lookup(discovery.LookupEvent{Duration: 3 * time.Second, Transport: discovery.TransportNone, Result: discovery.PollError})
			o.Lookup(discovery.LookupEvent{Duration: -time.Second, Transport: "quic", Result: discovery.PollError}) // clock stepped back, unknown transport
			o.Poll(discovery.PollEvent{Strategy: discovery.StrategyDNS, Result: discovery.PollOK, Duration: 3 * time.Millisecond})
			o.Poll(discovery.PollEvent{Strategy: discovery.StrategyDNS, Result: discovery.PollError, Duration: 3 * time.Second})
			o.Poll(discovery.PollEvent{Strategy: discovery.StrategyDNSSRV, Result: discovery.PollEmpty, Duration: 40 * time.Millisecond})
			o.Action(discovery.ActionEvent{Kind: discovery.ActConnect, Outcome: discovery.OutcomeOK})
			o.Action(discovery.ActionEvent{Kind: discovery.ActConnect, Outcome: discovery.OutcomeOK})
			o.Action(discovery.ActionEvent{Kind: discovery.ActConnect, Outcome: discovery.OutcomeError})
			o.Action(discovery.ActionEvent{Kind: discovery.ActDisconnect, Outcome: discovery.OutcomeOK})
			o.Peers(discovery.PeerCounts{Desired: 5, Connected: 9, Backoff: 2})
			o.Peers(discovery.PeerCounts{Desired: 4, Connected: 3, Backoff: 1}) // a gauge: the last report wins
		}},
		{"epmd", func(m *metrics.Metrics) {
			o := m.EPMDObserver()
			o.ObserveRequest(epmd.RequestAlive2, epmd.ResultOK)
			o.ObserveRequest(epmd.RequestAlive2, epmd.ResultRefused)
			o.ObserveRequest(epmd.RequestPortPlease2, epmd.ResultOK)
			o.ObserveRequest(epmd.RequestPortPlease2, epmd.ResultOK)
			o.ObserveRequest(epmd.RequestPortPlease2, epmd.ResultNotFound)
			o.ObserveRequest(epmd.RequestNames, epmd.ResultOK)
			o.ObserveRequest(epmd.RequestMalformed, epmd.ResultError)
			o.ObserveRequest("KILL_REQ", "ok")         // unknown kind: unknown
			o.ObserveRequest(epmd.RequestNames, "meh") // unknown result: error
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg, m := newMetrics(t)
			tc.drive(m)
			compareGolden(t, reg, tc.name)
		})
	}
}

// TestSourcesReadAtScrape checks that the peers gauge and the traffic
// counters follow their sources between scrapes, and read 0 without one.
func TestSourcesReadAtScrape(t *testing.T) {
	reg, m := newMetrics(t)
	scrape := func(want string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gonode_node_peers", "gonode_dist_messages_total"); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(peers int, in, out uint64) string {
		return fmt.Sprintf(`# HELP gonode_dist_messages_total Distribution messages by direction (in, out), in messages.
# TYPE gonode_dist_messages_total counter
gonode_dist_messages_total{direction="in"} %d
gonode_dist_messages_total{direction="out"} %d
# HELP gonode_node_peers Connected distribution peers, discovered or not, in peers.
# TYPE gonode_node_peers gauge
gonode_node_peers %d
`, in, out, peers)
	}
	scrape(expect(0, 0, 0))
	p := &peers{}
	m.SetPeerSource(p)
	scrape(expect(0, 0, 0))
	p.set("a@h", "b@h", "c@h")
	scrape(expect(3, 0, 0))
	m.SetTrafficSource(traffic{MessagesIn: 4, MessagesOut: 5})
	p.set("a@h")
	scrape(expect(1, 4, 5))
	m.SetPeerSource(metrics.PeerSourceFunc(func() []string { return []string{"x@h", "y@h"} }))
	scrape(expect(2, 4, 5))
	m.SetPeerSource(nil)
	m.SetTrafficSource(nil)
	scrape(expect(0, 0, 0))
}

// tlsSource is a TLSSource whose answer the test sets.
type tlsSource struct {
	notAfter time.Time
	on       bool
}

func (s tlsSource) TLSCertificateExpiry() (time.Time, bool) { return s.notAfter, s.on }

// TestTLSExpiryReadAtScrape checks the certificate expiry gauge: absent
// without TLS, the source's time (a rotated certificate's at the next
// scrape) with it.
func TestTLSExpiryReadAtScrape(t *testing.T) {
	reg, m := newMetrics(t)
	const name = "gonode_tls_certificate_expiry_timestamp_seconds"
	scrape := func(want string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), name); err != nil {
			t.Fatal(err)
		}
	}
	gauge := func(unix int64) string {
		return fmt.Sprintf(`# HELP %[1]s When the TLS certificate presented to peers expires, as a Unix time in seconds (absent without TLS).
# TYPE %[1]s gauge
%[1]s %[2]d
`, name, unix)
	}
	scrape("")
	m.SetTLSSource(tlsSource{})
	scrape("")
	m.SetTLSSource(tlsSource{notAfter: time.Unix(1_900_000_000, 0), on: true})
	scrape(gauge(1_900_000_000))
	m.SetTLSSource(tlsSource{notAfter: time.Unix(1_950_000_000, 0), on: true})
	scrape(gauge(1_950_000_000))
	m.SetTLSSource(nil)
	scrape("")
}

// TestLint lints every metric the registry serves, gonode's and the runtime
// collectors', after events have created every series.
func TestLint(t *testing.T) {
	reg, m := newMetrics(t)
	m.NodeObserver().Connected("a@h", node.Incoming)
	m.DiscoveryObserver().Lookup(discovery.LookupEvent{Duration: time.Millisecond, Transport: discovery.TransportUDP, Records: 1})
	m.DiscoveryObserver().Poll(discovery.PollEvent{Strategy: discovery.StrategyDNS, Result: discovery.PollOK})
	m.EPMDObserver().ObserveRequest(epmd.RequestNames, epmd.ResultOK)
	m.SetPeerSource(&peers{})
	m.SetTrafficSource(traffic{})
	m.SetTLSSource(tlsSource{notAfter: time.Unix(1_900_000_000, 0), on: true})
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestLabelsStaySmall feeds every observer names, addresses and values
// outside their sets, and checks that no label value is a name or address
// and that each metric keeps its pre-created number of series.
func TestLabelsStaySmall(t *testing.T) {
	reg, m := newMetrics(t)
	count := func() map[string]int {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, mf := range mfs {
			if !slices.Contains(gonodeMetrics, mf.GetName()) {
				continue
			}
			n[mf.GetName()] = len(mf.GetMetric())
			for _, s := range mf.GetMetric() {
				for _, l := range s.GetLabel() {
					if strings.ContainsAny(l.GetValue(), "@:") || strings.Count(l.GetValue(), ".") == 3 {
						t.Errorf("%s has label %s=%q: a name or address", mf.GetName(), l.GetName(), l.GetValue())
					}
				}
			}
		}
		return n
	}
	before := count()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			peer := fmt.Sprintf("app@10.1.%d.%d", i/250, i%250)
			no, d, e := m.NodeObserver(), m.DiscoveryObserver(), m.EPMDObserver()
			no.Connected(peer, node.Direction(peer))
			no.ConnectFailed(peer, node.Direction(peer), node.ConnectResult(peer))
			no.Disconnected(peer, node.DisconnectReason(peer))
			no.MailboxOverflow(peer)
			no.MessageDropped(peer)
			no.MalformedFrame(peer)
			d.Poll(discovery.PollEvent{Strategy: discovery.StrategyName(peer), Result: discovery.PollResult(peer)})
			d.Lookup(discovery.LookupEvent{Transport: discovery.Transport(peer), Result: discovery.PollResult(peer)})
			d.Action(discovery.ActionEvent{Kind: discovery.ActionKind(peer), Outcome: discovery.ActionOutcome(peer)})
			e.ObserveRequest(epmd.RequestKind(peer), epmd.Result(peer))
		}()
	}
	wg.Wait()
	after := count()
	for name, n := range before {
		if after[name] != n {
			t.Errorf("%s: %d series before the events, %d after", name, n, after[name])
		}
	}
}

// TestWatchObserver: the kubernetes strategy's requests and failures land
// in their counters; an unknown reason is counted as "other", never as a new
// series.
func TestWatchObserver(t *testing.T) {
	reg, m := newMetrics(t, metrics.WithoutRuntimeCollectors())
	o := m.WatchObserver()
	o.Watch(discovery.WatchEvent{Request: discovery.RequestList, OK: true})
	o.Watch(discovery.WatchEvent{Request: discovery.RequestWatch, OK: true})
	o.Watch(discovery.WatchEvent{Request: discovery.RequestWatch, OK: false, Reason: discovery.WatchForbidden})
	o.Watch(discovery.WatchEvent{Reason: discovery.WatchGone}) // a broken watch, no request of its own
	o.Watch(discovery.WatchEvent{Request: discovery.RequestList, Reason: "teapot"})
	want := `
# HELP gonode_discovery_watch_errors_total Failed Kubernetes API requests and broken watches of the kubernetes strategy, by reason, in errors.
# TYPE gonode_discovery_watch_errors_total counter
gonode_discovery_watch_errors_total{reason="forbidden"} 1
gonode_discovery_watch_errors_total{reason="gone"} 1
gonode_discovery_watch_errors_total{reason="other"} 1
gonode_discovery_watch_errors_total{reason="timeout"} 0
gonode_discovery_watch_errors_total{reason="unauthorized"} 0
gonode_discovery_watch_errors_total{reason="unavailable"} 0
# HELP gonode_discovery_watch_requests_total Kubernetes API requests of the kubernetes strategy, by request (list, watch) and result, in requests.
# TYPE gonode_discovery_watch_requests_total counter
gonode_discovery_watch_requests_total{request="list",result="error"} 1
gonode_discovery_watch_requests_total{request="list",result="ok"} 1
gonode_discovery_watch_requests_total{request="watch",result="error"} 1
gonode_discovery_watch_requests_total{request="watch",result="ok"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"gonode_discovery_watch_errors_total", "gonode_discovery_watch_requests_total"); err != nil {
		t.Error(err)
	}
}
