package genserver

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/ratelog"
	"github.com/gonode/gonode/node/internal/typedterm"
	"github.com/gonode/gonode/node/term"
)

// TypedServer is a Server whose calls, casts and infos are handled by Go
// functions on Go types, chosen by the message's tag. Create it with
// NewServer, add handlers, and register it with node.Node.RegisterServer:
//
//	stock := map[string]int{}
//	inv := genserver.NewServer()
//	inv.Call("get", func(sku string) int { return stock[sku] })
//	inv.Call("put", func(sku string, qty int) error { stock[sku] = qty; return nil })
//	inv.Cast("reset", func() { clear(stock) })
//	_, err := n.RegisterServer("inventory", inv)
//
// # Matching
//
// A message is matched by its tag: the bare atom tag (GenServer.cast(s,
// :reset)) or a tuple whose first element is the atom tag ({:get, sku}). The
// remaining tuple elements are the handler's arguments: their count chooses
// among handlers of the same tag, and each is unmarshalled into its
// parameter's Go type with term.Unmarshal's rules (a string parameter takes
// an Elixir string or a charlist, a struct an Elixir map or struct...). A
// handler may take *Process as its first parameter, before the arguments.
//
// # Results
//
// A call handler's results become the reply:
//
//	func(...)              -> :ok
//	func(...) T            -> T, marshalled as term.Marshal does (a Go string
//	                          is an Elixir string, a struct or map a map, a
//	                          slice a list)
//	func(...) error        -> :ok, or {:error, Reason}
//	func(...) (T, error)   -> {:ok, T}, or {:error, Reason}
//
// Reason is the term of an error that has a method Term() etf.Term (any
// type whose Term method returns node.Term), otherwise the error's text as
// a binary. A cast or info handler returns nothing or an error; an error is
// logged (rate limited) and the server goes on.
//
// # Checked at registration
//
// Call, Cast and Info check the function's signature by reflection when the
// handler is added and keep every problem; registering the server (Init)
// then fails with all of them, each naming the handler and the expected
// signature, e.g. `call handler "put": func(string, chan int) error:
// parameter 2: type chan int cannot hold an Erlang term; want ...`. Err
// reports them before registration.
//
// # Nothing silent
//
//   - A call that matches no handler is answered {:error, {:unknown_call,
//     Msg}}; a cast or info that matches none is dropped. Either way a
//     rate-limited log line names the server and the message.
//   - Arguments that do not unmarshal: a call is answered {:error,
//     {:badarg, Text}} with term's error text; a cast or info is dropped.
//     A rate-limited log line says so.
//   - A reply that cannot be marshalled (a chan held in an any result, say)
//     ends the server with reason {bad_reply, <<"Name: cannot encode reply
//     of Go type T: ...">>}, so the caller exits with that reason at once
//     instead of waiting for its timeout, and one log line names the server
//     and the Go type.
//
// Add the handlers before registering the server: adding one while it
// runs is a data race. Handlers run one at a time, as every callback of a
// Server does, so they may share state without locks.
//
// Matching costs a map lookup by tag; the unmarshalling plan of every
// parameter is built when the handler is added, so a message costs the
// arguments' values and one reflect call.
type TypedServer struct {
	Server

	handlers [3]map[etf.Atom][]*handler // by kind, then by tag
	onInit   reflect.Value
	initProc bool
	initErr  bool
	errs     []error
	log      *slog.Logger
	lim      *ratelog.Limiter
	logSet   bool // SetLogger was called: DefaultLogger leaves the logger alone
}

// NewServer returns a TypedServer without handlers, logging to
// slog.Default() until it is registered with a node, which gives it the
// node's logger (see SetLogger).
func NewServer() *TypedServer {
	s := &TypedServer{}
	s.setLogger(slog.Default())
	return s
}

// SetLogger sets the logger of the server's log lines (component=genserver).
// It returns s, for chaining.
func (s *TypedServer) SetLogger(l *slog.Logger) *TypedServer {
	s.setLogger(l)
	s.logSet = true
	return s
}

// DefaultLogger sets the logger unless SetLogger did: node.RegisterServer
// gives the server its node's logger this way.
func (s *TypedServer) DefaultLogger(l *slog.Logger) {
	if !s.logSet {
		s.setLogger(l)
	}
}

