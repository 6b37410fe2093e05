package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gonode/gonode/internal/ratelog"
)

// Connector is what discovery drives; the node package satisfies it
// without importing discovery. Connect may be called concurrently (up to
// MaxConcurrentConnects at once) and must return when ctx ends. Disconnect
// must not block for long. Connected lists the names of all connected
// peers, discovered or not.
type Connector interface {
	Connect(ctx context.Context, node string) error
	Disconnect(node string) error
	Connected() []string
}

// Option sets an optional dependency of New.
type Option func(*options)

type options struct {
	clock    Clock
	log      *slog.Logger
	observer Observer
	rand     rand.Source
	resolver Resolver
	source   Source
}

// WithClock sets the clock (default RealClock).
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithObserver sets the observer (default NopObserver).
func WithObserver(obs Observer) Option { return func(o *options) { o.observer = obs } }

// WithRand sets the random source of the poll and backoff jitter (default
// math/rand/v2's global source). Tests pass a seeded source.
func WithRand(src rand.Source) Option { return func(o *options) { o.rand = src } }

// WithResolver sets the resolver of the dns and dnssrv strategies (default
// NewDNSResolver(cfg)).
func WithResolver(r Resolver) Option { return func(o *options) { o.resolver = r } }

// WithSource sets the Source of a watching strategy; the kubernetes
// strategy requires one (discovery/k8s.New builds it).
func WithSource(src Source) Option { return func(o *options) { o.source = src } }

type globalRand struct{}

func (globalRand) Uint64() uint64 { return rand.Uint64() }

// Discoverer is the I/O shell around Plan: one poll loop, a bounded pool of
// connects, and a read-only snapshot for /debug/peers (served by package metrics).
type Discoverer struct {
	cfg      Config
	policy   Policy
	app      string
	query    []Query
	conn     Connector
	opts     options
	log      *slog.Logger
	limit    *ratelog.Limiter // connect- and disconnect-failure lines
	interval time.Duration

	started atomic.Bool
	ready   atomic.Bool
	cancel  context.CancelCauseFunc
	stopMu  sync.Mutex
	stopped bool

	mu         sync.Mutex // guards the fields below
	state      State
	lastPoll   time.Time
	lastResult PollResult
	lastErr    string
}

// New builds a Discoverer for the node named self. It validates cfg and
// never modifies it. conn is required; the resolver comes from WithResolver
// or is built from cfg.
func New(cfg Config, self string, conn Connector, opts ...Option) (*Discoverer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, fmt.Errorf("%w: a Connector is required", ErrInvalidConfig)
	}
	o := options{clock: RealClock{}, log: slog.Default(), observer: NopObserver{}, rand: globalRand{}}
	for _, opt := range opts {
		opt(&o)
	}
	d := &Discoverer{cfg: cfg, conn: conn, opts: o, interval: cfg.PollingInterval}
	d.cfg.Hosts = append([]string(nil), cfg.Hosts...)
	d.log = o.log.With("component", "discovery", "strategy", string(cfg.Strategy))
	// An answer of thousands of unreachable addresses fails thousands of
	// connects per backoff round: each peer writes at most 2 failure lines a
	// minute and all peers together 20; a peer's next line carries
	// suppressed=N and a summary line counts the rest. The observer (and so
	// the metrics) hears every failure.
	d.limit = ratelog.New(d.log, ratelog.Config{Burst: 2, Every: time.Minute, Total: 20}, ratelog.WithClock(o.clock))
	d.policy = cfg.Policy(self)
	d.app = cfg.ApplicationName
	if d.app == "" {
		d.app, _, _ = strings.Cut(self, "@")
	}
	if cfg.Enabled() && cfg.Strategy != StrategyStatic {
		if d.app == "" {
			return nil, fmt.Errorf("%w: no application name and no node name to take it from", ErrInvalidConfig)
		}
		switch cfg.Strategy {
		case StrategyKubernetes:
			if d.opts.source == nil {
				return nil, fmt.Errorf("%w: strategy %q needs a Source (discovery/k8s)", ErrInvalidConfig, StrategyKubernetes)
			}
		case StrategyDNS:
			if cfg.IPFamily != IPv6 {
				d.query = append(d.query, Query{Name: cfg.Service, Type: TypeA})
			}
			if cfg.IPFamily != IPv4 {
				d.query = append(d.query, Query{Name: cfg.Service, Type: TypeAAAA})
			}
		case StrategyDNSSRV:
			d.query = []Query{{Name: SRVName(cfg), Type: TypeSRV}}
		}
		if d.opts.resolver == nil && cfg.Strategy != StrategyKubernetes {
			r, err := NewDNSResolver(cfg)
			if err != nil {
				return nil, err
			}
			d.opts.resolver = r
		}
	}
	d.state = NewState(o.rand.Uint64())
	return d, nil
}

