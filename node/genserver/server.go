package genserver

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"

	"github.com/gonode/gonode/node/term"
)

// Behavior is the set of callbacks of a Server. Embed Server in your type
// to get a default for each one and override the ones you need.
type Behavior interface {
	gen.ProcessBehavior

	// Init runs in ProcessInit, before the process is registered as
	// started. An error fails the spawn.
	Init(p *Process, args ...etf.Term) error
	// HandleCall handles a $gen_call. gen.ServerStatusOK sends reply to the
	// caller; gen.ServerStatusIgnore sends nothing (reply later with
	// Process.SendReply); gen.ServerStatusStop ends the process with reason
	// normal, any other error with its text, without replying.
	HandleCall(p *Process, from gen.ServerFrom, message etf.Term) (etf.Term, gen.ServerStatus)
	// HandleCast handles a $gen_cast; the status means what it means for
	// HandleCall.
	HandleCast(p *Process, message etf.Term) gen.ServerStatus
	// HandleInfo handles every other message.
	HandleInfo(p *Process, message etf.Term) gen.ServerStatus
	// HandleDirect handles a request made with gen.Process.Direct from Go.
	// gen.DirectStatusIgnore leaves the reply to Process.Reply; any other
	// status is returned to the requester as its error.
	HandleDirect(p *Process, ref etf.Ref, message any) (any, gen.DirectStatus)
	// Terminate runs when the process ends, with the reason.
	Terminate(p *Process, reason string)
}

// Errors of Process.Call and of the default callbacks.
var (
	// ErrCallTimeout: no reply came within the timeout.
	ErrCallTimeout = errors.New("genserver: call timed out")
	// ErrStopping: the process was told to stop while it waited.
	ErrStopping = errors.New("genserver: process is stopping")
	// ErrUnhandled: the behaviour does not handle this kind of request.
	ErrUnhandled = errors.New("genserver: request not handled")
	// ErrNotBehavior: the object spawned does not implement Behavior.
	ErrNotBehavior = errors.New("genserver: not a genserver.Behavior")
	// ErrServerDown: the callee does not exist, ended during the call, or
	// its node is not connected. The error is a *DownError with the reason.
	ErrServerDown = errors.New("genserver: server down")
)

// DownError is the error of a Call whose callee went down before it
// replied: Reason is the monitor's reason, as in the exit of an Erlang
// gen_server:call: "noproc" (no such process or name), "noconnection" (the
// node is not connected or went down), or the callee's exit reason, in
// Erlang syntax ("{shutdown,#{at => 1}}"); Term gives it as a term.
type DownError struct {
	To     any
	Reason string
}

// Term is Reason as a term (ReasonTerm): the atom noproc, the tuple
// {shutdown, #{at => 1}}, ...
func (e *DownError) Term() etf.Term { return ReasonTerm(e.Reason) }

// ReasonTerm turns an exit or DOWN reason as ergo carries it (Erlang syntax,
// what term.Format writes and what node/dist makes of a peer's reason) back
// into a term: "normal" is the atom normal, "{shutdown,#{at => 1}}" the
// tuple. A reason that is not Erlang syntax (a Go error's text ended a
// process) is an atom of that text when it fits one, as node/dist sends it
// to a peer, else a binary.
func ReasonTerm(reason string) etf.Term {
	switch reason {
	case "normal", "kill", "killed", "shutdown", "noproc", "noconnection", "panic":
		return etf.Atom(reason)
	}
	if t, err := term.Parse(reason); err == nil {
		return t
	}
	if utf8.RuneCountInString(reason) <= 255 && utf8.ValidString(reason) {
		return etf.Atom(reason)
	}
	return []byte(reason)
}

func (e *DownError) Error() string {
	return fmt.Sprintf("call %v: %v (%s)", e.To, ErrServerDown, e.Reason)
}

// Unwrap makes errors.Is(err, ErrServerDown) hold.
func (e *DownError) Unwrap() error { return ErrServerDown }

// DefaultCallTimeout bounds Process.Call, like gen_server:call's default.
const DefaultCallTimeout = 5 * time.Second

// Server runs a Behavior's callbacks inline in the process loop. It
// implements gen.ProcessBehavior, so it can be spawned with ergo's Spawn or
// gonode's Node.RegisterServer.
type Server struct {
	Behavior

	// running is the *Process running this value, which node/dist's
	// connection readers deliver to (EnqueueRemote, bind). An
	// unsafe.Pointer, not an atomic.Pointer, so that a Server stays a value
	// that callbacks with value receivers may copy (go vet's copylocks).
	running unsafe.Pointer
}

