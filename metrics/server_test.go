package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/metrics"
)

// fakeNode is a NodeState the test drives.
type fakeNode struct {
	started atomic.Bool
	peers
}

func (n *fakeNode) Started() bool { return n.started.Load() }

// fakeDiscovery is a DiscoveryState the test drives.
type fakeDiscovery struct {
	ready atomic.Bool
	mu    sync.Mutex
	snap  discovery.Snapshot
}

func (d *fakeDiscovery) Ready() bool { return d.ready.Load() }

func (d *fakeDiscovery) Snapshot() discovery.Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.snap
	s.Ready = d.ready.Load()
	return s
}

// serve starts a Server on a free loopback port and returns its base URL;
// the server is shut down in t.Cleanup and Serve must return nil.
func serve(t *testing.T, cfg metrics.ServerConfig, g prometheus.Gatherer, n metrics.NodeState, d metrics.DiscoveryState) (*metrics.Server, string) {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	s, err := metrics.NewServer(cfg, g, n, d, metrics.WithServerLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, "Serve", s.Serve)
	return s, "http://" + s.Addr().String()
}

// testLogger logs to the test's output (shown for a failed or -v test).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// get fetches url and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestServerConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*metrics.ServerConfig)
		bad  []string // substrings the error must carry; none: valid
	}{
		{"defaults", func(*metrics.ServerConfig) {}, nil},
		{"zero value", func(c *metrics.ServerConfig) { *c = metrics.ServerConfig{} }, nil},
		{"loopback any port", func(c *metrics.ServerConfig) { c.Addr = "127.0.0.1:0" }, nil},
		{"ipv6", func(c *metrics.ServerConfig) { c.Addr = "[::1]:9568" }, nil},
		{"no port", func(c *metrics.ServerConfig) { c.Addr = "localhost" }, []string{`"localhost"`}},
		{"empty port", func(c *metrics.ServerConfig) { c.Addr = "127.0.0.1:" }, []string{"has no port"}},
		{"negative min peers", func(c *metrics.ServerConfig) { c.MinPeers = -1 }, []string{"min peers"}},
		{"everything wrong", func(c *metrics.ServerConfig) {
			c.Addr, c.MinPeers, c.ReadTimeout, c.ShutdownTimeout = "nope", -3, -time.Second, -time.Second
		}, []string{`"nope"`, "min peers", "read timeout", "shutdown timeout"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := metrics.DefaultServerConfig()
			tc.edit(&cfg)
			before := cfg
			err := cfg.Validate()
			if cfg != before {
				t.Fatal("Validate changed the config")
			}
			if len(tc.bad) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, metrics.ErrInvalidServerConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidServerConfig", err)
			}
			for _, b := range tc.bad {
				if !strings.Contains(err.Error(), b) {
					t.Errorf("error %q does not mention %s", err, b)
				}
			}
		})
	}
}

func TestNewServerNeedsSources(t *testing.T) {
	reg := prometheus.NewRegistry()
	cases := []struct {
		name string
		g    prometheus.Gatherer
		n    metrics.NodeState
	}{
		{"no gatherer", nil, &fakeNode{}},
		{"no node", reg, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := metrics.NewServer(metrics.DefaultServerConfig(), tc.g, tc.n, nil); !errors.Is(err, metrics.ErrInvalidServerConfig) {
				t.Fatalf("NewServer = %v, want ErrInvalidServerConfig", err)
			}
		})
	}
}

// TestReadyzFlips walks /readyz through every reason, over real HTTP.
func TestReadyzFlips(t *testing.T) {
	reg, _ := newMetrics(t)
	n, d := &fakeNode{}, &fakeDiscovery{}
	cfg := metrics.DefaultServerConfig()
	cfg.MinPeers = 2
	_, url := serve(t, cfg, reg, n, d)
	step := func(name string, wantCode int, wantBody string) {
		t.Helper()
		code, body := get(t, url+"/readyz")
		if code != wantCode || body != wantBody+"\n" {
			t.Fatalf("%s: /readyz = %d %q, want %d %q", name, code, body, wantCode, wantBody+"\n")
		}
		if code, _ := get(t, url+"/healthz"); code != http.StatusOK {
			t.Fatalf("%s: /healthz = %d, want 200 while serving", name, code)
		}
	}
	step("before start", 503, "node not started")
	n.started.Store(true)
	step("started, no poll yet", 503, "waiting for first discovery poll")
	d.ready.Store(true)
	step("polled, no peer", 503, "0 of 2 peers connected")
	n.set("a@10.0.0.1")
	step("one peer", 503, "1 of 2 peers connected")
	n.set("a@10.0.0.1", "b@10.0.0.2")
	step("two peers", 200, "ready")
	d.ready.Store(false) // later polls fail: the first success stands
	step("polls fail later", 200, "ready")
	n.set("a@10.0.0.1")
	step("a peer left", 503, "1 of 2 peers connected")
	n.set("a@10.0.0.1", "b@10.0.0.2", "c@10.0.0.3")
	step("more peers than needed", 200, "ready")
}

