package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/lib"
	ergonode "github.com/ergo-services/ergo/node"

	"github.com/gonode/gonode/epmd"
)

// ErrPeerUnresolved: the peer's address could not be found. Connect and
// Call return it (with errors.Is) when the peer's host could not be resolved,
// when no EPMD answered on it (then the error is also ErrHostUnreachable), or
// when the EPMD does not know the peer (then it is also ErrNotRegistered and
// epmd.ErrNotFound).
var ErrPeerUnresolved = errors.New("cannot resolve peer")

// Registrar timings.
const (
	// resolveTimeout bounds one Resolve: DNS and the EPMD exchange. ergo calls
	// Resolve for every outgoing connection; a peer that cannot be found within
	// 5 s is reported rather than stalling the connection attempt.
	resolveTimeout = 5 * time.Second
	// registerTimeout bounds one registration exchange with an EPMD.
	registerTimeout = 5 * time.Second
	// Re-registration backoff after the EPMD dropped us: from 250 ms, doubling,
	// at most 30 s (a restarting sidecar EPMD is back within seconds).
	reregisterMin = 250 * time.Millisecond
	reregisterMax = 30 * time.Second
)

// registrar implements ergo's node.Registrar on package epmd, in the three
// EPMD modes of Config:
//
//   - EPMDEmbedded: serve EPMD on Config.EPMDPort (every interface, IPv4 and
//     IPv6) for this node and any BEAM node of the pod, and register with it;
//     when another EPMD already serves the port, register with that one, as
//     erl does with a running epmd.
//   - EPMDExternal: register with the EPMD at Config.EPMDAddr only.
//   - EPMDNone: no EPMD; Register does nothing and Resolve answers the peer's
//     host with Config.DistPort (every node listens on that port).
//
// In the EPMD modes Resolve asks the EPMD on the peer's host (Config.EPMDPort)
// with PORT_PLEASE2_REQ. The registration is kept for the node's lifetime,
// re-made if the EPMD drops it, and dropped by Close or when the context
// given to Register ends. Safe for concurrent use.
type registrar struct {
	cfg      Config
	log      *slog.Logger
	obs      epmd.Observer
	resolver *net.Resolver
	// resolveTimeout and registerTimeout default to the constants; tests of
	// this package shorten them on their own instance.
	resolveTimeout  time.Duration
	registerTimeout time.Duration
	// causes, when set (the wire layer sets it), records Resolve's
	// failures; out, when set (the wire layer sets it once it listens),
	// makes Resolve dial and run the handshake itself (outgoing.go), which
	// records theirs.
	causes *peerCauses
	out    *outgoing

	mu          sync.Mutex
	closed      bool
	registering bool // a Register call is in progress
	started     bool // Register succeeded
	server      *epmd.Server
	reg         *epmd.Registration
	creation    uint32
	// port is the distribution port peers reach and EPMD advertises: the
	// port of the node's own listener (set before Register), else the one
	// ergo registers. ergoPort is ergo's listener's, which the node's own
	// listener hands connections to.
	port, ergoPort uint16
	info           epmd.NodeInfo
	cancelKeep     context.CancelFunc
	wg             sync.WaitGroup
}

var _ ergonode.Registrar = (*registrar)(nil)

// newRegistrar returns a registrar for cfg; obs (may be nil) observes the
// embedded EPMD server. Nothing starts before Register.
func newRegistrar(cfg Config, log *slog.Logger, obs epmd.Observer) *registrar {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &registrar{
		cfg:             cfg,
		log:             log.With("component", "registrar"),
		obs:             obs,
		resolver:        net.DefaultResolver,
		resolveTimeout:  resolveTimeout,
		registerTimeout: registerTimeout,
	}
}

// splitNodeName splits basename@host, checking the basename against EPMD's
// rules.
func splitNodeName(name string) (base, host string, err error) {
	base, host, ok := strings.Cut(name, "@")
	if !ok || host == "" || strings.Contains(host, "@") {
		return "", "", fmt.Errorf("%w: %q is not basename@host", ErrInvalidName, name)
	}
	if err := epmd.ValidateName(base); err != nil {
		return "", "", fmt.Errorf("%w: %q: %w", ErrInvalidName, name, err)
	}
	return base, host, nil
}

