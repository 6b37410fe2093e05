package epmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gonode/gonode/internal/ratelog"
)

// Config is a Server's plain-data configuration. Start from DefaultConfig;
// New never modifies the Config it is given.
type Config struct {
	// Addrs are the TCP addresses served, host:port. An IPv6 address gets a
	// listener of its own (IPV6_V6ONLY), so "0.0.0.0:P" and "[::]:P" can be
	// served together. An IPv6 wildcard that the kernel cannot bind (IPv6
	// disabled) is skipped with a warning; every other bind error fails Start.
	// Default ["0.0.0.0:4369", "[::]:4369"]: every interface, both families,
	// as OTP's epmd.
	Addrs []string
	// ReadTimeout bounds the arrival of a whole request, counted from the
	// moment the connection is accepted, so a client that sends nothing (or
	// dribbles) cannot hold a connection slot. Registered connections have no
	// read deadline: they live as long as the node. Default 10s, enough for a
	// slow client on a loaded host; OTP's epmd closes idle sockets after 60s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one reply. Default 10s.
	WriteTimeout time.Duration
	// MaxConns bounds the connections served at once, registered ones
	// included; a connection over the limit is closed at once and reported as
	// (RequestUnknown, ResultRefused). Default 1024.
	MaxConns int
	// MaxNodes bounds the names registered at once; a registration over the
	// limit is refused. Default 512: a pod holds a handful of nodes.
	MaxNodes int
	// RememberNames bounds how many unregistered names keep their last
	// creation, so that a node re-registering gets a different one. Default
	// 1000, OTP's epmd's.
	RememberNames int
	// AllowRemoteRegistration accepts ALIVE2_REQ from peers that are neither
	// loopback nor the server's own address. Default false: like OTP's epmd,
	// only processes on this host (this pod) may register.
	AllowRemoteRegistration bool
}

// DefaultConfig returns the Config documented field by field.
func DefaultConfig() Config {
	return Config{
		Addrs:         []string{net.JoinHostPort("0.0.0.0", strconv.Itoa(DefaultPort)), net.JoinHostPort("::", strconv.Itoa(DefaultPort))},
		ReadTimeout:   10 * time.Second,
		WriteTimeout:  10 * time.Second,
		MaxConns:      1024,
		MaxNodes:      512,
		RememberNames: 1000,
	}
}

// ErrInvalidConfig wraps every problem Validate reports.
var ErrInvalidConfig = errors.New("epmd: invalid configuration")

// Validate reports every problem in c, joined; it changes nothing.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if len(c.Addrs) == 0 {
		bad("no listen address")
	}
	for _, a := range c.Addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			bad("listen address %q: %v", a, err)
			continue
		}
		if host != "" {
			if _, err := netip.ParseAddr(host); err != nil {
				bad("listen address %q: host must be an IP address", a)
			}
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("listen address %q: bad port", a)
		}
	}
	if c.ReadTimeout <= 0 {
		bad("read timeout %s must be positive", c.ReadTimeout)
	}
	if c.WriteTimeout <= 0 {
		bad("write timeout %s must be positive", c.WriteTimeout)
	}
	if c.MaxConns < 1 {
		bad("max conns %d must be at least 1", c.MaxConns)
	}
	if c.MaxNodes < 1 {
		bad("max nodes %d must be at least 1", c.MaxNodes)
	}
	if c.RememberNames < 0 {
		bad("remember names %d is negative", c.RememberNames)
	}
	return errors.Join(errs...)
}

// Option configures optional dependencies of a Server.
type Option func(*Server)

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) {
		if l != nil {
			s.log = l
		}
	}
}

// WithObserver sets the Observer told about every request.
func WithObserver(o Observer) Option {
	return func(s *Server) {
		if o != nil {
			s.obs = o
		}
	}
}

// WithNotifyStarted sets a function called once, from Start, when every
// listener is bound, with their addresses.
func WithNotifyStarted(f func(addrs []net.Addr)) Option {
	return func(s *Server) { s.notify = f }
}

// ErrServerClosed is returned by Start on a Server that was started or closed.
var ErrServerClosed = errors.New("epmd: server already started or closed")

