package dist

import "time"

// The facts the distribution layer reports, and their vocabulary. Package
// node passes them on through its own Observer under the same types (its
// Direction, ConnectResult and DisconnectReason are aliases of these), and
// package metrics turns them into label values: every type below is a small
// fixed set of strings, fit for a metric label. Peer names come with the
// events for logs and debug pages, never as label values.

// Direction says which way: for a connection, which side opened it ("out":
// this node dialled, "in": the peer did); for traffic, which way it went.
type Direction string

// Directions.
const (
	DirectionIn  Direction = "in"
	DirectionOut Direction = "out"
)

// ConnectResult is the outcome of a connection attempt: of its handshake,
// or, for ResultUnreachable, of what comes before it.
type ConnectResult string

// Connect results.
const (
	ResultOK           ConnectResult = "ok"
	ResultBadCookie    ConnectResult = "bad_cookie"
	ResultMissingFlags ConnectResult = "missing_flags"
	ResultTimeout      ConnectResult = "timeout"
	// ResultRefused: either side refused (nok, not_allowed, false to alive).
	ResultRefused ConnectResult = "refused"
	// ResultUnreachable: the peer's name did not resolve, its port could not
	// be looked up or its address could not be dialled, so no handshake
	// began. Handshake never reports it; the node's Connect does.
	ResultUnreachable ConnectResult = "unreachable"
	// ResultError: anything else (malformed message, connection closed, I/O).
	ResultError ConnectResult = "error"
	// ResultThrottled: an incoming connection closed unheard because its
	// address failed too many handshakes lately.
	ResultThrottled ConnectResult = "throttled"
	// ResultOverloaded: an incoming connection closed unheard because too
	// many handshakes were under way.
	ResultOverloaded ConnectResult = "overloaded"
	// ResultTLS: the TLS handshake failed (certificate not trusted, expired
	// or missing, a plain-TCP peer against TLS or the reverse).
	ResultTLS ConnectResult = "tls"
)

// DisconnectReason says why an established connection ended.
type DisconnectReason string

// Disconnect reasons. A connection reports PeerClosed, TickTimeout, Error
// or Shutdown (Observer.Disconnected); Local is known only to whoever asked
// for the disconnect (the node's Disconnect).
const (
	DisconnectPeerClosed  DisconnectReason = "peer_closed"  // the peer closed (or reset) the connection
	DisconnectTickTimeout DisconnectReason = "tick_timeout" // nothing heard for net_ticktime
	DisconnectLocal       DisconnectReason = "local"        // this node disconnected (Disconnect, discovery prune)
	DisconnectShutdown    DisconnectReason = "shutdown"     // this node is stopping
	DisconnectError       DisconnectReason = "error"        // a protocol or I/O error
)

// HandshakeEvent is the outcome of one handshake.
type HandshakeEvent struct {
	// Peer is the peer's node name, "" when the handshake ended before the
	// peer said it: an incoming one before the peer's name message, an
	// outgoing one before the peer's challenge.
	Peer      string
	Direction Direction
	Result    ConnectResult
	// Elapsed is the time from the connection's start to the outcome.
	Elapsed time.Duration
}

// HandshakeObserver is told the outcome of every handshake. It is called
// synchronously from Start, Accept and Serve, possibly from several
// goroutines at once, so it must be quick and safe for concurrent use.
type HandshakeObserver interface {
	ObserveHandshake(e HandshakeEvent)
}

// Observer receives a connection's events, for metrics. Its methods are
// called concurrently from every connection's reader and writer goroutines,
// on the hot path: they must be cheap and must not block. peer is the peer's
// node name (for logs or debug pages, not for metric labels).
type Observer interface {
	// Traffic reports distribution messages and bytes moved in one
	// direction. bytes counts everything on the wire: length prefixes,
	// headers and ticks; messages counts complete distribution messages
	// (a fragmented message counts once, when complete; a tick counts 0).
	Traffic(peer string, dir Direction, messages, bytes int)
	// FrameDropped reports a frame dropped because it could not be
	// understood (err wraps ErrMalformedFrame). The connection goes on.
	FrameDropped(peer string, err error)
	// MessageDropped reports a message from peer dropped from the
	// connection's overflow (overflow.go): the connection ended while the
	// message waited for room, or after it ended the receiver took nothing
	// for 10 s.
	MessageDropped(peer string)
	// Disconnected reports that the connection to peer ended, and why
	// (DisconnectPeerClosed, DisconnectTickTimeout, DisconnectError or
	// DisconnectShutdown). It is called once per connection, when its
	// reader and writer have stopped, before Serve returns.
	Disconnected(peer string, reason DisconnectReason)
}
