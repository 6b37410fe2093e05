package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/discovery/discoverytest"
	"github.com/gonode/gonode/epmd"
	"github.com/gonode/gonode/epmd/epmdtest"
	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/nodetest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/metrics"
	"github.com/gonode/gonode/node"
)

// The tests in this file drive the adapters with real components: a real
// gonode node with a real `erl` peer, a discoverer asking an in-process DNS
// server, an epmd.Server answering a client. They check what /metrics shows.

// nodeState adapts *node.Node to metrics.NodeState for these tests: the node
// runs once it has an uptime. (cmd/gonode wires its own.)
type nodeState struct{ *node.Node }

func (n nodeState) Started() bool { return n.Uptime() > 0 }

var seq atomic.Int64

// uniq returns a node basename unique within this test binary.
func uniq(prefix string) string { return fmt.Sprintf("%s%d", prefix, seq.Add(1)) }

// startNode starts a gonode node whose observer is m's and whose logs go to
// logs; it is stopped in t.Cleanup.
func startNode(t *testing.T, m *metrics.Metrics, name string, cookie node.Cookie, logs *testutil.SyncBuffer) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = name, cookie
	n := nodetest.Start(t, cfg, logs, node.WithObserver(m.NodeObserver()))
	m.SetPeerSource(n)
	m.SetTrafficSource(n)
	return n
}

// scrape fetches /metrics and parses it.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, url+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d: %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not the text format: %v", err)
	}
	return mfs
}

// value returns the value of the series of metric name whose labels are
// exactly labels ("k=v" pairs), and whether it exists. For a histogram it
// returns the sample count.
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
	for _, s := range mf.GetMetric() {
		var have []string
		for _, l := range s.GetLabel() {
			have = append(have, l.GetName()+"="+l.GetValue())
		}
		if !slices.Equal(slices.Sorted(slices.Values(have)), slices.Sorted(slices.Values(labels))) {
			continue
		}
		switch {
		case s.Counter != nil:
			return s.GetCounter().GetValue(), true
		case s.Gauge != nil:
			return s.GetGauge().GetValue(), true
		case s.Histogram != nil:
			return float64(s.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// waitMetric polls /metrics until cond holds for the value of the series
// (missing counts as 0), failing with the last value seen.
func waitMetric(t *testing.T, url string, cond func(float64) bool, name string, labels ...string) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, func() (bool, string) {
		v, ok := value(scrape(t, url), name, labels...)
		return cond(v), fmt.Sprintf("%s%v = %v (present %v)", name, labels, v, ok)
	})
}

func atLeast(n float64) func(float64) bool { return func(v float64) bool { return v >= n } }
func equal(n float64) func(float64) bool   { return func(v float64) bool { return v == n } }

// debugPeers fetches /debug/peers and returns the body and the report.
func debugPeers(t *testing.T, url string) (string, metrics.PeersReport) {
	t.Helper()
	code, body := get(t, url+"/debug/peers")
	if code != 200 {
		t.Fatalf("/debug/peers = %d: %s", code, body)
	}
	var rep metrics.PeersReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("/debug/peers is not JSON: %v\n%s", err, body)
	}
	return body, rep
}