// Server is an EPMD server. A registration lives as long as the TCP
// connection that made it; a live name cannot be registered twice; every new
// registration of a name gets a creation different from the name's previous
// one. Safe for concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	limit  *ratelog.Limiter // the lines a peer's connections trigger
	clock  ratelog.Clock    // the limiter's; nil is the time package's
	obs    Observer
	notify func([]net.Addr)
	sem    chan struct{}

	mu        sync.Mutex
	state     int // 0 new, 1 started, 2 closed
	listeners []net.Listener
	conns     map[net.Conn]struct{}
	nodes     map[string]*registration
	past      map[string]uint32 // last creation of unregistered names
	pastOrder []string          // FIFO over past
	counter   uint32            // last 32-bit creation handed out
	done      chan struct{}

	wg sync.WaitGroup
}

type registration struct {
	info     NodeInfo
	creation uint32
	conn     net.Conn
}

// New returns a Server for cfg, not yet listening.
func New(cfg Config, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Addrs = slices.Clone(cfg.Addrs)
	s := &Server{
		cfg:   cfg,
		log:   slog.New(slog.DiscardHandler),
		obs:   nopObserver{},
		sem:   make(chan struct{}, cfg.MaxConns),
		conns: make(map[net.Conn]struct{}),
		nodes: make(map[string]*registration),
		past:  make(map[string]uint32),
		done:  make(chan struct{}),
		// Start creations at a random point so a restarted EPMD does not hand
		// a restarted node the creation it had before.
		counter: rand.Uint32(),
	}
	for _, o := range opts {
		o(s)
	}
	s.log = s.log.With("component", "epmd")
	// Every line a connection triggers is rate-limited per source address
	// (3 a minute) and in all (30 a minute), so a flood of connections (over
	// MaxConns, garbage, refused registrations) writes a few lines with
	// suppressed=N counts; the Observer still hears every request.
	s.limit = ratelog.New(s.log, ratelog.Config{Burst: 3, Every: time.Minute, Total: 30}, ratelog.WithClock(s.clock))
	return s, nil
}

// Start binds every listener and serves in the background until ctx ends or
// Close is called. A bind error closes what was bound and is returned; it
// wraps syscall.EADDRINUSE when the port is taken (another EPMD).
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.state != 0 {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.state = 1
	s.mu.Unlock()

	var lns []net.Listener
	var lc net.ListenConfig
	for _, a := range s.cfg.Addrs {
		network := "tcp4"
		host, _, _ := net.SplitHostPort(a)
		if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() && !ip.Is4In6() {
			network = "tcp6"
		}
		l, err := lc.Listen(ctx, network, a)
		if err != nil {
			if network == "tcp6" && isUnspecified(host) && !errors.Is(err, syscall.EADDRINUSE) {
				s.log.Warn("IPv6 listener unavailable, serving without it", "addr", a, "err", err)
				continue
			}
			for _, l := range lns {
				l.Close()
			}
			s.mu.Lock()
			s.state = 2
			close(s.done)
			s.mu.Unlock()
			return fmt.Errorf("epmd: listen on %s: %w", a, err)
		}
		lns = append(lns, l)
	}
	if len(lns) == 0 {
		s.mu.Lock()
		s.state = 2
		close(s.done)
		s.mu.Unlock()
		return fmt.Errorf("epmd: no listener could be bound")
	}

	s.mu.Lock()
	if s.state == 2 { // closed while binding
		s.mu.Unlock()
		for _, l := range lns {
			l.Close()
		}
		return ErrServerClosed
	}
	s.listeners = lns
	s.mu.Unlock()

	addrs := make([]net.Addr, len(lns))
	for i, l := range lns {
		addrs[i] = l.Addr()
		s.wg.Add(1)
		go s.acceptLoop(l)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
			s.shutdown()
		case <-s.done:
		}
	}()
	s.log.Info("EPMD serving", "addrs", fmt.Sprint(addrs))
	if s.notify != nil {
		s.notify(addrs)
	}
	return nil
}

// Serve is Start followed by waiting until ctx ends or Close is called. It
// returns nil after a clean stop.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-s.done
	s.wg.Wait()
	s.limit.Flush()
	return nil
}