// SRVName is the name the dnssrv strategy asks:
// <service>.<namespace>.svc.<cluster domain>. (absolute).
func SRVName(cfg Config) string {
	return fqdn(cfg.Service + "." + cfg.Namespace + ".svc." + strings.TrimSuffix(cfg.ClusterDomain, "."))
}

// Ready reports whether the first poll has succeeded (an empty answer
// counts). With discovery off it is true once Run has started.
func (d *Discoverer) Ready() bool { return d.ready.Load() }

// Stop starts shutdown: Run returns after its connects have ended, and
// nothing connects again. It may be called before Run and more than once.
func (d *Discoverer) Stop() {
	d.stopMu.Lock()
	defer d.stopMu.Unlock()
	d.stopped = true
	if d.cancel != nil {
		d.cancel(ErrStopped)
	}
}

// Snapshot is the read-only view of discovery's state; package metrics
// serves it, merged with the node's connections, on /debug/peers.
type Snapshot struct {
	Strategy   StrategyName
	Enabled    bool
	Ready      bool
	LastPoll   time.Time
	LastResult PollResult
	LastError  string
	Counts     PeerCounts
	Peers      []PeerInfo
}

// Snapshot returns a copy of the current per-peer state. Safe for
// concurrent use.
func (d *Discoverer) Snapshot() Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Snapshot{
		Strategy: d.cfg.Strategy, Enabled: d.cfg.Enabled(), Ready: d.ready.Load(),
		LastPoll: d.lastPoll, LastResult: d.lastResult, LastError: d.lastErr,
		Counts: d.state.Counts(), Peers: d.state.Peers(),
	}
}

// ErrAlreadyStarted: Run was called twice.
var ErrAlreadyStarted = errors.New("discovery already started")

// Run polls until ctx ends or Stop is called, then cancels running connects,
// waits for them and returns nil. The first poll starts at once; run it in
// its own goroutine so start-up does not wait for it. With discovery off it
// logs so once and waits.
func (d *Discoverer) Run(ctx context.Context) error {
	if !d.started.CompareAndSwap(false, true) {
		return ErrAlreadyStarted
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	d.stopMu.Lock()
	d.cancel = cancel
	if d.stopped {
		cancel(ErrStopped)
	}
	d.stopMu.Unlock()

	if !d.cfg.Enabled() {
		d.log.Info("discovery is off (no --service and no --hosts): the node runs on its own")
		d.ready.Store(true)
		<-ctx.Done()
		return nil
	}
	d.log.Info("discovery started", "service", d.cfg.Service, "hosts", len(d.cfg.Hosts),
		"polling_interval", d.interval.String())
	l := &loop{d: d, results: make(chan Result, d.cfg.MaxConcurrentConnects)}
	if src := d.opts.source; src != nil && d.cfg.Strategy == StrategyKubernetes {
		l.changed = src.Changed()
		srcCtx, stopSrc := context.WithCancel(ctx)
		srcDone := make(chan struct{})
		go func() {
			defer close(srcDone)
			src.Run(srcCtx)
		}()
		defer func() {
			stopSrc()
			<-srcDone
		}()
	}
	l.run(ctx)
	return nil
}

// loop is the state of one Run.
type loop struct {
	d        *Discoverer
	results  chan Result
	queue    []Action
	inflight int
	wg       sync.WaitGroup
	changed  <-chan struct{} // a Source's change signal; nil without one
	failing  bool            // the last poll failed (logged once per change)
	near     bool            // the last answer looked cut at the message limit
}

func (l *loop) run(ctx context.Context) {
	d := l.d
	timer := d.opts.clock.NewTimer(0)
	defer func() {
		timer.Stop()
		l.queue = nil
		l.wg.Wait()
		d.limit.Flush()
		d.log.Info("discovery stopped")
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C():
			l.poll(ctx)
			if ctx.Err() != nil {
				return
			}
			timer = d.opts.clock.NewTimer(l.nextInterval())
		case <-l.changed:
			// A watch reported a change: reconcile now, not at the next
			// poll. The poll timer keeps its schedule.
			l.poll(ctx)
			if ctx.Err() != nil {
				return
			}
		case r := <-l.results:
			batch := []Result{r}
			l.inflight--
			for more := true; more; {
				select {
				case r := <-l.results:
					batch = append(batch, r)
					l.inflight--
				default:
					more = false
				}
			}
			if ctx.Err() != nil {
				return
			}
			for _, r := range batch {
				d.opts.observer.Action(ActionEvent{Kind: r.Action.Kind, Outcome: outcome(r.Err)})
			}
			l.plan(Input{Now: d.opts.clock.Now(), Results: batch})
			l.dispatch(ctx)
		}
	}
}