func (s *TypedServer) setLogger(l *slog.Logger) {
	s.log = l.With("component", "genserver")
	s.lim = ratelog.New(s.log, ratelog.Config{Burst: 5, Every: time.Minute})
}

type kind uint8

const (
	kindCall kind = iota
	kindCast
	kindInfo
)

func (k kind) String() string { return [...]string{"call", "cast", "info"}[k] }

// handler is one registered function with its plans.
type handler struct {
	name     string // `call handler "put"`
	tag      etf.Atom
	fn       reflect.Value
	withProc bool
	args     []argPlan
	results  resultShape
}

type argPlan struct {
	typ    reflect.Type
	decode typedterm.Decoder
}

type resultShape uint8

const (
	resNone     resultShape = iota // :ok
	resValue                       // T
	resError                       // :ok | {:error, Reason}
	resValueErr                    // {:ok, T} | {:error, Reason}
)

var (
	processType = reflect.TypeFor[*Process]()
	errorType   = reflect.TypeFor[error]()
)

// Call adds a handler for calls tagged tag (see TypedServer). It returns s,
// for chaining; a problem with fn is reported when the server registers
// (and by Err).
func (s *TypedServer) Call(tag string, fn any) *TypedServer { return s.add(kindCall, tag, fn) }

// Cast adds a handler for casts tagged tag; fn returns nothing or an error.
func (s *TypedServer) Cast(tag string, fn any) *TypedServer { return s.add(kindCast, tag, fn) }

// Info adds a handler for other messages tagged tag (sent with send/2 or
// Kernel.send); fn returns nothing or an error.
func (s *TypedServer) Info(tag string, fn any) *TypedServer { return s.add(kindInfo, tag, fn) }

// OnInit sets a function run when the server starts, and again each time a
// restart policy starts it anew: func(), func() error, func(*Process) or
// func(*Process) error. An error fails the start. (It is not called Init:
// that is the Behavior callback TypedServer implements.)
func (s *TypedServer) OnInit(fn any) *TypedServer {
	const want = "want func([*genserver.Process]) [error]"
	v := reflect.ValueOf(fn)
	if fn == nil || v.Kind() != reflect.Func || v.IsNil() {
		s.errs = append(s.errs, fmt.Errorf("init function: %T is not a function; %s", fn, want))
		return s
	}
	t := v.Type()
	okIn := t.NumIn() == 0 || (t.NumIn() == 1 && t.In(0) == processType)
	okOut := t.NumOut() == 0 || (t.NumOut() == 1 && t.Out(0) == errorType)
	if !okIn || !okOut || t.IsVariadic() {
		s.errs = append(s.errs, fmt.Errorf("init function: %s; %s", t, want))
		return s
	}
	s.onInit, s.initProc, s.initErr = v, t.NumIn() == 1, t.NumOut() == 1
	return s
}

// Err reports every problem found in the handlers added so far (nil when
// there is none): what registering the server would fail with.
func (s *TypedServer) Err() error {
	if len(s.errs) == 0 {
		return nil
	}
	return fmt.Errorf("genserver: typed server: %w", errors.Join(s.errs...))
}

func wantSignature(k kind) string {
	if k == kindCall {
		return "want func([*genserver.Process,] args...) [T | error | (T, error)]"
	}
	return "want func([*genserver.Process,] args...) [error]"
}

func (s *TypedServer) add(k kind, tag string, fn any) *TypedServer {
	name := fmt.Sprintf("%s handler %q", k, tag)
	h, problems := plan(k, name, tag, fn)
	if len(problems) > 0 {
		sig := fmt.Sprintf("%T", fn)
		if fn == nil {
			sig = "nil"
		}
		s.errs = append(s.errs, fmt.Errorf("%s: %s: %s; %s", name, sig, strings.Join(problems, "; "), wantSignature(k)))
		return s
	}
	if s.handlers[k] == nil {
		s.handlers[k] = map[etf.Atom][]*handler{}
	}
	for _, o := range s.handlers[k][h.tag] {
		if len(o.args) == len(h.args) {
			s.errs = append(s.errs, fmt.Errorf("%s: a handler for %d argument(s) is already added", name, len(h.args)))
			return s
		}
	}
	s.handlers[k][h.tag] = append(s.handlers[k][h.tag], h)
	return s
}

