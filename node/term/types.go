package term

import (
	"errors"

	"github.com/ergo-services/ergo/etf"
)

// Errors reported by the codec. Every error returned by Decode wraps
// ErrMalformed, or ErrDecodeBudget; errors returned by Encode wrap
// ErrUnsupportedType or ErrInvalidTerm. Check them with errors.Is.
var (
	// ErrMalformed is wrapped by every decoding error: the bytes are not a
	// valid external term (truncated, unknown tag, bad length, too deep...).
	ErrMalformed = errors.New("term: malformed external term")
	// ErrDecodeBudget is wrapped when decoding would allocate more than
	// the DecodeBudget given with WithDecodeBudget has left. The input may
	// be a valid term, only too costly to hold in memory.
	ErrDecodeBudget = errors.New("term: decode memory budget exceeded")
	// ErrUnsupportedType is wrapped when Encode meets a Go value that has no
	// Erlang representation (a struct, a channel...). See Marshal for structs.
	ErrUnsupportedType = errors.New("term: unsupported Go type")
	// ErrInvalidTerm is wrapped when Encode meets a value of a known type that
	// the BEAM would reject (an atom longer than 255 characters, an improper
	// list with fewer than two elements, a bit string with 0 bits...).
	ErrInvalidTerm = errors.New("term: invalid term")
	// ErrSyntax is wrapped by every Parse error.
	ErrSyntax = errors.New("term: syntax error")
)

// Pair is one key/value association of a Map.
type Pair struct {
	Key   etf.Term
	Value etf.Term
}

// Map is an Erlang map kept as ordered key/value pairs. Decode produces it
// when a map has a key that cannot be a Go map key (a binary, list, tuple,
// map, big integer, bit string, fun) or when two keys collide in Go (0.0 and
// -0.0), and for every map when WithOrderedMaps is given. Encode writes the
// pairs in slice order, so a decoded Map re-encodes byte for byte. Keys must
// be distinct (the BEAM rejects a map with duplicate keys).
//
// Map is also the one type of every map in Unmarshal's generic view (an
// any target), whatever its keys: m.Get([]byte("name")) finds the Elixir
// key "name" and m.Get(etf.Atom("name")) the key :name.
type Map []Pair

// Get returns the value stored under key, comparing keys with Equal.
func (m Map) Get(key etf.Term) (etf.Term, bool) {
	for _, p := range m {
		if Equal(p.Key, key) {
			return p.Value, true
		}
	}
	return nil, false
}

// BitString is an Erlang bit string whose length is not a multiple of 8
// (BIT_BINARY_EXT). Bytes holds the data; only the Bits most significant bits
// (1..8) of the last byte belong to the value.
type BitString struct {
	Bytes []byte
	Bits  uint8
}

// Ref is a reference that etf.Ref cannot carry without losing its word count.
//
// Decode returns etf.Ref for the references the BEAM makes: 3 words
// (make_ref/0, monitors) and 5 words whose word 3 or 4 is non-zero (OTP 26+
// aliases and gen_server:call tags, which embed the owner pid). Encode writes
// an etf.Ref with 5 words when ID[3] or ID[4] is non-zero and with 3 words
// otherwise. Any other reference (1, 2 or 4 words, or 5 words ending in two
// zero words) decodes into this type, which records the real length.
type Ref struct {
	Node     etf.Atom
	Creation uint32
	Len      uint8 // number of ID words on the wire, 1..5
	ID       [5]uint32
}

// Port is a port identifier with a 64-bit number, as sent in V4_PORT_EXT
// (every OTP 26+ node). NEW_PORT_EXT decodes into etf.Port, V4_PORT_EXT into
// this type, so each re-encodes with the tag it came with.
type Port struct {
	Node     etf.Atom
	ID       uint64
	Creation uint32
}

// Local is a term encoded with term_to_binary(T, [local]) (LOCAL_EXT, OTP 26+).
// Only the runtime instance that produced it can decode it, so it is kept as
// opaque bytes: Raw holds everything after the LOCAL_EXT tag and re-encodes
// unchanged.
type Local struct {
	Raw []byte
}

// External term format tags.
const (
	tagNewFloat      = 70
	tagBitBinary     = 77
	tagAtomCacheRef  = 82
	tagNewPid        = 88
	tagNewPort       = 89
	tagNewerRef      = 90
	tagSmallInteger  = 97
	tagInteger       = 98
	tagFloat         = 99
	tagAtom          = 100
	tagPort          = 102
	tagPid           = 103
	tagSmallTuple    = 104
	tagLargeTuple    = 105
	tagNil           = 106
	tagString        = 107
	tagList          = 108
	tagBinary        = 109
	tagSmallBig      = 110
	tagLargeBig      = 111
	tagNewFun        = 112
	tagExport        = 113
	tagNewRef        = 114
	tagSmallAtom     = 115
	tagMap           = 116
	tagFun           = 117
	tagAtomUTF8      = 118
	tagSmallAtomUTF8 = 119
	tagV4Port        = 120
	tagLocal         = 121
)

// DefaultMaxDepth is the nesting depth above which Decode and Encode fail.
const DefaultMaxDepth = 10000
