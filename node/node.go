package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	ergonode "github.com/ergo-services/ergo/node"

	"github.com/gonode/gonode/epmd"
	"github.com/gonode/gonode/node/genserver"
)

// Version is gonode's version, reported by the built-in gonode server's info.
// The binary sets it at link time.
var Version = "dev"

// Errors returned by Node's methods.
var (
	ErrNotStarted     = errors.New("node is not started")
	ErrStopping       = errors.New("node is stopping")
	ErrAlreadyStarted = errors.New("node is already started")
	ErrSelf           = errors.New("a node cannot connect to itself")
)

// Node is an Erlang distribution node running on ergo's process runtime. It
// is safe for concurrent use. Create it with New, then Start it.
type Node struct {
	cfg     Config
	baseLog *slog.Logger
	log     *slog.Logger
	obs     Observer
	epmdObs epmd.Observer
	// ergoLogs: Start routes ergo's process-wide logging (WithErgoLogs).
	ergoLogs bool
	// tls is the TLS material (Config.TLS), nil for plain TCP.
	tls *certSource

	mu       sync.Mutex
	ergo     ergonode.Node
	wire     *wire
	started  time.Time
	stopping bool
	// localDisconnects are peers this node disconnected on purpose, so their
	// down event is reported as DisconnectLocal.
	localDisconnects map[string]bool

	events *eventHub
	rpc    rpcTable // functions provided with ProvideRPC (rpc.go)

	// helper is the node's supervisor of registered servers, which Send
	// also sends from (supervise.go), under helperMu.
	helperMu sync.Mutex
	helper   gen.Process
	// causes keeps the cause of each peer's last failed connection attempt
	// (cause.go).
	causes *peerCauses
}

// Option configures optional dependencies of a Node.
type Option func(*Node)

// WithLogger sets the logger; the default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(n *Node) { n.log = l } }

// WithObserver sets the observer that receives the node's events (for metrics).
func WithObserver(o Observer) Option { return func(n *Node) { n.obs = o } }

// WithEPMDObserver sets the observer of the embedded EPMD server's requests.
func WithEPMDObserver(o epmd.Observer) Option { return func(n *Node) { n.epmdObs = o } }

// WithErgoLogs makes Start route ergo's warnings to the node's logger (with
// component=ergo) and report the messages ergo drops at a full mailbox to the
// Observer (MailboxOverflow), rate-limiting their log lines. It is for a
// program, such as cmd/gonode, that wants ergo's warnings in its own log.
//
// It changes process-wide state, which is why a Node does it only when asked:
// ergo writes its warnings through the standard library's log package, so
// Start sets ergo's -ergo.warning flag and replaces the log package's output
// (log.SetOutput) for the whole process, once. Lines that are not ergo's go on
// to the previous output unchanged. The most recently started node with this
// option receives ergo's warnings. A message one local process sends
// another through ergo's own send is known to be dropped only from ergo's
// warning text, which this routing reads.
//
// The node's logger must not write through the log package, which the routing
// replaces; slog's built-in default handler does. When the logger is
// slog.Default() itself (WithLogger not given), ergo's warnings go to the log
// package's previous output as text; do not give a logger derived from slog's
// built-in default (slog.Default().With(...) in a program that never called
// slog.SetDefault).
//
// Without this option the node leaves the log package and ergo's flags alone:
// ergo prints its warnings through the log package as it does by default, and
// MailboxOverflow is reported only for messages from peers, which the node's
// distribution layer delivers itself.
func WithErgoLogs() Option { return func(n *Node) { n.ergoLogs = true } }

// New validates cfg and returns an unstarted Node. cfg is copied, never
// modified. With TLS on it reads the TLS files, and fails when they cannot
// be used (see TLSConfig).
func New(cfg Config, opts ...Option) (*Node, error) {
	if cfg.MailboxSize == 0 {
		cfg.MailboxSize = DefaultMailboxSize
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: slog.Default(), obs: NopObserver{}, localDisconnects: map[string]bool{}, causes: newPeerCauses()}
	for _, o := range opts {
		o(n)
	}
	n.baseLog = n.log
	if cfg.TLS.Enabled() {
		src, err := newCertSource(cfg.TLS, n.baseLog)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		n.tls = src
	}
	n.log = n.log.With("component", "node")
	n.events = newEventHub(n.log)
	return n, nil
}

// Name returns the node's full name.
func (n *Node) Name() string { return n.cfg.Name }

// Config returns a copy of the node's configuration.
func (n *Node) Config() Config { return n.cfg }