// Register implements ergo's Registrar. ergo calls it once per registering
// listener during node start; the registration then lasts until Close or
// until ctx (the node's context) ends.
func (r *registrar) Register(ctx context.Context, nodename string, options ergonode.RegisterOptions) error {
	base, _, err := splitNodeName(nodename)
	if err != nil {
		return err
	}
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return errRegistrarClosed
	case r.started || r.registering:
		r.mu.Unlock()
		return fmt.Errorf("registrar: %s is already registered (one listener only)", nodename)
	}
	r.creation = options.Creation
	r.ergoPort = options.Port
	if r.port == 0 {
		r.port = options.Port
	}
	if r.cfg.EPMD == EPMDNone {
		r.started = true
		r.mu.Unlock()
		r.log.Info("running without EPMD", "node", nodename, "dist_port", r.cfg.DistPort)
		return nil
	}
	high := uint16(options.HandshakeVersion)
	if high < epmd.DistVersion5 || high > epmd.DistVersion6 {
		high = epmd.DistVersion6
	}
	r.info = epmd.NodeInfo{
		Name: base,
		Port: r.port,
		// OTP registers hidden nodes as normal ones too: hidden-ness is
		// negotiated in the handshake, not announced through EPMD.
		Type:           epmd.NodeTypeNormal,
		Protocol:       epmd.ProtocolTCP,
		HighestVersion: high,
		LowestVersion:  high,
	}
	r.registering = true
	r.mu.Unlock()

	reg, err := r.connect(ctx)

	r.mu.Lock()
	defer r.mu.Unlock()
	r.registering = false
	if err != nil {
		return err
	}
	if r.closed {
		reg.Close()
		return errRegistrarClosed
	}
	r.reg, r.creation, r.started = reg, reg.Creation, true
	kctx, cancel := context.WithCancel(ctx)
	r.cancelKeep = cancel
	r.wg.Add(1)
	go r.keep(kctx, reg)
	return nil
}

var errRegistrarClosed = errors.New("registrar: closed")

// connect serves EPMD if the mode asks for it and the port is free, then
// registers. It must not be called with r.mu held; Register and keep never
// run it at the same time.
func (r *registrar) connect(ctx context.Context) (*epmd.Registration, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errRegistrarClosed
	}
	addr := r.cfg.EPMDAddr
	if r.cfg.EPMD == EPMDEmbedded {
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.cfg.EPMDPort))
		if r.server == nil {
			if err := r.startServerLocked(); err != nil {
				r.mu.Unlock()
				return nil, err
			}
		}
	}
	serving, info := r.server != nil, r.info
	r.mu.Unlock()

	c := &epmd.Client{Addr: addr, Timeout: r.registerTimeout}
	reg, err := c.Register(ctx, info)
	if err != nil {
		if r.cfg.EPMD == EPMDEmbedded && !serving {
			return nil, fmt.Errorf("registrar: port %d is served by another program, and registering %s with it failed: %w", r.cfg.EPMDPort, info.Name, err)
		}
		return nil, fmt.Errorf("registrar: register %s with EPMD %s: %w", info.Name, addr, err)
	}
	r.log.Info("registered with EPMD", "name", info.Name, "port", info.Port, "epmd", addr,
		"creation", reg.Creation, "embedded", serving)
	return reg, nil
}

// startServerLocked starts the embedded EPMD server. A taken port is not an
// error: another EPMD (a sidecar's epmd, another gonode) serves it and we
// register there. r.mu must be held.
func (r *registrar) startServerLocked() error {
	cfg := epmd.DefaultConfig()
	port := strconv.Itoa(r.cfg.EPMDPort)
	cfg.Addrs = []string{net.JoinHostPort("0.0.0.0", port), net.JoinHostPort("::", port)}
	opts := []epmd.Option{epmd.WithLogger(r.log)}
	if r.obs != nil {
		opts = append(opts, epmd.WithObserver(r.obs))
	}
	s, err := epmd.New(cfg, opts...)
	if err != nil {
		return fmt.Errorf("registrar: embedded EPMD: %w", err)
	}
	// The server lives until Close, not as long as one Register call.
	if err := s.Start(context.Background()); err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			r.log.Info("EPMD port already served; registering with that EPMD", "port", r.cfg.EPMDPort)
			return nil
		}
		return fmt.Errorf("registrar: embedded EPMD: %w", err)
	}
	r.server = s
	return nil
}

// keep watches the registration and re-registers when the EPMD drops it
// (an external or sidecar EPMD restarted), until ctx ends (Close, or the
// node's context).
func (r *registrar) keep(ctx context.Context, reg *epmd.Registration) {
	defer r.wg.Done()
	var backoff time.Duration
	for {
		select {
		case <-reg.Done():
		case <-ctx.Done():
			reg.Close()
			return
		}
		r.log.Warn("EPMD registration lost; registering again", "name", r.info.Name, "err", reg.Err())
		for {
			backoff = min(max(2*backoff, reregisterMin), reregisterMax)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			next, err := r.connect(ctx)
			if err != nil {
				r.log.Warn("EPMD re-registration failed", "name", r.info.Name, "err", err)
				continue
			}
			r.mu.Lock()
			if r.closed {
				r.mu.Unlock()
				next.Close()
				return
			}
			r.reg, r.creation = next, next.Creation
			r.mu.Unlock()
			reg, backoff = next, 0
			break
		}
	}
}

// Creation returns the creation the EPMD gave this node's registration (it
// changes if the registration had to be made again), or, without EPMD or
// before Register, the creation ergo passed to Register (0 before).
func (r *registrar) Creation() uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.creation
}

