package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/node"
)

// DefaultAddr is the default listen address: port 9568 is the one Elixir's
// TelemetryMetricsPrometheus serves, so existing scrape configs find gonode.
const DefaultAddr = ":9568"

// Server defaults, each with its reason.
const (
	// DefaultReadHeaderTimeout bounds a client that opens a connection and
	// sends its headers slowly; probes and scrapes send theirs at once.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout bounds reading a whole request (they have no body).
	DefaultReadTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds writing a response: a /metrics page with
	// thousands of series is written in milliseconds, and Prometheus's own
	// default scrape timeout is 10 s.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultIdleTimeout closes kept-alive connections idle for longer than
	// a typical scrape interval (15 s to 60 s) would leave them.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultShutdownTimeout is how long Serve lets running requests finish
	// once its context ends.
	DefaultShutdownTimeout = 5 * time.Second
)

// ErrInvalidServerConfig wraps every problem ServerConfig.Validate reports.
var ErrInvalidServerConfig = errors.New("invalid metrics server configuration")

// ErrAlreadyListening is returned by Listen when the server already listens.
var ErrAlreadyListening = errors.New("metrics server already listens")

// ServerConfig is the plain-data configuration of the HTTP server. Zero
// durations and an empty Addr mean their defaults.
type ServerConfig struct {
	// Addr is the host:port to listen on. Default DefaultAddr (all interfaces);
	// "127.0.0.1:0" picks a free loopback port (see Server.Addr).
	Addr string
	// MinPeers is how many peers must be connected before /readyz answers
	// 200. Default 0: ready as soon as the node runs and discovery's first
	// poll succeeded.
	MinPeers int
	// ReadHeaderTimeout bounds reading request headers. Default 5 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request. Default 10 s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response. Default 30 s.
	WriteTimeout time.Duration
	// IdleTimeout closes idle kept-alive connections. Default 2 min.
	IdleTimeout time.Duration
	// ShutdownTimeout is how long Serve lets running requests finish after
	// its context ends; the rest are cut. Default 5 s.
	ShutdownTimeout time.Duration
}

// DefaultServerConfig returns a ServerConfig with every default filled in.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		Addr:              DefaultAddr,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      DefaultWriteTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		ShutdownTimeout:   DefaultShutdownTimeout,
	}
}

// Validate reports every problem in c, joined, each wrapping
// ErrInvalidServerConfig. It changes nothing.
func (c ServerConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidServerConfig}, args...)...))
	}
	if c.Addr != "" {
		if _, port, err := net.SplitHostPort(c.Addr); err != nil {
			bad("listen address %q: %v", c.Addr, err)
		} else if port == "" {
			bad("listen address %q has no port", c.Addr)
		}
	}
	if c.MinPeers < 0 {
		bad("min peers is %d, must be 0 or more", c.MinPeers)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"read header timeout", c.ReadHeaderTimeout}, {"read timeout", c.ReadTimeout},
		{"write timeout", c.WriteTimeout}, {"idle timeout", c.IdleTimeout}, {"shutdown timeout", c.ShutdownTimeout},
	} {
		if d.v < 0 {
			bad("%s is %s, must not be negative", d.name, d.v)
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns c with zero fields set to their defaults.
func (c ServerConfig) withDefaults() ServerConfig {
	def := DefaultServerConfig()
	if c.Addr == "" {
		c.Addr = def.Addr
	}
	for _, f := range []struct{ v, d *time.Duration }{
		{&c.ReadHeaderTimeout, &def.ReadHeaderTimeout}, {&c.ReadTimeout, &def.ReadTimeout},
		{&c.WriteTimeout, &def.WriteTimeout}, {&c.IdleTimeout, &def.IdleTimeout},
		{&c.ShutdownTimeout, &def.ShutdownTimeout},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	return c
}

// NodeState is what the server reads from the node at each request.
// Implementations must be safe for concurrent use and return quickly.
type NodeState interface {
	// Started reports whether the node runs and accepts connections.
	Started() bool
	// Connected returns the names of all connected peers.
	Connected() []string
}

// ConnectFailureState is optionally implemented by a NodeState (*node.Node
// does): /debug/peers then shows the cause of the last failed attempt to
// reach each peer that is not connected. It must be safe for concurrent use
// and return quickly.
type ConnectFailureState interface {
	ConnectFailures() []node.PeerFailure
}

// DiscoveryState is what the server reads from discovery at each request;
// *discovery.Discoverer satisfies it. Implementations must be safe for
// concurrent use and return quickly.
type DiscoveryState interface {
	// Ready reports whether discovery's first poll has succeeded (true at
	// once when discovery is off).
	Ready() bool
	// Snapshot returns the per-peer state.
	Snapshot() discovery.Snapshot
}

// GlobalState is what /debug/global serves: global's view of the cluster
// (the JSON of Report's value). It must be safe for concurrent use and
// return quickly; ok false means global does not run (404).
type GlobalState interface {
	Report() (report any, ok bool)
}

// WithGlobal sets what /debug/global serves (default: nothing, 404).
func WithGlobal(g GlobalState) ServerOption { return func(s *Server) { s.global = g } }

// ServerOption sets an optional dependency of NewServer.
type ServerOption func(*Server)

// WithServerLogger sets the logger (default slog.Default()).
func WithServerLogger(l *slog.Logger) ServerOption { return func(s *Server) { s.log = l } }

// Server serves /metrics, /healthz, /readyz and /debug/peers over HTTP.
// Create it with NewServer; Listen (optional) binds, Serve serves until its
// context ends or Shutdown is called.
type Server struct {
	cfg  ServerConfig
	node NodeState
	disc DiscoveryState
	// global serves /debug/global; nil: 404.
	global GlobalState
	log    *slog.Logger
	srv    *http.Server

	// discReady latches discovery's readiness: once the first poll has
	// succeeded, later failed polls do not make the node unready (the last
	// good answer stands, and the connected peers are still there).
	discReady atomic.Bool

	mu       sync.Mutex
	ln       net.Listener
	shutOnce sync.Once
	shutDone chan struct{}
	shutErr  error
}

// NewServer builds a Server that serves the metrics of g and reads
// readiness from n and d. n is required; d may be nil when discovery is off.
// cfg is copied, never modified.
func NewServer(cfg ServerConfig, g prometheus.Gatherer, n NodeState, d DiscoveryState, opts ...ServerOption) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var errs []error
	if g == nil {
		errs = append(errs, fmt.Errorf("%w: a prometheus.Gatherer is required", ErrInvalidServerConfig))
	}
	if n == nil {
		errs = append(errs, fmt.Errorf("%w: a NodeState is required", ErrInvalidServerConfig))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg.withDefaults(), node: n, disc: d, log: slog.Default(), shutDone: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	s.log = s.log.With("component", "metrics")
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:            errLog,
		MaxRequestsInFlight: 8,
	}))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /debug/peers", s.debugPeers)
	mux.HandleFunc("GET /debug/global", s.debugGlobal)
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          errLog,
	}
	return s, nil
}

