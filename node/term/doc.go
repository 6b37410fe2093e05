// Package term encodes and decodes Erlang's external term format as used by
// the distribution protocol of OTP 25 to 29, into and from the term types of
// github.com/ergo-services/ergo/etf plus a few types of its own where ergo's
// types would lose data.
//
// # API
//
// Decode reads one term (without the 131 version byte) and returns the rest
// of the buffer; Encode appends one term to a byte slice. Decoding is
// bounded: a length field larger than the bytes left fails before any
// allocation, nesting deeper than DefaultMaxDepth fails, bad input never
// panics, and every error wraps ErrMalformed. The input's size alone does
// not bound the memory of the result (each element of a list takes a
// 16-byte slot, a [] takes one byte): WithDecodeBudget bounds it, charging
// every allocation before it is made and failing with ErrDecodeBudget when
// the budget runs out. Decoded values never alias the
// input buffer, except that WithSharedBinaries lets a binary that makes up
// most of the input keep its bytes in place (the distribution layer uses it
// for large messages read into a buffer of their own). Format and Parse convert terms to and from Erlang syntax, so
// a full term can travel through an API that carries strings (ergo's exit
// and monitor reasons). Marshal and Unmarshal convert between terms and
// ordinary Go values (structs, maps, slices, strings) by one rule, below.
// Compare and Equal implement Erlang's term order and exact equality across
// the Go representations.
//
// Decode and Encode are the raw codec: lossless, every distinction of the
// wire kept (a list of small integers arrives as a Go string because the
// BEAM sent STRING_EXT, a map with binary keys as a Map and one with atom
// keys as an etf.Map). Unmarshal and Marshal are the view a Go program
// works with, and the one typed gen_server handlers use for their
// arguments and replies.
//
// # Marshal and Unmarshal: one rule
//
//	Erlang / Elixir            Unmarshal into a typed target           into any (generic view)   Marshal from Go
//	"text" (binary)            string, []byte, etf.Atom                []byte                    string, []byte
//	~c"text" (charlist)        string (UTF-8), []int, []rune, []any    etf.List of int64         etf.Charlist, a `erl:",charlist"` field
//	[1, 2, 3]                  []int, []int64, []byte, []any           etf.List of int64         []int, etf.List
//	:ok                        etf.Atom, string                        etf.Atom                  etf.Atom
//	nil                        nil pointer, nil interface              nil                       nil, a nil pointer
//	%{a: 1}, %{"a" => 1}       struct, map[string]T, map[etf.Atom]T    Map (sorted pairs)        struct (atom keys), map[string]T (binary keys)
//	[a: 1, b: 2] (keyword)     struct, map[string]T, map[etf.Atom]T    etf.List of etf.Tuple     etf.List
//	%MyApp.User{}              struct (erl:"__struct__" tag)           Map with '__struct__'     struct whose type names its module
//	{:ok, x}                   etf.Tuple, [2]any                       etf.Tuple                 etf.Tuple
//
// A string target takes a binary or a charlist alike; a list target takes
// a list, charlists included ([1,2,3] is never a string there); a struct or
// Go map takes a map with atom keys, binary keys or both, or a keyword
// list. In the generic view (an any target) every map is a Map whatever
// its keys, with its pairs sorted in Erlang's term order, and every list an
// etf.List, charlists included (WithCharlists makes those Go strings);
// binaries stay []byte, so the generic view is itself a term that Format
// prints and Encode writes as what it came from. Marshal writes every Go
// string as a binary, also inside an etf.Tuple, etf.List or map, and
// Marshal of the generic view of t is t again. Unmarshal's doc has
// the full rule and the erl struct tag:
//
//	type Price struct {
//		_      struct{} `erl:"__struct__,module=Elixir.Pricing.Price"` // an Elixir struct
//		SKU    string   `erl:"sku"`                                   // key sku (atom or binary)
//		Amount float64  // key amount
//		Note   string   `erl:"note,omitempty"` // may be missing; left out when ""
//	}
//
// Errors name the place: "term: Event.items[2]: want int, got binary
// <<"x">>" (a *FieldError). Neither function panics on any input, and both
// stop at DefaultMaxDepth levels of nesting.
//
// # Go values
//
//	Erlang                     decodes to                       Encode also accepts
//	integer                    int64; *big.Int beyond int64      int, int8..int32, uint..uint64, big.Int
//	float                      float64                           float32
//	atom                       etf.Atom; true/false as bool      bool
//	tuple                      etf.Tuple
//	[] (NIL_EXT)               etf.List{}                        nil
//	list (LIST_EXT)            etf.List                          []etf.Term
//	improper list [a,b|t]      etf.ListImproper{a, b, t}
//	string (STRING_EXT)        string (its bytes)                etf.Charlist (code points)
//	binary                     []byte                            etf.String
//	bit string                 BitString{Bytes, Bits}
//	map, hashable keys         etf.Map                           Map
//	map, other keys            Map (ordered pairs)
//	pid                        etf.Pid (ID = Serial<<32 | Number)
//	reference, 3 or 5 words    etf.Ref (see Ref for the rule)    etf.Alias
//	reference, other lengths   Ref (with its word count)
//	port, NEW_PORT_EXT         etf.Port
//	port, V4_PORT_EXT          Port (64-bit ID)
//	fun M:F/A (EXPORT_EXT)     etf.Export
//	fun (NEW_FUN_EXT)          etf.Function
//	LOCAL_EXT                  Local (opaque bytes)
//
// Hashable keys are integers that fit int64, floats, atoms, booleans,
// strings, pids, references, ports and export funs; a map with any other
// key (a binary, as in every Elixir map with string keys, a tuple, a list, a
// map, a big integer) becomes a Map, as does a map whose keys collide in Go
// (0.0 and -0.0). To Encode, a Go string is an Erlang list of bytes
// (STRING_EXT), as in ergo; for an Elixir string use []byte (or etf.String,
// or Marshal, which turns every Go string into a binary).
//
// # Fidelity
//
// decode(encode(x)) equals x for every value Decode returns, and
// encode(decode(b)) == b for the bytes the BEAM writes, with two exceptions
// that only concern byte order inside maps: the BEAM writes maps of more
// than 32 keys in hash order, and from OTP 26 on maps with atom keys in the
// order of its atom table, neither of which Go can reproduce for an etf.Map
// (Encode writes etf.Map keys in Erlang's map-key order, the BEAM's order
// for small maps before OTP 26). Decode with WithOrderedMaps to get every
// map as a Map in wire order, which re-encodes byte for byte. Either way the
// BEAM reads the same term back, and its own term_to_binary of it is what
// it would have been without the trip through Go (tested against OTP 25 and
// OTP 29 in beam_test.go). The legacy encodings (ATOM_EXT, FLOAT_EXT,
// PID_EXT, NEW_REFERENCE_EXT, PORT_EXT) decode, and re-encode in their
// modern form. A Go string of more than 65535 bytes is written as the BEAM
// writes such a list (LIST_EXT) and decodes as an etf.List of int64.
//
// # Extension syntax
//
// Format writes pids, references, ports, local funs and LOCAL_EXT terms as
// #Pid<'node',Number,Serial,Creation>, #Ref<'node',Creation,Word0,...>,
// #Port<'node',ID,Creation>, #PortV4<'node',ID,Creation>,
// #Fun<Module,Arity,Index,<<Uniq>>,OldIndex,OldUniq,Pid,[FreeVars]> and
// #Local<<<Bytes>>>; everything else is plain Erlang syntax that erl_parse
// reads. Parse(Format(t)) equals t for every value Decode returns by
// default (a Map with only hashable keys, from WithOrderedMaps, parses back
// as the equal etf.Map).
//
// # ergo
//
// ergo's gen.Server only recognises the OTP 24+ gen_server:call reply tag
// [alias | Ref] in the flattened form its own decoder produced; pass
// messages for local ergo processes through AdaptGenCall.
//
// Package term imports only the standard library and ergo's etf package;
// the distribution protocol (node/dist) and anything else may import it.
package term
