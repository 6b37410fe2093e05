package discovery

import (
	"cmp"
	"slices"
	"time"
)

// Target is one peer an answer names: its node name and the address or host
// it came from.
type Target struct {
	Name string
	Addr string
}

// PeerState is a discovered peer's state as /debug/peers shows it.
type PeerState string

// Peer states.
const (
	StateConnecting   PeerState = "connecting"   // a connect is queued or running
	StateConnected    PeerState = "connected"    // the Connector lists it
	StateBackoff      PeerState = "backoff"      // the last connect failed; waiting for NextRetry
	StatePruning      PeerState = "pruning"      // absent from the latest answer(s); pruned after PruneAfter
	StateDisconnected PeerState = "disconnected" // wanted but not connected and no connect planned yet
)

// Policy is what the core needs from the configuration. Build it with
// Config.Policy.
type Policy struct {
	Self       string // this node's name: never a peer
	Prune      bool
	PruneAfter int
	MaxPeers   int
	BackoffMin time.Duration
	BackoffMax time.Duration
}

// Policy returns the core's policy for a node named self.
func (c Config) Policy(self string) Policy {
	return Policy{
		Self:       self,
		Prune:      c.Prune,
		PruneAfter: c.PruneAfter,
		MaxPeers:   c.MaxPeers,
		BackoffMin: DefaultBackoffMin,
		BackoffMax: DefaultBackoffMax,
	}
}

// peer is the core's record of one discovered peer.
type peer struct {
	addr      string
	state     PeerState
	absent    int // consecutive successful answers without this peer
	since     time.Time
	lastErr   string
	failures  int
	nextRetry time.Time
	seen      uint64 // State.gen of the last answer holding this peer
	conn      uint64 // State.tick of the last poll that listed it connected
}

// State is the core's state. Plan takes ownership of the State it is given
// and returns the next one: do not use a State after passing it to Plan
// (Clone it first to keep it). The zero State is empty and not ready; use
// NewState to seed the jitter source.
type State struct {
	peers   map[string]*peer
	rng     uint64 // splitmix64 state: the jitter source, seeded by the shell
	ready   bool   // a lookup has succeeded
	cut     int    // targets cut from the latest answer by MaxPeers
	desired int    // targets in the latest good answer
	gen     uint64 // successful answers so far
	tick    uint64 // polls so far
}

// NewState returns an empty State whose backoff jitter is drawn from seed.
func NewState(seed uint64) State {
	return State{peers: map[string]*peer{}, rng: seed}
}

// Clone returns a deep copy of s.
func (s State) Clone() State {
	c := s
	c.peers = make(map[string]*peer, len(s.peers))
	for k, p := range s.peers {
		cp := *p
		c.peers[k] = &cp
	}
	return c
}

// Ready reports whether a lookup has succeeded (an empty answer counts).
func (s State) Ready() bool { return s.ready }

// Poll is what the shell learned in one poll.
type Poll struct {
	// Targets is the answer; ignored when Err is set.
	Targets []Target
	// Err is set when the lookup failed: the last good answer stands.
	Err error
	// Connected is what the Connector listed at this poll.
	Connected []string
}

// Result is the outcome of one Action.
type Result struct {
	Action Action
	Err    error
}

// Input is one step of the core: a poll, action results, or both.
type Input struct {
	Now     time.Time
	Poll    *Poll
	Results []Result
}

// Action is work for the shell.
type Action struct {
	Kind ActionKind
	Node string
	Addr string
}

// EventKind names a change worth a log line.
type EventKind string

// Event kinds.
const (
	EvConnected        EventKind = "connected"         // a connect succeeded (Failures: failures before it)
	EvConnectFailed    EventKind = "connect-failed"    // a connect failed; Changed when it is the first failure or a new error
	EvDropped          EventKind = "dropped"           // a connected peer disappeared from the Connector
	EvInbound          EventKind = "inbound"           // a wanted peer showed up connected without our connect
	EvPruned           EventKind = "pruned"            // disconnected after PruneAfter absent answers
	EvForgotten        EventKind = "forgotten"         // left the answer while not connected: dropped from state
	EvDisconnectFailed EventKind = "disconnect-failed" // a prune's Disconnect returned an error
	EvCut              EventKind = "cut"               // the number of targets cut by MaxPeers changed (Count)
)

