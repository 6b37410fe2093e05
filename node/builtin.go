package node

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"

	"github.com/gonode/gonode/internal/ratelog"
	"github.com/gonode/gonode/node/genserver"
	"github.com/gonode/gonode/node/term"
)

// Names of the built-in processes every gonode node runs.
const (
	// ServerName is the built-in gen_server registered as `gonode`:
	//   ping                      -> pong
	//   info                      -> #{node, version, uptime, peers, hidden}
	//   {call, To, Msg}           -> {ok, Reply} | {error, Reason}: the Go node
	//   {call, To, Msg, TimeoutMs}   calls To ({Name, Node} or a pid) itself
	// Reason is the term gen_server:call would exit with: noproc,
	// {nodedown, Node}, timeout, the callee's exit reason; badarg for a To
	// or TimeoutMs that is not one.
	ServerName = "gonode"
	// NetKernelName answers net_adm:ping's {is_auth, Node} with yes, as
	// OTP's net_kernel does.
	NetKernelName = "net_kernel"
)

func (n *Node) startBuiltins() error {
	opts := n.processOptions()
	if _, err := n.ergo.Spawn(NetKernelName, opts, &netKernel{}); err != nil {
		return fmt.Errorf("%s: %w", NetKernelName, err)
	}
	if _, err := n.ergo.Spawn(ServerName, opts, &gonodeServer{n: n, lim: ratelog.New(n.log.With("component", "gonode_server"), ratelog.Config{})}); err != nil {
		return fmt.Errorf("%s: %w", ServerName, err)
	}
	return n.startRex(opts) // rpc.go
}

// netKernel answers the is_auth call net_adm:ping makes.
type netKernel struct{ gen.Server }

func (netKernel) HandleCall(p *gen.ServerProcess, from gen.ServerFrom, message etf.Term) (etf.Term, gen.ServerStatus) {
	if t, ok := message.(etf.Tuple); ok && len(t) == 2 && t[0] == etf.Atom("is_auth") {
		return etf.Atom("yes"), gen.ServerStatusOK
	}
	return etf.Tuple{etf.Atom("error"), etf.Atom("unknown_call")}, gen.ServerStatusOK
}

func (netKernel) HandleCast(*gen.ServerProcess, etf.Term) gen.ServerStatus { return gen.ServerStatusOK }
func (netKernel) HandleInfo(*gen.ServerProcess, etf.Term) gen.ServerStatus { return gen.ServerStatusOK }

// gonodeServer is the built-in `gonode` gen_server.
type gonodeServer struct {
	gen.Server
	n   *Node
	lim *ratelog.Limiter // the log lines of failed {call, ...} requests
}

// defaultCallTimeout bounds {call, To, Msg} without an explicit timeout, like
// gen_server:call's default.
const defaultCallTimeout = 5 * time.Second

func (s *gonodeServer) HandleCall(p *gen.ServerProcess, from gen.ServerFrom, message etf.Term) (etf.Term, gen.ServerStatus) {
	switch m := message.(type) {
	case etf.Atom:
		switch m {
		case "ping":
			return etf.Atom("pong"), gen.ServerStatusOK
		case "info":
			return s.info(), gen.ServerStatusOK
		}
	case etf.Tuple:
		if len(m) >= 3 && len(m) <= 4 && m[0] == etf.Atom("call") {
			to, err := processTarget(m[1])
			if err != nil {
				return s.badarg(err), gen.ServerStatusOK
			}
			timeout := defaultCallTimeout
			if len(m) == 4 {
				ms, ok := m[3].(int64)
				if !ok || ms <= 0 {
					return s.badarg(fmt.Errorf("timeout must be a positive integer of milliseconds, got %v", m[3])), gen.ServerStatusOK
				}
				timeout = time.Duration(ms) * time.Millisecond
			}
			// The call runs in its own process so this server keeps serving.
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				reply, err := s.n.Call(ctx, to, m[2])
				if err != nil {
					_ = p.SendReply(from, etf.Tuple{etf.Atom("error"), s.callExitReason(err, to)})
					return
				}
				_ = p.SendReply(from, etf.Tuple{etf.Atom("ok"), reply})
			}()
			return nil, gen.ServerStatusIgnore
		}
	}
	return etf.Tuple{etf.Atom("error"), etf.Tuple{etf.Atom("unknown_call"), message}}, gen.ServerStatusOK
}