// nextInterval is the polling interval with +-10 % jitter.
func (l *loop) nextInterval() time.Duration {
	f := 0.9 + 0.2*float64(l.d.opts.rand.Uint64()>>11)/(1<<53)
	return time.Duration(float64(l.d.interval) * f)
}

// poll runs one lookup and one reconcile.
func (l *loop) poll(ctx context.Context) {
	d := l.d
	start := d.opts.clock.Now()
	targets, err := l.lookup(ctx)
	if ctx.Err() != nil {
		return
	}
	result := PollOK
	switch {
	case err != nil:
		result = PollError
	case len(targets) == 0:
		result = PollEmpty
	}
	switch {
	case err != nil && !l.failing:
		d.log.Warn("discovery lookup failed; keeping the last good answer", "err", err)
	case err != nil:
		d.log.Debug("discovery lookup still failing", "err", err)
	case l.failing:
		d.log.Info("discovery lookup recovered", "peers", len(targets))
	}
	l.failing = err != nil
	if err == nil && !d.ready.Load() {
		d.log.Info("first discovery poll succeeded", "peers", len(targets))
	}
	in := Input{Now: d.opts.clock.Now(), Poll: &Poll{Targets: targets, Err: err, Connected: d.conn.Connected()}}
	l.plan(in)
	d.mu.Lock()
	d.lastPoll, d.lastResult = start, result
	d.lastErr = ""
	if err != nil {
		d.lastErr = err.Error()
	}
	d.mu.Unlock()
	if err == nil {
		d.ready.Store(true)
	}
	d.opts.observer.Poll(PollEvent{Strategy: d.cfg.Strategy, Result: result, Duration: d.opts.clock.Now().Sub(start)})
	l.dispatch(ctx)
}

// lookup asks the strategy for its targets. The lookups of one poll are
// bounded by one polling interval.
func (l *loop) lookup(ctx context.Context) ([]Target, error) {
	d := l.d
	if d.cfg.Strategy == StrategyKubernetes {
		return d.opts.source.Targets()
	}
	if d.cfg.Strategy == StrategyStatic {
		out := make([]Target, 0, len(d.cfg.Hosts))
		for _, h := range d.cfg.Hosts {
			_, host, _ := strings.Cut(h, "@")
			out = append(out, Target{Name: h, Addr: host})
		}
		return out, nil
	}
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	t := d.opts.clock.AfterFunc(d.interval, func() { cancel(fmt.Errorf("%w: lookup took longer than the polling interval", ErrLookupFailed)) })
	defer t.Stop()
	var out []Target
	near := false
	for _, q := range d.query {
		start := d.opts.clock.Now()
		ans, err := d.opts.resolver.Lookup(lctx, q)
		if err == nil && lctx.Err() != nil {
			err = context.Cause(lctx)
		}
		ev := LookupEvent{Duration: d.opts.clock.Now().Sub(start), Transport: ans.Transport, Records: ans.Records, Result: PollOK}
		if ev.Transport == "" {
			ev.Transport = TransportNone
		}
		switch {
		case errors.Is(err, ErrNotFound):
			ev.Result = PollEmpty
		case err != nil:
			ev.Result = PollError
			d.opts.observer.Lookup(ev)
			if !errors.Is(err, ErrLookupFailed) {
				err = fmt.Errorf("%w: %w", ErrLookupFailed, err)
			}
			return nil, err
		case len(ans.Addrs)+len(ans.SRV) == 0:
			ev.Result = PollEmpty
		}
		d.opts.observer.Lookup(ev)
		near = near || ans.NearLimit
		for _, ip := range ans.Addrs {
			out = append(out, Target{Name: NodeName(d.app, ip), Addr: ip.WithZone("").String()})
		}
		for _, s := range ans.SRV {
			out = append(out, Target{Name: HostNodeName(d.app, s.Target), Addr: s.Target})
		}
	}
	if near && !l.near {
		d.log.Warn("the DNS answer filled a whole 65,535-byte message: peers beyond it may be missing (about 4,090 A records fit); use fewer pods per Service",
			"query", d.cfg.Service, "records", len(out))
	}
	l.near = near
	return out, nil
}