// plan checks fn and builds its handler; problems lists what is wrong.
func plan(k kind, name, tag string, fn any) (*handler, []string) {
	var problems []string
	if tag == "" || len([]rune(tag)) > 255 {
		problems = append(problems, fmt.Sprintf("tag %q is not an atom (1 to 255 characters)", tag))
	}
	v := reflect.ValueOf(fn)
	if fn == nil || v.Kind() != reflect.Func || v.IsNil() {
		return nil, append(problems, "not a function")
	}
	t := v.Type()
	h := &handler{name: name, tag: etf.Atom(tag), fn: v}
	if t.IsVariadic() {
		problems = append(problems, "variadic functions are not handlers")
	}
	for i := range t.NumIn() {
		in := t.In(i)
		if i == 0 && in == processType {
			h.withProc = true
			continue
		}
		if in == processType {
			problems = append(problems, fmt.Sprintf("parameter %d: *genserver.Process must be the first parameter", i+1))
			continue
		}
		dec, err := typedterm.Plan(in)
		if err != nil {
			problems = append(problems, fmt.Sprintf("parameter %d: %v", i+1, err))
			continue
		}
		h.args = append(h.args, argPlan{typ: in, decode: dec})
	}
	switch {
	case t.NumOut() == 0:
		h.results = resNone
	case t.NumOut() == 1 && t.Out(0) == errorType:
		h.results = resError
	case k != kindCall:
		problems = append(problems, fmt.Sprintf("a %s handler returns nothing or an error, not %s", k, results(t)))
	case t.NumOut() == 1:
		h.results = resValue
		if err := typedterm.Encodable(t.Out(0)); err != nil {
			problems = append(problems, fmt.Sprintf("result: %v", err))
		}
	case t.NumOut() == 2 && t.Out(1) == errorType:
		h.results = resValueErr
		if err := typedterm.Encodable(t.Out(0)); err != nil {
			problems = append(problems, fmt.Sprintf("result 1: %v", err))
		}
	default:
		problems = append(problems, fmt.Sprintf("results %s: want none, T, error or (T, error)", results(t)))
	}
	return h, problems
}

func results(t reflect.Type) string {
	var out []string
	for i := range t.NumOut() {
		out = append(out, t.Out(i).String())
	}
	return "(" + strings.Join(out, ", ") + ")"
}

// match finds the handler of kind k for msg and its arguments.
func (s *TypedServer) match(k kind, msg etf.Term) (*handler, []etf.Term) {
	var tag etf.Atom
	var args []etf.Term
	switch m := msg.(type) {
	case etf.Atom:
		tag = m
	case etf.Tuple:
		if len(m) == 0 {
			return nil, nil
		}
		a, ok := m[0].(etf.Atom)
		if !ok {
			return nil, nil
		}
		tag, args = a, m[1:]
	default:
		return nil, nil
	}
	for _, h := range s.handlers[k][tag] {
		if len(h.args) == len(args) {
			return h, args
		}
	}
	return nil, nil
}

// invoke unmarshals the arguments and runs the handler.
func (h *handler) invoke(p *Process, args []etf.Term) ([]reflect.Value, error) {
	n := len(args)
	if h.withProc {
		n++
	}
	var buf [4]reflect.Value
	in := buf[:0]
	if n > len(buf) {
		in = make([]reflect.Value, 0, n)
	}
	if h.withProc {
		in = append(in, reflect.ValueOf(p))
	}
	for i, a := range h.args {
		v := reflect.New(a.typ).Elem()
		if err := a.decode(args[i], v); err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		in = append(in, v)
	}
	return h.fn.Call(in), nil
}