// Close stops listening, drops every connection (and so every
// registration) and waits for the server's goroutines. Safe to call more
// than once and before Start.
func (s *Server) Close() error {
	s.shutdown()
	s.wg.Wait()
	s.limit.Flush()
	return nil
}

func (s *Server) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == 2 {
		return
	}
	s.state = 2
	close(s.done)
	for _, l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.Close()
	}
}

// Addrs returns the bound listener addresses (nil before Start).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, 0, len(s.listeners))
	for _, l := range s.listeners {
		out = append(out, l.Addr())
	}
	return out
}

// Registered is a registered node and its creation.
type Registered struct {
	Node     NodeInfo
	Creation uint32
}

// Nodes returns the registered nodes sorted by name.
func (s *Server) Nodes() []Registered {
	s.mu.Lock()
	out := make([]Registered, 0, len(s.nodes))
	for _, r := range s.nodes {
		out = append(out, Registered{Node: r.info, Creation: r.creation})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Registered) int { return strings.Compare(a.Node.Name, b.Node.Name) })
	return out
}

func (s *Server) acceptLoop(l net.Listener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, keep serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.limit.Warn("accept", "EPMD accept failed", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		select {
		case s.sem <- struct{}{}:
		default:
			c.Close()
			s.obs.ObserveRequest(RequestUnknown, ResultRefused)
			peer := c.RemoteAddr().String()
			s.limit.Warn(source(peer), "EPMD connection refused: too many connections", "peer", peer, "max_conns", s.cfg.MaxConns)
			continue
		}
		s.mu.Lock()
		if s.state == 2 {
			s.mu.Unlock()
			c.Close()
			<-s.sem
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

func (s *Server) serveConn(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		<-s.sem
		s.wg.Done()
	}()
	peer := c.RemoteAddr().String()
	_ = c.SetReadDeadline(time.Now().Add(s.cfg.ReadTimeout))
	req, err := ReadRequest(c)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return // connected and closed without a byte: a port probe
		}
		kind := RequestMalformed
		if errors.Is(err, ErrUnknownRequest) {
			kind = RequestUnknown
		}
		s.obs.ObserveRequest(kind, ResultError)
		s.limit.Debug(source(peer), "EPMD bad request", "peer", peer, "err", err)
		return
	}
	switch r := req.(type) {
	case *Alive2Req:
		s.serveAlive2(c, r, peer)
	case *PortPlease2Req:
		s.servePortPlease2(c, r, peer)
	case *NamesReq:
		s.serveNames(c, peer)
	}
}

func (s *Server) reply(c net.Conn, kind RequestKind, result Result, peer string, build func([]byte) ([]byte, error)) bool {
	b, err := build(make([]byte, 0, 64))
	if err == nil {
		_ = c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		_, err = c.Write(b)
	}
	if err != nil {
		s.obs.ObserveRequest(kind, ResultError)
		s.limit.Debug(source(peer), "EPMD reply failed", "request", string(kind), "peer", peer, "err", err)
		return false
	}
	s.obs.ObserveRequest(kind, result)
	return true
}

