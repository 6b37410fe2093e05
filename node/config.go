package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// Cookie is the Erlang distribution cookie. Its String, GoString and LogValue
// methods redact it, so passing a Cookie to fmt or slog never reveals it; use
// Reveal where the secret itself is needed (the handshake digest).
type Cookie string

// Redacted is what a Cookie prints as.
const Redacted = "[redacted]"

// String implements fmt.Stringer without revealing the cookie.
func (Cookie) String() string { return Redacted }

// GoString implements fmt.GoStringer without revealing the cookie.
func (Cookie) GoString() string { return Redacted }

// LogValue implements slog.LogValuer without revealing the cookie.
func (Cookie) LogValue() slog.Value { return slog.StringValue(Redacted) }

// Reveal returns the secret.
func (c Cookie) Reveal() string { return string(c) }

// NameMode is the distribution naming mode, as RELEASE_DISTRIBUTION selects it.
type NameMode string

// Naming modes.
const (
	// LongNames: name@fully.qualified.host or name@ip (erl -name, RELEASE_DISTRIBUTION=name).
	LongNames NameMode = "name"
	// ShortNames: name@host without dots (erl -sname, RELEASE_DISTRIBUTION=sname).
	ShortNames NameMode = "sname"
)

// EPMDMode selects how the node is found by its peers.
type EPMDMode string

// EPMD modes.
const (
	// EPMDEmbedded serves EPMD on the EPMD port and registers with it; when something
	// else already serves the port, the node registers with that EPMD instead.
	EPMDEmbedded EPMDMode = "embedded"
	// EPMDExternal registers with the EPMD at Config.EPMDAddr only.
	EPMDExternal EPMDMode = "external"
	// EPMDNone runs without EPMD: the node listens on Config.DistPort and reaches
	// every peer on that same port.
	EPMDNone EPMDMode = "none"
)

// Config is the node's plain-data configuration. The zero value is not
// usable; start from DefaultConfig. New never modifies the Config it is given.
type Config struct {
	// Name is the full node name, basename@host. Required.
	Name string
	// Cookie is the distribution cookie. Required.
	Cookie Cookie
	// NameMode is LongNames (default) or ShortNames.
	NameMode NameMode
	// Hidden connects as a hidden node: peers do not list it in nodes(), and
	// global and pg ignore it. Default false.
	Hidden bool
	// ListenAddr is the address the distribution listener binds, "" meaning all
	// interfaces. Default "".
	ListenAddr string
	// DistPort is a fixed distribution listen port; 0 picks a free port.
	// Required (non-zero) when EPMD is EPMDNone. Default 0.
	DistPort int
	// EPMD selects the EPMD mode. Default EPMDEmbedded.
	EPMD EPMDMode
	// EPMDPort is the EPMD port served (embedded) or asked (all modes) on peers.
	// Default 4369, the port every BEAM node uses.
	EPMDPort int
	// EPMDAddr is the host:port of the EPMD to register with in EPMDExternal
	// mode. Default "127.0.0.1:4369".
	EPMDAddr string
	// NetTickTime is OTP's net_ticktime: a peer silent for this long is
	// disconnected, and ticks are sent every NetTickTime/4. Default 60s, OTP's.
	NetTickTime time.Duration
	// HandshakeTimeout bounds a whole handshake, in and out. Default 7s, OTP's
	// net_setuptime.
	HandshakeTimeout time.Duration
	// MailboxSize is the mailbox capacity of every process the node spawns for
	// users and built-ins. ergo allocates a process's mailbox, its exit-signal
	// queue and (for a gen.Server) its deferred queue up front at this size,
	// 48 bytes an entry each, whether they are used or not.
	//
	// A message from a peer never meets a full mailbox: it waits in its
	// connection's overflow and reaches the mailbox in order as the process
	// makes room (see MaxOverflowBytes). (With its warnings on, ergo still
	// prints that it dropped the message each time the overflow finds the
	// mailbox full; it did not. WithErgoLogs leaves those lines out.) A message one local process sends
	// another through ergo (Process.Send and the like) to a full mailbox is
	// dropped: the send returns lib.ErrProcessMailboxFull to the sender, ergo
	// logs it, and with WithErgoLogs the node logs it (rate limited) and
	// counts it (Observer.MailboxOverflow). A process that receives bursts
	// from other local processes should get a larger mailbox
	// (RegisterServerWith). So should an ergo gen.Server whose callbacks
	// make calls under load: while a callback waits for a reply, ergo moves
	// the messages that arrive into a deferred queue of MailboxSize entries
	// and drops (and logs) those beyond it; a genserver.Server keeps them
	// all.
	//
	// Default 64: an idle registered genserver.Server then takes 13.6 KiB
	// (Go heap and stack; 14.6 KiB resident) instead of 6 MB at 65,535, the
	// default before the connection overflow existed, and a local burst of
	// 64 still fits (docs/performance-notes.md, "Mailbox size: 64"). The
	// maximum is 65,535 (the size is a uint16 in ergo). Zero means the
	// default.
	MailboxSize int
	// MaxOverflowBytes bounds, per connection, the memory (an estimate of
	// the decoded terms, in bytes) of a peer's messages waiting for local
	// processes whose mailbox is full. At the bound the node stops reading
	// from that peer until a receiver makes room, as a BEAM sender is
	// suspended on a busy distribution port: the peer is slowed down, no
	// message is dropped. The node holds at most this much per connected
	// peer. Default 16 MiB: a burst of 16,000 1 KiB messages, or 250 of
	// 64 KiB, to one slow process waits without slowing the peer down. Zero
	// means the default.
	MaxOverflowBytes int
	// TLS runs distribution over TLS (see TLSConfig). The zero value, the
	// default, is plain TCP.
	TLS TLSConfig
}