// Init implements Behavior: it fails with every problem of the handlers
// (Err), then runs the OnInit function.
func (s *TypedServer) Init(p *Process, args ...etf.Term) error {
	if err := s.Err(); err != nil {
		// ergo keeps the name (and the process) of a spawn whose init
		// failed: give the name back, so that it can be registered again.
		if name := p.Name(); name != "" {
			_ = p.UnregisterName(name)
		}
		p.Kill()
		return err
	}
	if s.log == nil {
		s.setLogger(slog.Default())
	}
	if !s.onInit.IsValid() {
		return nil
	}
	var in []reflect.Value
	if s.initProc {
		in = []reflect.Value{reflect.ValueOf(p)}
	}
	out := s.onInit.Call(in)
	if s.initErr && !out[0].IsNil() {
		return out[0].Interface().(error)
	}
	return nil
}

// HandleCall implements Behavior: it runs the call handler the message's
// tag and arity choose and answers with its results (see TypedServer).
func (s *TypedServer) HandleCall(p *Process, from gen.ServerFrom, msg etf.Term) (etf.Term, gen.ServerStatus) {
	h, args := s.match(kindCall, msg)
	if h == nil {
		s.lim.Warn("call "+serverName(p), "typed server: no call handler for the message; answered {error, {unknown_call, Msg}}",
			"server", serverName(p), "msg", ratelog.Truncate(term.Format(msg), 200))
		return etf.Tuple{etf.Atom("error"), etf.Tuple{etf.Atom("unknown_call"), msg}}, gen.ServerStatusOK
	}
	out, err := h.invoke(p, args)
	if err != nil {
		s.lim.Warn("call "+serverName(p), "typed server: call arguments do not unmarshal; answered {error, {badarg, Text}}",
			"server", serverName(p), "handler", h.name, "err", ratelog.Truncate(err.Error(), 300))
		return etf.Tuple{etf.Atom("error"), etf.Tuple{etf.Atom("badarg"), []byte(err.Error())}}, gen.ServerStatusOK
	}
	reply, err := h.reply(out)
	if err != nil {
		return nil, s.badReply(p, h, err)
	}
	return reply, gen.ServerStatusOK
}

// replyError carries the Go type of a result that could not be encoded.
type replyError struct {
	typ string
	err error
}

func (e *replyError) Error() string { return e.err.Error() }

func encodeResult(v reflect.Value) (etf.Term, error) {
	t, err := typedterm.EncodeValue(v)
	if err != nil {
		typ := v.Type().String()
		if v.Kind() == reflect.Interface && !v.IsNil() {
			typ = v.Elem().Type().String()
		}
		return nil, &replyError{typ: typ, err: err}
	}
	return t, nil
}

// reply turns a call handler's results into the reply term.
func (h *handler) reply(out []reflect.Value) (etf.Term, error) {
	switch h.results {
	case resValue:
		return encodeResult(out[0])
	case resError:
		if out[0].IsNil() {
			return etf.Atom("ok"), nil
		}
		return errorReply(out[0].Interface().(error))
	case resValueErr:
		if !out[1].IsNil() {
			return errorReply(out[1].Interface().(error))
		}
		v, err := encodeResult(out[0])
		if err != nil {
			return nil, err
		}
		return etf.Tuple{etf.Atom("ok"), v}, nil
	}
	return etf.Atom("ok"), nil
}

// termer is an error that is also a term: {error, Term()} is the reply.
type termer interface{ Term() etf.Term }

func errorReply(err error) (etf.Term, error) {
	return etf.Tuple{etf.Atom("error"), errorReason(err)}, nil
}

func errorReason(err error) etf.Term {
	var t termer
	if errors.As(err, &t) {
		if r, e := typedterm.Encode(t.Term()); e == nil {
			return r
		}
	}
	return []byte(err.Error())
}

// badReply logs that the reply could not be encoded and returns the status
// that ends the server with {bad_reply, Text}.
func (s *TypedServer) badReply(p *Process, h *handler, err error) gen.ServerStatus {
	typ := "?"
	var re *replyError
	if errors.As(err, &re) {
		typ = re.typ
	}
	name := serverName(p)
	text := fmt.Sprintf("%s: cannot encode reply of Go type %s: %v", name, typ, err)
	s.lim.Error("bad_reply "+name, "typed server: cannot encode the reply of a call; the server ends with {bad_reply, Text}",
		"server", name, "handler", h.name, "go_type", typ, "err", err)
	return errors.New(term.Format(etf.Tuple{etf.Atom("bad_reply"), []byte(text)}))
}

