package pg

import (
	"slices"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/node/term"
)

// The protocol's atoms. A Go scope speaks version 0 of the scope protocol,
// the one every release of OTP 25-29 understands: it announces itself with
// {discover, Scope} (never the 3-tuple OTP 27+ send, which an OTP 25 scope
// does not match), sends its members in one {sync, Scope, Groups} cast, and
// changes in {join, ...} and {leave, ...} messages. OTP 29's scopes answer a
// version 0 peer in the same messages.
const (
	atomDiscover = etf.Atom("discover")
	atomSync     = etf.Atom("sync")
	atomJoin     = etf.Atom("join")
	atomLeave    = etf.Atom("leave")
	atomGenCast  = etf.Atom("$gen_cast")
)

// Drop reasons: why a message from a peer was not applied. Each is a
// fixed string, fit for a metric label.
const (
	DropMalformed = "malformed" // not a message of the protocol, or a bad field
	DropTooMany   = "too_many"  // over Limits.MaxPeers or Limits.MaxMembersPerPeer
	DropUnknown   = "unknown"   // a join or leave from a scope not discovered
)

// Limits bound what peers can make a scope hold.
type Limits struct {
	// MaxPeers is how many peer scopes are kept. Default 4,096: a cluster
	// has one per node.
	MaxPeers int
	// MaxMembersPerPeer is how many memberships (a pid in a group, counted
	// once per join) one peer scope may announce. Default 1,048,576.
	MaxMembersPerPeer int
}

// DefaultLimits returns the defaults described on Limits.
func DefaultLimits() Limits {
	return Limits{MaxPeers: 4096, MaxMembersPerPeer: 1 << 20}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxPeers <= 0 {
		l.MaxPeers = d.MaxPeers
	}
	if l.MaxMembersPerPeer <= 0 {
		l.MaxMembersPerPeer = d.MaxMembersPerPeer
	}
	return l
}

// Change is a change of a group's membership as this node sees it.
type Change struct {
	Group  etf.Term
	Joined []etf.Pid
	Left   []etf.Pid
}

// groupKey identifies a group term: its external format encoding.
type groupKey string

func keyOf(g etf.Term) (groupKey, bool) {
	b, err := term.Encode(nil, g)
	if err != nil {
		return "", false
	}
	return groupKey(b), true
}

// members is one group's member list; a pid appears once per join.
type members struct {
	group etf.Term
	pids  []etf.Pid
}

type peerState struct {
	groups map[groupKey]*members
	count  int
}

// outbound is a message the scope sends: To is an etf.Pid or a
// gen.ProcessID.
type outbound struct {
	To  any
	Msg etf.Term
}

// effects is what one step of the core asks its shell to do.
type effects struct {
	send      []outbound
	monitor   []etf.Pid
	demonitor []etf.Pid
	changes   []Change
	synced    bool
	dropped   string
}

// core is the scope's state and protocol rules: no goroutines, no I/O.
// The shell (Scope) feeds it messages and runs its effects.
type core struct {
	self   etf.Pid
	scope  etf.Atom
	node   etf.Atom
	limits Limits
	local  map[groupKey]*members
	// joins lists, per local member, the group of each of its joins.
	joins map[etf.Pid][]groupKey
	peers map[etf.Pid]*peerState
}

func newCore(self etf.Pid, scope etf.Atom, limits Limits) *core {
	return &core{
		self: self, scope: scope, node: self.Node, limits: limits.withDefaults(),
		local: map[groupKey]*members{}, joins: map[etf.Pid][]groupKey{},
		peers: map[etf.Pid]*peerState{},
	}
}

// discoverNodes announces the scope to the scope of the same name on each
// node.
func (c *core) discoverNodes(nodes []string) effects {
	var e effects
	for _, n := range nodes {
		if etf.Atom(n) == c.node {
			continue
		}
		e.send = append(e.send, outbound{gen.ProcessID{Name: string(c.scope), Node: n}, etf.Tuple{atomDiscover, c.self}})
	}
	return e
}