// Process is the running server: ergo's gen.Process plus gen_server calls.
// Use it only from the callbacks (it belongs to the process goroutine).
type Process struct {
	gen.Process

	behavior Behavior
	channels gen.ProcessChannels
	// log is where crashes are logged (EnvLogger).
	log *slog.Logger
	// pending holds what arrived while a Call waited for its reply; the loop
	// takes from it before the channels.
	pending []pendingItem
	// stopReason is set by a stop request seen during a Call's wait.
	stopReason string
	stopping   bool
	// flush holds the monitors of finished calls whose DOWN message may
	// still arrive (demonitor came too late); it is dropped on arrival.
	flush map[etf.Ref]struct{}
	// onLoop: the callback running now runs on the loop goroutine, which
	// may then read ergo's channels itself (Call).
	onLoop bool

	// run is held by the goroutine running callbacks (the loop goroutine or
	// a connection reader, see inline.go): one callback at a time. The
	// fields above belong to its holder.
	run sync.Mutex
	// inbox holds what waits for the holder of run, in arrival order.
	qmu   sync.Mutex
	inbox []pendingItem
	ready bool // the loop runs: readers may queue here (under qmu)
	dead  bool // the loop ended: readers route through ergo (under qmu)
	// kick wakes a Call that waits inside a callback when the inbox grows;
	// wake tells the loop goroutine that a callback run elsewhere stopped
	// the process.
	kick, wake chan struct{}
	// stopFlag mirrors stopping for EnqueueRemote, which does not hold run.
	stopFlag atomic.Bool
}

// maxFlush bounds Process.flush: a DOWN that never comes must not make it
// grow without end.
const maxFlush = 1024

type pendingItem struct {
	mail   *gen.ProcessMailboxMessage
	direct *gen.ProcessDirectMessage
	exit   *gen.ProcessGracefulExitRequest
}

// ProcessInit implements gen.ProcessBehavior.
// A panic in Init fails the spawn with an error that carries its value,
// logged with its stack.
func (s *Server) ProcessInit(p gen.Process, args ...etf.Term) (ps gen.ProcessState, err error) {
	b, ok := p.Behavior().(Behavior)
	if !ok {
		return gen.ProcessState{}, CheckBehavior(p.Behavior())
	}
	sp := &Process{Process: p, behavior: b, log: processLogger(p), kick: make(chan struct{}, 1), wake: make(chan struct{}, 1)}
	defer func() {
		if r := recover(); r != nil {
			ps, err = gen.ProcessState{}, fmt.Errorf("genserver: Init panicked: %s", sp.crashed("Init", r))
		}
	}()
	if err := b.Init(sp, args...); err != nil {
		return gen.ProcessState{}, err
	}
	s.bind(sp)
	return gen.ProcessState{Process: p, State: sp}, nil
}

// ProcessLoop implements gen.ProcessBehavior: it takes one message at a
// time and runs its callback, on this goroutine unless a connection reader
// is running the process's callbacks (inline.go), in which case the
// message waits in the inbox for it.
func (s *Server) ProcessLoop(ps gen.ProcessState, started chan<- bool) string {
	sp, ok := ps.State.(*Process)
	if !ok {
		return "genserver: state is not a *genserver.Process"
	}
	sp.channels = ps.ProcessChannels()
	sp.open()
	started <- true
	if sp.runHere() {
		return sp.terminate(sp.stopReason)
	}
	for {
		var it pendingItem
		select {
		case m := <-sp.channels.Mailbox:
			it.mail = &m
		case d := <-sp.channels.Direct:
			it.direct = &d
		case ex := <-sp.channels.GracefulExit:
			it.exit = &ex
		case <-sp.wake:
			// A callback run elsewhere stopped the process.
			sp.run.Lock()
			return sp.terminate(sp.stopReason)
		case <-sp.Context().Done():
			// ergo queues an exit signal for a process that does not trap
			// exits, then cancels its context at once: when both are
			// ready, the signal's reason is the one to end with, as on a
			// BEAM (a linked process's "bye", not "kill").
			sp.run.Lock()
			select {
			case ex := <-sp.channels.GracefulExit:
				return sp.terminate(ex.Reason)
			default:
			}
			if sp.stopping {
				return sp.terminate(sp.stopReason)
			}
			return sp.terminate("kill")
		}
		if !sp.push(it, false) {
			// The inbox is full and another goroutine runs the callbacks:
			// wait for it rather than take more from ergo's mailbox (which
			// then fills and holds senders back).
			sp.run.Lock()
			sp.push(it, true)
			sp.run.Unlock()
			if sp.runHere() {
				return sp.terminate(sp.stopReason)
			}
			continue
		}
		if sp.runHere() {
			return sp.terminate(sp.stopReason)
		}
		// Another goroutine holds run: it runs the item, or takes it in a
		// Call's wait.
		sp.nudge(sp.kick)
	}
}

