package global

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
)

// ErrNotRegistered: no process is registered under the global name.
var ErrNotRegistered = errors.New("global: name not registered")

// callTimeout bounds each call a registration makes to a peer's name
// server.
const callTimeout = 5 * time.Second

// defaultMethod is the conflict resolution function a registration made
// from Go carries, the one global:register_name/2 uses: after a partition
// heals, the process on the lower node keeps the name and the other exits.
var defaultMethod = etf.Export{Module: "global", Function: "random_exit_name", Arity: 3}

// Register registers pid (a process of any node) under the global name on
// every node in sync with this one, as global:register_name/2 does: it
// returns false (Elixir's :no) when the name is taken. The registration
// holds global's registration lock on every node while it runs.
func (s *Server) Register(ctx context.Context, name etf.Term, pid etf.Pid) (bool, error) {
	if _, ok := keyOf(name); !ok {
		return false, fmt.Errorf("global: register: the name cannot be encoded")
	}
	r, err := s.transact(ctx, txn{register: true, name: name, pid: pid})
	if err != nil {
		return false, err
	}
	return r, nil
}

// Unregister removes the global name on every node in sync with this one,
// as global:unregister_name/1 does. A name not registered is no error.
func (s *Server) Unregister(ctx context.Context, name etf.Term) error {
	if _, ok := s.Whereis(name); !ok {
		return nil
	}
	_, err := s.transact(ctx, txn{name: name})
	return err
}

// Send sends msg to the process registered under the global name, as
// global:send/2 does; ErrNotRegistered when there is none.
func (s *Server) Send(name etf.Term, msg etf.Term) error {
	pid, ok := s.Whereis(name)
	if !ok {
		return fmt.Errorf("%w: %v", ErrNotRegistered, name)
	}
	return s.n.Send(pid, msg)
}

// Call makes a gen_server call to the process registered under the global
// name, as GenServer.call({:global, name}, msg) does; ErrNotRegistered when
// there is none.
func (s *Server) Call(ctx context.Context, name etf.Term, msg etf.Term) (etf.Term, error) {
	pid, ok := s.Whereis(name)
	if !ok {
		return nil, fmt.Errorf("%w: %v", ErrNotRegistered, name)
	}
	return s.n.Call(ctx, pid, msg)
}

// Names returns every global name this node knows, with its process.
func (s *Server) Names() map[string]etf.Pid {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]etf.Pid, len(s.c.names))
	for _, en := range s.c.names {
		out[fmt.Sprint(en.name)] = en.pid
	}
	return out
}

// txn is one registration or unregistration.
type txn struct {
	register bool
	name     etf.Term
	pid      etf.Pid
}

// transact runs t in a registrar process of its own: the process holds
// global's registration lock ({global, Registrar}) on every node in sync
// with this one, as OTP's registrar does, makes the change on each, and
// releases the lock.
func (s *Server) transact(ctx context.Context, t txn) (bool, error) {
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped || !s.proc.IsAlive() {
		return false, ErrStopped
	}
	p, err := s.n.RegisterServerWith("", node.ServerOptions{Restart: node.Temporary}, &registrar{s: s})
	if err != nil {
		return false, fmt.Errorf("global: registrar: %w", err)
	}
	defer p.Kill()
	dl, ok := ctx.Deadline()
	secs := 60
	if ok {
		secs = int(time.Until(dl)/time.Second) + 1
	}
	type result struct {
		v   any
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := p.DirectWithTimeout(regRequest{ctx: ctx, t: t}, secs)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return false, fmt.Errorf("global: %w", r.err)
		}
		return r.v.(bool), nil
	case <-ctx.Done():
		return false, fmt.Errorf("global: %w", ctx.Err())
	}
}

type regRequest struct {
	ctx context.Context
	t   txn
}

// registrar is the process a registration runs in.
type registrar struct {
	genserver.Server
	s *Server
}

func (r *registrar) HandleDirect(p *genserver.Process, _ etf.Ref, message any) (any, gen.DirectStatus) {
	req, ok := message.(regRequest)
	if !ok {
		return nil, genserver.ErrUnhandled
	}
	v, err := r.s.run(req.ctx, p, req.t)
	if err != nil {
		return nil, err
	}
	return v, gen.DirectStatusOK
}

