package dist

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"

	"github.com/gonode/gonode/internal/ratelog"
)

// Errors of the handshake. Every error Start and Accept return wraps one of
// them (check with errors.Is); none of them ever contains the cookie.
var (
	// ErrWrongCookie: the peer's digest does not match our cookie, or the
	// peer closed the connection on our digest (which is how OTP rejects a
	// digest made with another cookie).
	ErrWrongCookie = errors.New("dist: cookie mismatch")
	// ErrHandshakeTimeout: the handshake did not finish within
	// HandshakeConfig.HandshakeTimeout.
	ErrHandshakeTimeout = errors.New("dist: handshake timed out")
	// ErrMissingFlags: the peer lacks distribution flags we require.
	ErrMissingFlags = errors.New("dist: peer lacks required distribution flags")
	// ErrPeerRefused: the peer answered "nok" (it has its own connection
	// attempt to us under way and wins the simultaneous connect) or "false"
	// to our "alive" question.
	ErrPeerRefused = errors.New("dist: peer refused the connection")
	// ErrNotAllowed: the connection is disallowed: the peer answered
	// "not_allowed", or we refused the peer (it uses our own name or asks for
	// a dynamic name, which we do not hand out).
	ErrNotAllowed = errors.New("dist: connection not allowed")
	// ErrSimultaneousConnect: we refused an incoming attempt with "nok"
	// because our own attempt to that node is under way and our name is the
	// greater one, so ours is the connection that survives.
	ErrSimultaneousConnect = errors.New("dist: simultaneous connect: our own connection attempt wins")
	// ErrMalformedHandshake: a handshake message could not be decoded or was
	// not the one expected at that step.
	ErrMalformedHandshake = errors.New("dist: malformed handshake message")
	// ErrConnectionClosed: the peer closed the connection mid-handshake.
	ErrConnectionClosed = errors.New("dist: connection closed during the handshake")
	// ErrNotInitialized: Start or Accept was called before Init.
	ErrNotInitialized = errors.New("dist: handshake used before Init")
	// ErrThrottled: an incoming connection was closed before its handshake
	// because too many handshakes from its address failed lately
	// (HandshakeConfig.FailureBurst).
	ErrThrottled = errors.New("dist: handshake throttled")
	// ErrOverloaded: an incoming connection was closed before its
	// handshake because too many handshakes were under way, in all or from
	// its address (HandshakeConfig.MaxPending, MaxPendingPerAddr).
	ErrOverloaded = errors.New("dist: too many handshakes under way")
	// ErrTLS: the TLS handshake under a distribution handshake failed (an
	// unknown CA, an expired or missing certificate, a peer that speaks
	// plain TCP), or a plain handshake met a peer that speaks TLS.
	ErrTLS = errors.New("dist: TLS")
)

// Connections is the handshake's view of the node's established
// connections. Its methods may be called concurrently.
type Connections interface {
	// Connected reports whether a connection to node is established.
	Connected(node string) bool
	// Disconnect closes the connection to node and returns once it is no
	// longer established (so that a new connection to node can take its
	// place), or with an error when ctx ends first.
	Disconnect(ctx context.Context, node string) error
}

// DefaultHandshakeFlags is the capability set we advertise: every flag OTP 25
// to 29 require, plus the optional features our connection protocol
// implements. DIST_HDR_ATOM_CACHE is left out: we do not use the atom cache.
const DefaultHandshakeFlags = FlagsMandatory25 | FlagsMandatory26 | FlagMandatory25Digest |
	FlagPublished | FlagDistMonitor | FlagDistMonitorName | FlagSendSender | FlagExitPayload |
	FlagFragments | FlagSpawn | FlagAlias | FlagAltactSig | FlagBigSeqtraceLabels

