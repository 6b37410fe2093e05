package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/discovery/discoverytest"
)

const self = "app@10.0.0.1"

var qA = discovery.Query{Name: "headless", Type: discovery.TypeA}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// count returns how many records at level lvl contain msg.
func (l *logRecorder) count(lvl slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.Level == lvl && strings.Contains(r.Message, msg) {
			n++
		}
	}
	return n
}

// sum adds up the integer attribute key over every record.
func (l *logRecorder) sum(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				n += int(a.Value.Int64())
			}
			return true
		})
	}
	return n
}

// recObserver records what the Discoverer reports.
type recObserver struct {
	mu      sync.Mutex
	polls   []discovery.PollEvent
	lookups []discovery.LookupEvent
	actions []discovery.ActionEvent
	peers   []discovery.PeerCounts
}

func (o *recObserver) Poll(e discovery.PollEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.polls = append(o.polls, e)
}
func (o *recObserver) Lookup(e discovery.LookupEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lookups = append(o.lookups, e)
}
func (o *recObserver) Action(e discovery.ActionEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.actions = append(o.actions, e)
}
func (o *recObserver) Peers(e discovery.PeerCounts) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.peers = append(o.peers, e)
}

type harness struct {
	t     *testing.T
	clock *discoverytest.Clock
	res   *discoverytest.Resolver
	conn  *discoverytest.Connector
	obs   *recObserver
	logs  *logRecorder
	d     *discovery.Discoverer
	stop  context.CancelFunc
	done  chan error
}

func dnsConfig() discovery.Config {
	cfg := discovery.DefaultConfig()
	cfg.Service = qA.Name
	cfg.ApplicationName = "app"
	cfg.Resolver = "127.0.0.1:53" // never dialled: the tests inject a Resolver
	return cfg
}

// newHarness builds a Discoverer on fakes; call it inside a synctest bubble.
func newHarness(t *testing.T, cfg discovery.Config) *harness {
	t.Helper()
	h := &harness{t: t, clock: discoverytest.NewClock(t0), res: discoverytest.NewResolver(),
		conn: discoverytest.NewConnector(), obs: &recObserver{}, logs: &logRecorder{}, done: make(chan error, 1)}
	d, err := discovery.New(cfg, self, h.conn, discovery.WithClock(h.clock), discovery.WithResolver(h.res),
		discovery.WithObserver(h.obs), discovery.WithLogger(slog.New(h.logs)), discovery.WithRand(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.d = d
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	go func() { h.done <- h.d.Run(ctx) }()
	h.t.Cleanup(h.shutdown)
	synctest.Wait()
}

func (h *harness) shutdown() {
	h.stop()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
}

// advance moves the fake clock and waits until the discoverer is idle.
func (h *harness) advance(d time.Duration) {
	h.clock.Advance(d)
	synctest.Wait()
}

// nextPoll moves the clock to the next pending timer (the poll timer when
// nothing else waits).
func (h *harness) nextPoll() {
	d, ok := h.clock.Next()
	if !ok {
		h.t.Fatalf("no timer pending")
	}
	h.advance(d)
}

func ips(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)
	}
	return out
}

func TestShellFirstPollAtStartWithoutBlocking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, dnsConfig())
		h.res.Hold() // the first lookup hangs: start-up must not
		h.res.Set(qA, discoverytest.Addrs("10.0.0.2"), nil)
		h.start()
		if got := len(h.res.Calls()); got != 1 {
			t.Fatalf("%d lookups at start, want 1 without advancing the clock", got)
		}
		if h.d.Ready() {
			t.Fatal("ready before the first poll succeeded")
		}
		h.res.Release()
		synctest.Wait()
		if !h.d.Ready() || !h.conn.IsConnected("app@10.0.0.2") {
			t.Fatalf("ready=%v connected=%v", h.d.Ready(), h.conn.Connected())
		}
	})
}

func TestShellPollsOncePerIntervalWithJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := dnsConfig()
		h := newHarness(t, cfg)
		h.res.Set(qA, discoverytest.Addrs("10.0.0.2"), nil)
		h.start()
		var gaps []time.Duration
		for i := 0; i < 20; i++ {
			if n := h.clock.Pending(); n != 1 {
				t.Fatalf("poll %d: %d timers pending, want the one poll timer", i, n)
			}
			d, _ := h.clock.Next()
			gaps = append(gaps, d)
			if d < 4500*time.Millisecond || d > 5500*time.Millisecond {
				t.Fatalf("interval %v outside 5s +-10 %%", d)
			}
			h.advance(d - time.Nanosecond)
			if got := len(h.res.Calls()); got != i+1 {
				t.Fatalf("%d lookups before the interval ended, want %d", got, i+1)
			}
			h.advance(time.Nanosecond)
			if got := len(h.res.Calls()); got != i+2 {
				t.Fatalf("%d lookups after interval %d, want %d (one poll per interval)", got, i+1, i+2)
			}
		}
		if slices.Min(gaps) == slices.Max(gaps) {
			t.Fatalf("no jitter: every interval is %v", gaps[0])
		}
	})
}

func TestShellPollsNeverOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, dnsConfig())
		h.res.Hold()
		h.start()
		for i := 0; i < 4; i++ {
			h.advance(time.Second)
		}
		if got := len(h.res.Calls()); got != 1 {
			t.Fatalf("%d lookups after 4 s with a hung resolver, want 1", got)
		}
		// The hung lookup is cut at one polling interval (5 s); the next poll
		// starts one interval (+-10 %) after that one ended.
		for i := 0; i < 8; i++ {
			h.advance(time.Second)
		}
		if got := len(h.res.Calls()); got != 2 {
			t.Fatalf("%d lookups after 12 s with a hung resolver, want 2", got)
		}
		if snap := h.d.Snapshot(); snap.LastResult != discovery.PollError {
			t.Fatalf("the cut lookup was not a failed poll: %+v", snap)
		}
		h.res.Release()
		synctest.Wait()
	})
}

func TestShellFailedLookupKeepsMesh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, dnsConfig())
		h.res.Set(qA, discoverytest.Addrs("10.0.0.2", "10.0.0.3"), nil)
		h.start()
		h.res.Set(qA, discovery.Answer{}, discoverytest.Failed(qA))
		for i := 0; i < 5; i++ {
			h.nextPoll()
		}
		if got := h.conn.Connected(); len(got) != 2 {
			t.Fatalf("connected %v after failed lookups, want both peers", got)
		}
		for _, c := range h.conn.Calls() {
			if c.Op == discovery.ActDisconnect {
				t.Fatalf("disconnect %s after a failed lookup", c.Node)
			}
		}
		if n := h.logs.count(slog.LevelWarn, "lookup failed"); n != 1 {
			t.Fatalf("%d lookup-failed warnings over 5 failed polls, want 1", n)
		}
		snap := h.d.Snapshot()
		if snap.LastResult != discovery.PollError || snap.LastError == "" {
			t.Fatalf("snapshot %+v", snap)
		}
	})
}

func TestShellPrunesAfterConsecutiveAbsentAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, dnsConfig())
		h.res.Set(qA, discoverytest.Addrs("10.0.0.2", "10.0.0.3"), nil)
		h.start()
		h.res.Set(qA, discoverytest.Addrs("10.0.0.2"), nil)
		h.nextPoll()
		if !h.conn.IsConnected("app@10.0.0.3") {
			t.Fatal("pruned after one absent answer")
		}
		h.nextPoll()
		if h.conn.IsConnected("app@10.0.0.3") || h.conn.Count(discovery.ActDisconnect, "app@10.0.0.3") != 1 {
			t.Fatalf("not pruned after two absent answers: %v", h.conn.Calls())
		}
	})
}

func TestShellPruneFalseNeverDisconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := dnsConfig()
		cfg.Prune = false
		h := newHarness(t, cfg)
		h.res.Set(qA, discoverytest.Addrs("10.0.0.2"), nil)
		h.start()
		h.res.Set(qA, discovery.Answer{}, &discovery.LookupError{Kind: discovery.ErrNotFound})
		for i := 0; i < 5; i++ {
			h.nextPoll()
		}
		if !h.conn.IsConnected("app@10.0.0.2") {
			t.Fatalf("disconnected with --prune=false: %v", h.conn.Calls())
		}
	})
}

func TestShellUndiscoveredPeersNeverPruned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, dnsConfig())
		h.conn.Inbound("other@10.9.9.9")
		h.res.Set(qA, discoverytest.Addrs("10.0.0.2"), nil)
		h.start()
		h.res.Set(qA, discovery.Answer{}, &discovery.LookupError{Kind: discovery.ErrNotFound})
		for i := 0; i < 4; i++ {
			h.nextPoll()
		}
		if !h.conn.IsConnected("other@10.9.9.9") || h.conn.IsConnected("app@10.0.0.2") {
			t.Fatalf("connected %v; want only the undiscovered peer", h.conn.Connected())
		}
	})
}