// Start listens for distribution connections, registers the node (per the
// EPMD mode) and starts the built-in processes. ctx bounds start-up only.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ergo != nil {
		return ErrAlreadyStarted
	}
	if n.stopping {
		return ErrStopping
	}
	if n.ergoLogs {
		routeErgoLogs(n.baseLog, n.obs, n.cfg.Name)
	}

	w, err := newWire(n.cfg, n.tls, n.baseLog, n.obs, n.epmdObs, n, n, rpcSpawner{n: n}, n.causes)
	if err != nil {
		return err
	}
	if err := w.listen(ctx, n.cfg); err != nil {
		w.close()
		return fmt.Errorf("start node %s: %w", n.cfg.Name, err)
	}
	// ergo's own listener only takes the connections whose handshake our
	// listener completed (wire.listen): it is bound to the loopback
	// interface, on the first free port of ergo's default range. It never
	// runs TLS, which our listener and handshake do: ergo turns TLS on for a
	// listener whose configuration (or else Options.TLS, which stays nil)
	// has certificates, and this one is empty.
	listener := ergonode.Listener{Hostname: "127.0.0.1", TLS: &tls.Config{}}
	opts := ergonode.Options{
		Listeners: []ergonode.Listener{listener},
		Flags:     ergonode.DefaultFlags(),
		Creation:  w.creation(),
		Env: map[gen.EnvKey]interface{}{
			ergonode.EnvKeyVersion: ergonode.Version{Release: "gonode " + Version, Prefix: "gonode", OTP: 25},
		},
		// ergo sends anonymous usage metrics over UDP unless this is set; its
		// application that sends them is never started (we start no ergo
		// application at all), so this is belt and braces.
		System: ergonode.System{DisableAnonMetrics: true},
	}
	w.options(&opts)
	type result struct {
		node ergonode.Node
		err  error
	}
	done := make(chan result, 1)
	go func() {
		en, err := ergonode.StartWithContext(context.Background(), n.cfg.Name, n.cfg.Cookie.Reveal(), opts)
		done <- result{en, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		go func() {
			if r := <-done; r.node != nil {
				r.node.Stop()
			}
			w.close()
		}()
		return fmt.Errorf("start node %s: %w", n.cfg.Name, ctx.Err())
	}
	if r.err != nil {
		w.close()
		return fmt.Errorf("start node %s: %w", n.cfg.Name, scrub(r.err, n.cfg.Cookie))
	}
	n.ergo, n.wire, n.started = r.node, w, time.Now()
	w.serve(n.cfg.Cookie.Reveal())
	if err := n.startBuiltins(); err != nil {
		r.node.Stop()
		w.close()
		n.ergo = nil
		return fmt.Errorf("start built-in processes: %w", err)
	}
	n.log.Info("node started", "node", n.cfg.Name, "dist_port", w.registrar.Port(), "hidden", n.cfg.Hidden, "epmd", string(n.cfg.EPMD),
		"net_ticktime", n.cfg.NetTickTime.String())
	return nil
}

// listenHost is the interface the distribution listener binds.
func listenHost(cfg Config) string {
	if cfg.ListenAddr != "" {
		return cfg.ListenAddr
	}
	_, host, _ := strings.Cut(cfg.Name, "@")
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() && !a.Is4In6() {
		return "::"
	}
	return "0.0.0.0"
}

// scrub removes the cookie from an error text coming from a dependency.
func scrub(err error, c Cookie) error {
	if err == nil || c == "" || !strings.Contains(err.Error(), c.Reveal()) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), c.Reveal(), Redacted))
}

func (n *Node) running() (ergonode.Node, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopping {
		return nil, ErrStopping
	}
	if n.ergo == nil {
		return nil, ErrNotStarted
	}
	return n.ergo, nil
}

// Ergo returns the underlying ergo node, for process-level APIs gonode does
// not wrap. It is nil before Start.
func (n *Node) Ergo() ergonode.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ergo
}

// ListenPort returns the port the distribution listener is bound to, or 0
// before Start. With Config.DistPort 0 it is the port picked at start.
func (n *Node) ListenPort() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.wire == nil {
		return 0
	}
	return n.wire.registrar.Port()
}

// Started reports whether the node is running: Start succeeded and Stop has
// not begun.
func (n *Node) Started() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ergo != nil && !n.stopping
}

// Uptime returns how long the node has been running, 0 before Start.
func (n *Node) Uptime() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ergo == nil {
		return 0
	}
	return time.Since(n.started)
}