// HandshakeConfig configures a Handshake. It is plain data; NewHandshake
// never modifies it.
type HandshakeConfig struct {
	// Flags are the capabilities advertised to peers. Default
	// DefaultHandshakeFlags. Must include HANDSHAKE_23 (we speak version 6)
	// and must not include NAME_ME. PUBLISHED is removed when Hidden is set.
	Flags Flags
	// Required are the flags a peer must advertise; a peer lacking any of
	// them is refused, naming what it lacks. Default FlagsMandatory25 |
	// FlagsMandatory26, what OTP 26-29 require. A peer advertising
	// MANDATORY_25_DIGEST counts as having every flag of FlagsMandatory25.
	Required Flags
	// Hidden connects as a hidden node: PUBLISHED is not advertised, so
	// peers do not list this node in nodes() and global and pg ignore it.
	// Default false.
	Hidden bool
	// HandshakeTimeout bounds a whole handshake, from the first message to
	// the last. Default 7 s, OTP's net_setuptime. Must be positive.
	HandshakeTimeout time.Duration
	// StepTimeout bounds each message of an incoming handshake: the peer's
	// name must arrive within it of the connection, and each later message
	// within it of our previous one (all within HandshakeTimeout). Default
	// DefaultStepTimeout (2 s). Must be positive.
	StepTimeout time.Duration
	// MaxPending bounds the incoming handshakes under way at once in Serve;
	// a connection beyond it is closed at once, unheard (ResultOverloaded).
	// Default DefaultMaxPending (256). Must be positive.
	MaxPending int
	// MaxPendingPerAddr bounds the incoming handshakes under way at once
	// from one IP address. Default DefaultMaxPendingPerAddr (16). Must be
	// positive.
	MaxPendingPerAddr int
	// FailureBurst and FailureInterval throttle the addresses whose incoming
	// handshakes fail (wrong cookie, silence, garbage): an address may fail
	// FailureBurst handshakes in a row, then one per FailureInterval; its
	// connections in between are closed at once, unheard
	// (ResultThrottled). Handshakes that succeed, or that either side
	// refuses as the protocol provides (a simultaneous connect), cost
	// nothing. Defaults DefaultFailureBurst (10) and DefaultFailureInterval
	// (1 s). Both must be positive.
	FailureBurst    int
	FailureInterval time.Duration
	// Fronted says that incoming connections reach ergo's listener only
	// through Serve, which runs their handshakes: Accept then answers, at
	// once, only for the connections Serve hands off, and refuses any other.
	// Default false: Accept runs each handshake itself. Serve requires it.
	Fronted bool
	// TLS, when set, runs every distribution connection over TLS, as OTP's
	// inet_tls_dist does: the TLS handshake comes first, within the
	// handshake's bounds (StepTimeout for an incoming one, and
	// HandshakeTimeout for both), and the distribution handshake and
	// protocol then run inside it. Nil (the default) means plain TCP.
	TLS *TLSConfig
	// Connections tells whether a connection to a node is already
	// established and closes it when the peer proves it has restarted. Nil
	// means no established connection is known, so "alive" is never asked.
	Connections Connections
	// Logger receives the handshake's log lines, with component
	// dist.handshake. Nil discards them.
	Logger *slog.Logger
	// Observer is told the result of every handshake. Nil means none.
	Observer HandshakeObserver
}

// TLSConfig is the TLS side of a HandshakeConfig. The configurations are
// used as they are, for every connection; to change certificates without a
// restart, give them callbacks (GetConfigForClient, GetClientCertificate,
// VerifyConnection) that read the current ones.
type TLSConfig struct {
	// Server serves incoming connections (tls.Server). Required.
	Server *tls.Config
	// Client dials outgoing connections (tls.Client). Required.
	Client *tls.Config
}

// DefaultHandshakeConfig returns the default configuration.
func DefaultHandshakeConfig() HandshakeConfig {
	return HandshakeConfig{
		// What OTP 25-29 require plus what the proto implements.
		Flags: DefaultHandshakeFlags,
		// OTP 26-29 refuse peers without these; so do we.
		Required: FlagsMandatory25 | FlagsMandatory26,
		// Same bound as OTP's net_setuptime default.
		HandshakeTimeout: 7 * time.Second,
		// The reasons are given with the constants.
		StepTimeout:       DefaultStepTimeout,
		MaxPending:        DefaultMaxPending,
		MaxPendingPerAddr: DefaultMaxPendingPerAddr,
		FailureBurst:      DefaultFailureBurst,
		FailureInterval:   DefaultFailureInterval,
	}
}

