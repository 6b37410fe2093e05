package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	ergonode "github.com/ergo-services/ergo/node"

	"github.com/gonode/gonode/node/genserver"
)

// Restart says when a server registered with RegisterServer or
// RegisterServerWith is started again after it exits, as an OTP child
// spec's restart value does.
type Restart int

// Restart policies.
const (
	// Permanent: restarted after any exit (the default).
	Permanent Restart = iota
	// Transient: restarted after an abnormal exit only; not after normal,
	// shutdown or {shutdown, _}.
	Transient
	// Temporary: never restarted.
	Temporary
)

func (r Restart) String() string {
	switch r {
	case Permanent:
		return "permanent"
	case Transient:
		return "transient"
	case Temporary:
		return "temporary"
	}
	return fmt.Sprintf("Restart(%d)", int(r))
}

// Restart intensity defaults, those of Elixir's Supervisor: more than 3
// restarts within 5 seconds and the server is given up.
const (
	DefaultMaxRestarts = 3
	DefaultWithin      = 5 * time.Second
)

// restartWanted reports whether policy restarts a server that exited with
// reason (ergo's string form).
func restartWanted(policy Restart, reason string) bool {
	switch policy {
	case Permanent:
		return true
	case Temporary:
		return false
	}
	switch r := genserver.ReasonTerm(reason).(type) {
	case etf.Atom:
		return r != "normal" && r != "shutdown"
	case etf.Tuple:
		return !(len(r) == 2 && r[0] == etf.Atom("shutdown"))
	}
	return true
}

// intensity counts restarts within a sliding window: allow reports whether
// one more restart at now keeps within max restarts in the window, and
// records it if so. Time is an input: the caller passes now.
type intensity struct {
	max    int
	within time.Duration
	times  []time.Time
}

func (in *intensity) allow(now time.Time) bool {
	keep := in.times[:0]
	for _, t := range in.times {
		if now.Sub(t) < in.within {
			keep = append(keep, t)
		}
	}
	in.times = keep
	if len(in.times) >= in.max {
		return false
	}
	in.times = append(in.times, now)
	return true
}

// validateRestart checks the restart settings of opts.
func validateRestart(opts ServerOptions) error {
	var errs []error
	if opts.Restart < Permanent || opts.Restart > Temporary {
		errs = append(errs, fmt.Errorf("%w: restart policy %d is not Permanent, Transient or Temporary", ErrInvalidServerOptions, int(opts.Restart)))
	}
	if opts.MaxRestarts < 0 {
		errs = append(errs, fmt.Errorf("%w: max restarts %d is negative", ErrInvalidServerOptions, opts.MaxRestarts))
	}
	if opts.Within < 0 {
		errs = append(errs, fmt.Errorf("%w: restart window %v is negative", ErrInvalidServerOptions, opts.Within))
	}
	return errors.Join(errs...)
}

// supervise spawns srv as name and has the node's supervisor process
// (one per node, whatever the number of servers) monitor it: when it exits
// and its policy says so, the supervisor starts it again, with the same
// name, behaviour value and args (Init runs again), until the intensity is
// exceeded; an exit it does not restart is logged, at info level, so none
// goes unseen.
func (n *Node) supervise(en ergonode.Node, name string, po gen.ProcessOptions, opts ServerOptions, srv gen.ProcessBehavior, args []etf.Term) (gen.Process, error) {
	p, err := en.Spawn(name, po, srv, args...)
	if err != nil {
		return p, err
	}
	c := &child{name: name, po: po, policy: opts.Restart, srv: srv, args: args, pid: p.Self(),
		limit: intensity{max: opts.MaxRestarts, within: opts.Within}}
	if c.limit.max == 0 {
		c.limit.max = DefaultMaxRestarts
	}
	if c.limit.within == 0 {
		c.limit.within = DefaultWithin
	}
	sup, err := n.helperProcess()
	if err == nil {
		_, err = sup.Direct(watchRequest{c})
	}
	if err != nil {
		// The server runs, unsupervised: say so rather than fail a spawn
		// that worked.
		n.log.Warn("server runs without its restart policy", "server", name, "err", err)
	}
	return p, nil
}

