package node

import "time"

// Hooks for the package's external tests.

// DialingForTest marks n as dialing peer, as Connect does while its attempt
// is under way, until the returned function is called.
func DialingForTest(n *Node, peer string) (done func()) { return n.wire.handshake.Dialing(peer) }

// GaveWayForTest is n's handshake's GaveWay count.
func GaveWayForTest(n *Node) uint64 { return n.wire.handshake.GaveWay() }

// SetTLSReloadIntervalForTest makes n look at its TLS files at every
// connection instead of at most once a second.
func SetTLSReloadIntervalForTest(n *Node, d time.Duration) {
	n.tls.mu.Lock()
	n.tls.interval = d
	n.tls.mu.Unlock()
}

// ResolveUntakenForTest makes n's outgoing connection to peer as ergo's
// Resolve does, without ergo taking it afterwards: the connection stays
// handed off until it is taken, expires, or n stops.
func ResolveUntakenForTest(n *Node, peer string) error {
	_, err := n.wire.registrar.Resolve(peer)
	return err
}

// SetOutTakeTimeoutForTest sets how long a connection made waits for ergo
// to take it, and returns the function that restores it.
func SetOutTakeTimeoutForTest(d time.Duration) (restore func()) {
	old := outTakeTimeout
	outTakeTimeout = d
	return func() { outTakeTimeout = old }
}