func (sp *Process) dispatch(it pendingItem) (string, bool) {
	switch {
	case it.direct != nil:
		return sp.handleDirect(*it.direct)
	case it.exit != nil:
		return sp.exitSignal(*it.exit)
	}
	return sp.handleMail(it.mail.Message)
}

// exitSignal turns an exit signal into gen.MessageExit for HandleInfo when
// the process traps exits (sent to itself, after what is already in the
// mailbox, as the signal's sender sent those first); otherwise it stops.
func (sp *Process) exitSignal(ex gen.ProcessGracefulExitRequest) (string, bool) {
	if !sp.TrapExit() {
		return ex.Reason, true
	}
	if err := sp.Send(sp.Self(), gen.MessageExit{Pid: ex.From, Reason: ex.Reason}); err != nil {
		return ex.Reason, true
	}
	return "", false
}

// terminate runs Terminate; the caller holds run, which it keeps: no
// callback runs after this one.
// A panic in Terminate is logged as a callback's (the reason stays).
func (sp *Process) terminate(reason string) (out string) {
	sp.close()
	out = reason
	defer func() {
		if r := recover(); r != nil {
			sp.crashed("Terminate", r)
		}
	}()
	sp.behavior.Terminate(sp, reason)
	return out
}

// handleMail classifies a mailbox message as OTP's gen_server does and runs
// its callback. It returns the exit reason and true when the process must
// stop.
func (sp *Process) handleMail(message etf.Term) (reason string, stop bool) {
	callback := "HandleInfo"
	defer func() {
		if r := recover(); r != nil {
			reason, stop = sp.crashed(callback, r), true
		}
	}()
	if d, ok := message.(gen.MessageDown); ok && sp.flushed(d.Ref) {
		return "", false
	}
	if t, ok := message.(etf.Tuple); ok && len(t) > 0 {
		switch t[0] {
		case etf.Atom("$gen_call"):
			if from, ok := parseFrom(t); ok {
				callback = "HandleCall"
				reply, status := sp.behavior.HandleCall(sp, from, t[2])
				if status == gen.ServerStatusOK {
					// A reply that cannot be sent (the caller's node is
					// gone) is the caller's loss, as in OTP; one the
					// codec cannot encode ends the process, so the caller
					// sees why at once (the encoding happens in Send: no
					// cost for replies that encode).
					if err := sp.SendReply(from, reply); err != nil && unencodable(err) {
						return sp.badReply(reply, err), true
					}
					return "", false
				}
				return statusReason(status)
			}
		case etf.Atom("$gen_cast"):
			if len(t) == 2 {
				callback = "HandleCast"
				return statusReason(sp.behavior.HandleCast(sp, t[1]))
			}
		}
	}
	return statusReason(sp.behavior.HandleInfo(sp, message))
}

// parseFrom reads {'$gen_call', {Pid, Tag}, Request} where Tag is a
// reference or OTP 24+'s [alias|Ref].
func parseFrom(t etf.Tuple) (gen.ServerFrom, bool) {
	if len(t) != 3 {
		return gen.ServerFrom{}, false
	}
	ft, ok := t[1].(etf.Tuple)
	if !ok || len(ft) != 2 {
		return gen.ServerFrom{}, false
	}
	pid, ok := ft[0].(etf.Pid)
	if !ok {
		return gen.ServerFrom{}, false
	}
	switch tag := ft[1].(type) {
	case etf.Ref:
		return gen.ServerFrom{Pid: pid, Ref: tag}, true
	case etf.List:
		// ergo decodes the improper list [alias|Ref] as a two-element List.
		if len(tag) == 2 && tag[0] == etf.Atom("alias") {
			if ref, ok := tag[1].(etf.Ref); ok {
				return gen.ServerFrom{Pid: pid, Ref: ref, ReplyByAlias: true}, true
			}
		}
	case etf.ListImproper:
		if len(tag) == 2 && tag[0] == etf.Atom("alias") {
			if ref, ok := tag[1].(etf.Ref); ok {
				return gen.ServerFrom{Pid: pid, Ref: ref, ReplyByAlias: true}, true
			}
		}
	}
	return gen.ServerFrom{}, false
}