func (s *gonodeServer) info() etf.Map {
	peers := etf.List{}
	for _, p := range s.n.Connected() {
		peers = append(peers, etf.Atom(p))
	}
	return etf.Map{
		etf.Atom("node"):    etf.Atom(s.n.Name()),
		etf.Atom("version"): []byte(Version),
		etf.Atom("uptime"):  int64(s.n.Uptime() / time.Second),
		etf.Atom("peers"):   peers,
		etf.Atom("hidden"):  s.n.cfg.Hidden,
	}
}

// badarg answers a {call, ...} whose target or timeout is not one, as
// gen_server:call exits with badarg for those; the log line says what was
// wrong.
func (s *gonodeServer) badarg(err error) etf.Tuple {
	s.lim.Info("badarg", "gonode call: bad argument", "err", ratelog.Truncate(err.Error(), ratelog.MaxString))
	return etf.Tuple{etf.Atom("error"), etf.Atom("badarg")}
}

// callExitReason is the reason a failed {call, ...} answers: the one
// gen_server:call would exit with: noproc, {nodedown, Node} when the
// callee's node could not be reached or went down (gen_server:call's
// reason for a monitor's noconnection, whatever the connection's cause),
// the callee's exit reason as a term, timeout; shutdown when this node is
// stopping. A failure of gonode's own (none is known) is answered
// internal_error, its text logged.
func (s *gonodeServer) callExitReason(err error, to any) etf.Term {
	var down *genserver.DownError
	switch {
	case errors.As(err, &down):
		if down.Reason == "noconnection" {
			switch v := to.(type) {
			case gen.ProcessID:
				return etf.Tuple{etf.Atom("nodedown"), etf.Atom(v.Node)}
			case etf.Pid:
				return etf.Tuple{etf.Atom("nodedown"), v.Node}
			}
		}
		return exitReasonTerm(down.Reason)
	case errors.Is(err, ErrCallTimeout):
		return etf.Atom("timeout")
	case errors.Is(err, ErrStopping), errors.Is(err, ErrNotStarted), errors.Is(err, genserver.ErrStopping):
		return etf.Atom("shutdown")
	}
	s.lim.Warn("internal", "gonode call failed", "err", ratelog.Truncate(err.Error(), 2*ratelog.MaxString))
	return etf.Atom("internal_error")
}

// exitReasonTerm turns an exit reason as ergo carries it (a string in
// Erlang syntax) into the term a BEAM caller sees, as the distribution
// layer sends it: the term it spells; kill as killed (what a monitor of a
// killed process reports); else an atom, or a binary when too long for one.
func exitReasonTerm(r string) etf.Term {
	if r == "kill" {
		return etf.Atom("killed")
	}
	if t, err := term.Parse(r); err == nil {
		return t
	}
	if utf8.RuneCountInString(r) <= 255 && utf8.ValidString(r) {
		return etf.Atom(r)
	}
	return []byte(r)
}

// processTarget accepts {Name, Node}, a pid or a local registered name.
func processTarget(t etf.Term) (any, error) {
	switch v := t.(type) {
	case etf.Pid:
		return v, nil
	case etf.Atom:
		return string(v), nil
	case etf.Tuple:
		if len(v) == 2 {
			name, ok1 := v[0].(etf.Atom)
			node, ok2 := v[1].(etf.Atom)
			if ok1 && ok2 {
				return gen.ProcessID{Name: string(name), Node: string(node)}, nil
			}
		}
	}
	return nil, fmt.Errorf("call target must be {Name, Node}, a pid or a name, got %v", t)
}

// ErrCallTimeout is returned by Call when no reply came in time. It is
// genserver.ErrCallTimeout, so one errors.Is test covers the calls of both
// packages.
var ErrCallTimeout = genserver.ErrCallTimeout

// callerMailboxSize is the mailbox of the process a Call runs in: it only
// ever receives the reply. (A process's mailbox and exit-signal queue are
// allocated up front at this size: at the node's MailboxSize of 65,535, the
// default before the connection overflow, a call cost about 6 MB.)
const callerMailboxSize = 16