// join adds local pids to group.
func (c *core) join(group etf.Term, pids []etf.Pid) effects {
	var e effects
	k, ok := keyOf(group)
	if !ok || len(pids) == 0 {
		return e
	}
	m := c.local[k]
	if m == nil {
		m = &members{group: group}
		c.local[k] = m
	}
	for _, p := range pids {
		if _, known := c.joins[p]; !known {
			e.monitor = append(e.monitor, p)
		}
		c.joins[p] = append(c.joins[p], k)
		m.pids = append(m.pids, p)
	}
	e.changes = append(e.changes, Change{Group: group, Joined: slices.Clone(pids)})
	for peer := range c.peers {
		e.send = append(e.send, outbound{peer, etf.Tuple{atomJoin, c.self, group, pidList(pids)}})
	}
	return e
}

// leave removes one join of each local pid from group; ok is false when
// none of them had joined it.
func (c *core) leave(group etf.Term, pids []etf.Pid) (effects, bool) {
	var e effects
	k, ok := keyOf(group)
	m := c.local[k]
	if !ok || m == nil {
		return e, false
	}
	var left []etf.Pid
	for _, p := range pids {
		if i := slices.Index(m.pids, p); i >= 0 {
			m.pids = slices.Delete(m.pids, i, i+1)
			left = append(left, p)
			js := c.joins[p]
			if j := slices.Index(js, k); j >= 0 {
				js = slices.Delete(js, j, j+1)
			}
			if len(js) == 0 {
				delete(c.joins, p)
				e.demonitor = append(e.demonitor, p)
			} else {
				c.joins[p] = js
			}
		}
	}
	if len(left) == 0 {
		return e, false
	}
	if len(m.pids) == 0 {
		delete(c.local, k)
	}
	e.changes = append(e.changes, Change{Group: group, Left: left})
	for peer := range c.peers {
		e.send = append(e.send, outbound{peer, etf.Tuple{atomLeave, c.self, pidList(left), etf.List{group}}})
	}
	return e, true
}

// down handles the end of a monitored process: a local member leaves
// every group it joined, a peer scope's members leave this node's view.
func (c *core) down(pid etf.Pid) effects {
	var e effects
	if js, ok := c.joins[pid]; ok {
		delete(c.joins, pid)
		groups := make(etf.List, 0, len(js))
		for _, k := range js {
			m := c.local[k]
			if m == nil {
				continue
			}
			if i := slices.Index(m.pids, pid); i >= 0 {
				m.pids = slices.Delete(m.pids, i, i+1)
			}
			groups = append(groups, m.group)
			e.changes = append(e.changes, Change{Group: m.group, Left: []etf.Pid{pid}})
			if len(m.pids) == 0 {
				delete(c.local, k)
			}
		}
		for peer := range c.peers {
			e.send = append(e.send, outbound{peer, etf.Tuple{atomLeave, c.self, pid, groups}})
		}
		return e
	}
	if p, ok := c.peers[pid]; ok {
		delete(c.peers, pid)
		for _, m := range p.groups {
			e.changes = append(e.changes, Change{Group: m.group, Left: m.pids})
		}
	}
	return e
}

// handle applies one message a peer sent to the scope (a $gen_cast's
// payload included). Anything else is dropped: a Go scope never fails on
// what it receives.
func (c *core) handle(msg etf.Term) effects {
	t, ok := msg.(etf.Tuple)
	if !ok || len(t) < 2 {
		return effects{dropped: DropMalformed}
	}
	if t[0] == atomGenCast && len(t) == 2 {
		return c.handle(t[1])
	}
	peer, ok := t[1].(etf.Pid)
	if !ok {
		return effects{dropped: DropMalformed}
	}
	switch {
	case t[0] == atomDiscover && (len(t) == 2 || len(t) == 3):
		return c.discover(peer)
	case t[0] == atomSync && len(t) == 3:
		return c.sync(peer, t[2])
	case t[0] == atomJoin && len(t) == 4:
		return c.remoteJoin(peer, t[2], t[3])
	case t[0] == atomLeave && len(t) == 4:
		return c.remoteLeave(peer, t[2], t[3])
	}
	return effects{dropped: DropMalformed}
}