func statusReason(status gen.ServerStatus) (string, bool) {
	switch status {
	case gen.ServerStatusOK, gen.ServerStatusIgnore:
		return "", false
	case gen.ServerStatusStop:
		return "normal", true
	default:
		return status.Error(), true
	}
}

func (sp *Process) handleDirect(d gen.ProcessDirectMessage) (reason string, stop bool) {
	defer func() {
		if r := recover(); r != nil {
			reason, stop = sp.crashed("HandleDirect", r), true
			_ = sp.PutSyncReply(d.Ref, nil, fmt.Errorf("genserver: HandleDirect panicked: %v", r))
		}
	}()
	reply, status := sp.behavior.HandleDirect(sp, d.Ref, d.Message)
	if status == gen.DirectStatusIgnore {
		return "", false
	}
	// The requester may have timed out and gone; nothing to do then.
	_ = sp.PutSyncReply(d.Ref, reply, status)
	return "", false
}

// SendReply answers a call: {Ref, Reply} to the caller's pid, or
// {[alias|Ref], Reply} to the alias when the call carried one. A nil reply
// is sent as the atom nil.
func (sp *Process) SendReply(from gen.ServerFrom, reply etf.Term) error {
	if reply == nil {
		reply = etf.Atom("nil")
	}
	if from.ReplyByAlias {
		return sp.Send(etf.Alias(from.Ref), etf.Tuple{etf.ListImproper{etf.Atom("alias"), from.Ref}, reply})
	}
	return sp.Send(from.Pid, etf.Tuple{from.Ref, reply})
}

// Reply answers a direct request left for later with gen.DirectStatusIgnore.
func (sp *Process) Reply(ref etf.Ref, reply any, err error) error {
	return sp.PutSyncReply(ref, reply, err)
}

// Cast sends {'$gen_cast', Message} to `to` (a pid, a local name or a
// gen.ProcessID{Name, Node}).
func (sp *Process) Cast(to any, message etf.Term) error {
	return sp.Send(to, etf.Tuple{etf.Atom("$gen_cast"), message})
}

// Call makes a gen_server call with DefaultCallTimeout.
//
// Calling from long-lived processes with Call is the path for throughput:
// node.Node.Call spawns a process for each call, which in `make bench` cost
// 1.3-3.1x the caller CPU of long-lived callers, and from 16 callers up
// 0.44-0.85x their calls per second (docs/performance-notes.md, "Which call
// path for throughput").
func (sp *Process) Call(to any, message etf.Term) (etf.Term, error) {
	return sp.CallWithTimeout(to, message, DefaultCallTimeout)
}