func TestShellNeverConnectsToSelf(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, dnsConfig())
		h.res.Set(qA, discoverytest.Addrs("10.0.0.1", "10.0.0.2"), nil)
		h.start()
		h.nextPoll()
		if n := h.conn.Count(discovery.ActConnect, self); n != 0 {
			t.Fatalf("connected to itself %d times", n)
		}
	})
}

func TestShellConnectsInParallelBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := dnsConfig()
		h := newHarness(t, cfg)
		h.conn.Hold()
		h.res.Set(qA, discoverytest.Addrs(ips(100)...), nil)
		h.start()
		now, peak := h.conn.InFlight()
		if now != cfg.MaxConcurrentConnects || peak != cfg.MaxConcurrentConnects {
			t.Fatalf("in flight %d (peak %d), want %d", now, peak, cfg.MaxConcurrentConnects)
		}
		h.conn.Release()
		synctest.Wait()
		if _, peak := h.conn.InFlight(); peak > cfg.MaxConcurrentConnects {
			t.Fatalf("peak %d > %d", peak, cfg.MaxConcurrentConnects)
		}
		if got := len(h.conn.Connected()); got != 100 {
			t.Fatalf("%d connected, want 100", got)
		}
	})
}

func TestShellConnectTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := dnsConfig()
		cfg.ConnectTimeout = 3 * time.Second
		h := newHarness(t, cfg)
		h.conn.Hold()
		h.res.Set(qA, discoverytest.Addrs("10.0.0.2"), nil)
		h.start()
		h.advance(3*time.Second - time.Nanosecond)
		if now, _ := h.conn.InFlight(); now != 1 {
			t.Fatalf("connect ended before its timeout")
		}
		h.advance(time.Nanosecond)
		if now, _ := h.conn.InFlight(); now != 0 {
			t.Fatalf("connect still running after its timeout")
		}
		p := h.d.Snapshot().Peers[0]
		if p.State != discovery.StateBackoff || !strings.Contains(p.LastError, discovery.ErrConnectTimeout.Error()) {
			t.Fatalf("peer %+v", p)
		}
	})
}

func TestShellBackoffLoggedOncePerChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, dnsConfig())
		h.conn.Fail("app@10.0.0.2", errors.New("connection refused"))
		h.res.Set(qA, discoverytest.Addrs("10.0.0.2"), nil)
		h.start()
		var retries []time.Time
		for i := 0; i < 40; i++ { // 40 polls, about 200 s
			before := h.conn.Count(discovery.ActConnect, "app@10.0.0.2")
			h.nextPoll()
			if h.conn.Count(discovery.ActConnect, "app@10.0.0.2") > before {
				retries = append(retries, h.clock.Now())
			}
		}
		if len(retries) >= 40 || len(retries) < 5 {
			t.Fatalf("%d connects over 40 polls: want backoff, not a retry per poll", len(retries))
		}
		for i := 2; i < len(retries); i++ {
			if retries[i].Sub(retries[i-1]) < retries[i-1].Sub(retries[i-2]) && retries[i].Sub(retries[i-1]) < 50*time.Second {
				t.Fatalf("retry gaps shrink: %v", retries)
			}
		}
		if n := h.logs.count(slog.LevelWarn, "connect failed"); n != 1 {
			t.Fatalf("%d warnings for one failing peer, want 1", n)
		}
		p := h.d.Snapshot().Peers[0]
		if p.State != discovery.StateBackoff && p.State != discovery.StateConnecting {
			t.Fatalf("peer %+v", p)
		}
		if p.State == discovery.StateBackoff && !p.NextRetry.After(h.clock.Now()) {
			t.Fatalf("next retry %v not after now %v", p.NextRetry, h.clock.Now())
		}
		h.conn.Fail("app@10.0.0.2", nil)
		for i := 0; i < 15 && !h.conn.IsConnected("app@10.0.0.2"); i++ {
			h.nextPoll()
		}
		if !h.conn.IsConnected("app@10.0.0.2") || h.logs.count(slog.LevelInfo, "peer connected") != 1 {
			t.Fatalf("no recovery: connected=%v", h.conn.Connected())
		}
	})
}

func TestShellReconnectsDroppedPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, dnsConfig())
		h.res.Set(qA, discoverytest.Addrs("10.0.0.2"), nil)
		h.start()
		h.conn.Drop("app@10.0.0.2")
		h.nextPoll()
		if !h.conn.IsConnected("app@10.0.0.2") || h.conn.Count(discovery.ActConnect, "app@10.0.0.2") != 2 {
			t.Fatalf("dropped peer not reconnected at the next poll: %v", h.conn.Calls())
		}
	})
}

func TestShellMaxPeersCutWithWarning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := dnsConfig()
		cfg.MaxPeers = 10
		h := newHarness(t, cfg)
		h.res.Set(qA, discoverytest.Addrs(ips(30)...), nil)
		h.start()
		h.nextPoll()
		h.nextPoll()
		if got := len(h.conn.Connected()); got != 10 {
			t.Fatalf("%d connected, want --max-peers 10", got)
		}
		if got := len(h.d.Snapshot().Peers); got != 10 {
			t.Fatalf("%d peers kept in state, want 10", got)
		}
		if n := h.logs.count(slog.LevelWarn, "max-peers"); n != 1 {
			t.Fatalf("%d max-peers warnings over 3 polls, want 1", n)
		}
	})
}

func TestShellNothingReconnectsAfterStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, dnsConfig())
		h.res.Set(qA, discoverytest.Addrs(ips(40)...), nil)
		h.conn.Hold()
		h.start() // 16 connects running, 24 queued
		h.d.Stop()
		if err := <-h.done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		h.done <- nil // for the cleanup
		calls := len(h.conn.Calls())
		if now, _ := h.conn.InFlight(); now != 0 {
			t.Fatalf("%d connects still running after Run returned", now)
		}
		h.conn.Release()
		h.conn.Drop("app@10.1.0.1")
		h.advance(10 * time.Minute)
		if got := len(h.conn.Calls()); got != calls || calls != 16 {
			t.Fatalf("calls %d -> %d after stop; want 16, unchanged", calls, got)
		}
		if len(h.conn.Connected()) != 0 {
			t.Fatalf("connected after stop: %v", h.conn.Connected())
		}
	})
}

func TestShellSnapshotAndReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, dnsConfig())
		h.conn.Fail("app@10.0.0.3", errors.New("refused"))
		h.res.Queue(qA, discoverytest.Reply{Err: discoverytest.Failed(qA)})
		h.res.Set(qA, discoverytest.Addrs("10.0.0.2", "10.0.0.3", "10.0.0.4"), nil)
		h.start()
		if h.d.Ready() || h.d.Snapshot().Ready {
			t.Fatal("ready after a failed first poll")
		}
		h.nextPoll()
		if !h.d.Ready() {
			t.Fatal("not ready after a successful poll")
		}
		h.res.Set(qA, discoverytest.Addrs("10.0.0.2", "10.0.0.3"), nil)
		h.nextPoll()
		snap := h.d.Snapshot()
		want := map[string]discovery.PeerState{
			"app@10.0.0.2": discovery.StateConnected, "app@10.0.0.3": discovery.StateBackoff, "app@10.0.0.4": discovery.StatePruning,
		}
		if len(snap.Peers) != 3 {
			t.Fatalf("peers %+v", snap.Peers)
		}
		for _, p := range snap.Peers {
			if p.State != want[p.Name] || p.Since.IsZero() || p.Address == "" {
				t.Errorf("peer %+v, want state %q", p, want[p.Name])
			}
		}
		if snap.Peers[1].LastError != "refused" || snap.Peers[1].NextRetry.IsZero() {
			t.Errorf("backoff peer %+v", snap.Peers[1])
		}
		if snap.Counts != (discovery.PeerCounts{Desired: 2, Connected: 2, Backoff: 1}) {
			t.Errorf("counts %+v", snap.Counts)
		}
	})
}