// helperProcess is the node's own process that supervises the registered
// servers and that Send sends from, spawned when first needed (again if it
// ended: the node is stopping then).
func (n *Node) helperProcess() (gen.Process, error) {
	en, err := n.running()
	if err != nil {
		return nil, err
	}
	n.helperMu.Lock()
	defer n.helperMu.Unlock()
	if n.helper != nil && n.helper.IsAlive() {
		return n.helper, nil
	}
	p, err := en.Spawn("", gen.ProcessOptions{MailboxSize: helperMailboxSize}, &supervisor{n: n, en: en, children: map[etf.Ref]*child{}})
	if err != nil {
		return nil, err
	}
	n.helper = p
	return p, nil
}

// helperMailboxSize bounds the supervisor's mailbox: the DOWNs of as many
// servers ending at once (ergo drops what a full mailbox cannot take).
const helperMailboxSize = 1024

// child is one supervised server: how to start it again, and its restart
// history.
type child struct {
	name   string
	po     gen.ProcessOptions
	policy Restart
	srv    gen.ProcessBehavior
	args   []etf.Term
	limit  intensity
	pid    etf.Pid
}

// watchRequest asks the supervisor to watch a server just spawned.
type watchRequest struct{ c *child }

// supervisor monitors the registered servers and restarts them. A restart
// runs the server's Init on the supervisor's goroutine, as an OTP
// supervisor starts its children itself.
type supervisor struct {
	genserver.Server
	n        *Node
	en       ergonode.Node
	children map[etf.Ref]*child
}

func (s *supervisor) HandleDirect(p *genserver.Process, _ etf.Ref, m any) (any, gen.DirectStatus) {
	w, ok := m.(watchRequest)
	if !ok {
		return nil, genserver.ErrUnhandled
	}
	// A server that already ended is reported DOWN with noproc at once.
	s.children[p.MonitorProcess(w.c.pid)] = w.c
	return nil, gen.DirectStatusOK
}

func (s *supervisor) HandleInfo(p *genserver.Process, m etf.Term) gen.ServerStatus {
	d, ok := m.(gen.MessageDown)
	if !ok {
		return gen.ServerStatusOK
	}
	c, ok := s.children[d.Ref]
	if !ok {
		return gen.ServerStatusOK
	}
	delete(s.children, d.Ref)
	log := s.n.log
	reason := d.Reason
	if !restartWanted(c.policy, reason) {
		log.Info("server exited; not restarted", "server", c.name, "pid", c.pid.String(), "reason", reason, "restart", c.policy.String())
		return gen.ServerStatusOK
	}
	for {
		if s.n.isStopping() {
			return gen.ServerStatusOK
		}
		if !c.limit.allow(time.Now()) {
			log.Error("server exited too often; given up, not restarted",
				"server", c.name, "pid", c.pid.String(), "reason", reason,
				"max_restarts", c.limit.max, "within", c.limit.within.String())
			return gen.ServerStatusOK
		}
		np, err := s.en.Spawn(c.name, c.po, c.srv, c.args...)
		if err != nil {
			log.Warn("server restart failed", "server", c.name, "reason", reason, "err", err)
			reason = err.Error()
			continue
		}
		s.n.obs.ServerRestarted(c.name)
		log.Warn("server restarted", "server", c.name, "pid", c.pid.String(), "reason", reason, "new_pid", np.Self().String())
		c.pid = np.Self()
		s.children[p.MonitorProcess(c.pid)] = c
		return gen.ServerStatusOK
	}
}

// isStopping reports whether Stop has begun.
func (n *Node) isStopping() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopping
}