func (c *core) discover(peer etf.Pid) effects {
	var e effects
	if peer.Node == c.node {
		return effects{dropped: DropMalformed}
	}
	if _, known := c.peers[peer]; !known {
		if len(c.peers) >= c.limits.MaxPeers {
			return effects{dropped: DropTooMany}
		}
		c.peers[peer] = &peerState{groups: map[groupKey]*members{}}
		e.monitor = append(e.monitor, peer)
		e.send = append(e.send, outbound{peer, c.syncMessage()}, outbound{peer, etf.Tuple{atomDiscover, c.self}})
		return e
	}
	e.send = append(e.send, outbound{peer, c.syncMessage()})
	return e
}

// syncMessage is the cast that tells a peer every local membership.
func (c *core) syncMessage() etf.Term {
	keys := make([]groupKey, 0, len(c.local))
	for k := range c.local {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	groups := make(etf.List, 0, len(keys))
	for _, k := range keys {
		m := c.local[k]
		groups = append(groups, etf.Tuple{m.group, pidList(m.pids)})
	}
	return etf.Tuple{atomGenCast, etf.Tuple{atomSync, c.self, groups}}
}

func (c *core) sync(peer etf.Pid, payload etf.Term) effects {
	if peer.Node == c.node {
		return effects{dropped: DropMalformed}
	}
	l, ok := payload.(etf.List)
	if !ok {
		return effects{dropped: DropMalformed}
	}
	next := map[groupKey]*members{}
	count := 0
	for _, el := range l {
		gt, ok := el.(etf.Tuple)
		if !ok || len(gt) != 2 {
			return effects{dropped: DropMalformed}
		}
		pids, ok := parsePids(gt[1], false)
		if !ok {
			return effects{dropped: DropMalformed}
		}
		k, ok := keyOf(gt[0])
		if !ok {
			return effects{dropped: DropMalformed}
		}
		if old := next[k]; old != nil {
			count -= len(old.pids)
		}
		count += len(pids)
		if count > c.limits.MaxMembersPerPeer {
			return effects{dropped: DropTooMany}
		}
		if len(pids) == 0 {
			delete(next, k)
			continue
		}
		next[k] = &members{group: gt[0], pids: pids}
	}
	var e effects
	p, known := c.peers[peer]
	if !known {
		if len(c.peers) >= c.limits.MaxPeers {
			return effects{dropped: DropTooMany}
		}
		p = &peerState{}
		e.monitor = append(e.monitor, peer)
	}
	old := p.groups
	for k, m := range next {
		o := old[k]
		var before []etf.Pid
		if o != nil {
			before = o.pids
		}
		joined, left := diff(before, m.pids)
		if len(joined) > 0 || len(left) > 0 {
			e.changes = append(e.changes, Change{Group: m.group, Joined: joined, Left: left})
		}
	}
	for k, o := range old {
		if next[k] == nil {
			e.changes = append(e.changes, Change{Group: o.group, Left: o.pids})
		}
	}
	p.groups, p.count = next, count
	c.peers[peer] = p
	e.synced = true
	return e
}

func (c *core) remoteJoin(peer etf.Pid, group, pidsTerm etf.Term) effects {
	p := c.peers[peer]
	if p == nil {
		return effects{dropped: DropUnknown}
	}
	pids, ok := parsePids(pidsTerm, true)
	k, kok := keyOf(group)
	if !ok || !kok {
		return effects{dropped: DropMalformed}
	}
	if p.count+len(pids) > c.limits.MaxMembersPerPeer {
		return effects{dropped: DropTooMany}
	}
	if len(pids) == 0 {
		return effects{}
	}
	m := p.groups[k]
	if m == nil {
		m = &members{group: group}
		p.groups[k] = m
	}
	m.pids = append(m.pids, pids...)
	p.count += len(pids)
	return effects{changes: []Change{{Group: group, Joined: pids}}}
}

func (c *core) remoteLeave(peer etf.Pid, pidsTerm, groupsTerm etf.Term) effects {
	p := c.peers[peer]
	if p == nil {
		return effects{dropped: DropUnknown}
	}
	pids, ok := parsePids(pidsTerm, true)
	groups, gok := groupsTerm.(etf.List)
	if !ok || !gok {
		return effects{dropped: DropMalformed}
	}
	var e effects
	for _, g := range groups {
		k, ok := keyOf(g)
		if !ok {
			continue
		}
		m := p.groups[k]
		if m == nil {
			continue
		}
		var left []etf.Pid
		for _, pid := range pids {
			if i := slices.Index(m.pids, pid); i >= 0 {
				m.pids = slices.Delete(m.pids, i, i+1)
				p.count--
				left = append(left, pid)
			}
		}
		if len(m.pids) == 0 {
			delete(p.groups, k)
		}
		if len(left) > 0 {
			e.changes = append(e.changes, Change{Group: m.group, Left: left})
		}
	}
	return e
}

// members returns the members of group: every peer's, then the local ones.
func (c *core) members(group etf.Term, localOnly bool) []etf.Pid {
	k, ok := keyOf(group)
	if !ok {
		return nil
	}
	var out []etf.Pid
	if !localOnly {
		for _, p := range c.peers {
			if m := p.groups[k]; m != nil {
				out = append(out, m.pids...)
			}
		}
	}
	if m := c.local[k]; m != nil {
		out = append(out, m.pids...)
	}
	return out
}

// groups returns every group with a member, local ones only if localOnly.
func (c *core) groups(localOnly bool) []etf.Term {
	seen := map[groupKey]etf.Term{}
	for k, m := range c.local {
		seen[k] = m.group
	}
	if !localOnly {
		for _, p := range c.peers {
			for k, m := range p.groups {
				seen[k] = m.group
			}
		}
	}
	keys := make([]groupKey, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]etf.Term, 0, len(keys))
	for _, k := range keys {
		out = append(out, seen[k])
	}
	return out
}