func TestShellObserver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, dnsConfig())
		h.conn.Fail("app@10.0.0.3", errors.New("refused"))
		h.res.Set(qA, discovery.Answer{Addrs: discoverytest.Addrs("10.0.0.2", "10.0.0.3").Addrs, Records: 2, Transport: discovery.TransportTCP}, nil)
		h.start()
		h.res.Set(qA, discovery.Answer{Transport: discovery.TransportUDP}, discoverytest.Failed(qA))
		h.nextPoll()
		h.res.Set(qA, discovery.Answer{Transport: discovery.TransportUDP}, &discovery.LookupError{Kind: discovery.ErrNotFound})
		h.nextPoll()
		o := h.obs
		o.mu.Lock()
		defer o.mu.Unlock()
		var results []discovery.PollResult
		for _, p := range o.polls {
			results = append(results, p.Result)
			if p.Strategy != discovery.StrategyDNS {
				t.Errorf("strategy %q", p.Strategy)
			}
		}
		if want := []discovery.PollResult{discovery.PollOK, discovery.PollError, discovery.PollEmpty}; !slices.Equal(results, want) {
			t.Fatalf("poll results %v, want %v", results, want)
		}
		if l := o.lookups[0]; l.Transport != discovery.TransportTCP || l.Records != 2 || l.Result != discovery.PollOK {
			t.Fatalf("lookup event %+v", l)
		}
		if l := o.lookups[1]; l.Result != discovery.PollError {
			t.Fatalf("lookup event %+v", l)
		}
		okc, errc := 0, 0
		for _, a := range o.actions {
			if a.Kind == discovery.ActConnect && a.Outcome == discovery.OutcomeOK {
				okc++
			}
			if a.Kind == discovery.ActConnect && a.Outcome == discovery.OutcomeError {
				errc++
			}
		}
		if okc != 1 || errc < 1 {
			t.Fatalf("actions %+v", o.actions)
		}
		if last := o.peers[len(o.peers)-1]; last.Desired != 0 {
			t.Fatalf("peer counts after an empty answer %+v", last)
		}
		if first := o.peers[0]; first.Desired != 2 {
			t.Fatalf("peer counts after the first answer %+v", first)
		}
	})
}

func TestShellDiscoveryOffLogsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, discovery.DefaultConfig())
		h.start()
		h.advance(time.Hour)
		if n := h.logs.count(slog.LevelInfo, "discovery is off"); n != 1 {
			t.Fatalf("%d 'discovery is off' lines, want 1", n)
		}
		if !h.d.Ready() || len(h.res.Calls()) != 0 || len(h.conn.Calls()) != 0 {
			t.Fatalf("ready=%v lookups=%d calls=%d", h.d.Ready(), len(h.res.Calls()), len(h.conn.Calls()))
		}
	})
}

func TestShellStaticStrategy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := discovery.DefaultConfig()
		cfg.Strategy = discovery.StrategyStatic
		cfg.Hosts = []string{"a@host1", "b@host2", self}
		h := newHarness(t, cfg)
		h.start()
		if got := h.conn.Connected(); !slices.Equal(got, []string{"a@host1", "b@host2"}) {
			t.Fatalf("connected %v", got)
		}
		if len(h.res.Calls()) != 0 {
			t.Fatal("static strategy asked the resolver")
		}
	})
}

func TestShellIPFamiliesAndSRV(t *testing.T) {
	qAAAA := discovery.Query{Name: qA.Name, Type: discovery.TypeAAAA}
	for _, tc := range []struct {
		name   string
		family discovery.IPFamily
		want   []string
	}{
		{"ipv4", discovery.IPv4, []string{"app@10.0.0.2"}},
		{"ipv6", discovery.IPv6, []string{"app@fd00::2"}},
		{"dual", discovery.DualStack, []string{"app@10.0.0.2", "app@fd00::2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := dnsConfig()
				cfg.IPFamily = tc.family
				h := newHarness(t, cfg)
				h.res.Set(qA, discoverytest.Addrs("10.0.0.2"), nil)
				h.res.Set(qAAAA, discoverytest.Addrs("fd00::2"), nil)
				h.start()
				if got := h.conn.Connected(); !slices.Equal(got, tc.want) {
					t.Fatalf("connected %v, want %v", got, tc.want)
				}
			})
		})
	}
	t.Run("dual with one family failing is a failed poll", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := dnsConfig()
			cfg.IPFamily = discovery.DualStack
			h := newHarness(t, cfg)
			h.res.Set(qA, discoverytest.Addrs("10.0.0.2"), nil)
			h.res.Set(qAAAA, discovery.Answer{}, discoverytest.Failed(qAAAA))
			h.start()
			if len(h.conn.Connected()) != 0 || h.d.Ready() {
				t.Fatalf("a half answer was used: %v", h.conn.Connected())
			}
		})
	})
	t.Run("dnssrv", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := dnsConfig()
			cfg.Strategy, cfg.Service, cfg.Namespace = discovery.StrategyDNSSRV, "web", "prod"
			h := newHarness(t, cfg)
			q := discovery.Query{Name: "web.prod.svc.cluster.local.", Type: discovery.TypeSRV}
			h.res.Set(q, discovery.Answer{SRV: []discovery.SRV{{Target: "web-0.web.prod.svc.cluster.local", Port: 4369}}, Records: 1}, nil)
			h.start()
			if got := h.conn.Connected(); !slices.Equal(got, []string{"app@web-0.web.prod.svc.cluster.local"}) {
				t.Fatalf("connected %v", got)
			}
		})
	})
}

