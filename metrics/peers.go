package metrics

import (
	"cmp"
	"slices"
	"time"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/node"
)

// PeersReport is the JSON document /debug/peers serves.
type PeersReport struct {
	// Discovery is discovery's own status; absent when discovery is not wired.
	Discovery *DiscoveryStatus `json:"discovery,omitempty"`
	// Connected is how many peers the node has connections to.
	Connected int `json:"connected"`
	// Peers lists every known peer, sorted by name.
	Peers []PeerStatus `json:"peers"`
}

// DiscoveryStatus is the discovery part of PeersReport.
type DiscoveryStatus struct {
	Strategy   discovery.StrategyName `json:"strategy"`
	Enabled    bool                   `json:"enabled"`
	Ready      bool                   `json:"ready"`
	LastPoll   time.Time              `json:"last_poll,omitzero"`
	LastResult discovery.PollResult   `json:"last_result,omitempty"`
	LastError  string                 `json:"last_error,omitempty"`
	Counts     PeerCounts             `json:"counts"`
}

// PeerCounts is discovery.PeerCounts with JSON names.
type PeerCounts struct {
	Desired   int `json:"desired"`
	Connected int `json:"connected"`
	Backoff   int `json:"backoff"`
}

// PeerStatus is one row of /debug/peers.
type PeerStatus struct {
	// Name is the peer's node name.
	Name string `json:"name"`
	// Address is where discovery found it (an IP, or the SRV target host);
	// empty for a peer discovery does not know.
	Address string `json:"address,omitempty"`
	// State is connected, connecting, backoff, pruning or disconnected.
	State discovery.PeerState `json:"state"`
	// Discovered is false for a peer that connected to this node without
	// being discovered.
	Discovered bool `json:"discovered"`
	// Since is when the peer entered its state, as discovery saw it.
	Since time.Time `json:"since,omitzero"`
	// LastError is the last connect error, if any: discovery's, else, for a
	// peer that is not connected, the node's last failed attempt to reach it
	// (node.Node.ConnectFailures).
	LastError string `json:"last_error,omitempty"`
	// Cause names the cause of the node's last failed attempt to reach a
	// peer that is not connected (node.CauseName: not_registered,
	// bad_cookie, host_unreachable, not_allowed, connect_timeout,
	// unresolved), and FailedAt says when it failed.
	Cause    string    `json:"cause,omitempty"`
	FailedAt time.Time `json:"failed_at,omitzero"`
	// Failures counts connect failures in a row.
	Failures int `json:"failures,omitempty"`
	// NextRetry is when the next connect is due, for a peer in backoff.
	NextRetry time.Time `json:"next_retry,omitzero"`
}

// MergePeers merges discovery's per-peer view with the node's connected list,
// sorted by name. The node's list is the truth about connections, which
// discovery only sees at its next poll:
//   - a discovered peer the node is connected to is "connected", unless
//     discovery is pruning it (it left the answer; it is dropped soon);
//   - a discovered peer discovery thinks connected but the node is not is
//     "disconnected" (the connection ended since the last poll);
//   - a connected peer discovery does not know (it connected to us) is
//     "connected" with Discovered false.
func MergePeers(discovered []discovery.PeerInfo, connected []string) []PeerStatus {
	up := make(map[string]bool, len(connected))
	for _, c := range connected {
		up[c] = true
	}
	out := make([]PeerStatus, 0, len(discovered)+len(connected))
	seen := make(map[string]bool, len(discovered))
	for _, p := range discovered {
		if seen[p.Name] {
			continue
		}
		seen[p.Name] = true
		st := p.State
		switch {
		case up[p.Name] && st != discovery.StatePruning:
			st = discovery.StateConnected
		case !up[p.Name] && st == discovery.StateConnected:
			st = discovery.StateDisconnected
		}
		out = append(out, PeerStatus{Name: p.Name, Address: p.Address, State: st, Discovered: true,
			Since: p.Since, LastError: p.LastError, Failures: p.Failures, NextRetry: p.NextRetry})
	}
	for _, c := range connected {
		if seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, PeerStatus{Name: c, State: discovery.StateConnected})
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// AddConnectFailures adds the node's last failed attempt to reach each peer
// that is not connected to peers (as MergePeers returns them, sorted by
// name): its cause and time, and its error unless discovery gave one. A peer
// the node failed to reach that is not listed (a Connect or a Call from
// user code) is added as disconnected and not discovered.
func AddConnectFailures(peers []PeerStatus, failures []node.PeerFailure) []PeerStatus {
	if len(failures) == 0 {
		return peers
	}
	row := make(map[string]int, len(peers))
	for i, p := range peers {
		row[p.Name] = i
	}
	for _, f := range failures {
		i, ok := row[f.Peer]
		if !ok {
			peers = append(peers, PeerStatus{Name: f.Peer, State: discovery.StateDisconnected})
			i = len(peers) - 1
			row[f.Peer] = i
		}
		p := &peers[i]
		if p.State == discovery.StateConnected {
			continue
		}
		p.Cause, p.FailedAt = node.CauseName(f.Err), f.At
		if p.LastError == "" && f.Err != nil {
			p.LastError = f.Err.Error()
		}
	}
	slices.SortFunc(peers, func(a, b PeerStatus) int { return cmp.Compare(a.Name, b.Name) })
	return peers
}
