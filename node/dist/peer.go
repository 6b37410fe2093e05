package dist

// Peer is what a completed handshake learned about the other node. The
// handshake returns it to ergo in HandshakeDetails.Custom, and the Proto reads
// it back in Init.
type Peer struct {
	// Name is the peer's full node name.
	Name string
	// Ours and Theirs are the flags each side advertised.
	Ours, Theirs Flags
	// Creation is the peer's creation number.
	Creation uint32
	// Initiator is true when this node opened the connection.
	Initiator bool
}

// Negotiated returns the flags both sides support: the ones a connection may use.
func (p Peer) Negotiated() Flags { return p.Ours & p.Theirs }