// HandleCast implements Behavior: it runs the cast handler the message's
// tag and arity choose.
func (s *TypedServer) HandleCast(p *Process, msg etf.Term) gen.ServerStatus {
	s.handleOneWay(kindCast, p, msg)
	return gen.ServerStatusOK
}

// HandleInfo implements Behavior: it runs the info handler the message's
// tag and arity choose. The DOWN, EXIT and nodedown messages ergo delivers
// as Go structs are matched in their Erlang shape, {'DOWN', Ref, process,
// Who, Reason} and so on (an Info("DOWN", ...) handler takes four
// arguments), with Reason as a term.
func (s *TypedServer) HandleInfo(p *Process, msg etf.Term) gen.ServerStatus {
	s.handleOneWay(kindInfo, p, msg)
	return gen.ServerStatusOK
}

func (s *TypedServer) handleOneWay(k kind, p *Process, msg etf.Term) {
	if k == kindInfo {
		msg = signalTerm(msg)
	}
	h, args := s.match(k, msg)
	if h == nil {
		s.lim.Warn(k.String()+" "+serverName(p), "typed server: no "+k.String()+" handler for the message; dropped",
			"server", serverName(p), "msg", ratelog.Truncate(term.Format(msg), 200))
		return
	}
	out, err := h.invoke(p, args)
	if err != nil {
		s.lim.Warn(k.String()+" "+serverName(p), "typed server: "+k.String()+" arguments do not unmarshal; dropped",
			"server", serverName(p), "handler", h.name, "err", ratelog.Truncate(err.Error(), 300))
		return
	}
	if h.results == resError && !out[0].IsNil() {
		s.lim.Warn(k.String()+" "+serverName(p), "typed server: "+k.String()+" handler failed",
			"server", serverName(p), "handler", h.name, "err", ratelog.Truncate(out[0].Interface().(error).Error(), 300))
	}
}

// signalTerm gives the messages ergo delivers as Go structs the shape an
// Erlang process receives, so that Info handlers match them by tag:
//
//	{'DOWN', Ref, process, Pid | {Name, Node}, Reason}   a monitor fired
//	{'EXIT', Pid, Reason}                                 a link broke (trapping exits)
//	{nodedown, Node}                                      a node monitor fired
//
// Reason is the term ergo's reason string spells (noproc, {shutdown, x}),
// or the string as a binary when it spells none.
func signalTerm(msg etf.Term) etf.Term {
	switch m := msg.(type) {
	case gen.MessageDown:
		var who etf.Term = m.Pid
		if m.ProcessID.Name != "" {
			who = etf.Tuple{etf.Atom(m.ProcessID.Name), etf.Atom(m.ProcessID.Node)}
		}
		return etf.Tuple{etf.Atom("DOWN"), m.Ref, etf.Atom("process"), who, reasonTerm(m.Reason)}
	case gen.MessageExit:
		return etf.Tuple{etf.Atom("EXIT"), m.Pid, reasonTerm(m.Reason)}
	case gen.MessageNodeDown:
		return etf.Tuple{etf.Atom("nodedown"), etf.Atom(m.Name)}
	}
	return msg
}

func reasonTerm(reason string) etf.Term {
	if t, err := term.Parse(reason); err == nil {
		return t
	}
	return []byte(reason)
}

// serverName is the registered name, or the pid.
func serverName(p *Process) string {
	if n := p.Name(); n != "" {
		return n
	}
	return p.Self().String()
}

// CallInto makes a call with DefaultCallTimeout as Call does, marshalling
// msg first (a Go string, also inside an etf.Tuple or etf.List, goes as an
// Elixir string) and unmarshalling the reply into out, a non-nil pointer
// (a struct takes an Elixir map or struct, see term.Unmarshal).
func (sp *Process) CallInto(to any, msg any, out any) error {
	m, err := typedterm.Encode(msg)
	if err != nil {
		return fmt.Errorf("call %v: message: %w", to, err)
	}
	reply, err := sp.Call(to, m)
	if err != nil {
		return err
	}
	if err := typedterm.Into(reply, out); err != nil {
		return fmt.Errorf("call %v: reply %s: %w", to, ratelog.Truncate(term.Format(reply), 200), err)
	}
	return nil
}