func TestShellNearLimitWarning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, dnsConfig())
		ans := discoverytest.Addrs(ips(20)...)
		ans.NearLimit = true
		h.res.Set(qA, ans, nil)
		h.start()
		h.nextPoll()
		if n := h.logs.count(slog.LevelWarn, "65,535-byte"); n != 1 {
			t.Fatalf("%d message-limit warnings over 2 polls, want 1", n)
		}
	})
}

func TestRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, dnsConfig())
		h.res.Set(qA, discoverytest.Addrs("10.0.0.2"), nil)
		h.start()
		if err := h.d.Run(context.Background()); !errors.Is(err, discovery.ErrAlreadyStarted) {
			t.Fatalf("second Run: %v", err)
		}
	})
}

// floodConnector fails every connect, with an error that alternates between
// two texts for each peer, as a real network does (refused, then timed out):
// every failure is a change that the core reports as new.
type floodConnector struct {
	mu       sync.Mutex
	attempts map[string]int
	failures int
}

func (c *floodConnector) Connect(_ context.Context, node string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.attempts == nil {
		c.attempts = map[string]int{}
	}
	c.attempts[node]++
	c.failures++
	if c.attempts[node]%2 == 1 {
		return fmt.Errorf("dial %s: connection refused", node)
	}
	return fmt.Errorf("dial %s: i/o timeout", node)
}

func (c *floodConnector) Disconnect(string) error { return nil }
func (c *floodConnector) Connected() []string     { return nil }

func (c *floodConnector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failures
}

// TestShellConnectFailuresAreRateLimited: a DNS answer of 4,000 unreachable
// addresses, polled for five minutes, writes a bounded number of
// connect-failure lines (per peer and overall), while the observer hears
// every failure and the lines plus their suppressed counts add up to every
// failure.
func TestShellConnectFailuresAreRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const peers = 4000
		clk := discoverytest.NewClock(t0)
		res := discoverytest.NewResolver()
		res.Set(qA, discoverytest.Addrs(ips(peers)...), nil)
		conn := &floodConnector{}
		obs := &recObserver{}
		logs := &logRecorder{}
		d, err := discovery.New(dnsConfig(), self, conn, discovery.WithClock(clk), discovery.WithResolver(res),
			discovery.WithObserver(obs), discovery.WithLogger(slog.New(logs)), discovery.WithRand(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		synctest.Wait()
		const elapsed = 5 * time.Minute
		for clk.Now().Sub(t0) < elapsed {
			next, ok := clk.Next()
			if !ok {
				t.Fatal("no timer pending")
			}
			clk.Advance(next)
			synctest.Wait()
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}

		failures := conn.count()
		if failures < 2*peers {
			t.Fatalf("%d failed connects in %v, want every peer retried", failures, elapsed)
		}
		errorsSeen := 0
		for _, a := range obs.actions {
			if a.Kind == discovery.ActConnect && a.Outcome == discovery.OutcomeError {
				errorsSeen++
			}
		}
		if errorsSeen != failures {
			t.Fatalf("the observer saw %d failed connects, the connector %d: metrics must count every one", errorsSeen, failures)
		}

		// At most 20 lines a minute of all peers together (and 2 per peer),
		// plus a summary line a minute and one at the stop.
		minutes := int(elapsed/time.Minute) + 1
		warned := logs.count(slog.LevelWarn, "connect failed")
		summaries := logs.count(slog.LevelWarn, "log lines suppressed")
		if warned > 20*minutes || summaries > minutes+1 {
			t.Fatalf("%d connect-failure warnings and %d summaries for %d failures in %v; want at most %d and %d",
				warned, summaries, failures, elapsed, 20*minutes, minutes+1)
		}
		if reported := warned + logs.sum("suppressed"); reported != failures {
			t.Fatalf("%d lines + %d suppressed = %d, want every failure (%d) accounted for",
				warned, logs.sum("suppressed"), reported, failures)
		}
	})
}