// Defaults, each with its reason.
const (
	// DefaultEPMDPort is the port every BEAM node asks.
	DefaultEPMDPort = 4369
	// DefaultNetTickTime is OTP's default net_ticktime.
	DefaultNetTickTime = 60 * time.Second
	// DefaultHandshakeTimeout is OTP's default net_setuptime (7 s).
	DefaultHandshakeTimeout = 7 * time.Second
	// DefaultMailboxSize: see Config.MailboxSize.
	DefaultMailboxSize = 64
	// DefaultMaxOverflowBytes: see Config.MaxOverflowBytes.
	DefaultMaxOverflowBytes = 16 << 20
)

// DefaultConfig returns a Config with every default filled in and Name and
// Cookie empty.
func DefaultConfig() Config {
	return Config{
		NameMode:         LongNames,
		EPMD:             EPMDEmbedded,
		EPMDPort:         DefaultEPMDPort,
		EPMDAddr:         fmt.Sprintf("127.0.0.1:%d", DefaultEPMDPort),
		NetTickTime:      DefaultNetTickTime,
		HandshakeTimeout: DefaultHandshakeTimeout,
		MailboxSize:      DefaultMailboxSize,
		MaxOverflowBytes: DefaultMaxOverflowBytes,
	}
}

// ErrInvalidConfig wraps every problem Validate reports.
var ErrInvalidConfig = errors.New("invalid node configuration")

// ErrEmptyCookie is the problem Validate reports for an empty cookie (with
// ErrInvalidConfig), so that a caller which failed to read the cookie can
// tell it from the problems it has not reported itself.
var ErrEmptyCookie = errors.New("the cookie is empty")