// plan runs the core under the state lock and logs its events.
func (l *loop) plan(in Input) {
	d := l.d
	d.mu.Lock()
	var actions []Action
	var events []Event
	d.state, actions, events = Plan(d.policy, d.state, in)
	counts := d.state.Counts()
	d.mu.Unlock()
	l.queue = append(l.queue, actions...)
	for _, ev := range events {
		l.logEvent(ev)
	}
	d.opts.observer.Peers(counts)
}

func (l *loop) logEvent(ev Event) {
	log := l.d.log
	switch ev.Kind {
	case EvConnected:
		if ev.Failures > 0 {
			log.Info("peer connected", "peer", ev.Peer, "failures", ev.Failures)
		} else {
			log.Debug("peer connected", "peer", ev.Peer)
		}
	case EvConnectFailed:
		const msg = "peer connect failed; backing off"
		args := []any{"peer", ev.Peer, "err", ev.Err, "failures", ev.Failures, "next_retry", ev.NextRetry}
		if ev.Changed {
			l.d.limit.Warn(ev.Peer, msg, args...)
		} else {
			log.Debug(msg, args...)
		}
	case EvDropped:
		log.Info("peer disconnected; reconnecting", "peer", ev.Peer)
	case EvInbound:
		log.Debug("peer connected to us", "peer", ev.Peer)
	case EvPruned:
		log.Info("peer left the answer; disconnecting", "peer", ev.Peer)
	case EvForgotten:
		log.Debug("peer left the answer", "peer", ev.Peer)
	case EvDisconnectFailed:
		l.d.limit.Warn(ev.Peer, "peer disconnect failed", "peer", ev.Peer, "err", ev.Err)
	case EvCut:
		if ev.Count > 0 {
			log.Warn("answer has more peers than --max-peers; the rest are ignored", "max_peers", l.d.cfg.MaxPeers, "cut", ev.Count)
		} else {
			log.Info("answer fits --max-peers again", "max_peers", l.d.cfg.MaxPeers)
		}
	}
}

// dispatch starts queued actions while fewer than MaxConcurrentConnects run.
func (l *loop) dispatch(ctx context.Context) {
	d := l.d
	for len(l.queue) > 0 && l.inflight < d.cfg.MaxConcurrentConnects {
		if ctx.Err() != nil {
			l.queue = nil
			return
		}
		a := l.queue[0]
		l.queue = l.queue[1:]
		l.inflight++
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var err error
			if a.Kind == ActDisconnect {
				err = d.conn.Disconnect(a.Node)
			} else {
				err = l.connect(ctx, a.Node)
			}
			l.results <- Result{Action: a, Err: err}
		}()
	}
	if len(l.queue) == 0 {
		l.queue = nil // release the backing array
	}
}

func outcome(err error) ActionOutcome {
	if err != nil {
		return OutcomeError
	}
	return OutcomeOK
}

// connect runs one Connect bounded by ConnectTimeout on the injected clock.
func (l *loop) connect(ctx context.Context, node string) error {
	d := l.d
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	t := d.opts.clock.AfterFunc(d.cfg.ConnectTimeout, func() { cancel(ErrConnectTimeout) })
	defer t.Stop()
	err := d.conn.Connect(cctx, node)
	if err != nil && cctx.Err() != nil {
		if cause := context.Cause(cctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
	}
	return err
}
