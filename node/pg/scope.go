package pg

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/ratelog"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
	"github.com/gonode/gonode/node/internal/peerproc"
)

// DefaultScope is the scope Erlang's pg:join/2 and Elixir's :pg.join/2 use.
const DefaultScope = "pg"

// Errors of Scope's methods.
var (
	// ErrNotLocal: only processes of this node can be joined to a group by
	// this node's scope, as with pg:join.
	ErrNotLocal = errors.New("pg: not a process of this node")
	// ErrNotJoined: none of the processes had joined the group (pg:leave's
	// not_joined).
	ErrNotJoined = errors.New("pg: not joined")
	// ErrStopped: the scope's process is gone (the node stopped).
	ErrStopped = errors.New("pg: scope stopped")
)

// Observer hears what a scope does, for metrics. Its methods are called
// with the scope's lock held: they must be quick and must not call back
// into the scope.
type Observer interface {
	// Membership reports the number of groups with a member and of
	// memberships (a pid in a group, once per join), after every change.
	Membership(scope string, groups, memberships int)
	// Synced: a peer scope sent its full membership.
	Synced(scope string)
	// Dropped: a message from a peer was not applied (DropMalformed,
	// DropTooMany or DropUnknown).
	Dropped(scope string, reason string)
}

// NopObserver ignores every event.
type NopObserver struct{}

func (NopObserver) Membership(string, int, int) {}
func (NopObserver) Synced(string)               {}
func (NopObserver) Dropped(string, string)      {}

// Options are a scope's optional settings.
type Options struct {
	// Limits bound what peers can make the scope hold; zero fields take
	// DefaultLimits.
	Limits Limits
	// Observer hears membership sizes, syncs and drops; nil means none.
	Observer Observer
	// Logger receives the scope's log lines (rate-limited when peers
	// trigger them); nil discards them.
	Logger *slog.Logger
}

// Scope is a pg scope running on a gonode node: a process registered under
// the scope's name that speaks OTP's pg protocol with the scope of the
// same name on every connected node, as a BEAM node's pg scope does.
// Its methods may be called from any goroutine.
type Scope struct {
	name string
	n    *node.Node
	obs  Observer
	log  *ratelog.Limiter

	mu      sync.Mutex
	c       *core
	proc    gen.Process
	refs    peerproc.Monitors
	subs    map[int]chan Change
	nextSub int
	stopped bool
	unsub   func()
	done    chan struct{}
}

// Start starts the scope name (DefaultScope for the one pg:join/2 uses)
// on a running node: it registers the scope's process under name and
// announces it to every connected node, and to every node that connects
// later. The node must be visible (Config.Hidden false): BEAM scopes
// ignore hidden nodes.
func Start(n *node.Node, name string, opts Options) (*Scope, error) {
	if name == "" {
		return nil, errors.New("pg: empty scope name")
	}
	s := &Scope{
		name: name, n: n, obs: opts.Observer,
		refs: peerproc.Monitors{}, subs: map[int]chan Change{},
		done: make(chan struct{}),
	}
	if s.obs == nil {
		s.obs = NopObserver{}
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	s.log = ratelog.New(lg.With("component", "pg", "scope", name), ratelog.Config{})
	events, unsub := n.Subscribe(256)
	s.unsub = unsub
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := n.RegisterServerWith(name, node.ServerOptions{MailboxSize: 65535, Restart: node.Temporary}, &scopeServer{s: s})
	if err != nil {
		unsub()
		return nil, fmt.Errorf("pg: start scope %s: %w", name, err)
	}
	s.proc = p
	s.c = newCore(p.Self(), etf.Atom(name), opts.Limits)
	s.apply(s.c.discoverNodes(n.Connected()))
	go s.watch(events)
	return s, nil
}

// watch announces the scope to each node that comes up.
func (s *Scope) watch(events <-chan node.Event) {
	defer close(s.done)
	for e := range events {
		if !e.Up {
			continue
		}
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return
		}
		s.apply(s.c.discoverNodes([]string{e.Peer}))
		s.mu.Unlock()
	}
}

// Name returns the scope's name.
func (s *Scope) Name() string { return s.name }

// Pid returns the scope process's pid.
func (s *Scope) Pid() etf.Pid { return s.proc.Self() }

// Stop ends the scope's process: every peer scope drops this node's
// members.
func (s *Scope) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	for id, ch := range s.subs {
		close(ch)
		delete(s.subs, id)
	}
	s.mu.Unlock()
	s.unsub()
	<-s.done
	s.proc.Kill()
}

