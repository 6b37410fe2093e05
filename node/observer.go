package node

// Direction says which side opened a connection.
type Direction string

// Directions.
const (
	Outgoing Direction = "out"
	Incoming Direction = "in"
)

// Observer receives the node's events, typically to turn them into metrics.
// Methods are called from many goroutines at once and must not block.
// Values passed as labels (Direction, result strings) come from small fixed
// sets; peer names are passed for logging, never to be used as labels.
type Observer interface {
	// PeerUp is called when a connection to peer is registered.
	PeerUp(peer string)
	// PeerDown is called when the connection to peer is gone.
	PeerDown(peer string)
	// ConnectFailed is called when an outgoing Connect fails.
	ConnectFailed(peer string)
	// MailboxOverflow is called when a message to a full mailbox was dropped.
	MailboxOverflow(process string)
}

// NopObserver ignores every event.
type NopObserver struct{}

func (NopObserver) PeerUp(string)          {}
func (NopObserver) PeerDown(string)        {}
func (NopObserver) ConnectFailed(string)   {}
func (NopObserver) MailboxOverflow(string) {}