// Connect connects to peer unless a connection exists. It returns when the
// connection is established or failed, or when ctx ends (the attempt itself is
// bounded by the dial timeout plus Config.HandshakeTimeout).
//
// A failed attempt's error says why, checkable with errors.Is:
// ErrNotRegistered (also ErrPeerUnresolved), ErrPeerUnresolved (the host's
// name did not resolve), ErrHostUnreachable, ErrBadCookie, ErrNotAllowed or
// ErrConnectTimeout. ConnectFailures keeps the last one of each peer.
//
// When peer is connecting to us at the same time and wins (OTP gives a
// simultaneous connect to the greater node name), our attempt is refused
// and the connection the peer makes is the one that stays: Connect then
// waits for it (at most HandshakeTimeout) and returns nil once it is up.
func (n *Node) Connect(ctx context.Context, peer string) error {
	en, err := n.running()
	if err != nil {
		return err
	}
	if peer == n.cfg.Name {
		return ErrSelf
	}
	if err := ValidateName(peer, n.cfg.NameMode); err != nil {
		return err
	}
	if slices.Contains(en.Nodes(), peer) {
		return nil
	}
	n.mu.Lock()
	w := n.wire
	delete(n.localDisconnects, peer)
	n.mu.Unlock()
	dialed := w.handshake.Dialing(peer)
	mark := n.causes.mark()
	handshakes := w.stats.outHandshakes.Load()
	gaveWay := w.handshake.GaveWay()
	done := make(chan error, 1)
	go func() {
		defer dialed()
		done <- en.Connect(peer)
	}()
	select {
	case err := <-done:
		if err != nil {
			if w.handshake.GaveWay() != gaveWay && n.awaitPeer(ctx, peer) {
				// Our attempt gave way to the peer's own (it won a
				// simultaneous connect, or its connection stays): connected
				// all the same, through the connection the peer made. The
				// count is the node's, not this peer's: when an attempt to
				// another peer gave way meanwhile, a real failure here is
				// reported after awaitPeer's wait, not at once.
				return nil
			}
			if w.stats.outHandshakes.Load() == handshakes {
				// No handshake finished: the peer could not be resolved or dialled.
				n.obs.ConnectFailed(peer, Outgoing, ConnectUnreachable)
			}
			if cause := n.causes.since(peer, mark); cause != nil {
				// ergo's own error is "no route to node" whatever happened.
				err = cause
			}
			return fmt.Errorf("connect to %s: %w", peer, scrub(err, n.cfg.Cookie))
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("connect to %s: %w", peer, ctx.Err())
	}
}

// awaitPeer waits until peer is connected, for at most the handshake
// timeout (the time the peer's own handshake may take) or until ctx ends,
// and reports whether it is.
func (n *Node) awaitPeer(ctx context.Context, peer string) bool {
	events, cancel := n.Subscribe(8)
	defer cancel()
	if n.IsConnected(peer) {
		return true
	}
	timer := time.NewTimer(n.cfg.HandshakeTimeout)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return false
			}
			if e.Peer == peer && e.Up {
				return true
			}
		case <-timer.C:
			return n.IsConnected(peer)
		case <-ctx.Done():
			return n.IsConnected(peer)
		}
	}
}

// Disconnect closes the connection to peer. Peers see the connection close,
// as after erlang:disconnect_node/1.
func (n *Node) Disconnect(peer string) error {
	en, err := n.running()
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.localDisconnects[peer] = true
	n.mu.Unlock()
	if err := en.Disconnect(peer); err != nil {
		return fmt.Errorf("disconnect %s: %w", peer, err)
	}
	return nil
}

// Connected returns the names of the connected peers, sorted.
func (n *Node) Connected() []string {
	en := n.Ergo()
	if en == nil {
		return nil
	}
	peers := en.Nodes()
	slices.Sort(peers)
	return peers
}

// IsConnected reports whether a connection to peer is registered.
func (n *Node) IsConnected(peer string) bool {
	en := n.Ergo()
	return en != nil && slices.Contains(en.Nodes(), peer)
}

// RegisterServer spawns a gen_server under the registered name (empty for an
// unregistered process) with the node's mailbox size, so Erlang and Elixir
// code can call it as {Name, Node}. srv is an ergo gen.Server, a
// genserver.Server (callbacks run in the process loop: lower call latency,
// see package genserver), or any other gen.ProcessBehavior.
//
// The server runs under the default restart policy (ServerOptions): when it
// exits, for any reason, it is spawned again under the same name with the
// same srv value and args (Init runs again; state kept in srv's fields
// survives, reset it in Init), up to 3 restarts within 5 seconds; beyond
// that it is given up with one log line. The gen.Process returned is the
// first one; address the server by its name.
func (n *Node) RegisterServer(name string, srv gen.ProcessBehavior, args ...etf.Term) (gen.Process, error) {
	en, err := n.running()
	if err != nil {
		return nil, err
	}
	n.adopt(srv)
	return n.supervise(en, name, n.processOptions(), ServerOptions{}, srv, args)
}

