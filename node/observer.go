package node

// Direction says which side opened a connection.
type Direction string

// Directions.
const (
	Outgoing Direction = "out"
	Incoming Direction = "in"
)

// ConnectResult is the outcome of a connection attempt, a small fixed set
// fit for a metric label.
type ConnectResult string

// Connect results.
const (
	ConnectOK           ConnectResult = "ok"
	ConnectBadCookie    ConnectResult = "bad_cookie"
	ConnectMissingFlags ConnectResult = "missing_flags"
	ConnectTimeout      ConnectResult = "timeout"
	ConnectRefused      ConnectResult = "refused"     // the peer said nok/not_allowed or the TCP connect was refused
	ConnectUnreachable  ConnectResult = "unreachable" // name resolution or EPMD lookup failed
	ConnectError        ConnectResult = "error"
	// ConnectThrottled: an incoming connection closed unheard, its address
	// having failed too many handshakes lately.
	ConnectThrottled ConnectResult = "throttled"
	// ConnectOverloaded: an incoming connection closed unheard, too many
	// handshakes being under way (in all or from its address).
	ConnectOverloaded ConnectResult = "overloaded"
)

// DisconnectReason says why a connection ended, a small fixed set fit for a
// metric label.
type DisconnectReason string

// Disconnect reasons.
const (
	DisconnectPeerClosed  DisconnectReason = "peer_closed"  // the peer closed the connection
	DisconnectTickTimeout DisconnectReason = "tick_timeout" // nothing heard for net_ticktime
	DisconnectLocal       DisconnectReason = "local"        // this node disconnected (Disconnect, discovery prune)
	DisconnectShutdown    DisconnectReason = "shutdown"     // this node is stopping
	DisconnectError       DisconnectReason = "error"        // a protocol or I/O error
)

// Observer receives the node's events, typically to turn them into metrics.
// Methods are called from many goroutines at once and must not block. Peer
// names are passed for logging and debugging, never to be used as metric
// labels; the other arguments come from small fixed sets.
type Observer interface {
	// Connected is called when a connection to peer completed its handshake.
	Connected(peer string, dir Direction)
	// ConnectFailed is called when a connection attempt failed; peer is "" when
	// an incoming attempt failed before the peer said its name.
	ConnectFailed(peer string, dir Direction, result ConnectResult)
	// Disconnected is called when the connection to peer is gone.
	Disconnected(peer string, reason DisconnectReason)
	// MailboxOverflow is called when a message to a full mailbox was dropped.
	MailboxOverflow(process string)
	// MalformedFrame is called when a frame from peer could not be decoded and
	// was dropped (the connection stays up).
	MalformedFrame(peer string)
}

// NopObserver ignores every event.
type NopObserver struct{}

func (NopObserver) Connected(string, Direction)                    {}
func (NopObserver) ConnectFailed(string, Direction, ConnectResult) {}
func (NopObserver) Disconnected(string, DisconnectReason)          {}
func (NopObserver) MailboxOverflow(string)                         {}
func (NopObserver) MalformedFrame(string)                          {}