// Handler returns the server's routes, for tests and for mounting them on
// another server.
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Listen binds the configured address. Serve calls it when the caller has
// not; calling it first lets the caller read Addr (for a ":0" port) and
// see a bind error before serving.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return ErrAlreadyListening
	}
	select {
	case <-s.shutDone:
		return http.ErrServerClosed
	default:
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("metrics server: listen on %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.log.Info("listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the address the server listens on, nil before Listen.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve listens (unless Listen was called) and serves until ctx ends or
// Shutdown is called; when ctx ends it shuts down, letting running requests
// finish for up to ShutdownTimeout. It returns nil after a shutdown, and
// an error when it could not listen or serve.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		if err := s.Listen(); err != nil && !errors.Is(err, ErrAlreadyListening) {
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		}
		s.mu.Lock()
		ln = s.ln
		s.mu.Unlock()
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		if err := s.Shutdown(sctx); err != nil {
			s.log.Warn("shutdown cut running requests", "err", err)
		}
	})
	defer stop()
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-s.shutDone // Serve returns at once; wait until running requests are done
		return nil
	}
	return fmt.Errorf("metrics server: %w", err)
}

// Shutdown stops accepting connections and waits for running requests until
// ctx ends, then cuts the rest. It may be called more than once, and before
// Serve; every call returns the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() {
		err := s.srv.Shutdown(ctx)
		if err != nil {
			_ = s.srv.Close()
		}
		s.mu.Lock()
		if s.ln != nil {
			_ = s.ln.Close() // bound by Listen but never served
		}
		s.mu.Unlock()
		s.shutErr = err
		close(s.shutDone)
	})
	<-s.shutDone
	return s.shutErr
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

// Ready reports whether the node is ready for traffic and, when it is not,
// why, in one line: the node runs, discovery's first poll has succeeded (or
// discovery is off), and at least MinPeers peers are connected.
func (s *Server) Ready() (bool, string) {
	if !s.node.Started() {
		return false, "node not started"
	}
	if s.disc != nil && !s.discReady.Load() {
		if !s.disc.Ready() {
			return false, "waiting for first discovery poll"
		}
		s.discReady.Store(true)
	}
	if n := len(s.node.Connected()); n < s.cfg.MinPeers {
		return false, fmt.Sprintf("%d of %d peers connected", n, s.cfg.MinPeers)
	}
	return true, "ready"
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	ok, why := s.Ready()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, why)
}

func (s *Server) debugPeers(w http.ResponseWriter, _ *http.Request) {
	var rep PeersReport
	var snap discovery.Snapshot
	if s.disc != nil {
		snap = s.disc.Snapshot()
		rep.Discovery = &DiscoveryStatus{
			Strategy: snap.Strategy, Enabled: snap.Enabled, Ready: snap.Ready,
			LastPoll: snap.LastPoll, LastResult: snap.LastResult, LastError: snap.LastError,
			Counts: PeerCounts(snap.Counts),
		}
	}
	connected := s.node.Connected()
	rep.Connected = len(connected)
	rep.Peers = MergePeers(snap.Peers, connected)
	if f, ok := s.node.(ConnectFailureState); ok {
		rep.Peers = AddConnectFailures(rep.Peers, f.ConnectFailures())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		s.log.Debug("write /debug/peers", "err", err)
	}
}

// debugGlobal serves what global's name server knows: the nodes in sync,
// the connects under way, the names and the locks held on this node.
func (s *Server) debugGlobal(w http.ResponseWriter, _ *http.Request) {
	if s.global == nil {
		http.NotFound(w, nil)
		return
	}
	rep, ok := s.global.Report()
	if !ok {
		http.NotFound(w, nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		s.log.Debug("write /debug/global", "err", err)
	}
}
