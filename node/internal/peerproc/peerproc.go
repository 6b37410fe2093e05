// Package peerproc holds what the protocol processes of node/pg and
// node/global do alike with their effects: monitor and demonitor the
// processes their core names, and send to peers the way the BEAM's
// erlang:send(..., [noconnect]) does, never to a node that is not
// connected (sending there would make ergo dial it).
package peerproc

import (
	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// Monitors are a process's monitors by the pid they watch.
type Monitors map[etf.Pid]etf.Ref

// Apply monitors each pid of monitor that is not watched yet and removes
// the monitor of each pid of demonitor, from proc.
func (m Monitors) Apply(proc gen.Process, monitor, demonitor []etf.Pid) {
	for _, p := range monitor {
		if _, ok := m[p]; !ok {
			m[p] = proc.MonitorProcess(p)
		}
	}
	for _, p := range demonitor {
		if ref, ok := m[p]; ok {
			proc.DemonitorProcess(ref)
			delete(m, p)
		}
	}
}

// Down reports whether a DOWN for pid with ref is for one of m's monitors,
// and forgets that monitor.
func (m Monitors) Down(pid etf.Pid, ref etf.Ref) bool {
	if r, ok := m[pid]; ok && r == ref {
		delete(m, pid)
		return true
	}
	return false
}

// Nodes is what SendNoConnect needs of a node.
type Nodes interface {
	Name() string
	IsConnected(peer string) bool
}

// SendNoConnect sends msg from proc to `to` (a pid or a gen.ProcessID)
// when `to` is on this node or on a connected one, and drops it otherwise.
func SendNoConnect(n Nodes, proc gen.Process, to any, msg etf.Term) {
	var nodeName string
	switch v := to.(type) {
	case etf.Pid:
		nodeName = string(v.Node)
	case gen.ProcessID:
		nodeName = v.Node
	}
	if nodeName == n.Name() || n.IsConnected(nodeName) {
		_ = proc.Send(to, msg)
	}
}
