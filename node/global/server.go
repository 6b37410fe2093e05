package global

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/ratelog"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
	"github.com/gonode/gonode/node/internal/peerproc"
)

// ErrStopped: the name server's process is gone (the node stopped, or Stop).
var ErrStopped = errors.New("global: name server stopped")

// Observer hears what the name server does, for metrics. Its methods are
// called with the server's lock held: they must be quick and must not call
// back into the server.
type Observer interface {
	// Names reports how many global names the node knows, after a change.
	Names(count int)
	// Synced: the node is in sync with peer; since is how long after the
	// peer's nodeup (zero when the nodeup was not seen).
	Synced(peer string, since time.Duration)
	// Conflicts counts name clashes this node resolved.
	Conflicts(count int)
	// Dropped: a message from a peer was not applied (DropMalformed,
	// DropTooMany, DropStale or DropUnknown).
	Dropped(reason string)
}

// NopObserver ignores every event.
type NopObserver struct{}

func (NopObserver) Names(int)                    {}
func (NopObserver) Synced(string, time.Duration) {}
func (NopObserver) Conflicts(int)                {}
func (NopObserver) Dropped(string)               {}

// Options are the name server's optional settings.
type Options struct {
	// Limits bound what peers can make the server hold; zero fields take
	// DefaultLimits.
	Limits Limits
	// Observer hears names, syncs, conflicts and drops; nil means none.
	Observer Observer
	// Logger receives the server's log lines (rate-limited when peers
	// trigger them); nil discards them.
	Logger *slog.Logger
}

// Server is global's name server on a gonode node: a process registered as
// global_name_server that speaks OTP's global protocol with the name
// server of every connected node, so that BEAM nodes count this node as in
// sync (global:sync/0 and global:trans/4 return) and global names are
// shared both ways. Its methods may be called from any goroutine.
type Server struct {
	n   *node.Node
	obs Observer
	log *ratelog.Limiter

	mu      sync.Mutex
	c       *core
	proc    gen.Process
	refs    peerproc.Monitors
	upAt    map[string]time.Time
	stopped bool
	unsub   func()
	done    chan struct{}
}

// Start starts global's name server on a running node and connects it to
// every connected node and to every node that connects later. The node
// must be visible (Config.Hidden false): BEAM nodes leave hidden nodes out
// of global.
func Start(n *node.Node, opts Options) (*Server, error) {
	s := &Server{n: n, obs: opts.Observer, refs: peerproc.Monitors{}, upAt: map[string]time.Time{}, done: make(chan struct{})}
	if s.obs == nil {
		s.obs = NopObserver{}
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	s.log = ratelog.New(lg.With("component", "global"), ratelog.Config{})
	events, unsub := n.Subscribe(1024)
	s.unsub = unsub
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := n.RegisterServerWith(ServerName, node.ServerOptions{MailboxSize: 65535, Restart: node.Temporary}, &nameServer{s: s})
	if err != nil {
		unsub()
		return nil, fmt.Errorf("global: start: %w", err)
	}
	s.proc = p
	s.c = newCore(p.Self(), opts.Limits, func(a etf.Atom) bool { return n.IsConnected(string(a)) })
	for _, peer := range n.Connected() {
		s.upAt[peer] = time.Now()
		s.apply(s.c.nodeUp(etf.Atom(peer)))
	}
	go s.watch(events)
	return s, nil
}

func (s *Server) watch(events <-chan node.Event) {
	defer close(s.done)
	for ev := range events {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return
		}
		if ev.Up {
			s.upAt[ev.Peer] = ev.At
			s.apply(s.c.nodeUp(etf.Atom(ev.Peer)))
		} else {
			delete(s.upAt, ev.Peer)
			s.apply(s.c.nodeDown(etf.Atom(ev.Peer)))
		}
		s.mu.Unlock()
	}
}

// Stop ends the name server's process.
func (s *Server) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.mu.Unlock()
	s.unsub()
	<-s.done
	s.proc.Kill()
}

// Pid returns the name server's pid.
func (s *Server) Pid() etf.Pid { return s.proc.Self() }

