package node

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/node/dist"
	"github.com/gonode/gonode/node/term"
)

// RexName is the built-in process registered as `rex`, OTP's RPC server:
// it serves rpc:block_call, rpc:cast, rpc:eval_everywhere and the feature
// query every OTP node sends on connect. rpc:call itself goes through erpc
// (see ProvideRPC).
const RexName = "rex"

// DefaultRPCTimeout bounds one run of a provided RPC function unless
// WithRPCTimeout says otherwise. erpc:call's own timeout defaults to
// infinity: this keeps a stuck Go function from holding a process forever.
const DefaultRPCTimeout = time.Minute

// RPCFunc is a Go function callable from Erlang and Elixir as
// Module:Function(Args...), through erpc:call, :rpc.call, erpc:cast and
// rpc:cast. args are the call's arguments as decoded by package term (a
// list of small integers, such as an Erlang string, arrives as a Go string;
// an Elixir string as []byte); ctx ends when the call's timeout passes, the
// caller's node disconnects, the caller kills the call, or the node stops.
//
// The result is what the caller gets. A non-nil error becomes an Erlang
// exception in the caller:
//
//   - *RPCException{Class: RPCThrow, Reason: R}: erpc:call throws R;
//     rpc:call returns R (as it does for a thrown value).
//   - *RPCException{Class: RPCExit, Reason: R}: erpc:call exits with
//     {exception, R}; rpc:call returns {badrpc, {'EXIT', R}}.
//   - *RPCException{Class: RPCError, Reason: R}: erpc:call raises error
//     {exception, R, [{Module, Function, Arity, []}]}; rpc:call returns
//     {badrpc, {'EXIT', {R, Stack}}}.
//   - any other error: as RPCError with the error's text as a binary reason.
//   - the timeout passing (or the function returning an error wrapping
//     context.DeadlineExceeded): as RPCExit with reason timeout.
//   - a panic: as RPCError with reason <<"panic: ...">>; the node goes on.
//
// A result that cannot be encoded (see package term) is reported as an
// RPCError with a binary reason saying so.
type RPCFunc func(ctx context.Context, args []etf.Term) (etf.Term, error)

// RPCClass is the class of an Erlang exception: error, exit or throw.
type RPCClass string

// Exception classes.
const (
	RPCError RPCClass = "error"
	RPCExit  RPCClass = "exit"
	RPCThrow RPCClass = "throw"
)

// RPCException is an error an RPCFunc returns to raise an Erlang exception
// of a given class and reason in the caller.
type RPCException struct {
	Class  RPCClass
	Reason etf.Term
}

func (e *RPCException) Error() string {
	return fmt.Sprintf("rpc %s: %s", e.Class, term.Format(e.Reason))
}

// Errors of ProvideRPC and RevokeRPC.
var (
	ErrRPCExists  = errors.New("rpc function already provided")
	ErrRPCUnknown = errors.New("rpc function not provided")
	ErrRPCName    = errors.New("invalid rpc module or function name")
)

// RPCOption adjusts one provided function.
type RPCOption func(*rpcEntry)

// WithRPCTimeout bounds each run of the function (default
// DefaultRPCTimeout). Zero or less means DefaultRPCTimeout.
func WithRPCTimeout(d time.Duration) RPCOption {
	return func(e *rpcEntry) {
		if d > 0 {
			e.timeout = d
		}
	}
}

type rpcKey struct{ module, function string }

type rpcEntry struct {
	fn      RPCFunc
	timeout time.Duration
}

// rpcTable holds the functions a node provides. The zero value is empty and
// ready to use.
type rpcTable struct {
	mu  sync.RWMutex
	fns map[rpcKey]rpcEntry
}

func (t *rpcTable) lookup(module, function etf.Atom) (rpcEntry, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.fns[rpcKey{string(module), string(function)}]
	return e, ok
}

func validRPCName(s string) bool {
	return s != "" && utf8.ValidString(s) && utf8.RuneCountInString(s) <= 255
}