// Join adds local processes to group (any term: an atom for Elixir's
// :jobs, a []byte for a string). A process may join a group several times
// and is then listed as often; it leaves every group when it exits.
func (s *Scope) Join(group etf.Term, pids ...etf.Pid) error {
	if err := s.checkLocal(pids); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || !s.proc.IsAlive() {
		return ErrStopped
	}
	s.apply(s.c.join(group, pids))
	return nil
}

// Leave removes one join of each process from group. It returns
// ErrNotJoined when none of them had joined it.
func (s *Scope) Leave(group etf.Term, pids ...etf.Pid) error {
	if err := s.checkLocal(pids); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	e, ok := s.c.leave(group, pids)
	s.apply(e)
	if !ok {
		return ErrNotJoined
	}
	return nil
}

func (s *Scope) checkLocal(pids []etf.Pid) error {
	self := etf.Atom(s.n.Name())
	for _, p := range pids {
		if p.Node != self {
			return fmt.Errorf("%w: %v", ErrNotLocal, p)
		}
	}
	return nil
}

// Members returns the members of group on every node of the cluster, as
// pg:get_members/2 does.
func (s *Scope) Members(group etf.Term) []etf.Pid {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.members(group, false)
}

// LocalMembers returns the members of group on this node.
func (s *Scope) LocalMembers(group etf.Term) []etf.Pid {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.members(group, true)
}

// Groups returns every group with a member somewhere, in term order of
// their encoding.
func (s *Scope) Groups() []etf.Term {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.groups(false)
}

// LocalGroups returns the groups with a member on this node.
func (s *Scope) LocalGroups() []etf.Term {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.groups(true)
}

// Monitor subscribes to membership changes, as pg:monitor_scope does: each
// join and leave the scope applies, local or remote, arrives on the
// channel in order. A subscriber whose buffer is full loses the change
// (logged); cancel ends the subscription and closes the channel.
func (s *Scope) Monitor(buffer int) (<-chan Change, func()) {
	ch := make(chan Change, buffer)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		close(ch)
		return ch, func() {}
	}
	id := s.nextSub
	s.nextSub++
	s.subs[id] = ch
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c, ok := s.subs[id]; ok {
			delete(s.subs, id)
			close(c)
		}
	}
}

// apply runs a step's effects; s.mu is held.
func (s *Scope) apply(e effects) {
	s.refs.Apply(s.proc, e.monitor, e.demonitor)
	for _, o := range e.send {
		peerproc.SendNoConnect(s.n, s.proc, o.To, o.Msg)
	}
	if e.dropped != "" {
		s.obs.Dropped(s.name, e.dropped)
		s.log.Warn("drop:"+e.dropped, "pg scope dropped a message from a peer", "reason", e.dropped)
	}
	if e.synced {
		s.obs.Synced(s.name)
	}
	if len(e.changes) > 0 || len(e.monitor) > 0 {
		g, m := s.c.sizes()
		s.obs.Membership(s.name, g, m)
	}
	for _, ch := range e.changes {
		for _, sub := range s.subs {
			select {
			case sub <- ch:
			default:
				s.log.Warn("monitor-full", "pg scope monitor's buffer is full: a change was lost")
			}
		}
	}
}

// scopeServer is the scope's process.
type scopeServer struct {
	genserver.Server
	s *Scope
}

func (v *scopeServer) HandleCast(_ *genserver.Process, msg etf.Term) gen.ServerStatus {
	return v.HandleInfo(nil, etf.Tuple{atomGenCast, msg})
}

func (v *scopeServer) HandleInfo(_ *genserver.Process, msg etf.Term) gen.ServerStatus {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil || s.stopped {
		return gen.ServerStatusOK
	}
	if d, ok := msg.(gen.MessageDown); ok {
		if s.refs.Down(d.Pid, d.Ref) {
			_, wasPeer := s.c.peers[d.Pid]
			s.apply(s.c.down(d.Pid))
			if wasPeer && d.Reason == "noconnection" && s.n.IsConnected(string(d.Pid.Node)) {
				// The node went down and came back before this DOWN was
				// handled: the peer's discover of the new connection may have
				// found it still known. Ask it for its members again; its
				// sync brings it back.
				s.apply(effects{send: []outbound{{d.Pid, etf.Tuple{atomDiscover, s.c.self}}}})
			}
		}
		return gen.ServerStatusOK
	}
	s.apply(s.c.handle(msg))
	return gen.ServerStatusOK
}

func (v *scopeServer) HandleCall(_ *genserver.Process, _ gen.ServerFrom, _ etf.Term) (etf.Term, gen.ServerStatus) {
	// A pg scope answers no calls; the caller gets an error reply rather
	// than a timeout.
	return etf.Tuple{etf.Atom("error"), etf.Atom("badarg")}, gen.ServerStatusOK
}