// Synced returns the nodes this node is in sync with, sorted.
func (s *Server) Synced() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.c.synced))
	for n := range s.c.synced {
		out = append(out, string(n))
	}
	sort.Strings(out)
	return out
}

// Whereis returns the process registered under the global name, on any
// node of the cluster, as global:whereis_name/1 does.
func (s *Server) Whereis(name etf.Term) (etf.Pid, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.whereis(name)
}

// apply runs a step's effects; s.mu is held.
func (s *Server) apply(e effects) {
	s.refs.Apply(s.proc, e.monitor, e.demonitor)
	for _, o := range e.send {
		peerproc.SendNoConnect(s.n, s.proc, o.To, o.Msg)
	}
	for _, p := range e.exit {
		s.log.Warn("conflict", "global name clash: this node's process loses the name and exits", "pid", p.String())
		if lp := s.n.Ergo().ProcessByPid(p); lp != nil {
			lp.Kill()
		}
	}
	for _, peer := range e.disconnect {
		s.log.Warn("remove:"+peer, "global: a peer asked this node to disconnect from it (prevent_overlapping_partitions)", "peer", peer)
		go func() { _ = s.n.Disconnect(peer) }()
	}
	for _, r := range e.dropped {
		s.obs.Dropped(r)
		s.log.Warn("drop:"+r, "global dropped a message from a peer", "reason", r)
	}
	for _, peer := range e.synced {
		var since time.Duration
		if at, ok := s.upAt[peer]; ok {
			since = time.Since(at)
		}
		s.obs.Synced(peer, since)
		s.log.Info("synced:"+peer, "global in sync with peer", "peer", peer, "since_nodeup", since.String())
	}
	if e.conflicts > 0 {
		s.obs.Conflicts(e.conflicts)
	}
	if len(e.monitor) > 0 || len(e.demonitor) > 0 {
		s.obs.Names(len(s.c.names))
	}
}

func (s *Server) connected(to any) bool {
	var nodeName string
	switch v := to.(type) {
	case etf.Pid:
		nodeName = string(v.Node)
	case gen.ProcessID:
		nodeName = v.Node
	}
	return nodeName == s.n.Name() || s.n.IsConnected(nodeName)
}

// nameServer is the name server's process.
type nameServer struct {
	genserver.Server
	s *Server
}

func (v *nameServer) HandleCast(_ *genserver.Process, msg etf.Term) gen.ServerStatus {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil || s.stopped {
		return gen.ServerStatusOK
	}
	s.apply(s.c.handle(msg, true))
	return gen.ServerStatusOK
}

func (v *nameServer) HandleInfo(_ *genserver.Process, msg etf.Term) gen.ServerStatus {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil || s.stopped {
		return gen.ServerStatusOK
	}
	if d, ok := msg.(gen.MessageDown); ok {
		if s.refs.Down(d.Pid, d.Ref) {
			s.apply(s.c.down(d.Pid))
		}
		return gen.ServerStatusOK
	}
	if t, ok := msg.(etf.Tuple); ok && len(t) > 0 && t[0] == etf.Atom("$gen_call") {
		s.multiCall(t)
		return gen.ServerStatusOK
	}
	s.apply(s.c.handle(msg, false))
	return gen.ServerStatusOK
}

// HandleCall answers the calls other nodes' global make on this node's
// name server with gen_server:call.
func (v *nameServer) HandleCall(_ *genserver.Process, from gen.ServerFrom, msg etf.Term) (etf.Term, gen.ServerStatus) {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil || s.stopped {
		return nil, gen.ServerStatusIgnore
	}
	if reply, ok := s.call(from.Pid, msg); ok {
		return reply, gen.ServerStatusOK
	}
	return nil, gen.ServerStatusIgnore
}

// multiCall answers {'$gen_call', {Pid, Tag}, Request} whose Tag is not a
// reference (gen_server:multi_call's {Ref, Node} tags): the reply is
// {Tag, Reply}, sent to Pid. s.mu is held.
func (s *Server) multiCall(t etf.Tuple) {
	if len(t) != 3 {
		s.apply(effects{dropped: []string{DropMalformed}})
		return
	}
	ft, ok := t[1].(etf.Tuple)
	if !ok || len(ft) != 2 {
		s.apply(effects{dropped: []string{DropMalformed}})
		return
	}
	pid, ok := ft[0].(etf.Pid)
	if !ok {
		s.apply(effects{dropped: []string{DropMalformed}})
		return
	}
	if reply, ok := s.call(pid, t[2]); ok && s.connected(pid) {
		_ = s.proc.Send(pid, etf.Tuple{ft[1], reply})
	}
}

