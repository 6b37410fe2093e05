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