func (s *Server) serveAlive2(c net.Conn, r *Alive2Req, peer string) {
	n := r.Node
	refuse := func(result Result, why string) {
		resp := Alive2Resp{Result: CodeError, Extended: n.HighestVersion >= DistVersion6}
		s.reply(c, RequestAlive2, result, peer, resp.AppendBinary)
		s.limit.Warn(source(peer), "EPMD registration refused", "name", ratelog.Truncate(n.Name, ratelog.MaxString), "peer", peer, "reason", why)
	}
	if !s.cfg.AllowRemoteRegistration && !isLocalPeer(c) {
		refuse(ResultRefused, "registration from a non-local address")
		return
	}
	if strings.IndexByte(n.Name, '\n') >= 0 {
		refuse(ResultError, "name contains a newline")
		return
	}
	reg := &registration{info: n, conn: c}
	s.mu.Lock()
	_, taken := s.nodes[n.Name]
	full := len(s.nodes) >= s.cfg.MaxNodes
	if !taken && !full {
		reg.creation = s.nextCreation(n.Name, n.HighestVersion >= DistVersion6)
		s.nodes[n.Name] = reg
	}
	s.mu.Unlock()
	switch {
	case taken:
		refuse(ResultRefused, "name already registered")
		return
	case full:
		refuse(ResultRefused, "registration table full")
		return
	}
	resp := Alive2Resp{Result: CodeOK, Creation: reg.creation, Extended: n.HighestVersion >= DistVersion6}
	if !s.reply(c, RequestAlive2, ResultOK, peer, resp.AppendBinary) {
		s.unregister(reg)
		return
	}
	s.log.Info("node registered", "name", ratelog.Truncate(n.Name, ratelog.MaxString), "port", n.Port, "creation", reg.creation, "peer", peer)

	// The registration lasts as long as this connection. A registered node
	// sends nothing more; anything it sends is read and discarded.
	_ = c.SetReadDeadline(time.Time{})
	buf := make([]byte, 64)
	for {
		if _, err := c.Read(buf); err != nil {
			break
		}
	}
	s.unregister(reg)
	s.log.Info("node unregistered", "name", ratelog.Truncate(n.Name, ratelog.MaxString), "creation", reg.creation, "peer", peer)
}

// nextCreation returns a creation for name different from the name's last
// one. Extended (32-bit) creations come from a counter that skips 0..3;
// 16-bit ones cycle through 1..3 as OTP's epmd does for old nodes.
// s.mu must be held.
func (s *Server) nextCreation(name string, extended bool) uint32 {
	last, seen := s.past[name]
	if extended {
		s.counter++
		if s.counter < 4 {
			s.counter = 4
		}
		return s.counter
	}
	if seen && last >= 1 && last <= 3 {
		return last%3 + 1
	}
	return rand.Uint32N(3) + 1
}

func (s *Server) unregister(reg *registration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := reg.info.Name
	if s.nodes[name] != reg {
		return
	}
	delete(s.nodes, name)
	if s.cfg.RememberNames == 0 {
		return
	}
	if _, ok := s.past[name]; !ok {
		if len(s.pastOrder) >= s.cfg.RememberNames {
			delete(s.past, s.pastOrder[0])
			s.pastOrder = s.pastOrder[1:]
		}
		s.pastOrder = append(s.pastOrder, name)
	}
	s.past[name] = reg.creation
}

func (s *Server) servePortPlease2(c net.Conn, r *PortPlease2Req, peer string) {
	s.mu.Lock()
	reg, ok := s.nodes[r.Name]
	s.mu.Unlock()
	if !ok {
		s.reply(c, RequestPortPlease2, ResultNotFound, peer, Port2Resp{Result: CodeError}.AppendBinary)
		return
	}
	s.reply(c, RequestPortPlease2, ResultOK, peer, Port2Resp{Result: CodeOK, Node: reg.info}.AppendBinary)
}

func (s *Server) serveNames(c net.Conn, peer string) {
	resp := NamesResp{}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		resp.EPMDPort = uint32(a.Port)
	}
	for _, r := range s.Nodes() {
		resp.Nodes = append(resp.Nodes, NameEntry{Name: r.Node.Name, Port: int(r.Node.Port)})
	}
	s.reply(c, RequestNames, ResultOK, peer, resp.AppendBinary)
}

// isLocalPeer applies OTP's epmd's rule: loopback peers, and peers whose
// address is the address they reached us on (the same host).
func isLocalPeer(c net.Conn) bool {
	ra, ok1 := c.RemoteAddr().(*net.TCPAddr)
	la, ok2 := c.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return false
	}
	r, _ := netip.AddrFromSlice(ra.IP)
	l, _ := netip.AddrFromSlice(la.IP)
	r, l = r.Unmap(), l.Unmap()
	return r.IsLoopback() || (r.IsValid() && r == l)
}

// source is the address part of peer (host:port), the key of its rate-limited
// lines: every port of one host shares them.
func source(peer string) string {
	host, _, err := net.SplitHostPort(peer)
	if err != nil {
		return peer
	}
	return host
}

func isUnspecified(host string) bool {
	ip, err := netip.ParseAddr(host)
	return host == "" || (err == nil && ip.IsUnspecified())
}
