package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/discovery/k8s"
	"github.com/gonode/gonode/metrics"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/global"
	"github.com/gonode/gonode/node/pg"
)

// version is the binary's version; the build sets it with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1 // the node could not start or stop cleanly
	exitUsage   = 2 // bad command line or configuration
)

// shutdownTimeout bounds a graceful stop, so that a signal ends the process
// within 5 s (Kubernetes' grace period is 30 s; a rolling update is faster
// with a quick stop).
const shutdownTimeout = 4 * time.Second

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	ctx, stop := signalContext(context.Background(), sigs, func() {
		fmt.Fprintln(os.Stderr, "gonode: second signal, exiting at once")
		os.Exit(exitFailure)
	})
	code := run(ctx, os.Args[1:], osEnvironment(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// signalContext returns a context that ends at the first value from sigs;
// a second value calls force (which exits the process). stop releases the
// watcher.
func signalContext(parent context.Context, sigs <-chan os.Signal, force func()) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		select {
		case s := <-sigs:
			cancel(fmt.Errorf("signal %v", s))
		case <-done:
			return
		}
		select {
		case <-sigs:
			force()
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		<-finished
		cancel(nil)
	}
}

// started describes a running gonode, for environment.OnStarted.
type started struct {
	Node        *node.Node
	Discoverer  *discovery.Discoverer
	MetricsAddr string // the address the HTTP listener is bound to, "" if off
}

// run is the whole program: it reads the configuration from args and env,
// starts the node, discovery and the HTTP listener, and stops them when ctx
// ends. It returns the exit status.
func run(ctx context.Context, args []string, env environment, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "health" {
		return health(ctx, args[1:], env, stdout, stderr)
	}
	cfg, act, err := load(args, env)
	switch act {
	case actionHelp:
		writeHelp(stdout)
		return exitOK
	case actionVersion:
		fmt.Fprintf(stdout, "gonode %s\n", version)
		return exitOK
	case actionHelpMarkdown:
		writeMarkdown(stdout)
		return exitOK
	}
	if err != nil {
		writeConfigError(stderr, err)
		return exitUsage
	}

	log := newLogger(cfg, env, stdout)
	mainLog := log.With("component", "main")
	if env.Environ != nil {
		for _, s := range unknownEnv(env.Environ(), options()) {
			args := []any{"variable", s.name}
			if s.closest != "" {
				args = append(args, "did_you_mean", s.closest)
			}
			mainLog.Warn("environment variable "+s.name+" is not a gonode setting and is ignored (see gonode --help)", args...)
		}
	}
	if f := cfg.LooseCookieFile; f.Path != "" {
		// erl refuses such a file; a Kubernetes Secret volume is 0644 unless
		// told otherwise, so gonode warns and goes on.
		mainLog.Warn("the cookie file can be read by group or others: make it readable by its owner only "+
			"(chmod 400 FILE; on Kubernetes, defaultMode: 0400 on the Secret volume and no fsGroup, see docs/kubernetes.md)",
			"path", f.Path, "mode", fmt.Sprintf("%04o", uint32(f.Mode)))
	}
	node.Version = version

	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.BuildInfo{Version: version})
	if err != nil {
		mainLog.Error("cannot create the metrics", "err", err)
		return exitFailure
	}
	n, err := node.New(cfg.Node, node.WithLogger(log), node.WithErgoLogs(),
		node.WithObserver(m.NodeObserver()), node.WithEPMDObserver(m.EPMDObserver()))
	if err != nil {
		writeConfigError(stderr, err)
		return exitUsage
	}
	m.SetPeerSource(n)
	m.SetTrafficSource(n)
	m.SetTLSSource(n)
	state := &nodeState{Node: n}
	discOpts := []discovery.Option{discovery.WithLogger(log), discovery.WithObserver(m.DiscoveryObserver())}
	if cfg.Discovery.Strategy == discovery.StrategyKubernetes && cfg.Discovery.Enabled() {
		// client-go logs through klog; the binary sends it to the same
		// logger (a library would not change klog's process-wide state).
		klog.SetSlogLogger(log.With("component", "client-go"))
		src, err := k8s.New(cfg.Discovery, n.Name(), k8s.WithLogger(log), k8s.WithObserver(m.WatchObserver()))
		if err != nil {
			if errors.Is(err, discovery.ErrInvalidConfig) {
				writeConfigError(stderr, err)
				return exitUsage
			}
			mainLog.Error("cannot start the kubernetes strategy", "err", err)
			return exitFailure
		}
		discOpts = append(discOpts, discovery.WithSource(src))
	}
	disc, err := discovery.New(cfg.Discovery, n.Name(), n, discOpts...)
	if err != nil {
		writeConfigError(stderr, err)
		return exitUsage
	}

	// The HTTP listener binds before the node starts, so a taken port is
	// reported at once, and /healthz answers while the node starts.
	var srv *metrics.Server
	globalState := &globalReport{}
	srvDone := make(chan struct{})
	srvCtx, stopSrv := context.WithCancel(context.Background())
	defer stopSrv()
	if cfg.MetricsAddr != "" {
		srv, err = metrics.NewServer(metrics.ServerConfig{Addr: cfg.MetricsAddr, MinPeers: cfg.MinPeers},
			reg, state, disc, metrics.WithServerLogger(log), metrics.WithGlobal(globalState))
		if err == nil {
			err = srv.Listen()
		}
		if err != nil {
			mainLog.Error("cannot listen for metrics", "addr", cfg.MetricsAddr, "err", err)
			return exitFailure
		}
		go func() {
			defer close(srvDone)
			if err := srv.Serve(srvCtx); err != nil {
				mainLog.Error("metrics server failed", "err", err)
			}
		}()
	} else {
		close(srvDone)
	}
	stopHTTP := func(ctx context.Context) {
		if srv != nil {
			if err := srv.Shutdown(ctx); err != nil {
				mainLog.Warn("metrics listener did not stop cleanly", "err", err)
			}
		}
		stopSrv()
		<-srvDone
	}

	if err := n.Start(ctx); err != nil {
		code := exitFailure
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			// A signal during start-up: a requested stop, not a failure.
			mainLog.Info("start interrupted", "reason", context.Cause(ctx).Error())
			code = exitOK
		} else {
			mainLog.Error("cannot start the node", "node", cfg.Node.Name, "err", err)
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		stopHTTP(sctx)
		cancel()
		return code
	}
	if code, ok := startScopes(cfg, n, reg, log, mainLog); !ok {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		_ = n.Stop(sctx)
		stopHTTP(sctx)
		cancel()
		return code
	}
	if code, ok := startGlobal(cfg, n, reg, globalState, log, mainLog); !ok {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		_ = n.Stop(sctx)
		stopHTTP(sctx)
		cancel()
		return code
	}
	state.up.Store(true)
	discDone := make(chan struct{})
	go func() {
		defer close(discDone)
		_ = disc.Run(ctx)
	}()

	metricsAddr := ""
	if srv != nil {
		metricsAddr = srv.Addr().String()
	}
	mainLog.Info("gonode started",
		"version", version,
		"node", n.Name(),
		"distribution", string(cfg.Node.NameMode),
		"hidden", cfg.Node.Hidden,
		"dist_port", n.ListenPort(),
		"epmd", string(cfg.Node.EPMD),
		"epmd_port", cfg.Node.EPMDPort,
		"strategy", strategyText(cfg.Discovery),
		"metrics_addr", metricsAddr,
	)
	if env.OnStarted != nil {
		env.OnStarted(started{Node: n, Discoverer: disc, MetricsAddr: metricsAddr})
	}

	<-ctx.Done()
	mainLog.Info("stopping", "reason", context.Cause(ctx).Error())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	state.up.Store(false) // /readyz: not ready while stopping
	disc.Stop()
	select {
	case <-discDone:
	case <-sctx.Done():
		mainLog.Warn("discovery did not stop in time")
	}
	code := exitOK
	if err := n.Stop(sctx); err != nil {
		mainLog.Error("the node did not stop cleanly", "err", err)
		code = exitFailure
	}
	stopHTTP(sctx)
	mainLog.Info("gonode stopped")
	return code
}