// FieldError is one problem Validate found, with the Config field it is
// about, so that a program can name its own setting for the field (a flag,
// a variable). Err is the problem, which wraps ErrInvalidConfig.
type FieldError struct {
	// Field is the field's name, e.g. "NetTickTime", or "TLS.CAFile" for a
	// field of TLS.
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Validate reports every problem in c, joined, each a *FieldError wrapping
// ErrInvalidConfig. It changes nothing and never mentions the cookie's value.
func (c Config) Validate() error {
	var errs []error
	add := func(field string, err error) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf("%w: %w", ErrInvalidConfig, err)})
	}
	bad := func(field, format string, args ...any) { add(field, fmt.Errorf(format, args...)) }
	switch c.NameMode {
	case LongNames, ShortNames:
		if err := ValidateName(c.Name, c.NameMode); err != nil {
			add("Name", err)
		}
	default:
		bad("NameMode", "unknown distribution mode %q (want %q or %q)", c.NameMode, LongNames, ShortNames)
	}
	if c.Cookie == "" {
		add("Cookie", ErrEmptyCookie)
	} else if err := validateCookie(c.Cookie); err != nil {
		add("Cookie", err)
	}
	if c.DistPort < 0 || c.DistPort > 65535 {
		bad("DistPort", "dist port %d is out of range 0-65535", c.DistPort)
	}
	if c.EPMDPort < 1 || c.EPMDPort > 65535 {
		bad("EPMDPort", "EPMD port %d is out of range 1-65535", c.EPMDPort)
	}
	switch c.EPMD {
	case EPMDEmbedded:
	case EPMDExternal:
		if c.EPMDAddr == "" {
			bad("EPMDAddr", "EPMD mode %q needs an EPMD address", c.EPMD)
		}
	case EPMDNone:
		if c.DistPort == 0 {
			bad("DistPort", "EPMD mode %q needs a fixed dist port", c.EPMD)
		}
	default:
		bad("EPMD", "unknown EPMD mode %q (want embedded, external or none)", c.EPMD)
	}
	if c.NetTickTime < time.Second {
		bad("NetTickTime", "net tick time %s is below 1s", c.NetTickTime)
	}
	if c.HandshakeTimeout <= 0 {
		bad("HandshakeTimeout", "handshake timeout %s must be positive", c.HandshakeTimeout)
	}
	if c.MailboxSize < 0 || c.MailboxSize > 65535 {
		bad("MailboxSize", "mailbox size %d is out of range 0-65535", c.MailboxSize)
	}
	if c.MaxOverflowBytes < 0 {
		bad("MaxOverflowBytes", "max overflow bytes %d is negative", c.MaxOverflowBytes)
	}
	for _, p := range c.TLS.validate() {
		bad("TLS."+p.field, "%s", p.problem)
	}
	return errors.Join(errs...)
}

func validateCookie(c Cookie) error {
	if len(c) > 255 {
		return errors.New("the cookie is longer than 255 bytes")
	}
	for _, r := range c.Reveal() {
		if r < 0x20 || r == 0x7f {
			return errors.New("the cookie contains a control character")
		}
	}
	return nil
}

// ErrInvalidName wraps every node-name problem.
var ErrInvalidName = errors.New("invalid node name")

// ValidateName checks a full node name, basename@host, against the rules BEAM
// applies in the given mode.
func ValidateName(name string, mode NameMode) error {
	base, host, ok := strings.Cut(name, "@")
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty", ErrInvalidName)
	case !ok:
		return fmt.Errorf("%w: %q has no '@' (want basename@host)", ErrInvalidName, name)
	case strings.Contains(host, "@"):
		return fmt.Errorf("%w: %q has more than one '@'", ErrInvalidName, name)
	}
	if err := ValidateBasename(base); err != nil {
		return fmt.Errorf("%w: in %q: %w", ErrInvalidName, name, err)
	}
	if err := validateHost(host, mode); err != nil {
		return fmt.Errorf("%w: in %q: %w", ErrInvalidName, name, err)
	}
	return nil
}

// ValidateBasename checks the part of a node name before '@' (libcluster's
// application_name): 1 to 200 characters from [A-Za-z0-9_-].
func ValidateBasename(base string) error {
	if base == "" {
		return errors.New("the basename is empty")
	}
	if len(base) > 200 {
		return fmt.Errorf("the basename is %d bytes long, over 200", len(base))
	}
	for _, r := range base {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("basename %q has %q; allowed are letters, digits, '_' and '-'", base, r)
		}
	}
	return nil
}

func validateHost(host string, mode NameMode) error {
	if host == "" {
		return errors.New("the host part is empty")
	}
	if len(host) > 253 {
		return errors.New("the host part is longer than 253 bytes")
	}
	if _, err := netip.ParseAddr(host); err == nil {
		if mode == ShortNames {
			return fmt.Errorf("host %q is an IP address, which needs long names (RELEASE_DISTRIBUTION=name)", host)
		}
		return nil
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("host %q has an empty or over-long label", host)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("host %q has %q, which is neither a hostname nor an IP address character", host, r)
			}
		}
	}
	if mode == ShortNames && strings.Contains(host, ".") {
		return fmt.Errorf("host %q has dots, which needs long names (RELEASE_DISTRIBUTION=name)", host)
	}
	return nil
}