// TestRealErlangPeer connects a real erl node to a real gonode node and
// checks the connect, the traffic, the peers gauge, /readyz, /debug/peers and
// the disconnect.
func TestRealErlangPeer(t *testing.T) {
	reg, m := newMetrics(t)
	cookie := beamtest.RandomCookie()
	goName := uniq("gom") + "@127.0.0.1"
	logs := &testutil.SyncBuffer{}
	n := startNode(t, m, goName, node.Cookie(cookie), logs)
	cfg := metrics.DefaultServerConfig()
	cfg.MinPeers = 1
	_, url := serve(t, cfg, reg, nodeState{n}, nil)
	if code, body := get(t, url+"/readyz"); code != 503 || body != "0 of 1 peers connected\n" {
		t.Fatalf("/readyz before any peer = %d %q", code, body)
	}

	erl := beamtest.Start(t, beamtest.Host, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
	// connect_node returns true once the handshake is done on erl's side.
	if got := erl.Eval(t, fmt.Sprintf("net_kernel:connect_node('%s').", goName)); got != "true" {
		t.Fatalf("net_kernel:connect_node = %s, want true", got)
	}

	t.Run("peers gauge and readyz", func(t *testing.T) {
		waitMetric(t, url, equal(1), "gonode_node_peers")
		if code, body := get(t, url+"/readyz"); code != 200 || body != "ready\n" {
			t.Fatalf("/readyz with the peer = %d %q", code, body)
		}
	})
	t.Run("connect counted", func(t *testing.T) {
		waitMetric(t, url, equal(1), "gonode_node_connects_total", "direction=in", "result=ok")
	})
	t.Run("debug peers lists the undiscovered peer", func(t *testing.T) {
		_, rep := debugPeers(t, url)
		want := []metrics.PeerStatus{{Name: erl.Name, State: discovery.StateConnected}}
		if rep.Discovery != nil || rep.Connected != 1 || !equalPeers(rep.Peers, want) {
			t.Fatalf("/debug/peers = %+v, want one connected undiscovered peer %s", rep, erl.Name)
		}
	})
	t.Run("disconnect counted", func(t *testing.T) {
		if got := erl.Eval(t, fmt.Sprintf("erlang:disconnect_node('%s').", goName)); got != "true" {
			t.Fatalf("disconnect_node = %s", got)
		}
		waitMetric(t, url, equal(0), "gonode_node_peers")
		waitMetric(t, url, equal(1), "gonode_node_disconnects_total", "reason=peer_closed")
		if code, body := get(t, url+"/readyz"); code != 503 || body != "0 of 1 peers connected\n" {
			t.Fatalf("/readyz after the peer left = %d %q", code, body)
		}
	})
	t.Run("traffic counted", func(t *testing.T) {
		// A ping connects again and calls gonode's net_kernel: one message
		// each way at least. It comes last: a hung ping blocks erl's eval loop.
		got, err := erl.EvalE(fmt.Sprintf("net_adm:ping('%s').", goName), 15*time.Second)
		if err != nil || got != "pong" {
			mfs := scrape(t, url)
			in, _ := value(mfs, "gonode_dist_messages_total", "direction=in")
			out, _ := value(mfs, "gonode_dist_messages_total", "direction=out")
			peers, _ := value(mfs, "gonode_node_peers")
			t.Fatalf("net_adm:ping = %q, %v; want pong (gonode saw %v messages in, %v out, %v peers)", got, err, in, out, peers)
		}
		for _, dir := range []string{"in", "out"} {
			waitMetric(t, url, atLeast(1), "gonode_dist_messages_total", "direction="+dir)
			waitMetric(t, url, atLeast(1), "gonode_dist_bytes_total", "direction="+dir)
		}
	})
}

// TestDiscoveryDNSFailure runs a real discoverer against an in-process DNS
// server that fails, then answers, then fails again, and checks the polls
// and lookups in /metrics and that /readyz stays ready after the first
// success.
func TestDiscoveryDNSFailure(t *testing.T) {
	reg, m := newMetrics(t)
	const service = "gonode-headless.test."
	zone := discoverytest.NewZone().Add(service + " 5 IN A 127.0.0.7")
	var failing atomic.Bool
	failing.Store(true)
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, req *dns.Msg) {
		if failing.Load() {
			resp := new(dns.Msg)
			resp.SetRcode(req, dns.RcodeServerFailure)
			_ = w.WriteMsg(resp)
			return
		}
		zone.ServeDNS(w, req)
	})
	srv := discoverytest.NewServer(t, mux, discoverytest.ServerOptions{})

	cfg := discovery.DefaultConfig()
	cfg.Service, cfg.ApplicationName = service, "app"
	cfg.Resolver, cfg.ResolvConf = srv.Addr, filepath.Join(t.TempDir(), "no-resolv.conf")
	cfg.PollingInterval = time.Minute
	clock := discoverytest.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	logs := &testutil.SyncBuffer{}
	d, err := discovery.New(cfg, "self@127.0.0.1", discoverytest.NewConnector(),
		discovery.WithClock(clock), discovery.WithObserver(m.DiscoveryObserver()),
		discovery.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last registered first: the log is printed once
	// discovery has stopped.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("discovery log:\n%s", logs.String())
		}
	})
	testutil.Background(t, "discovery Run", d.Run)
	n := &fakeNode{}
	n.started.Store(true)
	_, url := serve(t, metrics.DefaultServerConfig(), reg, n, d)

	// poll moves the fake clock until the counter of polls with result
	// reaches want: the discoverer arms its next timer after each poll.
	poll := func(result discovery.PollResult, want float64) {
		t.Helper()
		testutil.Eventually(t, 20*time.Second, func() (bool, string) {
			v, _ := value(scrape(t, url), "gonode_discovery_polls_total", "strategy=dns", "result="+string(result))
			if v >= want {
				return true, ""
			}
			clock.Advance(10 * time.Second)
			return false, fmt.Sprintf("polls_total{result=%s} = %v, want %v", result, v, want)
		})
	}

	poll(discovery.PollError, 1) // the first poll starts at once and fails
	if code, body := get(t, url+"/readyz"); code != 503 || body != "waiting for first discovery poll\n" {
		t.Fatalf("/readyz after a failed first poll = %d %q", code, body)
	}
	mfs := scrape(t, url)
	if v, _ := value(mfs, "gonode_discovery_lookup_duration_seconds", "transport=udp"); v < 1 {
		t.Errorf("the failed lookup is not in gonode_discovery_lookup_duration_seconds{transport=udp}: count %v", v)
	}

	failing.Store(false)
	poll(discovery.PollOK, 1)
	if code, body := get(t, url+"/readyz"); code != 200 {
		t.Fatalf("/readyz after a good poll = %d %q", code, body)
	}
	mfs = scrape(t, url)
	if v, _ := value(mfs, "gonode_discovery_answer_records"); v < 1 {
		t.Errorf("the answer is not in gonode_discovery_answer_records: count %v", v)
	}
	waitMetric(t, url, equal(1), "gonode_discovery_peers", "set=desired")
	waitMetric(t, url, atLeast(1), "gonode_discovery_actions_total", "action=connect", "result=ok")

	failing.Store(true)
	poll(discovery.PollError, 2)
	if code, body := get(t, url+"/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz after a later failed poll = %d %q, want 200: the first success stands", code, body)
	}
	_, rep := debugPeers(t, url)
	if rep.Discovery == nil || rep.Discovery.LastResult != discovery.PollError || !rep.Discovery.Ready {
		t.Errorf("/debug/peers discovery = %+v, want ready with last result error", rep.Discovery)
	}
	if len(rep.Peers) != 1 || rep.Peers[0].Name != "app@127.0.0.7" || rep.Peers[0].Address != "127.0.0.7" || !rep.Peers[0].Discovered {
		t.Errorf("/debug/peers peers = %+v, want app@127.0.0.7 from the last good answer", rep.Peers)
	}
}