// startScopes starts the --pg-scopes on the started node, with their
// metrics; a hidden node runs none (BEAM scopes ignore it).
func startScopes(cfg config, n *node.Node, reg prometheus.Registerer, log, mainLog *slog.Logger) (int, bool) {
	if len(cfg.PGScopes) == 0 {
		return exitOK, true
	}
	if cfg.Node.Hidden {
		mainLog.Warn("pg scopes not started: a hidden node is invisible to pg", "scopes", cfg.PGScopes)
		return exitOK, true
	}
	pm, err := metrics.NewPG(reg)
	if err != nil {
		mainLog.Error("cannot create the pg metrics", "err", err)
		return exitFailure, false
	}
	for _, name := range cfg.PGScopes {
		if _, err := pg.Start(n, name, pg.Options{Observer: pm, Logger: log}); err != nil {
			mainLog.Error("cannot start the pg scope", "scope", name, "err", err)
			return exitFailure, false
		}
	}
	return exitOK, true
}

// startGlobal starts global's name server on a visible node, so that BEAM
// nodes count it as in sync (global:sync/0 returns) and global names are
// shared with it; a hidden node runs none (global ignores it).
func startGlobal(cfg config, n *node.Node, reg prometheus.Registerer, rep *globalReport, log, mainLog *slog.Logger) (int, bool) {
	if cfg.Node.Hidden {
		return exitOK, true
	}
	gm, err := metrics.NewGlobal(reg)
	if err != nil {
		mainLog.Error("cannot create global's metrics", "err", err)
		return exitFailure, false
	}
	gs, err := global.Start(n, global.Options{Observer: gm, Logger: log})
	if err != nil {
		mainLog.Error("cannot start global's name server", "err", err)
		return exitFailure, false
	}
	rep.srv.Store(gs)
	return exitOK, true
}