// ProvideRPC makes fn callable from Erlang and Elixir as module:function,
// with any number of arguments: erpc:call(Node, Module, Function, Args)
// and :rpc.call(Node, Module, Function, Args) run it and return its result
// (see RPCFunc for errors). module and function are atom names: an Elixir
// module is written with its prefix, e.g. "Elixir.MyApp.Api". It may be
// called before or after Start. Calls to a module:function that is not
// provided fail as on a BEAM node without it: error undef.
func (n *Node) ProvideRPC(module, function string, fn RPCFunc, opts ...RPCOption) error {
	if !validRPCName(module) || !validRPCName(function) {
		return fmt.Errorf("provide %q:%q: %w: names must be 1 to 255 characters of UTF-8", module, function, ErrRPCName)
	}
	if fn == nil {
		return fmt.Errorf("provide %s:%s: %w: nil function", module, function, ErrRPCName)
	}
	e := rpcEntry{fn: fn, timeout: DefaultRPCTimeout}
	for _, o := range opts {
		o(&e)
	}
	t := &n.rpc
	t.mu.Lock()
	defer t.mu.Unlock()
	k := rpcKey{module, function}
	if _, ok := t.fns[k]; ok {
		return fmt.Errorf("provide %s:%s: %w", module, function, ErrRPCExists)
	}
	if t.fns == nil {
		t.fns = map[rpcKey]rpcEntry{}
	}
	t.fns[k] = e
	return nil
}

// RevokeRPC removes a function provided with ProvideRPC. Runs already
// started finish; later calls fail with undef.
func (n *Node) RevokeRPC(module, function string) error {
	t := &n.rpc
	t.mu.Lock()
	defer t.mu.Unlock()
	k := rpcKey{module, function}
	if _, ok := t.fns[k]; !ok {
		return fmt.Errorf("revoke %s:%s: %w", module, function, ErrRPCUnknown)
	}
	delete(t.fns, k)
	return nil
}

// rpcOutcome is how one call ended, in Erlang's terms: class "return"
// (value is the result), "throw", "exit" or "error" (value is the reason,
// stack is set for error), or "signal" (the running process was terminated
// with reason value).
type rpcOutcome struct {
	class string
	value etf.Term
	stack etf.List
}

func argsTerm(args []etf.Term) etf.List {
	if args == nil {
		return etf.List{}
	}
	return etf.List(args)
}

// invoke runs module:function(args) as provided, and returns how it ended.
// stop delivers the reason when the process running the call is
// terminated; ctx ends with the node or the caller's connection.
func (n *Node) invoke(ctx context.Context, module, function etf.Atom, args []etf.Term, stop <-chan string) rpcOutcome {
	e, ok := n.rpc.lookup(module, function)
	if !ok {
		// What a BEAM node answers for a function it does not have.
		return rpcOutcome{class: "error", value: etf.Atom("undef"),
			stack: etf.List{etf.Tuple{module, function, argsTerm(args), etf.List{}}}}
	}
	stack := etf.List{etf.Tuple{module, function, int64(len(args)), etf.List{}}}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	type result struct {
		v   etf.Term
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				n.log.Error("rpc function panicked", "module", string(module), "function", string(function),
					"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				done <- result{err: &RPCException{Class: RPCError, Reason: []byte(fmt.Sprintf("panic: %v", r))}}
			}
		}()
		v, err := e.fn(ctx, args)
		done <- result{v, err}
	}()
	var r result
	select {
	case r = <-done:
	case reason := <-stop:
		return rpcOutcome{class: "signal", value: signalReason(reason)}
	case <-ctx.Done():
		r.err = ctx.Err()
	}
	if errors.Is(r.err, context.Canceled) && ctx.Err() != nil {
		// Not our timeout: the process was terminated, the caller's node went
		// down or the node is stopping. The process says why, right after
		// its context ended.
		select {
		case reason := <-stop:
			return rpcOutcome{class: "signal", value: signalReason(reason)}
		case <-time.After(time.Second):
			return rpcOutcome{class: "signal", value: etf.Atom("shutdown")}
		}
	}
	var ex *RPCException
	switch {
	case r.err == nil:
		if _, err := term.Encode(nil, r.v); err != nil {
			return rpcOutcome{class: "error", stack: stack,
				value: []byte(fmt.Sprintf("%s:%s returned a value that cannot be sent: %v", module, function, err))}
		}
		return rpcOutcome{class: "return", value: r.v}
	case errors.As(r.err, &ex):
		switch ex.Class {
		case RPCThrow, RPCExit:
			return rpcOutcome{class: string(ex.Class), value: ex.Reason}
		}
		return rpcOutcome{class: "error", value: ex.Reason, stack: stack}
	case errors.Is(r.err, context.DeadlineExceeded):
		return rpcOutcome{class: "exit", value: etf.Atom("timeout")}
	default:
		return rpcOutcome{class: "error", value: []byte(r.err.Error()), stack: stack}
	}
}

// signalReason turns the reason ergo terminated a process with into the
// Erlang reason: kill becomes killed, as on a BEAM node.
func signalReason(s string) etf.Term {
	if s == "kill" {
		return etf.Atom("killed")
	}
	if t, err := term.Parse(s); err == nil {
		return t
	}
	return etf.Atom(s)
}