// run is the registration's transaction, in the registrar process p.
func (s *Server) run(ctx context.Context, p *genserver.Process, t txn) (bool, error) {
	me := p.Self()
	id := etf.Tuple{atomGlobal, me}
	for attempt := 0; ; attempt++ {
		nodes := s.inSyncNodes()
		locked, ok := s.lockAll(p, id, nodes)
		if ok && slices.Equal(nodes, s.inSyncNodes()) {
			res := s.apply1(p, t, nodes)
			s.unlockAll(p, id, locked)
			return res, nil
		}
		s.unlockAll(p, id, locked)
		// Someone else holds the lock: wait a random while, longer each
		// time (at most 8 s), as global:set_lock does.
		maxWait := time.Duration(min(1<<min(attempt, 6), 64)) * time.Second / 8
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(rand.N(maxWait) + time.Millisecond):
		}
	}
}

// inSyncNodes lists the nodes a registration goes to: this one first, then
// the others in sync with it, sorted.
func (s *Server) inSyncNodes() []etf.Atom {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := map[etf.Atom]bool{}
	for n := range s.c.known {
		set[n] = true
	}
	for n := range s.c.synced {
		set[n] = true
	}
	out := []etf.Atom{s.c.node}
	for n := range set {
		if n != s.c.node && s.n.IsConnected(string(n)) {
			out = append(out, n)
		}
	}
	slices.Sort(out[1:])
	return out
}

// lockAll sets the lock on the boss (the node of greatest name) first, as
// OTP does, then on the others. It returns the nodes locked.
func (s *Server) lockAll(p *genserver.Process, id etf.Tuple, nodes []etf.Atom) ([]etf.Atom, bool) {
	boss := slices.Max(nodes)
	order := append([]etf.Atom{boss}, slices.DeleteFunc(slices.Clone(nodes), func(n etf.Atom) bool { return n == boss })...)
	var locked []etf.Atom
	for _, n := range order {
		if !s.lockOn(p, id, n) {
			return locked, false
		}
		locked = append(locked, n)
	}
	return locked, true
}

func (s *Server) lockOn(p *genserver.Process, id etf.Tuple, n etf.Atom) bool {
	if n == s.c.node {
		s.mu.Lock()
		defer s.mu.Unlock()
		ok, e := s.c.setLock(id, p.Self())
		s.apply(e)
		return ok
	}
	reply, err := p.CallWithTimeout(gen.ProcessID{Name: ServerName, Node: string(n)}, etf.Tuple{atomSetLock, id}, callTimeout)
	return err == nil && reply == true
}

// unlockAll releases the lock on locked, the boss last.
func (s *Server) unlockAll(p *genserver.Process, id etf.Tuple, locked []etf.Atom) {
	for i := len(locked) - 1; i >= 0; i-- {
		n := locked[i]
		if n == s.c.node {
			s.mu.Lock()
			s.apply(s.c.delLock(id, p.Self()))
			s.mu.Unlock()
			continue
		}
		_, _ = p.CallWithTimeout(gen.ProcessID{Name: ServerName, Node: string(n)}, etf.Tuple{atomDelLock, id}, callTimeout)
	}
}

// apply1 makes the change on every node, under the lock.
func (s *Server) apply1(p *genserver.Process, t txn, nodes []etf.Atom) bool {
	var msg etf.Tuple
	if t.register {
		if _, taken := s.Whereis(t.name); taken {
			return false
		}
		msg = etf.Tuple{atomRegister, t.name, t.pid, defaultMethod}
	} else {
		msg = etf.Tuple{atomUnregister, t.name}
	}
	for _, n := range nodes {
		if n == s.c.node {
			s.mu.Lock()
			var e effects
			if t.register {
				s.c.insert(t.name, t.pid, defaultMethod, &e)
			} else {
				s.c.remove(t.name, &e)
			}
			s.apply(e)
			s.mu.Unlock()
			continue
		}
		_, _ = p.CallWithTimeout(gen.ProcessID{Name: ServerName, Node: string(n)}, msg, callTimeout)
	}
	return true
}