// Validate reports every problem of the configuration at once. It changes
// nothing.
func (c HandshakeConfig) Validate() error {
	var errs []error
	if c.HandshakeTimeout <= 0 {
		errs = append(errs, fmt.Errorf("HandshakeTimeout must be positive, got %s", c.HandshakeTimeout))
	}
	if c.StepTimeout <= 0 {
		errs = append(errs, fmt.Errorf("StepTimeout must be positive, got %s", c.StepTimeout))
	}
	if c.FailureInterval <= 0 {
		errs = append(errs, fmt.Errorf("FailureInterval must be positive, got %s", c.FailureInterval))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"MaxPending", c.MaxPending}, {"MaxPendingPerAddr", c.MaxPendingPerAddr}, {"FailureBurst", c.FailureBurst}} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", f.name, f.v))
		}
	}
	if c.TLS != nil && (c.TLS.Server == nil || c.TLS.Client == nil) {
		errs = append(errs, errors.New("TLS needs both a Server and a Client configuration"))
	}
	if !c.Flags.Has(FlagHandshake23) {
		errs = append(errs, errors.New("Flags must include HANDSHAKE_23: only handshake version 6 is spoken"))
	}
	if c.Flags.Has(FlagNameMe) {
		errs = append(errs, errors.New("Flags must not include NAME_ME: dynamic node names are not supported"))
	}
	if c.Required.Has(FlagNameMe) {
		errs = append(errs, errors.New("the Required flags must not include NAME_ME"))
	}
	return errors.Join(errs...)
}

// Handshake is the version 6 Erlang distribution handshake, usable as ergo's
// node.Options.Handshake. It is safe for concurrent use: ergo runs Start for
// each outgoing connection and Accept in its accept loop; Serve runs
// incoming handshakes concurrently in front of that loop.
type Handshake struct {
	cfg   HandshakeConfig
	flags Flags // advertised
	log   *slog.Logger

	lim      *ratelog.Limiter // failures' log lines
	gate     *gate            // bounds and throttles Serve's handshakes
	handoffs handoffs         // Serve's completed handshakes, for Accept

	mu       sync.Mutex
	self     string
	creation uint32
	dialing  map[string]int // outgoing attempts under way, by peer name
	// accepting are the peers whose incoming handshake is under way: a
	// second one from the same name meanwhile is refused.
	accepting map[string]bool
	// superseded are the peers whose simultaneous incoming attempt we let
	// win (ok_simultaneous) while we were dialing them: our own attempts to
	// them give way, as OTP's net_kernel kills them. An entry lasts while
	// the peer is marked Dialing.
	superseded map[string]bool

	gaveWay atomic.Uint64 // see GaveWay
}

var _ node.HandshakeInterface = (*Handshake)(nil)

// GaveWay counts the outgoing handshakes that ended with ErrPeerRefused: the
// peer won a simultaneous connect (it answered nok), our attempt gave way to
// the peer's incoming one, or the peer's connection to us stays (false to
// alive). In each case the connection to that peer is, or is about to be,
// the one the peer made. A caller that compares it before and after a
// failed connect can wait for that connection instead of reporting a
// failure.
func (h *Handshake) GaveWay() uint64 { return h.gaveWay.Load() }

// NewHandshake returns a Handshake for cfg, or the problems Validate found.
func NewHandshake(cfg HandshakeConfig) (*Handshake, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dist: invalid handshake config: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	flags := cfg.Flags
	if cfg.Hidden {
		flags &^= FlagPublished
	}
	return &Handshake{
		cfg:        cfg,
		flags:      flags,
		log:        logger.With("component", "dist.handshake"),
		lim:        ratelog.New(logger.With("component", "dist.handshake"), ratelog.Config{}),
		gate:       newGate(cfg),
		dialing:    make(map[string]int),
		accepting:  make(map[string]bool),
		superseded: make(map[string]bool),
	}, nil
}

// Flags returns the flags this handshake advertises.
func (h *Handshake) Flags() Flags { return h.flags }

// Init implements node.HandshakeInterface: ergo calls it with this node's
// name and creation before any connection. ergo's own flags are ignored: the
// advertised capabilities come from HandshakeConfig.Flags.
func (h *Handshake) Init(nodename string, creation uint32, _ node.Flags) error {
	if err := hsValidNodeName(nodename); err != nil {
		return fmt.Errorf("dist: handshake Init: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.self, h.creation = nodename, creation
	return nil
}

// Version implements node.HandshakeInterface: 6, the only version spoken.
func (h *Handshake) Version() node.HandshakeVersion { return hsVersion }

// Dialing marks an outgoing connection attempt to peer as under way until
// the returned function is called. Start marks its attempt itself once the
// peer has named itself; a caller that knows the name before dialing (the
// node's Connect) calls Dialing first so that a simultaneous incoming attempt
// from the same peer is resolved as OTP does from the very start.
func (h *Handshake) Dialing(peer string) (done func()) {
	h.mu.Lock()
	h.dialing[peer]++
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			if h.dialing[peer]--; h.dialing[peer] <= 0 {
				delete(h.dialing, peer)
				delete(h.superseded, peer)
			}
			h.mu.Unlock()
		})
	}
}