// erpcReason is the exit reason of erpc:execute_call(Ref, M, F, A) for an
// outcome, which erpc:call on the caller's side turns into its result.
func erpcReason(ref etf.Term, o rpcOutcome) etf.Term {
	switch o.class {
	case "return", "throw", "exit":
		return etf.Tuple{ref, etf.Atom(o.class), o.value}
	case "error":
		return etf.Tuple{ref, etf.Atom("error"), o.value, o.stack}
	}
	return o.value // terminated by a signal: the DOWN carries that reason
}

// rexReply is what OTP's rex answers a {call, M, F, A, GL} with.
func rexReply(o rpcOutcome) etf.Term {
	switch o.class {
	case "return", "throw":
		return o.value
	case "error":
		return etf.Tuple{etf.Atom("badrpc"), etf.Tuple{etf.Atom("EXIT"), etf.Tuple{o.value, o.stack}}}
	}
	return etf.Tuple{etf.Atom("badrpc"), etf.Tuple{etf.Atom("EXIT"), o.value}}
}

// rpcSpawner serves the spawn requests of erpc (erpc:call, erpc:cast and
// rpc:call, which uses erpc) with the node's provided functions. Every
// other spawn request goes to ergo's router.
type rpcSpawner struct{ n *Node }

func (s rpcSpawner) Spawn(req dist.SpawnRequest) (dist.Spawned, error) {
	if req.Module != "erpc" {
		return dist.Spawned{}, dist.ErrSpawnNotHandled
	}
	var ref, m, f, a etf.Term
	switch {
	case req.Function == "execute_call" && len(req.Args) == 4:
		ref, m, f, a = req.Args[0], req.Args[1], req.Args[2], req.Args[3]
	case req.Function == "execute_cast" && len(req.Args) == 3:
		m, f, a = req.Args[0], req.Args[1], req.Args[2]
	default:
		return dist.Spawned{}, dist.ErrSpawnNotHandled
	}
	module, ok1 := m.(etf.Atom)
	function, ok2 := f.(etf.Atom)
	args, ok3 := term.ListElements(a)
	if !ok1 || !ok2 || !ok3 {
		return dist.Spawned{}, &dist.SpawnError{Reason: "badarg"}
	}
	en, err := s.n.running()
	if err != nil {
		return dist.Spawned{}, &dist.SpawnError{Reason: "system_limit"}
	}
	w := &rpcWorker{stop: make(chan string, 1)}
	p, err := en.Spawn("", s.n.processOptions(), w)
	if err != nil {
		s.n.log.Warn("cannot start a process for an erpc request", "peer", req.Peer, "err", err)
		return dist.Spawned{}, &dist.SpawnError{Reason: "system_limit"}
	}
	p.MonitorNode(req.Peer)
	start := func(exit dist.SpawnExit) {
		go s.n.runSpawned(p, w, req.Peer, ref, module, function, args, exit)
	}
	return dist.Spawned{Pid: p.Self(), Start: start}, nil
}

// runSpawned runs one erpc request in the process p and reports its end.
// ref is nil for a cast.
func (n *Node) runSpawned(p gen.Process, w *rpcWorker, peer string, ref etf.Term,
	module, function etf.Atom, args []etf.Term, exit dist.SpawnExit) {
	// The process stops itself on this message; it may already be gone
	// (killed by the caller), and ergo's Kill races with that.
	defer func() { _ = p.Send(p.Self(), rpcDone{}) }()
	o := n.invoke(p.Context(), module, function, args, w.stop)
	if ref == nil { // erpc:cast: nobody waits for the result
		if o.class == "error" || o.class == "signal" {
			n.log.Warn("rpc cast failed", "peer", peer, "module", string(module), "function", string(function),
				"reason", term.Format(o.value))
		}
		_ = exit(etf.Atom("normal"))
		return
	}
	err := exit(erpcReason(ref, o))
	if err != nil && !errors.Is(err, dist.ErrClosed) && !errors.Is(err, dist.ErrSpawnExitSent) {
		// The reason could not be encoded (a thrown or exit reason the
		// codec cannot write): report that instead of leaving the caller waiting.
		o = rpcOutcome{class: "error", stack: etf.List{etf.Tuple{module, function, int64(len(args)), etf.List{}}},
			value: []byte(fmt.Sprintf("%s:%s raised a reason that cannot be sent: %v", module, function, err))}
		err = exit(erpcReason(ref, o))
	}
	if err != nil {
		n.log.Debug("erpc result not delivered", "peer", peer, "module", string(module), "function", string(function), "err", err)
	}
}