func TestReadyzWithoutDiscovery(t *testing.T) {
	reg, _ := newMetrics(t)
	n := &fakeNode{}
	_, url := serve(t, metrics.DefaultServerConfig(), reg, n, nil)
	if code, body := get(t, url+"/readyz"); code != 503 || body != "node not started\n" {
		t.Fatalf("/readyz before start = %d %q", code, body)
	}
	n.started.Store(true)
	if code, body := get(t, url+"/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz with discovery off and MinPeers 0 = %d %q, want 200", code, body)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	reg, m := newMetrics(t)
	n := &fakeNode{}
	n.set("a@10.0.0.1", "b@10.0.0.2")
	m.SetPeerSource(n)
	m.EPMDObserver().ObserveRequest("names", "ok")
	_, url := serve(t, metrics.DefaultServerConfig(), reg, n, nil)
	code, body := get(t, url+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		"\ngonode_node_peers 2\n",
		"\ngonode_epmd_requests_total{request=\"names\",result=\"ok\"} 1\n",
		"\ngonode_build_info{goversion=\"go1.26.0\",version=\"1.2.3\"} 1\n",
		"\ngo_goroutines ",
		"\nprocess_start_time_seconds ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
	if code, _ := get(t, url+"/nothing"); code != http.StatusNotFound {
		t.Errorf("/nothing = %d, want 404", code)
	}
}

func TestDebugPeersEndpoint(t *testing.T) {
	reg, _ := newMetrics(t)
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	n, d := &fakeNode{}, &fakeDiscovery{}
	n.started.Store(true)
	d.ready.Store(true)
	d.snap = discovery.Snapshot{
		Strategy: discovery.StrategyDNS, Enabled: true, LastPoll: t0, LastResult: discovery.PollOK,
		Counts: discovery.PeerCounts{Desired: 2, Connected: 1, Backoff: 1},
		Peers: []discovery.PeerInfo{
			{Name: "app@10.0.0.1", Address: "10.0.0.1", State: discovery.StateConnected, Since: t0},
			{Name: "app@10.0.0.2", Address: "10.0.0.2", State: discovery.StateBackoff, Since: t0,
				LastError: "connection refused", Failures: 3, NextRetry: t0.Add(8 * time.Second)},
		},
	}
	n.set("app@10.0.0.1", "remsh@10.0.0.9")
	_, url := serve(t, metrics.DefaultServerConfig(), reg, n, d)
	code, body := get(t, url+"/debug/peers")
	if code != 200 {
		t.Fatalf("/debug/peers = %d %s", code, body)
	}
	var rep metrics.PeersReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("/debug/peers is not JSON: %v\n%s", err, body)
	}
	if rep.Discovery == nil || rep.Discovery.Strategy != discovery.StrategyDNS || !rep.Discovery.Ready || !rep.Discovery.LastPoll.Equal(t0) {
		t.Errorf("discovery status = %+v", rep.Discovery)
	}
	if rep.Connected != 2 {
		t.Errorf("connected = %d, want 2", rep.Connected)
	}
	want := []metrics.PeerStatus{
		{Name: "app@10.0.0.1", Address: "10.0.0.1", State: discovery.StateConnected, Discovered: true, Since: t0},
		{Name: "app@10.0.0.2", Address: "10.0.0.2", State: discovery.StateBackoff, Discovered: true, Since: t0,
			LastError: "connection refused", Failures: 3, NextRetry: t0.Add(8 * time.Second)},
		{Name: "remsh@10.0.0.9", State: discovery.StateConnected},
	}
	if !equalPeers(rep.Peers, want) {
		t.Errorf("peers =\n%+v\nwant\n%+v", rep.Peers, want)
	}
	for _, key := range []string{`"name"`, `"address"`, `"state"`, `"since"`, `"last_error"`, `"next_retry"`} {
		if !strings.Contains(body, key) {
			t.Errorf("/debug/peers lacks the key %s:\n%s", key, body)
		}
	}
}

func equalPeers(a, b []metrics.PeerStatus) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Name != y.Name || x.Address != y.Address || x.State != y.State || x.Discovered != y.Discovered ||
			!x.Since.Equal(y.Since) || x.LastError != y.LastError || x.Failures != y.Failures || !x.NextRetry.Equal(y.NextRetry) {
			return false
		}
	}
	return true
}