// ServerOptions are the per-process settings of RegisterServerWith. The
// zero value means the node's.
type ServerOptions struct {
	// MailboxSize is the process's mailbox capacity, 1 to 65,535; zero means
	// Config.MailboxSize. A larger mailbox costs 96 to 144 bytes an entry
	// up front; it is for a process that takes bursts from local processes
	// or a fast stream of small messages, or an ergo gen.Server that makes
	// calls from its callbacks under load (see Config.MailboxSize). The
	// peers' messages never meet a full mailbox.
	MailboxSize int

	// Restart says when the server is spawned again after it exits:
	// Permanent (the zero value) after any exit, Transient after an
	// abnormal one (not normal, shutdown or {shutdown, _}), Temporary
	// never. A restart spawns the same value with the same name and args.
	Restart Restart
	// MaxRestarts is how many restarts are allowed within Within; one more
	// and the server is given up (one log line). Zero means
	// DefaultMaxRestarts (3).
	MaxRestarts int
	// Within is the window MaxRestarts counts in. Zero means DefaultWithin
	// (5 s).
	Within time.Duration
}

// ErrInvalidServerOptions is returned by RegisterServerWith for options out
// of range.
var ErrInvalidServerOptions = errors.New("invalid server options")

// RegisterServerWith is RegisterServer with per-process options.
func (n *Node) RegisterServerWith(name string, opts ServerOptions, srv gen.ProcessBehavior, args ...etf.Term) (gen.Process, error) {
	if opts.MailboxSize < 0 || opts.MailboxSize > 65535 {
		return nil, fmt.Errorf("%w: mailbox size %d is out of range 0-65535", ErrInvalidServerOptions, opts.MailboxSize)
	}
	if err := validateRestart(opts); err != nil {
		return nil, err
	}
	en, err := n.running()
	if err != nil {
		return nil, err
	}
	po := n.processOptions()
	if opts.MailboxSize > 0 {
		po.MailboxSize = uint16(opts.MailboxSize)
	}
	n.adopt(srv)
	return n.supervise(en, name, po, opts, srv, args)
}

// processOptions are the options of the servers the node spawns: its
// mailbox size, and its logger for a genserver.Server's crash reports.
func (n *Node) processOptions() gen.ProcessOptions {
	return gen.ProcessOptions{MailboxSize: uint16(n.cfg.MailboxSize),
		Env: map[gen.EnvKey]any{genserver.EnvLogger: n.log}}
}

// Stop disconnects every peer, stops all processes and the listener, and
// unregisters from EPMD. It returns when done or when ctx ends. After Stop
// begins, Connect fails with ErrStopping.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	if n.stopping {
		n.mu.Unlock()
		return nil
	}
	n.stopping = true
	en, w := n.ergo, n.wire
	n.mu.Unlock()
	if en == nil {
		return nil
	}
	n.log.Info("node stopping", "peers", len(en.Nodes()))
	w.stopListening()
	for _, peer := range en.Nodes() {
		_ = en.Disconnect(peer)
	}
	en.Stop()
	done := make(chan struct{})
	go func() {
		en.Wait()
		w.close()
		close(done)
	}()
	select {
	case <-done:
		n.events.close()
		n.log.Info("node stopped")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop node: %w", ctx.Err())
	}
}

// Traffic returns the node's cumulative distribution traffic.
func (n *Node) Traffic() Traffic {
	n.mu.Lock()
	w := n.wire
	n.mu.Unlock()
	if w == nil {
		return Traffic{}
	}
	return w.stats.traffic()
}

// disconnectReason classifies the end of peer's connection, once: the
// connection's own reason (wireStats.takeEnd), unless the node is stopping or
// disconnected the peer itself. A tick timeout is reported as such even
// after a local Disconnect: the peer was gone first.
func (n *Node) disconnectReason(peer string) DisconnectReason {
	n.mu.Lock()
	defer n.mu.Unlock()
	local := n.localDisconnects[peer]
	delete(n.localDisconnects, peer)
	ended := DisconnectPeerClosed
	if n.wire != nil {
		ended = n.wire.stats.takeEnd(peer)
	}
	switch {
	case n.stopping:
		return DisconnectShutdown
	case ended == DisconnectTickTimeout:
		return DisconnectTickTimeout
	case local:
		return DisconnectLocal
	}
	return ended
}