func (h *Handshake) identity() (string, uint32, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.self == "" {
		return "", 0, ErrNotInitialized
	}
	return h.self, h.creation, nil
}

// supersede records that an incoming attempt from peer won over ours.
func (h *Handshake) supersede(peer string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.dialing[peer] > 0 {
		h.superseded[peer] = true
	}
}

func (h *Handshake) isSuperseded(peer string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.superseded[peer]
}

// supersededAndConnected returns a peer whose incoming attempt won over our
// own and whose connection is now established, or "".
func (h *Handshake) supersededAndConnected() string {
	if h.cfg.Connections == nil {
		return ""
	}
	h.mu.Lock()
	peers := make([]string, 0, len(h.superseded))
	for p := range h.superseded {
		peers = append(peers, p)
	}
	h.mu.Unlock()
	for _, p := range peers {
		if h.cfg.Connections.Connected(p) {
			return p
		}
	}
	return ""
}

func (h *Handshake) enterAccepting(peer string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.accepting[peer] {
		return false
	}
	h.accepting[peer] = true
	return true
}

func (h *Handshake) leaveAccepting(peer string) {
	h.mu.Lock()
	delete(h.accepting, peer)
	h.mu.Unlock()
}

func (h *Handshake) isDialing(peer string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dialing[peer] > 0
}

// hsDecideStatus is what an acceptor answers a peer's name with, as OTP's
// net_kernel decides it: a simultaneous connect is won by the greater name
// (nok when that is ours, ok_simultaneous when it is theirs); a peer we
// believe connected is asked whether it is alive; anyone else gets ok.
func hsDecideStatus(self, peer string, dialing, connected bool) string {
	switch {
	case dialing && self > peer:
		return hsStatusNOK
	case dialing:
		return hsStatusOKSimultaneous
	case connected:
		return hsStatusAlive
	default:
		return hsStatusOK
	}
}

// Start implements node.HandshakeInterface: the initiator's side, run by ergo
// on every outgoing connection. It never reads past the handshake's last
// message, so HandshakeDetails.Buffer is always nil.
func (h *Handshake) Start(remote net.Addr, conn lib.NetReadWriter, _ bool, cookie string) (node.HandshakeDetails, error) {
	begin := time.Now()
	peer, details, err := h.start(conn, cookie)
	h.finish(DirectionOut, remote, peer, begin, err)
	return details, err
}

// Accept implements node.HandshakeInterface: the acceptor's side, run by
// ergo's accept loop for every incoming connection. Once Serve runs, the
// handshakes are Serve's and Accept only answers, at once, with the details
// of the one Serve handed off over conn (HandshakeConfig.Fronted).
func (h *Handshake) Accept(remote net.Addr, conn lib.NetReadWriter, _ bool, cookie string) (node.HandshakeDetails, error) {
	if h.cfg.Fronted {
		return h.acceptHandedOff(remote)
	}
	begin := time.Now()
	peer, details, err := h.accept(conn, cookie)
	h.finish(DirectionIn, remote, peer, begin, err)
	return details, err
}

// start runs the initiator's side (hsRun.initiate) and returns the peer's
// name, as far as it is known, with the details of a completed handshake.
func (h *Handshake) start(rw lib.NetReadWriter, cookie string) (peer string, _ node.HandshakeDetails, _ error) {
	r, err := h.newRun(rw, cookie)
	if err != nil {
		return "", node.HandshakeDetails{}, err
	}
	defer r.c.clearDeadlines()
	if err := r.secure(false); err != nil {
		return "", node.HandshakeDetails{}, err
	}
	if err := r.initiate(); err != nil {
		return r.peer, node.HandshakeDetails{}, err
	}
	return r.peer, r.details(true), nil
}