// sizes returns the number of groups with a member and of memberships.
func (c *core) sizes() (groups, memberships int) {
	seen := map[groupKey]struct{}{}
	for k, m := range c.local {
		seen[k] = struct{}{}
		memberships += len(m.pids)
	}
	for _, p := range c.peers {
		for k := range p.groups {
			seen[k] = struct{}{}
		}
		memberships += p.count
	}
	return len(seen), memberships
}

// parsePids reads a proper list of pids, or a single pid if single is
// allowed.
func parsePids(t etf.Term, single bool) ([]etf.Pid, bool) {
	switch v := t.(type) {
	case etf.Pid:
		return []etf.Pid{v}, single
	case etf.List:
		out := make([]etf.Pid, 0, len(v))
		for _, el := range v {
			p, ok := el.(etf.Pid)
			if !ok {
				return nil, false
			}
			out = append(out, p)
		}
		return out, true
	}
	return nil, false
}

func pidList(pids []etf.Pid) etf.List {
	l := make(etf.List, len(pids))
	for i, p := range pids {
		l[i] = p
	}
	return l
}

// diff returns the pids of after not in before and of before not in after,
// counting repeats.
func diff(before, after []etf.Pid) (joined, left []etf.Pid) {
	rest := slices.Clone(before)
	for _, p := range after {
		if i := slices.Index(rest, p); i >= 0 {
			rest = slices.Delete(rest, i, i+1)
		} else {
			joined = append(joined, p)
		}
	}
	return joined, rest
}
