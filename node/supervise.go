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

// supervise spawns srv as name and a watcher process that monitors it and
// starts it again, with the same name, behaviour value and args (Init runs
// again), when it exits and its policy says so, until the intensity is
// exceeded; an exit it does not restart is logged, at info level, so none
// goes unseen.
func (n *Node) supervise(en ergonode.Node, name string, po gen.ProcessOptions, opts ServerOptions, srv gen.ProcessBehavior, args []etf.Term) (gen.Process, error) {
	p, err := en.Spawn(name, po, srv, args...)
	if err != nil {
		return p, err
	}
	w := &watcher{n: n, en: en, name: name, po: po, policy: opts.Restart, srv: srv, args: args, pid: p.Self(),
		limit: intensity{max: opts.MaxRestarts, within: opts.Within}}
	if w.limit.max == 0 {
		w.limit.max = DefaultMaxRestarts
	}
	if w.limit.within == 0 {
		w.limit.within = DefaultWithin
	}
	if _, err := en.Spawn("", gen.ProcessOptions{MailboxSize: 16}, w); err != nil {
		// The server runs, unsupervised: say so rather than fail a spawn
		// that worked.
		n.log.Warn("server runs without its restart policy", "server", name, "err", err)
	}
	return p, nil
}

// watcher is the process that restarts one server. It holds the restart
// history (intensity) and lives as long as it supervises.
type watcher struct {
	genserver.Server
	n      *Node
	en     ergonode.Node
	name   string
	po     gen.ProcessOptions
	policy Restart
	srv    gen.ProcessBehavior
	args   []etf.Term
	limit  intensity

	pid etf.Pid
	ref etf.Ref
}

func (w *watcher) Init(p *genserver.Process, _ ...etf.Term) error {
	// A server that already ended is reported DOWN with noproc at once.
	w.ref = p.MonitorProcess(w.pid)
	return nil
}

func (w *watcher) HandleInfo(p *genserver.Process, m etf.Term) gen.ServerStatus {
	d, ok := m.(gen.MessageDown)
	if !ok || d.Ref != w.ref {
		return gen.ServerStatusOK
	}
	reason := d.Reason
	if !restartWanted(w.policy, reason) {
		w.n.log.Info("server exited; not restarted", "server", w.name, "pid", w.pid.String(), "reason", reason, "restart", w.policy.String())
		return gen.ServerStatusStop
	}
	for {
		if w.n.isStopping() {
			return gen.ServerStatusStop
		}
		if !w.limit.allow(time.Now()) {
			w.n.log.Error("server exited too often; given up, not restarted",
				"server", w.name, "pid", w.pid.String(), "reason", reason,
				"max_restarts", w.limit.max, "within", w.limit.within.String())
			return gen.ServerStatusStop
		}
		np, err := w.en.Spawn(w.name, w.po, w.srv, w.args...)
		if err != nil {
			w.n.log.Warn("server restart failed", "server", w.name, "reason", reason, "err", err)
			reason = err.Error()
			continue
		}
		w.n.obs.ServerRestarted(w.name)
		w.n.log.Warn("server restarted", "server", w.name, "pid", w.pid.String(), "reason", reason, "new_pid", np.Self().String())
		w.pid = np.Self()
		w.ref = p.MonitorProcess(w.pid)
		return gen.ServerStatusOK
	}
}

// isStopping reports whether Stop has begun.
func (n *Node) isStopping() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopping
}