// call answers the calls other nodes' global make on this node's name
// server: locks (global:set_lock/2, global:trans/4, every registration's
// lock) and the registrations themselves. ok false: no reply, as OTP's
// name server gives none to a call it does not know. s.mu is held.
func (s *Server) call(from etf.Pid, msg etf.Term) (etf.Term, bool) {
	t, ok := msg.(etf.Tuple)
	if !ok || len(t) == 0 {
		s.apply(effects{dropped: []string{DropUnknown}})
		return nil, false
	}
	switch {
	case t[0] == atomSetLock && len(t) == 2:
		ok, e := s.c.setLock(t[1], from)
		s.apply(e)
		return ok, true
	case t[0] == atomDelLock && len(t) == 2:
		s.apply(s.c.delLock(t[1], from))
		return true, true
	case t[0] == atomRegister && len(t) == 4, t[0] == atomRegisterExt && len(t) == 5:
		pid, ok := t[2].(etf.Pid)
		if !ok {
			s.apply(effects{dropped: []string{DropMalformed}})
			return nil, false
		}
		var e effects
		s.c.insert(t[1], pid, t[3], &e)
		s.apply(e)
		return etf.Atom("yes"), true
	case t[0] == atomUnregister && len(t) == 2:
		var e effects
		s.c.remove(t[1], &e)
		s.apply(e)
		return etf.Atom("ok"), true
	case t[0] == etf.Atom("get_protocol_version") && len(t) == 1:
		return protocolVersion, true
	}
	s.apply(effects{dropped: []string{DropUnknown}})
	return nil, false
}

// Report is global's view of the cluster from this node, for /debug/global.
type Report struct {
	// Synced lists the nodes in sync with this one.
	Synced []string `json:"synced"`
	// Connecting lists the nodes whose connect is under way.
	Connecting []string `json:"connecting"`
	// Names lists every global name this node knows.
	Names []NameReport `json:"names"`
	// Locks lists the locks held on this node.
	Locks []LockReport `json:"locks"`
}

// NameReport is one global name.
type NameReport struct {
	Name string `json:"name"`
	Pid  string `json:"pid"`
	Node string `json:"node"`
}

// LockReport is one lock held on this node.
type LockReport struct {
	Resource  string   `json:"resource"`
	Requester string   `json:"requester"`
	Holders   []string `json:"holders"`
}

// maxReportNames bounds the names a Report lists.
const maxReportNames = 10000

// Report returns global's view of the cluster from this node (at most
// 10,000 names, sorted).
func (s *Server) Report() Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := Report{Synced: []string{}, Connecting: []string{}, Names: []NameReport{}, Locks: []LockReport{}}
	for n := range s.c.synced {
		r.Synced = append(r.Synced, string(n))
	}
	for n := range s.c.peers {
		r.Connecting = append(r.Connecting, string(n))
	}
	for _, en := range s.c.names {
		r.Names = append(r.Names, NameReport{Name: fmt.Sprint(en.name), Pid: en.pid.String(), Node: string(en.pid.Node)})
	}
	for _, l := range s.c.locks {
		lr := LockReport{Resource: fmt.Sprint(l.resource), Requester: fmt.Sprint(l.requester)}
		for _, h := range l.holders {
			lr.Holders = append(lr.Holders, h.String())
		}
		r.Locks = append(r.Locks, lr)
	}
	sort.Strings(r.Synced)
	sort.Strings(r.Connecting)
	sort.Slice(r.Names, func(i, j int) bool { return r.Names[i].Name < r.Names[j].Name })
	if len(r.Names) > maxReportNames {
		r.Names = r.Names[:maxReportNames]
	}
	sort.Slice(r.Locks, func(i, j int) bool { return r.Locks[i].Resource < r.Locks[j].Resource })
	return r
}
