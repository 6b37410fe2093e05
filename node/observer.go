package node

import "github.com/gonode/gonode/node/dist"

// The node's events use the distribution layer's vocabulary (package dist
// owns the facts: it sees the handshakes and the connections), under the
// names below. Each type is a small fixed set of strings, fit for a metric
// label.

// Direction says which side opened a connection: Outgoing when this node
// dialled, Incoming when the peer did.
type Direction = dist.Direction

// Directions.
const (
	Outgoing = dist.DirectionOut
	Incoming = dist.DirectionIn
)

// ConnectResult is the outcome of a connection attempt.
type ConnectResult = dist.ConnectResult

// Connect results.
const (
	ConnectOK           = dist.ResultOK
	ConnectBadCookie    = dist.ResultBadCookie
	ConnectMissingFlags = dist.ResultMissingFlags
	ConnectTimeout      = dist.ResultTimeout
	ConnectRefused      = dist.ResultRefused     // the peer said nok/not_allowed/false to alive, or we refused it
	ConnectUnreachable  = dist.ResultUnreachable // name resolution, EPMD lookup or the TCP connect failed
	ConnectError        = dist.ResultError
	// ConnectThrottled: an incoming connection closed unheard, its address
	// having failed too many handshakes lately.
	ConnectThrottled = dist.ResultThrottled
	// ConnectOverloaded: an incoming connection closed unheard, too many
	// handshakes being under way (in all or from its address).
	ConnectOverloaded = dist.ResultOverloaded
	// ConnectTLS: the TLS handshake failed: the peer's certificate is not
	// trusted, expired or missing, or one side runs plain TCP distribution.
	ConnectTLS = dist.ResultTLS
)

// DisconnectReason says why a connection ended.
type DisconnectReason = dist.DisconnectReason

// Disconnect reasons.
const (
	DisconnectPeerClosed  = dist.DisconnectPeerClosed  // the peer closed the connection
	DisconnectTickTimeout = dist.DisconnectTickTimeout // nothing heard for net_ticktime
	DisconnectLocal       = dist.DisconnectLocal       // this node disconnected (Disconnect, discovery prune)
	DisconnectShutdown    = dist.DisconnectShutdown    // this node is stopping
	DisconnectError       = dist.DisconnectError       // a protocol or I/O error
)

// Observer receives the node's events, typically to turn them into metrics.
// Methods are called from many goroutines at once and must not block. Peer
// and process names are passed for logging and debugging, never to be used
// as metric labels (the registered name of ServerRestarted excepted: the
// program chooses those); the other arguments come from small fixed sets.
type Observer interface {
	// Connected is called when a connection to peer completed its handshake.
	Connected(peer string, dir Direction)
	// ConnectFailed is called when a connection attempt failed. peer is ""
	// only when the attempt failed before the peer said its name: an
	// incoming attempt before its name message, an outgoing handshake before
	// the peer's challenge.
	ConnectFailed(peer string, dir Direction, result ConnectResult)
	// Disconnected is called when the connection to peer is gone.
	Disconnected(peer string, reason DisconnectReason)
	// MailboxOverflow is called when a message from a local process to
	// process's full mailbox was dropped; process is its registered name, or
	// its pid when it has none.
	MailboxOverflow(process string)
	// MessageDropped is called when a message from peer, waiting in its
	// connection's overflow for a full mailbox, was dropped: the connection
	// ended while it waited for the overflow to have room, or after it
	// ended the receiving process took nothing for 10 s (see
	// Config.MaxOverflowBytes).
	MessageDropped(peer string)
	// MalformedFrame is called when a frame from peer could not be decoded and
	// was dropped (the connection stays up).
	MalformedFrame(peer string)
	// ServerRestarted is called when a server registered with
	// RegisterServer or RegisterServerWith was spawned again after it
	// exited (ServerOptions.Restart); server is its registered name ("" for
	// an unnamed one). Registered names are chosen by the program, not by
	// peers: a small set, fit for a metric label.
	ServerRestarted(server string)
}

// NopObserver ignores every event.
type NopObserver struct{}

func (NopObserver) Connected(string, Direction)                    {}
func (NopObserver) ConnectFailed(string, Direction, ConnectResult) {}
func (NopObserver) Disconnected(string, DisconnectReason)          {}
func (NopObserver) MailboxOverflow(string)                         {}
func (NopObserver) MessageDropped(string)                          {}
func (NopObserver) MalformedFrame(string)                          {}
func (NopObserver) ServerRestarted(string)                         {}