// Call makes a gen_server call to `to` — a gen.ProcessID{Name, Node}, an
// etf.Pid, or a local registered name — and returns the reply. The deadline
// of ctx (default 5 s) bounds it. Each Call runs in a short-lived process
// of its own (a genserver.Server, which waits for the reply in its own loop),
// so calls may run concurrently. Like gen_server:call, the call monitors the
// callee: when no process has that name, the process ends, or its node goes
// down before replying, Call returns at once with a *genserver.DownError
// (errors.Is genserver.ErrServerDown) carrying the reason (noproc,
// noconnection, or the exit reason). A noconnection that comes from a failed
// attempt to connect to the callee's node also carries the attempt's cause,
// as Connect's error does (errors.Is ErrNotRegistered, ErrBadCookie,
// ErrHostUnreachable, ...). A call without a reply in time returns
// an error that is ErrCallTimeout and, when the deadline was ctx's, also
// context.DeadlineExceeded.
//
// Call suits the occasional call from plain Go code. For throughput, or
// many concurrent calls, call from long-lived processes instead: a
// genserver.Server per caller, calling with genserver's Process.Call from
// its callbacks. The process Call spawns, monitors through and kills for
// every call cost, in `make bench` with small and 1 KiB terms, 1.3-3.1x the
// caller CPU per call of long-lived callers, and from 16 callers up
// 0.44-0.85x their calls per second (docs/performance-notes.md, "Which call
// path for throughput").
func (n *Node) Call(ctx context.Context, to any, message etf.Term) (etf.Term, error) {
	en, err := n.running()
	if err != nil {
		return nil, err
	}
	timeout := defaultCallTimeout
	dl, hasDeadline := ctx.Deadline()
	if hasDeadline {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("call %v: %w: %w", to, ErrCallTimeout, context.DeadlineExceeded)
	}
	p, err := en.Spawn("", gen.ProcessOptions{MailboxSize: callerMailboxSize}, &caller{})
	if err != nil {
		return nil, fmt.Errorf("call: %w", err)
	}
	defer p.Kill()
	// ergo's direct requests count in whole seconds; this is only a
	// backstop, the call's own timeout and ctx end the wait first.
	secs := int(timeout/time.Second) + 2
	type result struct {
		v   any
		err error
	}
	mark := n.causes.mark()
	done := make(chan result, 1)
	go func() {
		v, err := p.DirectWithTimeout(callRequest{to: to, msg: message, timeout: timeout}, secs)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err == nil {
			return r.v, nil
		}
		err := fmt.Errorf("call %v: %w", to, r.err)
		var named calleeNamed
		switch {
		case errors.As(r.err, &named):
			err = named.error // genserver's error names the callee already
		case errors.Is(r.err, lib.ErrTimeout):
			err = fmt.Errorf("call %v: %w", to, ErrCallTimeout)
		}
		err = n.withCause(err, to, mark)
		if hasDeadline && errors.Is(err, ErrCallTimeout) {
			// ctx's deadline was the call's timeout, whichever timer fired
			// first.
			err = fmt.Errorf("%w: %w", err, context.DeadlineExceeded)
		}
		return nil, err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("call %v: %w: %w", to, ErrCallTimeout, ctx.Err())
		}
		return nil, fmt.Errorf("call %v: %w", to, ctx.Err())
	}
}

// withCause adds to a call's noconnection the cause of the failed attempt
// to connect to the callee's node, made during the call (after mark).
func (n *Node) withCause(err error, to any, mark uint64) error {
	var down *genserver.DownError
	if !errors.As(err, &down) || down.Reason != "noconnection" {
		return err
	}
	var peer string
	switch v := to.(type) {
	case gen.ProcessID:
		peer = v.Node
	case etf.Pid:
		peer = string(v.Node)
	}
	if peer == "" || peer == n.cfg.Name {
		return err
	}
	if cause := n.causes.since(peer, mark); cause != nil {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}

type callRequest struct {
	to      any
	msg     etf.Term
	timeout time.Duration
}

// calleeNamed carries an error of genserver's Call, which starts with the
// callee ("call {name,node}: ..."), back to Node.Call, so that it is not
// prefixed a second time.
type calleeNamed struct{ error }

func (e calleeNamed) Unwrap() error { return e.error }

// caller is the short-lived process a Call is made from.
type caller struct{ genserver.Server }

func (caller) HandleDirect(p *genserver.Process, ref etf.Ref, message any) (any, gen.DirectStatus) {
	req, ok := message.(callRequest)
	if !ok {
		return nil, fmt.Errorf("unexpected request %T", message)
	}
	reply, err := p.CallWithTimeout(req.to, req.msg, req.timeout)
	if err != nil {
		return nil, calleeNamed{err}
	}
	return reply, gen.DirectStatusOK
}