// accept runs the acceptor's side (hsRun.acceptSteps), as start does.
func (h *Handshake) accept(rw lib.NetReadWriter, cookie string) (peer string, _ node.HandshakeDetails, _ error) {
	r, err := h.newRun(rw, cookie)
	if err != nil {
		return "", node.HandshakeDetails{}, err
	}
	defer r.c.clearDeadlines()
	r.c.step = h.cfg.StepTimeout
	if err := r.secure(true); err != nil {
		return "", node.HandshakeDetails{}, err
	}
	if err := r.acceptSteps(); err != nil {
		return r.peer, node.HandshakeDetails{}, err
	}
	return r.peer, r.details(false), nil
}

// details builds the details of r's completed handshake; over TLS they
// carry the TLS connection, which the proto serves instead of ergo's.
func (r *hsRun) details(initiator bool) node.HandshakeDetails {
	d := r.h.details(r.peer, r.theirs, r.peerCreation, initiator)
	if r.tls != nil {
		d.Custom = accepted{Peer: d.Custom.(Peer), conn: r.tls}
	}
	return d
}

// details builds what ergo needs from a completed handshake.
func (h *Handshake) details(peer string, theirs Flags, creation uint32, initiator bool) node.HandshakeDetails {
	p := Peer{Name: peer, Ours: h.flags, Theirs: theirs, Creation: creation, Initiator: initiator}
	return node.HandshakeDetails{
		Name:     peer,
		Flags:    ErgoFlags(p.Negotiated()),
		Creation: creation,
		Version:  hsVersion,
		// One reader and one writer per connection keep Erlang's
		// per-pair message ordering.
		NumHandlers: 1,
		Custom:      p,
	}
}

// ErgoFlags maps negotiated distribution flags onto ergo's node.Flags, for
// code (such as ergo's own proto) that reads HandshakeDetails.Flags.
func ErgoFlags(f Flags) node.Flags {
	return node.Flags{
		Enable:                true,
		EnableHeaderAtomCache: f.Has(FlagDistHdrAtomCache),
		EnableBigCreation:     f.Has(FlagBigCreation),
		EnableBigPidRef:       f.Has(FlagV4NC),
		EnableFragmentation:   f.Has(FlagFragments),
		EnableAlias:           f.Has(FlagAlias),
		EnableRemoteSpawn:     f.Has(FlagSpawn),
		// ergo-only features that no Erlang node speaks.
		EnableCompression: false,
		EnableProxy:       false,
	}
}

func hsMissingFlagsError(peer string, missing Flags) error {
	return fmt.Errorf("%w: node %s lacks %s", ErrMissingFlags, peer, strings.Join(missing.Names(), ", "))
}

// hsClassify maps a handshake error onto its result label.
func hsClassify(err error) ConnectResult {
	switch {
	case err == nil:
		return ResultOK
	case errors.Is(err, ErrWrongCookie):
		return ResultBadCookie
	case errors.Is(err, ErrTLS):
		return ResultTLS
	case errors.Is(err, ErrMissingFlags):
		return ResultMissingFlags
	case errors.Is(err, ErrHandshakeTimeout):
		return ResultTimeout
	case errors.Is(err, ErrPeerRefused), errors.Is(err, ErrNotAllowed), errors.Is(err, ErrSimultaneousConnect):
		return ResultRefused
	case errors.Is(err, ErrThrottled):
		return ResultThrottled
	case errors.Is(err, ErrOverloaded):
		return ResultOverloaded
	default:
		return ResultError
	}
}

// finish logs the outcome of a handshake and reports it to the observer.
func (h *Handshake) finish(dir Direction, remote net.Addr, peer string, begin time.Time, err error) {
	elapsed := time.Since(begin)
	result := hsClassify(err)
	if dir == DirectionOut && errors.Is(err, ErrPeerRefused) {
		h.gaveWay.Add(1)
	}
	if h.cfg.Observer != nil {
		h.cfg.Observer.ObserveHandshake(HandshakeEvent{Peer: peer, Direction: dir, Result: result, Elapsed: elapsed})
	}
	addr := ""
	if remote != nil {
		addr = remote.String()
	}
	attrs := []any{"peer", ratelog.Truncate(peer, ratelog.MaxString), "addr", addr, "direction", string(dir), "result", string(result)}
	if err != nil {
		attrs = append(attrs, "err", ratelog.Truncate(err.Error(), 2*ratelog.MaxString))
	}
	if result == ResultOK {
		h.log.Info("distribution handshake completed", attrs...)
		return
	}
	// Failures are the peer's or the network's doing: a few lines per
	// source address (incoming) or peer (outgoing) a minute; the observer
	// counts every one.
	key := peer
	if dir == DirectionIn {
		key = remoteIP(remote).String()
	}
	switch result {
	case ResultBadCookie:
		h.lim.Warn(key, "distribution handshake failed: cookie mismatch", attrs...)
	case ResultMissingFlags:
		h.lim.Warn(key, "distribution handshake failed: the peer lacks required distribution flags", attrs...)
	case ResultRefused:
		h.lim.Info(key, "distribution handshake refused", attrs...)
	case ResultThrottled, ResultOverloaded:
		h.lim.Warn(key, "incoming connection closed unheard", attrs...)
	case ResultTLS:
		h.lim.Warn(key, "distribution handshake failed: TLS", attrs...)
	default:
		h.lim.Warn(key, "distribution handshake failed", attrs...)
	}
}