// globalReport serves /debug/global once global's name server runs.
type globalReport struct{ srv atomic.Pointer[global.Server] }

// Report implements metrics.GlobalState.
func (g *globalReport) Report() (any, bool) {
	s := g.srv.Load()
	if s == nil {
		return nil, false
	}
	return s.Report(), true
}

// writeConfigError prints every problem of a configuration, one a line: those
// of load's configError, or those a package's Validate reported (node.New,
// discovery.New).
func writeConfigError(w io.Writer, err error) {
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(w, "gonode: %s\nRun gonode --help for the flags and their environment variables.\n", ue.problem)
		return
	}
	var list problems
	var ce *configError
	if errors.As(err, &ce) {
		list = ce.problems
	} else {
		list.addValidation(err, nil, options(), nil)
	}
	fmt.Fprintf(w, "gonode: invalid configuration (%d problem%s):\n", len(list), plural(len(list)))
	for _, p := range list {
		fmt.Fprintf(w, "  - %s\n", p)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func strategyText(c discovery.Config) string {
	if !c.Enabled() {
		return "off"
	}
	return string(c.Strategy)
}

// newLogger builds the slog logger of --log-format and --log-level, writing
// to stdout.
func newLogger(c config, env environment, stdout io.Writer) *slog.Logger {
	level, err := logLevel(c.LogLevel)
	if err != nil {
		level = slog.LevelInfo // resolve rejected it already
	}
	format := c.LogFormat
	if format == "" {
		format = "json"
		if env.IsTerminal != nil && env.IsTerminal(stdout) {
			format = "text"
		}
	}
	o := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(stdout, o))
	}
	return slog.New(slog.NewJSONHandler(stdout, o))
}
