package node

import (
	"log/slog"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/node/genserver"
	"github.com/gonode/gonode/node/internal/typedterm"
	"github.com/gonode/gonode/node/term"
)

// The common vocabulary, so that a Go server needs only this package:
// aliases of the term types of ergo's etf package (what a message is made
// of), of node/genserver's server types, and the conversions of node/term.
type (
	// Term is any Erlang term as Go sees it.
	Term = etf.Term
	// Atom is an Erlang atom (:restock in Elixir).
	Atom = etf.Atom
	// Tuple is an Erlang tuple.
	Tuple = etf.Tuple
	// List is a proper Erlang list.
	List = etf.List
	// Pid is a process identifier.
	Pid = etf.Pid
	// Ref is a reference (make_ref/0, a monitor).
	Ref = etf.Ref
	// Map is an Erlang map as its ordered key/value pairs, whatever its
	// keys (atoms, binaries, both): what Unmarshal into an any gives for
	// every map (term.Map). Look a key up with Get; unmarshal into a
	// struct or a Go map for field access.
	Map = term.Map
	// ProcessID names a registered process on a node: {Name, Node} in
	// Erlang. Build it with Name.
	ProcessID = gen.ProcessID
	// Process is the running server a handler may take as its first
	// parameter (genserver.Process).
	Process = genserver.Process
	// TypedServer is a gen_server of typed handlers (genserver.TypedServer;
	// create it with NewServer).
	TypedServer = genserver.TypedServer
	// DownError is the error of a call whose callee was down or went down
	// before replying (genserver.DownError): Reason is noproc,
	// noconnection or the exit reason, Term() the reason as a term.
	DownError = genserver.DownError
	// StructOption adjusts Marshal and Unmarshal (term.StructOption).
	StructOption = term.StructOption
)

// Name returns the ProcessID of the process registered as name on node
// nodeName: Name("pricing", "shop@10.0.0.2") is {pricing, 'shop@10.0.0.2'}.
func Name(name, nodeName string) ProcessID { return ProcessID{Name: name, Node: nodeName} }

// NewServer returns a gen_server whose calls, casts and infos are handled by
// Go functions on Go types, chosen by the message's tag; register it with
// RegisterServer. See genserver.TypedServer for the rules:
//
//	inv := node.NewServer()
//	inv.Call("get", func(sku string) int { return stock[sku] })   // {:get, sku}
//	inv.Cast("reset", func() { clear(stock) })                     // :reset or {:reset}
//	_, err := n.RegisterServer("inventory", inv)                   // bad signatures fail here
func NewServer() *TypedServer { return genserver.NewServer() }

// Marshal converts a Go value into a term: Go strings become binaries
// (Elixir strings), structs and Go maps maps, slices lists, inside a Tuple
// or List too (see term.Marshal for the options and the struct tags).
func Marshal(v any, opts ...StructOption) (Term, error) {
	if len(opts) > 0 {
		return term.Marshal(v, opts...)
	}
	return typedterm.Encode(v)
}

// Unmarshal stores a term into the value out points to: a struct takes an
// Erlang map or Elixir struct (term.Unmarshal, with the erl struct tags),
// other Go types take what term.Unmarshal stores into a struct field of
// that type (a string an Elixir string or a charlist, an int an integer, a
// slice a list...). The options apply to a struct.
func Unmarshal(t Term, out any, opts ...StructOption) error {
	if len(opts) > 0 {
		return term.Unmarshal(t, out, opts...)
	}
	return typedterm.Into(t, out)
}

// Format writes a term in Erlang syntax: {error,<<"no stock">>}, #{type =>
// restock}, [1,2,3] (term.Format).
func Format(t Term) string { return term.Format(t) }

// ErrTypeMismatch is what Unmarshal and CallInto wrap when a term does not
// fit the Go value (term.ErrTypeMismatch); ErrMissingField when a struct
// field's key is missing from the map (term.ErrMissingField).
var (
	// ErrServerDown is what a *DownError is (errors.Is): the callee does
	// not exist, ended during the call, or its node is not connected.
	ErrServerDown   = genserver.ErrServerDown
	ErrTypeMismatch = term.ErrTypeMismatch
	ErrMissingField = term.ErrMissingField
)

// adopt gives a server registered with the node what it takes from the
// node: a TypedServer without a logger of its own logs to the node's.
func (n *Node) adopt(srv gen.ProcessBehavior) {
	if s, ok := srv.(interface{ DefaultLogger(*slog.Logger) }); ok {
		s.DefaultLogger(n.baseLog)
	}
}