func hsRandomChallenge() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return binary.BigEndian.Uint32(b[:])
}

func hsSameDigest(a, b [hsDigestLen]byte) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

// hsConn frames handshake messages on a connection whose deadlines bound
// the whole handshake. It reads exactly one message at a time, never more.
type hsConn struct {
	rw       lib.NetReadWriter
	deadline time.Time
	// step, when set, bounds each read too: a message must arrive within
	// step of the read's start (and before deadline).
	step time.Duration
	// first: no message has been read yet over plain TCP.
	first bool
	// tls: the handshake runs over TLS, where OTP's inet_tls_dist frames
	// its messages with a 4-byte length (the socket's {packet, 4}) instead
	// of plain TCP's 2 bytes.
	tls bool
}

func newHSConn(rw lib.NetReadWriter, timeout time.Duration) *hsConn {
	c := &hsConn{rw: rw, deadline: time.Now().Add(timeout), first: true}
	_ = rw.SetReadDeadline(c.deadline)
	_ = rw.SetWriteDeadline(c.deadline)
	return c
}

func (c *hsConn) clearDeadlines() {
	_ = c.rw.SetReadDeadline(time.Time{})
	_ = c.rw.SetWriteDeadline(time.Time{})
}

// read reads one length-prefixed message body; step names it in errors.
func (c *hsConn) read(step string) ([]byte, error) {
	if c.step > 0 {
		d := time.Now().Add(c.step)
		if d.After(c.deadline) {
			d = c.deadline
		}
		_ = c.rw.SetReadDeadline(d)
	}
	var hdr [2]byte
	var n int
	if c.tls {
		var hdr4 [4]byte
		if _, err := io.ReadFull(c.rw, hdr4[:]); err != nil {
			return nil, hsIOError("waiting for the "+step, err)
		}
		n = int(min(binary.BigEndian.Uint32(hdr4[:]), hsMaxMessage+1))
	} else {
		if _, err := io.ReadFull(c.rw, hdr[:]); err != nil {
			return nil, hsIOError("waiting for the "+step, err)
		}
		n = int(binary.BigEndian.Uint16(hdr[:]))
	}
	if n == 0 {
		return nil, hsMalformed("empty %s message", step)
	}
	if n > hsMaxMessage && c.first && looksLikeTLS(hdr) {
		return nil, fmt.Errorf("%w: the peer speaks TLS (it runs TLS distribution, -proto_dist inet_tls) and this node plain TCP", ErrTLS)
	}
	c.first = false
	if n > hsMaxMessage {
		return nil, hsMalformed("%s message of %d bytes exceeds the %d-byte limit", step, n, hsMaxMessage)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.rw, b); err != nil {
		return nil, hsIOError("reading the "+step, err)
	}
	return b, nil
}

// write sends one message, b being its body after a 2-byte length (as the
// hsAppend functions make it).
func (c *hsConn) write(step string, b []byte) error {
	if c.tls {
		framed := binary.BigEndian.AppendUint32(make([]byte, 0, len(b)+2), uint32(len(b)-2))
		b = append(framed, b[2:]...)
	}
	if _, err := c.rw.Write(b); err != nil {
		return hsIOError("sending the "+step, err)
	}
	return nil
}

// hsIOError wraps an I/O error with the sentinel that says what happened.
func hsIOError(doing string, err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%w %s: %w", ErrHandshakeTimeout, doing, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, io.ErrClosedPipe), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return fmt.Errorf("%w %s: %w", ErrConnectionClosed, doing, err)
	default:
		return fmt.Errorf("%s: %w", doing, err)
	}
}