// TestEPMDRequests queries an epmd.Server whose observer is the metrics' and
// checks gonode_epmd_requests_total.
func TestEPMDRequests(t *testing.T) {
	reg, m := newMetrics(t)
	_, addr := epmdtest.StartServer(t, epmd.DefaultConfig(), epmd.WithObserver(m.EPMDObserver()))
	n := &fakeNode{}
	_, url := serve(t, metrics.DefaultServerConfig(), reg, n, nil)
	c := &epmd.Client{Addr: addr}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg1, err := c.Register(ctx, epmd.NodeInfo{Name: "metricsnode", Port: 45678, Type: epmd.NodeTypeNormal,
		Protocol: epmd.ProtocolTCP, HighestVersion: 6, LowestVersion: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer reg1.Close()
	if _, err := c.Names(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LookupPort(ctx, "metricsnode"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LookupPort(ctx, "nobody"); err == nil {
		t.Fatal("LookupPort of an unregistered name succeeded")
	}
	want := map[string]float64{
		"request=alive2,result=ok":              1,
		"request=names,result=ok":               1,
		"request=port_please2,result=ok":        1,
		"request=port_please2,result=not_found": 1,
	}
	for _, labels := range slices.Sorted(maps.Keys(want)) {
		waitMetric(t, url, equal(want[labels]), "gonode_epmd_requests_total", strings.Split(labels, ",")...)
	}
}

// TestCookieNeverShown runs a node with a distinctive cookie, a real erl peer
// with it, one with a wrong cookie, and static discovery (one peer that
// exists, one that does not), then looks for the cookie in every endpoint and
// in every log line of the run.
func TestCookieNeverShown(t *testing.T) {
	reg, m := newMetrics(t)
	const cookie = "MetricsCanaryCookie7f3a9c"
	logs := &testutil.SyncBuffer{}
	goName := uniq("gocookie") + "@127.0.0.1"
	n := startNode(t, m, goName, cookie, logs)

	erl := beamtest.Start(t, beamtest.Host, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
	wrong := beamtest.Start(t, beamtest.Host, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: "not" + cookie})
	if got := wrong.Eval(t, fmt.Sprintf("net_adm:ping('%s').", goName)); got != "pang" {
		t.Fatalf("ping with a wrong cookie = %s, want pang", got)
	}

	dcfg := discovery.DefaultConfig()
	dcfg.Strategy, dcfg.Hosts = discovery.StrategyStatic, []string{erl.Name, "ghost@127.0.0.1"}
	dlog := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := discovery.New(dcfg, goName, n, discovery.WithObserver(m.DiscoveryObserver()), discovery.WithLogger(dlog))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, "discovery Run", d.Run)
	scfg := metrics.DefaultServerConfig()
	scfg.Addr = "127.0.0.1:0"
	srv, err := metrics.NewServer(scfg, reg, nodeState{n}, d, metrics.WithServerLogger(dlog.With("test", "server")))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, "Serve", srv.Serve)
	url := "http://" + srv.Addr().String()

	// Wait until discovery connected the real peer and gave up once on the ghost.
	testutil.Eventually(t, 30*time.Second, func() (bool, string) {
		body, rep := debugPeers(t, url)
		var erlUp, ghostFailed bool
		for _, p := range rep.Peers {
			erlUp = erlUp || (p.Name == erl.Name && p.State == discovery.StateConnected)
			ghostFailed = ghostFailed || (p.Name == "ghost@127.0.0.1" && p.LastError != "")
		}
		return erlUp && ghostFailed, body
	})

	var bodies []string
	for _, path := range []string{"/metrics", "/debug/peers", "/readyz", "/healthz"} {
		_, body := get(t, url+path)
		bodies = append(bodies, path+":\n"+body)
	}
	bodies = append(bodies, "logs:\n"+logs.String())
	for _, b := range bodies {
		if i := strings.Index(b, cookie); i >= 0 {
			t.Errorf("the cookie appears in %s", b[:strings.IndexByte(b, '\n')])
		}
	}
	if !strings.Contains(logs.String(), "ghost@127.0.0.1") {
		t.Errorf("the logs do not mention the failed peer: the scan saw too little")
	}
}