// Port returns the distribution port the node listens on (known once
// Register was called, or once setPort), or 0.
func (r *registrar) Port() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int(r.port)
}

// setPort sets the port to advertise, before Register: the port of the
// listener in front of ergo's.
func (r *registrar) setPort(p uint16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.port = p
}

// ergoListenPort returns the port of ergo's listener (known once Register
// was called), or 0.
func (r *registrar) ergoListenPort() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int(r.ergoPort)
}

// Close drops the registration and stops the embedded EPMD server. Safe to
// call more than once.
func (r *registrar) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	if r.cancelKeep != nil {
		r.cancelKeep()
	}
	r.mu.Unlock()
	r.wg.Wait() // keep has returned

	r.mu.Lock()
	reg, server := r.reg, r.server
	r.mu.Unlock()
	var errs []error
	if reg != nil {
		if err := reg.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if server != nil {
		errs = append(errs, server.Close())
	}
	return errors.Join(errs...)
}

// Resolve implements ergo's Registrar: the peer's host and distribution port.
// Without EPMD the port is Config.DistPort; otherwise it asks the EPMD on
// the peer's host, bounded by a 5 s timeout. Errors wrap ErrPeerUnresolved,
// and ErrNotRegistered or ErrHostUnreachable when that is the cause. With
// out set it then connects (outgoing.connect): ergo's own Resolve, called
// directly, therefore makes a connection too, which is closed unless ergo
// takes it. ergo turns every error of Resolve into its own "no route to
// node": Resolve records them for Connect and Call to report.
func (r *registrar) Resolve(peername string) (ergonode.Route, error) {
	route, err := r.resolve(peername)
	if r.causes == nil {
		return route, err
	}
	if err != nil {
		r.causes.failed(peername, err)
		return route, err
	}
	if r.out != nil {
		return r.out.connect(peername, route)
	}
	return route, nil
}

func (r *registrar) resolve(peername string) (ergonode.Route, error) {
	base, host, err := splitNodeName(peername)
	if err != nil {
		return ergonode.Route{}, fmt.Errorf("%w %s: %w", ErrPeerUnresolved, peername, err)
	}
	if r.cfg.EPMD == EPMDNone {
		return ergonode.Route{Node: base, Host: host, Port: uint16(r.cfg.DistPort)}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.resolveTimeout)
	defer cancel()
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		ips, err = r.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return ergonode.Route{}, fmt.Errorf("%w %s: look up host %q: %w", ErrPeerUnresolved, peername, host, err)
		}
	}
	var errs []error
	unreachable := true
	for _, ip := range ips {
		ip = ip.Unmap()
		c := &epmd.Client{Addr: net.JoinHostPort(ip.String(), strconv.Itoa(r.cfg.EPMDPort))}
		info, err := c.LookupPort(ctx, base)
		if err == nil {
			return ergonode.Route{Node: base, Host: ip.String(), Port: info.Port}, nil
		}
		if errors.Is(err, epmd.ErrNotFound) {
			// That EPMD answered: the node is not registered on this host.
			return ergonode.Route{}, fmt.Errorf("%w: %s: %w", ErrNotRegistered, peername, err)
		}
		errs = append(errs, err)
		unreachable = unreachable && isDialError(err)
		if ctx.Err() != nil {
			break
		}
	}
	err = fmt.Errorf("%w %s: no EPMD answered on port %d of %s: %w", ErrPeerUnresolved, peername, r.cfg.EPMDPort, host, errors.Join(errs...))
	if unreachable {
		err = fmt.Errorf("%w: %w", ErrHostUnreachable, err)
	}
	return ergonode.Route{}, err
}

// isDialError reports whether err is a failed TCP connect (refused, no
// route, timed out), not a failure after the connection was made.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// RegisterProxy is not supported: gonode speaks plain Erlang distribution.
func (r *registrar) RegisterProxy(string, int, ergonode.ProxyFlags) error {
	return lib.ErrUnsupported
}

// UnregisterProxy is not supported.
func (r *registrar) UnregisterProxy(string) error { return lib.ErrUnsupported }

// ResolveProxy is not supported; ergo then connects directly.
func (r *registrar) ResolveProxy(string) (ergonode.ProxyRoute, error) {
	return ergonode.ProxyRoute{}, lib.ErrUnsupported
}

// Config is not supported: EPMD carries no configuration.
func (r *registrar) Config() (ergonode.RegistrarConfig, error) {
	return ergonode.RegistrarConfig{}, lib.ErrUnsupported
}

// ConfigItem is not supported.
func (r *registrar) ConfigItem(string) (etf.Term, error) { return nil, lib.ErrUnsupported }

// SetConfigUpdateCallback is not supported.
func (r *registrar) SetConfigUpdateCallback(func(string, etf.Term) error) error {
	return lib.ErrUnsupported
}