// Event reports a change the shell may log or count. Events are emitted once
// per change, never once per poll.
type Event struct {
	Kind EventKind
	Peer string
	// Err is the text of the Connector's error (EvConnectFailed,
	// EvDisconnectFailed), and Cause the error itself, which keeps what the
	// Connector put in it for errors.Is (package node's causes:
	// node.ErrBadCookie, node.ErrNotRegistered, ...).
	Err       string
	Cause     error
	Failures  int
	NextRetry time.Time
	Changed   bool // EvConnectFailed: first failure or a different error
	Count     int  // EvCut: targets cut; 0 when the answer fits again
}

// PeerInfo is the read-only view of one discovered peer for /debug/peers
// (metrics.PeerStatus is its JSON form).
type PeerInfo struct {
	Name      string
	Address   string
	State     PeerState
	Since     time.Time
	LastError string
	Failures  int
	NextRetry time.Time
}

// Peers returns every discovered peer, sorted by name.
func (s State) Peers() []PeerInfo {
	out := make([]PeerInfo, 0, len(s.peers))
	for name, p := range s.peers {
		st := p.state
		if p.absent > 0 {
			st = StatePruning
		}
		out = append(out, PeerInfo{Name: name, Address: p.addr, State: st, Since: p.since,
			LastError: p.lastErr, Failures: p.failures, NextRetry: p.nextRetry})
	}
	slices.SortFunc(out, func(a, b PeerInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Counts returns the peer-set sizes.
func (s State) Counts() PeerCounts {
	c := PeerCounts{Desired: s.desired}
	for _, p := range s.peers {
		switch p.state {
		case StateConnected:
			c.Connected++
		case StateBackoff:
			c.Backoff++
		}
	}
	return c
}

// Plan is the pure core of discovery: from a state and one input it returns
// the next state, the actions to run and the events to report. It starts no
// goroutine, reads no clock, does no I/O and logs nothing. Rules:
//   - a failed lookup never disconnects anyone: the last good answer stands;
//   - a discovered peer is disconnected only after it has been absent from
//     p.PruneAfter consecutive successful answers, and never when !p.Prune;
//   - peers that connected without being discovered are never touched;
//   - p.Self is never a peer; answers are cut to p.MaxPeers (by name);
//   - a failed connect backs off exponentially from p.BackoffMin to
//     p.BackoffMax with +-20 % jitter drawn from the state's seed;
//   - a discovered peer that drops is reconnected at the next poll;
//   - actions come out disconnects first, then connects, each by name.
func Plan(p Policy, s State, in Input) (State, []Action, []Event) {
	if s.peers == nil {
		s.peers = map[string]*peer{}
	}
	var events []Event
	for _, r := range in.Results {
		events = s.applyResult(p, in.Now, r, events)
	}
	if in.Poll == nil {
		return s, nil, events
	}
	poll := in.Poll
	if poll.Err == nil {
		events = s.applyAnswer(p, in.Now, poll.Targets, events)
	}
	s.tick++
	for _, n := range poll.Connected {
		if pr, ok := s.peers[n]; ok {
			pr.conn = s.tick
		}
	}
	var actions []Action
	var pevents []Event
	for name, pr := range s.peers {
		isConn := pr.conn == s.tick
		switch {
		case pr.state == StateConnected && !isConn:
			pr.state, pr.since = StateDisconnected, in.Now
			pevents = append(pevents, Event{Kind: EvDropped, Peer: name})
		case isConn && (pr.state == StateDisconnected || pr.state == StateBackoff):
			pr.state, pr.since = StateConnected, in.Now
			pr.failures, pr.nextRetry = 0, time.Time{}
			pevents = append(pevents, Event{Kind: EvInbound, Peer: name})
		}
		if pr.absent >= p.PruneAfter && pr.state != StateConnecting {
			if pr.state == StateConnected {
				if !p.Prune {
					continue
				}
				actions = append(actions, Action{Kind: ActDisconnect, Node: name, Addr: pr.addr})
				pevents = append(pevents, Event{Kind: EvPruned, Peer: name})
			} else {
				pevents = append(pevents, Event{Kind: EvForgotten, Peer: name})
			}
			delete(s.peers, name)
			continue
		}
		if pr.absent > 0 {
			continue // leaving: do not connect
		}
		if pr.state == StateDisconnected || (pr.state == StateBackoff && !in.Now.Before(pr.nextRetry)) {
			pr.state, pr.since = StateConnecting, in.Now
			actions = append(actions, Action{Kind: ActConnect, Node: name, Addr: pr.addr})
		}
	}
	// Map order is random: sort so that the same input gives the same output.
	slices.SortFunc(actions, func(a, b Action) int {
		if a.Kind != b.Kind {
			if a.Kind == ActDisconnect {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Node, b.Node)
	})
	slices.SortStableFunc(pevents, func(a, b Event) int { return cmp.Compare(a.Peer, b.Peer) })
	return s, actions, append(events, pevents...)
}

// applyAnswer merges a successful answer into s.
func (s *State) applyAnswer(p Policy, now time.Time, targets []Target, events []Event) []Event {
	s.ready = true
	s.gen++
	want := targets
	cut := 0
	if p.MaxPeers > 0 && len(targets) > p.MaxPeers {
		// Cut deterministically: the first MaxPeers distinct names.
		want = make([]Target, 0, len(targets))
		for _, t := range targets {
			if t.Name != "" && t.Name != p.Self {
				want = append(want, t)
			}
		}
		slices.SortFunc(want, func(a, b Target) int { return cmp.Compare(a.Name, b.Name) })
		want = slices.CompactFunc(want, func(a, b Target) bool { return a.Name == b.Name })
		if len(want) > p.MaxPeers {
			cut = len(want) - p.MaxPeers
			want = want[:p.MaxPeers]
		}
	}
	if cut != s.cut {
		events = append(events, Event{Kind: EvCut, Count: cut})
		s.cut = cut
	}
	desired := 0
	for _, t := range want {
		if t.Name == "" || t.Name == p.Self {
			continue
		}
		pr, ok := s.peers[t.Name]
		switch {
		case !ok:
			s.peers[t.Name] = &peer{addr: t.Addr, state: StateDisconnected, since: now, seen: s.gen}
		case pr.seen == s.gen:
			continue // a duplicate in this answer
		default:
			pr.seen, pr.absent, pr.addr = s.gen, 0, t.Addr
		}
		desired++
	}
	s.desired = desired
	for _, pr := range s.peers {
		if pr.seen != s.gen {
			pr.absent++
		}
	}
	return events
}

// applyResult records the outcome of one action.
func (s *State) applyResult(p Policy, now time.Time, r Result, events []Event) []Event {
	name := r.Action.Node
	if r.Action.Kind == ActDisconnect {
		if r.Err != nil {
			events = append(events, Event{Kind: EvDisconnectFailed, Peer: name, Err: r.Err.Error(), Cause: r.Err})
		}
		return events
	}
	pr, ok := s.peers[name]
	if !ok || pr.state != StateConnecting {
		return events
	}
	if r.Err == nil {
		events = append(events, Event{Kind: EvConnected, Peer: name, Failures: pr.failures})
		pr.state, pr.since = StateConnected, now
		pr.failures, pr.nextRetry, pr.lastErr = 0, time.Time{}, ""
		return events
	}
	msg := r.Err.Error()
	changed := pr.failures == 0 || msg != pr.lastErr
	pr.failures++
	pr.lastErr = msg
	pr.state, pr.since = StateBackoff, now
	pr.nextRetry = now.Add(s.backoff(p, pr.failures))
	return append(events, Event{Kind: EvConnectFailed, Peer: name, Err: msg, Cause: r.Err,
		Failures: pr.failures, NextRetry: pr.nextRetry, Changed: changed})
}

// backoff returns the delay after the n-th consecutive failure:
// min(max, min*2^(n-1)) with +-20 % jitter, clamped to [min, max].
func (s *State) backoff(p Policy, n int) time.Duration {
	lo, hi := p.BackoffMin, p.BackoffMax
	if lo <= 0 {
		lo = DefaultBackoffMin
	}
	if hi < lo {
		hi = lo
	}
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	// jitter factor in [0.8, 1.2)
	f := 0.8 + 0.4*float64(s.next()>>11)/(1<<53)
	j := time.Duration(float64(d) * f)
	return min(max(j, lo), hi)
}

// next advances the splitmix64 jitter source.
func (s *State) next() uint64 {
	s.rng += 0x9e3779b97f4a7c15
	z := s.rng
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