// rpcWorker is the process an erpc request runs in: it gives the request a
// real pid, ends when the caller's node goes down, and reports the reason
// it was terminated with.
type rpcWorker struct {
	gen.Server
	stop chan string
}

// rpcDone tells an rpcWorker that its call has ended.
type rpcDone struct{}

func (w *rpcWorker) HandleInfo(p *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	switch message.(type) {
	case gen.MessageNodeDown:
		return gen.ServerStatusStopWithReason("noconnection")
	case rpcDone:
		return gen.ServerStatusStop
	}
	return gen.ServerStatusOK
}

func (w *rpcWorker) Terminate(p *gen.ServerProcess, reason string) {
	select {
	case w.stop <- reason:
	default:
	}
}

// startRex starts the built-in rex server.
func (n *Node) startRex(opts gen.ProcessOptions) error {
	if _, err := n.ergo.Spawn(RexName, opts, &rexServer{n: n}); err != nil {
		return fmt.Errorf("%s: %w", RexName, err)
	}
	return nil
}

// rexServer is OTP's rex for the node's provided functions.
type rexServer struct {
	gen.Server
	n *Node
}

// rexRequest parses {call|block_call|cast, M, F, A, GroupLeader}.
func rexRequest(t etf.Term) (kind, module, function etf.Atom, args []etf.Term, ok bool) {
	v, isTuple := t.(etf.Tuple)
	if !isTuple || len(v) != 5 {
		return "", "", "", nil, false
	}
	kind, ok1 := v[0].(etf.Atom)
	module, ok2 := v[1].(etf.Atom)
	function, ok3 := v[2].(etf.Atom)
	args, ok4 := term.ListElements(v[3])
	return kind, module, function, args, ok1 && ok2 && ok3 && ok4
}

func (s *rexServer) HandleCall(p *gen.ServerProcess, from gen.ServerFrom, message etf.Term) (etf.Term, gen.ServerStatus) {
	kind, module, function, args, ok := rexRequest(message)
	if !ok || (kind != "call" && kind != "block_call") {
		// OTP's rex ignores what it does not know; so do we, without leaving
		// the caller waiting forever.
		return etf.Tuple{etf.Atom("badrpc"), etf.Tuple{etf.Atom("EXIT"), etf.Tuple{etf.Atom("unknown_call"), message}}}, gen.ServerStatusOK
	}
	go func() {
		o := s.n.invoke(p.Context(), module, function, args, nil)
		_ = p.SendReply(from, rexReply(o))
	}()
	return nil, gen.ServerStatusIgnore
}

func (s *rexServer) HandleCast(p *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	if kind, module, function, args, ok := rexRequest(message); ok && kind == "cast" {
		go func() {
			if o := s.n.invoke(p.Context(), module, function, args, nil); o.class == "error" {
				s.n.log.Warn("rpc cast failed", "module", string(module), "function", string(function), "reason", term.Format(o.value))
			}
		}()
	}
	return gen.ServerStatusOK
}

// HandleInfo answers the feature query OTP's rpc sends every node it
// meets: {From, features_request} -> {features_reply, Node, [erpc]}, and
// the plain-message call of C nodes, {From, {call, M, F, A, GL}} -> From ! {rex, Result}.
func (s *rexServer) HandleInfo(p *gen.ServerProcess, message etf.Term) gen.ServerStatus {
	t, ok := message.(etf.Tuple)
	if !ok || len(t) != 2 {
		return gen.ServerStatusOK
	}
	from, ok := t[0].(etf.Pid)
	if !ok {
		return gen.ServerStatusOK
	}
	if t[1] == etf.Atom("features_request") {
		// The request comes once per connection. A peer that has closed the
		// connection since (erlang:disconnect_node right after a ping) no
		// longer waits for the answer; sending it anyway would dial the peer
		// again (ergo connects on send) and undo its disconnect.
		if !s.n.IsConnected(string(from.Node)) {
			return gen.ServerStatusOK
		}
		_ = p.Send(from, etf.Tuple{etf.Atom("features_reply"), etf.Atom(s.n.Name()), etf.List{etf.Atom("erpc")}})
		return gen.ServerStatusOK
	}
	if kind, module, function, args, ok := rexRequest(t[1]); ok && kind == "call" {
		go func() {
			o := s.n.invoke(p.Context(), module, function, args, nil)
			_ = p.Send(from, etf.Tuple{etf.Atom(RexName), rexReply(o)})
		}()
	}
	return gen.ServerStatusOK
}