// CallWithTimeout sends {'$gen_call', {Self, Ref}, Message} to `to` and
// waits for {Ref, Reply}, keeping everything else that arrives meanwhile for
// the loop (see the package doc). It must be called from a callback.
//
// Like gen_server:call it monitors the callee (a pid, a registered name, or
// a gen.ProcessID on another node) for the duration of the call, so a call
// to a name nobody has registered, to a process that ends before it
// replies, or to a node that cannot be reached or goes down ends at once
// with a *DownError (errors.Is ErrServerDown) instead of waiting for the
// timeout.
func (sp *Process) CallWithTimeout(to any, message etf.Term, timeout time.Duration) (etf.Term, error) {
	if sp.channels.Mailbox == nil {
		return nil, fmt.Errorf("call %v: %w: not called from a running process's callback", to, ErrUnhandled)
	}
	if sp.stopping {
		return nil, fmt.Errorf("call %v: %w", to, ErrStopping)
	}
	var mref etf.Ref
	monitored := false
	switch to.(type) {
	case etf.Pid, gen.ProcessID, string, etf.Atom:
		mref, monitored = sp.MonitorProcess(to), true
	}
	demonitor := func() {
		if monitored && !sp.DemonitorProcess(mref) {
			// The DOWN is on its way or already queued: drop it on arrival,
			// as gen_server:call's demonitor(Mref, [flush]) does.
			if sp.flush == nil || len(sp.flush) >= maxFlush {
				sp.flush = map[etf.Ref]struct{}{}
			}
			sp.flush[mref] = struct{}{}
		}
	}
	ref := sp.MakeRef()
	if err := sp.Send(to, etf.Tuple{etf.Atom("$gen_call"), etf.Tuple{sp.Self(), ref}, message}); err != nil {
		switch {
		case errors.Is(err, lib.ErrProcessUnknown):
			demonitor()
			return nil, &DownError{To: to, Reason: "noproc"}
		case monitored && errors.Is(err, lib.ErrNoRoute):
			// The callee's node is not connected (any more): as an
			// Erlang send to it, the message is lost and the monitor's
			// DOWN (noconnection) says so, below.
		default:
			demonitor()
			return nil, fmt.Errorf("call %v: %w", to, err)
		}
	}
	w := callWait{ref: ref, mref: mref, monitored: monitored, to: to, demonitor: demonitor}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		// What a connection reader or the loop goroutine queued meanwhile.
		items := sp.takeInbox()
		for i, it := range items {
			if v, err, done := sp.await(&w, it); done {
				sp.pending = append(sp.pending, items[i+1:]...)
				return v, err
			}
		}
		// On the loop goroutine the wait reads ergo's channels itself;
		// elsewhere the loop goroutine queues what comes on them.
		var mailbox <-chan gen.ProcessMailboxMessage
		var direct <-chan gen.ProcessDirectMessage
		var exits <-chan gen.ProcessGracefulExitRequest
		if sp.onLoop {
			mailbox, direct, exits = sp.channels.Mailbox, sp.channels.Direct, sp.channels.GracefulExit
		}
		var it pendingItem
		select {
		case m := <-mailbox:
			it.mail = &m
		case d := <-direct:
			it.direct = &d
		case ex := <-exits:
			it.exit = &ex
		case <-sp.kick:
			continue
		case <-sp.Context().Done():
			sp.stopping, sp.stopReason = true, "kill"
			return nil, fmt.Errorf("call %v: %w (kill)", to, ErrStopping)
		case <-timer.C:
			demonitor()
			return nil, fmt.Errorf("call %v: %w after %v", to, ErrCallTimeout, timeout)
		}
		if v, err, done := sp.await(&w, it); done {
			return v, err
		}
	}
}

// callWait is what a Call waits for.
type callWait struct {
	ref, mref etf.Ref
	monitored bool
	to        any
	demonitor func()
}

// await looks at one item that arrived during a Call: the reply or the
// callee's DOWN ends the call (done), an exit signal may stop the process;
// anything else is kept for after the callback.
func (sp *Process) await(w *callWait, it pendingItem) (etf.Term, error, bool) {
	switch {
	case it.mail != nil:
		switch v := it.mail.Message.(type) {
		case etf.Tuple:
			if len(v) == 2 {
				if r, ok := v[0].(etf.Ref); ok && r == w.ref {
					w.demonitor()
					return v[1], nil, true
				}
			}
		case gen.MessageDown:
			if w.monitored && v.Ref == w.mref {
				return nil, &DownError{To: w.to, Reason: v.Reason}, true
			}
			if sp.flushed(v.Ref) {
				return nil, nil, false
			}
		}
	case it.exit != nil:
		if reason, stop := sp.exitSignal(*it.exit); stop {
			w.demonitor()
			sp.stopping, sp.stopReason = true, reason
			return nil, fmt.Errorf("call %v: %w (%s)", w.to, ErrStopping, reason), true
		}
		return nil, nil, false
	}
	sp.pending = append(sp.pending, it)
	return nil, nil, false
}

// flushed reports whether ref is the monitor of a finished call whose DOWN
// is to be dropped, and forgets it.
func (sp *Process) flushed(ref etf.Ref) bool {
	if _, ok := sp.flush[ref]; ok {
		delete(sp.flush, ref)
		return true
	}
	return false
}

// Default callbacks.

// Init does nothing.
func (s *Server) Init(*Process, ...etf.Term) error { return nil }

// HandleCall answers {error, unhandled}.
func (s *Server) HandleCall(*Process, gen.ServerFrom, etf.Term) (etf.Term, gen.ServerStatus) {
	return etf.Tuple{etf.Atom("error"), etf.Atom("unhandled")}, gen.ServerStatusOK
}

// HandleCast ignores the message.
func (s *Server) HandleCast(*Process, etf.Term) gen.ServerStatus { return gen.ServerStatusOK }

// HandleInfo ignores the message.
func (s *Server) HandleInfo(*Process, etf.Term) gen.ServerStatus { return gen.ServerStatusOK }

// HandleDirect returns ErrUnhandled to the requester.
func (s *Server) HandleDirect(*Process, etf.Ref, any) (any, gen.DirectStatus) {
	return nil, ErrUnhandled
}

// Terminate does nothing.
func (s *Server) Terminate(*Process, string) {}