func TestMergePeers(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	info := func(name string, st discovery.PeerState) discovery.PeerInfo {
		return discovery.PeerInfo{Name: name, Address: strings.TrimPrefix(name, "app@"), State: st, Since: t0}
	}
	row := func(name string, st discovery.PeerState, discovered bool) metrics.PeerStatus {
		r := metrics.PeerStatus{Name: name, State: st, Discovered: discovered}
		if discovered {
			r.Address, r.Since = strings.TrimPrefix(name, "app@"), t0
		}
		return r
	}
	cases := []struct {
		name       string
		discovered []discovery.PeerInfo
		connected  []string
		want       []metrics.PeerStatus
	}{
		{"nothing", nil, nil, []metrics.PeerStatus{}},
		{"only inbound peers, sorted", nil, []string{"z@h", "a@h"},
			[]metrics.PeerStatus{row("a@h", discovery.StateConnected, false), row("z@h", discovery.StateConnected, false)}},
		{"connecting peer already connected by the node",
			[]discovery.PeerInfo{info("app@1", discovery.StateConnecting)}, []string{"app@1"},
			[]metrics.PeerStatus{row("app@1", discovery.StateConnected, true)}},
		{"backoff peer that connected to us",
			[]discovery.PeerInfo{info("app@1", discovery.StateBackoff)}, []string{"app@1"},
			[]metrics.PeerStatus{row("app@1", discovery.StateConnected, true)}},
		{"connected per discovery, gone per node",
			[]discovery.PeerInfo{info("app@1", discovery.StateConnected)}, nil,
			[]metrics.PeerStatus{row("app@1", discovery.StateDisconnected, true)}},
		{"pruning stays pruning while connected",
			[]discovery.PeerInfo{info("app@1", discovery.StatePruning)}, []string{"app@1"},
			[]metrics.PeerStatus{row("app@1", discovery.StatePruning, true)}},
		{"backoff stays backoff while not connected",
			[]discovery.PeerInfo{info("app@2", discovery.StateBackoff), info("app@1", discovery.StateConnecting)}, nil,
			[]metrics.PeerStatus{row("app@1", discovery.StateConnecting, true), row("app@2", discovery.StateBackoff, true)}},
		{"a name listed twice shows once",
			[]discovery.PeerInfo{info("app@1", discovery.StateConnected), info("app@1", discovery.StateBackoff)},
			[]string{"app@1", "app@1"},
			[]metrics.PeerStatus{row("app@1", discovery.StateConnected, true)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := metrics.MergePeers(tc.discovered, tc.connected)
			if got == nil || !equalPeers(got, tc.want) {
				t.Fatalf("MergePeers =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestServerLifecycle(t *testing.T) {
	reg, _ := newMetrics(t)
	newServer := func(t *testing.T) *metrics.Server {
		cfg := metrics.DefaultServerConfig()
		cfg.Addr = "127.0.0.1:0"
		s, err := metrics.NewServer(cfg, reg, &fakeNode{}, nil, metrics.WithServerLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("Serve listens by itself and returns nil after Shutdown", func(t *testing.T) {
		s := newServer(t)
		if s.Addr() != nil {
			t.Fatal("Addr before Listen is not nil")
		}
		done := make(chan error, 1)
		go func() { done <- s.Serve(context.Background()) }()
		var addr string
		testutil.Eventually(t, 10*time.Second, func() (bool, string) {
			if a := s.Addr(); a != nil {
				addr = a.String()
				return true, addr
			}
			return false, "no address yet"
		})
		if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
			t.Fatalf("/healthz = %d", code)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
		if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
			t.Fatal("the server still answers after Shutdown")
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatalf("second Shutdown = %v", err)
		}
	})
	t.Run("Listen twice", func(t *testing.T) {
		s := newServer(t)
		if err := s.Listen(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
		if err := s.Listen(); !errors.Is(err, metrics.ErrAlreadyListening) {
			t.Fatalf("second Listen = %v, want ErrAlreadyListening", err)
		}
	})
	t.Run("address in use", func(t *testing.T) {
		a := newServer(t)
		if err := a.Listen(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
		cfg := metrics.DefaultServerConfig()
		cfg.Addr = a.Addr().String()
		b, err := metrics.NewServer(cfg, reg, &fakeNode{}, nil, metrics.WithServerLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Serve(context.Background()); err == nil || !strings.Contains(err.Error(), cfg.Addr) {
			t.Fatalf("Serve on a taken port = %v, want a listen error naming %s", err, cfg.Addr)
		}
	})
	t.Run("Shutdown before Serve", func(t *testing.T) {
		s := newServer(t)
		if err := s.Listen(); err != nil {
			t.Fatal(err)
		}
		addr := s.Addr().String()
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.Serve(context.Background()); err != nil {
			t.Fatalf("Serve after Shutdown = %v, want nil", err)
		}
		if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
			t.Fatal("a shut-down server answers")
		}
	})
	t.Run("context ends", func(t *testing.T) {
		s := newServer(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx) }()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Serve = %v after its context ended, want nil", err)
		}
	})
}
