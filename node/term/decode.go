package term

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/ergo-services/ergo/etf"
)

// DecodeOption adjusts Decode. The zero value does nothing.
type DecodeOption struct {
	atoms    []etf.Atom
	hasAtoms bool
	ordered  bool
	maxDepth int
	share    bool
	budget   *DecodeBudget
}

// WithAtomCache supplies the atoms that ATOM_CACHE_REF entries of this
// message refer to: index i of the reference is atoms[i]. The distribution
// header of a message carries them.
func WithAtomCache(atoms []etf.Atom) DecodeOption {
	return DecodeOption{atoms: atoms, hasAtoms: true}
}

// WithOrderedMaps makes every map decode into a Map (ordered pairs in wire
// order) instead of etf.Map, so that any map, including the BEAM's large
// (more than 32 keys) hash-ordered maps, re-encodes byte for byte.
func WithOrderedMaps() DecodeOption {
	return DecodeOption{ordered: true}
}

// WithSharedBinaries lets a large binary of the result share the memory of
// the input instead of being copied: a BINARY_EXT of at least
// MinSharedBinary bytes that makes up at least half of the input passed to
// Decode. The caller hands the input over: it must not modify or reuse b
// afterwards. A small binary never keeps a large input alive; the memory a
// shared binary keeps is at most twice its size.
func WithSharedBinaries() DecodeOption {
	return DecodeOption{share: true}
}

// MinSharedBinary is the smallest binary WithSharedBinaries shares rather
// than copies.
const MinSharedBinary = 4096

// WithDecodeBudget makes Decode charge every allocation it makes to b
// before making it, and fail with an error wrapping ErrDecodeBudget when b
// has not enough left. Decode calls given the same budget share it. A nil
// b is ignored.
func WithDecodeBudget(b *DecodeBudget) DecodeOption {
	return DecodeOption{budget: b}
}

// DecodeBudget is the memory, in bytes, that the Decode calls given it with
// WithDecodeBudget may still allocate. It bounds the Go memory a decoded term
// takes, which the input's size does not: an element of one byte (a []
// in a list) takes a 16-byte slot, so a 16 MiB list of [] would take
// 256 MiB.
//
// Decode charges each allocation before making it, at the size the Go
// allocator gives it (rounded up to its size class, or a little more):
// 16 bytes per element of a tuple, list or fun's free variables; 32 per
// map pair (except for a map of up to 8 keys that becomes an etf.Map) and,
// when the map becomes an etf.Map, the Go map's tables (336 bytes up to 8
// keys, 40 to 100 bytes a key beyond); the
// bytes of every binary, string, bit string, atom and big integer copied
// out of the input; and the box a value takes inside an etf.Term (8 bytes
// for an integer outside 0..255 or a float, 16 for an atom or string, 24
// for a tuple, list or binary, the struct's size for a pid, reference, port
// or fun). Integers 0..255, booleans, [], {}, atoms that the decoder has
// already boxed (common ones, and the last 8 of the message) and binaries
// shared with the input (WithSharedBinaries) cost nothing beyond their slot.
// A tuple, list or map whose slots alone exceed what is left fails before
// anything is allocated for it; otherwise the memory allocated by a failed
// Decode is at most what the budget had left.
//
// A DecodeBudget is not safe for concurrent use.
type DecodeBudget struct {
	left int64
}

// NewDecodeBudget returns a budget of n bytes (none when n is negative).
func NewDecodeBudget(n int64) *DecodeBudget {
	return &DecodeBudget{left: max(n, 0)}
}

// Left returns the bytes the budget has left.
func (b *DecodeBudget) Left() int64 { return b.left }

// WithMaxDepth sets the nesting depth above which decoding fails
// (default DefaultMaxDepth; zero or negative keeps the default).
func WithMaxDepth(n int) DecodeOption {
	return DecodeOption{maxDepth: n}
}

type decoder struct {
	atoms    []etf.Atom
	ordered  bool
	maxDepth int
	share    bool // WithSharedBinaries
	local    bool // inside LOCAL_EXT: node names may be NIL
	start    int  // len of the whole input, to report offsets
	left     int64
	recent   [8]etf.Atom
	boxed    [8]etf.Term // recent[i] boxed
	next     int
}

// Decode decodes one term starting at b[0] (the caller has already removed
// the 131 version byte if present) and returns the rest of the buffer.
// The result never aliases b, unless WithSharedBinaries is given. Every
// error wraps ErrMalformed, except that a term over the budget given with
// WithDecodeBudget fails with an error wrapping ErrDecodeBudget.
func Decode(b []byte, opts ...DecodeOption) (etf.Term, []byte, error) {
	d := decoder{maxDepth: DefaultMaxDepth, start: len(b), left: math.MaxInt64}
	var budget *DecodeBudget
	for _, o := range opts {
		if o.hasAtoms {
			d.atoms = o.atoms
		}
		if o.ordered {
			d.ordered = true
		}
		if o.maxDepth > 0 {
			d.maxDepth = o.maxDepth
		}
		if o.share {
			d.share = true
		}
		if o.budget != nil {
			budget = o.budget
		}
	}
	if budget == nil {
		return d.term(b, 0)
	}
	d.left = budget.left
	t, rest, err := d.term(b, 0)
	budget.left = d.left
	return t, rest, err
}

// Sizes of the values Decode boxes in an etf.Term (unsafe is used for
// Sizeof only).
const (
	slotSize   = int64(unsafe.Sizeof(etf.Term(nil)))
	sliceBox   = int64(unsafe.Sizeof([]byte(nil)))
	stringBox  = int64(unsafe.Sizeof(""))
	wordBox    = 8
	pairSize   = int64(unsafe.Sizeof(Pair{}))
	pidBox     = int64(unsafe.Sizeof(etf.Pid{}))
	refBox     = int64(unsafe.Sizeof(etf.Ref{}))
	ourRefBox  = int64(unsafe.Sizeof(Ref{}))
	portBox    = int64(unsafe.Sizeof(etf.Port{}))
	ourPortBox = int64(unsafe.Sizeof(Port{}))
	exportBox  = int64(unsafe.Sizeof(etf.Export{}))
	funBox     = int64(unsafe.Sizeof(etf.Function{}))
	bitsBox    = int64(unsafe.Sizeof(BitString{}))
	localBox   = int64(unsafe.Sizeof(Local{}))
	bigIntSize = int64(unsafe.Sizeof(big.Int{}))
)

// goMapSize bounds what make(etf.Map, n) and n insertions allocate. A Go
// map keeps its entries in groups of 8 slots (a control byte and a key and
// value each), in tables of up to 1024 slots filled to at most 7/8, whose
// number is a power of two; a table that its share of the keys fills up is
// split, hence a quarter more. Measured with Go 1.26: 336 bytes for up to 8
// keys, 664 for 9, 41048 for 453, 84 MB for 2^20.
func goMapSize(n int64) int64 {
	const group = 8 + 8*2*slotSize
	const header = 48
	if n == 0 {
		return heapSize(header) // the first insertion allocates the group
	}
	if n <= 8 {
		return heapSize(header) + heapSize(group)
	}
	slots := int64(16)
	for slots*7/8 < n {
		slots *= 2
	}
	tables := max(slots/1024, 1)
	table := heapSize(min(slots, 1024)/8*group) + 64
	return heapSize(header) + heapSize(8*tables) + tables*table + tables*table/4
}

// heapSize is an upper bound of the memory the Go allocator takes for an
// object of n bytes: small objects are rounded up to a size class (at most
// a quarter more), large ones to whole 8 KiB pages.
func heapSize(n int64) int64 {
	switch {
	case n <= 0:
		return 0
	case n <= 32:
		return (n + 7) &^ 7
	case n <= 256:
		return (n + 15) &^ 15
	case n <= 32<<10:
		return (n + n/4 + 15) &^ 15
	}
	return (n + 8191) &^ 8191
}

// charge takes n bytes from the budget before an allocation of that size
// for what, at b.
func (d *decoder) charge(b []byte, n int64, what string) error {
	if n <= d.left {
		d.left -= n
		return nil
	}
	return d.overBudget(b, n, what)
}

func (d *decoder) overBudget(b []byte, n int64, what string) error {
	return fmt.Errorf("%w: at offset %d: %s needs %d bytes, %d left", ErrDecodeBudget, d.start-len(b), what, n, d.left)
}

func (d *decoder) errf(b []byte, format string, args ...any) error {
	return fmt.Errorf("%w: at offset %d: %s", ErrMalformed, d.start-len(b), fmt.Sprintf(format, args...))
}

func (d *decoder) short(b []byte, what string) error {
	return d.errf(b, "truncated %s", what)
}

func (d *decoder) term(b []byte, depth int) (etf.Term, []byte, error) {
	if len(b) == 0 {
		return nil, b, d.short(b, "term: no tag")
	}
	if depth > d.maxDepth {
		return nil, b, d.errf(b, "nesting deeper than %d", d.maxDepth)
	}
	tag := b[0]
	body := b[1:]
	switch tag {
	case tagSmallInteger:
		if len(body) < 1 {
			return nil, b, d.short(b, "SMALL_INTEGER_EXT")
		}
		return int64(body[0]), body[1:], nil

	case tagInteger:
		if len(body) < 4 {
			return nil, b, d.short(b, "INTEGER_EXT")
		}
		v := int64(int32(binary.BigEndian.Uint32(body)))
		if err := d.chargeInt(b, v); err != nil {
			return nil, b, err
		}
		return v, body[4:], nil

	case tagSmallBig:
		if len(body) < 2 {
			return nil, b, d.short(b, "SMALL_BIG_EXT")
		}
		n := int(body[0])
		return d.bigInt(b, body[2:], n, body[1])

	case tagLargeBig:
		if len(body) < 5 {
			return nil, b, d.short(b, "LARGE_BIG_EXT")
		}
		n := binary.BigEndian.Uint32(body)
		if uint64(n) > uint64(len(body)-5) {
			return nil, b, d.short(b, "LARGE_BIG_EXT digits")
		}
		return d.bigInt(b, body[5:], int(n), body[4])

	case tagNewFloat:
		if len(body) < 8 {
			return nil, b, d.short(b, "NEW_FLOAT_EXT")
		}
		f := math.Float64frombits(binary.BigEndian.Uint64(body))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, b, d.errf(b, "NEW_FLOAT_EXT is not finite (%v)", f)
		}
		if err := d.charge(b, wordBox, "NEW_FLOAT_EXT"); err != nil {
			return nil, b, err
		}
		return f, body[8:], nil

	case tagFloat:
		if len(body) < 31 {
			return nil, b, d.short(b, "FLOAT_EXT")
		}
		if err := d.charge(b, 32+wordBox, "FLOAT_EXT"); err != nil {
			return nil, b, err
		}
		s := strings.TrimSpace(strings.TrimRight(string(body[:31]), "\x00"))
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, b, d.errf(b, "FLOAT_EXT %q: not a finite float", s)
		}
		return f, body[31:], nil

	case tagAtomUTF8, tagSmallAtomUTF8, tagAtom, tagSmallAtom, tagAtomCacheRef:
		a, rest, err := d.atomTerm(b)
		if err != nil {
			return nil, b, err
		}
		switch s, _ := a.(etf.Atom); s {
		case "true":
			return true, rest, nil
		case "false":
			return false, rest, nil
		}
		return a, rest, nil

	case tagSmallTuple:
		if len(body) < 1 {
			return nil, b, d.short(b, "SMALL_TUPLE_EXT")
		}
		if int(body[0]) > len(body)-1 { // every element takes at least one byte
			return nil, b, d.errf(b, "SMALL_TUPLE_EXT arity %d exceeds the %d bytes left", body[0], len(body)-1)
		}
		return d.tuple(body[1:], int(body[0]), depth)

	case tagLargeTuple:
		if len(body) < 4 {
			return nil, b, d.short(b, "LARGE_TUPLE_EXT")
		}
		n := binary.BigEndian.Uint32(body)
		if uint64(n) > uint64(len(body)-4) { // every element takes at least one byte
			return nil, b, d.errf(b, "LARGE_TUPLE_EXT arity %d exceeds the %d bytes left", n, len(body)-4)
		}
		return d.tuple(body[4:], int(n), depth)

	case tagNil:
		return emptyList, body, nil

	case tagString:
		if len(body) < 2 {
			return nil, b, d.short(b, "STRING_EXT")
		}
		n := int(binary.BigEndian.Uint16(body))
		if n > len(body)-2 {
			return nil, b, d.short(b, "STRING_EXT characters")
		}
		if err := d.charge(b, heapSize(int64(n))+stringBox, "STRING_EXT"); err != nil {
			return nil, b, err
		}
		return string(body[2 : 2+n]), body[2+n:], nil

	case tagList:
		if len(body) < 4 {
			return nil, b, d.short(b, "LIST_EXT")
		}
		n := binary.BigEndian.Uint32(body)
		if uint64(n)+1 > uint64(len(body)-4) { // elements and the tail take a byte each at least
			return nil, b, d.errf(b, "LIST_EXT length %d exceeds the %d bytes left", n, len(body)-4)
		}
		if n == 0 {
			return nil, b, d.errf(b, "LIST_EXT with no elements (the empty list is NIL_EXT)")
		}
		return d.list(body[4:], int(n), depth)

	case tagBinary:
		if len(body) < 4 {
			return nil, b, d.short(b, "BINARY_EXT")
		}
		n := binary.BigEndian.Uint32(body)
		if uint64(n) > uint64(len(body)-4) {
			return nil, b, d.errf(b, "BINARY_EXT length %d exceeds the %d bytes left", n, len(body)-4)
		}
		end := 4 + int(n)
		shared := d.share && n >= MinSharedBinary && 2*uint64(n) >= uint64(d.start)
		cost := sliceBox
		if !shared {
			cost += heapSize(int64(n))
		}
		if err := d.charge(b, cost, "BINARY_EXT"); err != nil {
			return nil, b, err
		}
		if shared {
			// Full slice expression: an append by the receiver never
			// writes into the bytes that follow.
			return body[4:end:end], body[end:], nil
		}
		out := append([]byte{}, body[4:end]...) // no zeroing before the copy
		return out, body[end:], nil

	case tagBitBinary:
		if len(body) < 5 {
			return nil, b, d.short(b, "BIT_BINARY_EXT")
		}
		n := binary.BigEndian.Uint32(body)
		bits := body[4]
		if uint64(n) > uint64(len(body)-5) {
			return nil, b, d.errf(b, "BIT_BINARY_EXT length %d exceeds the %d bytes left", n, len(body)-5)
		}
		if bits < 1 || bits > 8 || n == 0 {
			return nil, b, d.errf(b, "BIT_BINARY_EXT with %d bytes and %d bits in the last byte", n, bits)
		}
		if err := d.charge(b, heapSize(int64(n))+heapSize(bitsBox), "BIT_BINARY_EXT"); err != nil {
			return nil, b, err
		}
		out := make([]byte, n)
		copy(out, body[5:])
		return BitString{Bytes: out, Bits: bits}, body[5+int(n):], nil

	case tagMap:
		if len(body) < 4 {
			return nil, b, d.short(b, "MAP_EXT")
		}
		n := binary.BigEndian.Uint32(body)
		if uint64(n)*2 > uint64(len(body)-4) {
			return nil, b, d.errf(b, "MAP_EXT arity %d exceeds the %d bytes left", n, len(body)-4)
		}
		return d.mapTerm(body[4:], int(n), depth)

	case tagNewPid, tagPid:
		return d.pid(b)

	case tagNewerRef, tagNewRef:
		return d.ref(b)

	case tagNewPort, tagV4Port, tagPort:
		return d.port(b)

	case tagExport:
		mod, rest, err := d.atom(body)
		if err != nil {
			return nil, b, err
		}
		fn, rest, err := d.atom(rest)
		if err != nil {
			return nil, b, err
		}
		if len(rest) < 2 || rest[0] != tagSmallInteger {
			return nil, b, d.errf(rest, "EXPORT_EXT arity is not a SMALL_INTEGER_EXT")
		}
		if err := d.charge(b, heapSize(exportBox), "EXPORT_EXT"); err != nil {
			return nil, b, err
		}
		return etf.Export{Module: mod, Function: fn, Arity: int(rest[1])}, rest[2:], nil

	case tagNewFun:
		return d.fun(b, depth)

	case tagLocal:
		return d.localTerm(b, depth)

	case tagFun:
		return nil, b, d.errf(b, "FUN_EXT (tag 117) was removed in OTP 23 and is not supported")
	case 80:
		return nil, b, d.errf(b, "compressed term (tag 80) is not used in distribution and not supported")
	case 131:
		return nil, b, d.errf(b, "unexpected version byte 131: strip it before Decode")
	}
	return nil, b, d.errf(b, "unknown tag %d", tag)
}

func (d *decoder) bigInt(b, digits []byte, n int, sign byte) (etf.Term, []byte, error) {
	if n > len(digits) {
		return nil, b, d.short(b, "big integer digits")
	}
	if sign > 1 {
		return nil, b, d.errf(b, "big integer sign byte %d", sign)
	}
	mag := digits[:n]
	rest := digits[n:]
	if n <= 8 {
		var u uint64
		for i := n - 1; i >= 0; i-- {
			u = u<<8 | uint64(mag[i])
		}
		if sign == 0 && u <= math.MaxInt64 {
			if err := d.chargeInt(b, int64(u)); err != nil {
				return nil, b, err
			}
			return int64(u), rest, nil
		}
		if sign == 1 && u <= 1<<63 {
			if err := d.chargeInt(b, int64(-u)); err != nil {
				return nil, b, err
			}
			return int64(-u), rest, nil // -(1<<63) wraps to MinInt64 exactly
		}
	}
	// The big-endian copy, the big.Int and its words (with the few words
	// of spare capacity math/big gives them).
	words := (int64(n) + 7) / 8
	if err := d.charge(b, heapSize(int64(n))+heapSize(bigIntSize)+heapSize(8*(words+4)), "big integer"); err != nil {
		return nil, b, err
	}
	be := make([]byte, n)
	for i := 0; i < n; i++ {
		be[i] = mag[n-1-i]
	}
	v := new(big.Int).SetBytes(be)
	if sign == 1 {
		v.Neg(v)
	}
	return v, rest, nil
}

// chargeInt charges the box of an integer: those of 0..255 are preallocated
// by the Go runtime.
func (d *decoder) chargeInt(b []byte, v int64) error {
	if uint64(v) < 256 {
		return nil
	}
	return d.charge(b, wordBox, "integer")
}

// atom decodes an atom (any atom tag) without the true/false mapping.
func (d *decoder) atom(b []byte) (etf.Atom, []byte, error) {
	t, rest, err := d.atomTerm(b)
	if err != nil {
		return "", b, err
	}
	a, _ := t.(etf.Atom) // atomTerm boxes only atoms
	return a, rest, nil
}

// atomTerm decodes an atom (any atom tag) without the true/false mapping,
// boxed in an etf.Term: common atoms and the last 8 of the message are
// boxed once.
func (d *decoder) atomTerm(b []byte) (etf.Term, []byte, error) {
	if len(b) == 0 {
		return nil, b, d.short(b, "atom: no tag")
	}
	body := b[1:]
	var n int
	switch b[0] {
	case tagSmallAtomUTF8, tagSmallAtom:
		if len(body) < 1 {
			return nil, b, d.short(b, "small atom")
		}
		n = int(body[0])
		body = body[1:]
	case tagAtomUTF8, tagAtom:
		if len(body) < 2 {
			return nil, b, d.short(b, "atom")
		}
		n = int(binary.BigEndian.Uint16(body))
		body = body[2:]
	case tagAtomCacheRef:
		if len(body) < 1 {
			return nil, b, d.short(b, "ATOM_CACHE_REF")
		}
		i := int(body[0])
		if i >= len(d.atoms) {
			return nil, b, d.errf(b, "ATOM_CACHE_REF %d but the atom cache of this message has %d entries", i, len(d.atoms))
		}
		if err := d.charge(b, stringBox, "ATOM_CACHE_REF"); err != nil {
			return nil, b, err
		}
		return d.atoms[i], body[1:], nil
	case tagNil:
		if d.local {
			return etf.Atom(""), body, nil
		}
		return nil, b, d.errf(b, "expected an atom, found tag %d", b[0])
	default:
		return nil, b, d.errf(b, "expected an atom, found tag %d", b[0])
	}
	if n > len(body) {
		return nil, b, d.short(b, "atom text")
	}
	text := body[:n]
	rest := body[n:]
	if b[0] == tagAtom || b[0] == tagSmallAtom {
		if n > 255 {
			return nil, b, d.errf(b, "atom of %d characters (the BEAM allows 255)", n)
		}
		// Latin-1: convert to UTF-8.
		if !isASCIIBytes(text) {
			if err := d.charge(b, 2*heapSize(int64(2*n))+stringBox, "atom"); err != nil {
				return nil, b, err
			}
			buf := make([]byte, 0, 2*n)
			for _, c := range text {
				buf = utf8.AppendRune(buf, rune(c))
			}
			return etf.Atom(buf), rest, nil
		}
	}
	if !isASCIIBytes(text) {
		if !utf8.Valid(text) {
			return nil, b, d.errf(b, "atom is not valid UTF-8")
		}
		if n > 255 && runeCount(text) > 255 {
			return nil, b, d.errf(b, "atom of %d characters (the BEAM allows 255)", runeCount(text))
		}
	} else if n > 255 {
		return nil, b, d.errf(b, "atom of %d characters (the BEAM allows 255)", n)
	}
	if a, ok := commonAtoms[string(text)]; ok {
		return a, rest, nil
	}
	// Node names and map keys repeat within a message: reuse recent atoms.
	for i, a := range d.recent {
		if string(a) == string(text) {
			return d.boxed[i], rest, nil
		}
	}
	if err := d.charge(b, heapSize(int64(n))+stringBox, "atom"); err != nil {
		return nil, b, err
	}
	a := etf.Atom(text)
	t := etf.Term(a)
	d.recent[d.next] = a
	d.boxed[d.next] = t
	d.next = (d.next + 1) % len(d.recent)
	return t, rest, nil
}

// commonAtoms holds atoms that most messages contain, boxed once. It
// includes the empty atom, so that the recent atoms' empty slots never
// match, and true and false, which term maps to booleans. It is never
// written after init, so concurrent reads are safe.
var commonAtoms = func() map[string]etf.Term {
	m := map[string]etf.Term{}
	for _, a := range []string{
		"", "true", "false",
		"ok", "error", "undefined", "nil", "normal", "shutdown", "kill", "killed",
		"noproc", "noconnection", "timeout", "alias", "$gen_call", "$gen_cast",
		"reply", "badarg", "badrpc", "EXIT", "DOWN", "process", "nonode@nohost",
		"__struct__", "infinity", "call", "cast", "info", "exit", "throw", "nodedown",
	} {
		m[a] = etf.Atom(a)
	}
	return m
}()

// Values decoded without an allocation each. An empty slice cannot be
// written to, so sharing one is safe.
var (
	emptyList  etf.Term = etf.List{}
	emptyTuple etf.Term = etf.Tuple{}
)

func (d *decoder) tuple(b []byte, n int, depth int) (etf.Term, []byte, error) {
	if n == 0 {
		return emptyTuple, b, nil
	}
	if err := d.charge(b, heapSize(slotSize*int64(n))+sliceBox, "tuple"); err != nil {
		return nil, b, err
	}
	t := make(etf.Tuple, n)
	var err error
	for i := 0; i < n; i++ {
		t[i], b, err = d.term(b, depth+1)
		if err != nil {
			return nil, b, err
		}
	}
	return t, b, nil
}

func (d *decoder) list(b []byte, n int, depth int) (etf.Term, []byte, error) {
	if err := d.charge(b, heapSize(slotSize*int64(n))+sliceBox, "list"); err != nil {
		return nil, b, err
	}
	l := make([]etf.Term, n)
	var err error
	for i := 0; i < n; i++ {
		l[i], b, err = d.term(b, depth+1)
		if err != nil {
			return nil, b, err
		}
	}
	if len(b) > 0 && b[0] == tagNil {
		return etf.List(l), b[1:], nil
	}
	tail, rest, err := d.term(b, depth+1)
	if err != nil {
		return nil, b, err
	}
	// Improper lists are rare (gen_server's [alias|Ref] tag): a copy with
	// room for the tail beats a spare slot in every list.
	if err := d.charge(b, heapSize(slotSize*int64(n+1)), "improper list"); err != nil {
		return nil, b, err
	}
	li := make(etf.ListImproper, n+1)
	copy(li, l)
	li[n] = tail
	return li, rest, nil
}

func (d *decoder) mapTerm(b []byte, n int, depth int) (etf.Term, []byte, error) {
	start := b
	// The pairs of a small map, most of which become an etf.Map, are
	// gathered on the stack; they go to the heap only for a Map.
	var small [8]Pair
	var pairs, onHeap Map
	if n <= len(small) {
		pairs = small[:n]
	} else {
		if err := d.charge(b, heapSize(pairSize*int64(n))+sliceBox, "map"); err != nil {
			return nil, b, err
		}
		onHeap = make(Map, n)
		pairs = onHeap
	}
	asMap := func() (etf.Term, []byte, error) {
		if onHeap != nil {
			return onHeap, b, nil
		}
		if err := d.charge(start, heapSize(pairSize*int64(n))+sliceBox, "map"); err != nil {
			return nil, b, err
		}
		return append(Map(nil), pairs...), b, nil
	}
	hashable := !d.ordered
	var err error
	for i := 0; i < n; i++ {
		pairs[i].Key, b, err = d.term(b, depth+1)
		if err != nil {
			return nil, b, err
		}
		pairs[i].Value, b, err = d.term(b, depth+1)
		if err != nil {
			return nil, b, err
		}
		if hashable && !isHashable(pairs[i].Key) {
			hashable = false
		}
	}
	if !hashable {
		return asMap()
	}
	if err := d.charge(start, goMapSize(int64(n)), "map"); err != nil {
		return nil, b, err
	}
	m := make(etf.Map, n)
	for _, p := range pairs {
		if _, dup := m[p.Key]; dup {
			// Two keys equal in Go but distinct in Erlang (0.0 and -0.0)
			// or a duplicate: keep every pair.
			return asMap()
		}
		m[p.Key] = p.Value
	}
	return m, b, nil
}

// isHashable reports whether a decoded key can be an etf.Map key without
// panicking and with Go equality matching Erlang's exact equality.
func isHashable(k etf.Term) bool {
	switch k.(type) {
	case int64, float64, etf.Atom, bool, string, etf.Pid, etf.Ref, etf.Port, Ref, Port, etf.Export:
		return true
	}
	return false
}

func (d *decoder) pid(b []byte) (etf.Term, []byte, error) {
	node, rest, err := d.atom(b[1:])
	if err != nil {
		return nil, b, err
	}
	if err := d.charge(b, heapSize(pidBox), "pid"); err != nil {
		return nil, b, err
	}
	if b[0] == tagPid {
		if len(rest) < 9 {
			return nil, b, d.short(b, "PID_EXT")
		}
		id := uint64(binary.BigEndian.Uint32(rest)) | uint64(binary.BigEndian.Uint32(rest[4:]))<<32
		return etf.Pid{Node: node, ID: id, Creation: uint32(rest[8])}, rest[9:], nil
	}
	if len(rest) < 12 {
		return nil, b, d.short(b, "NEW_PID_EXT")
	}
	id := uint64(binary.BigEndian.Uint32(rest)) | uint64(binary.BigEndian.Uint32(rest[4:]))<<32
	return etf.Pid{Node: node, ID: id, Creation: binary.BigEndian.Uint32(rest[8:])}, rest[12:], nil
}

func (d *decoder) ref(b []byte) (etf.Term, []byte, error) {
	if len(b) < 3 {
		return nil, b, d.short(b, "reference")
	}
	n := int(binary.BigEndian.Uint16(b[1:]))
	if n < 1 || n > 5 {
		return nil, b, d.errf(b, "reference with %d words (1..5 allowed)", n)
	}
	node, rest, err := d.atom(b[3:])
	if err != nil {
		return nil, b, err
	}
	var creation uint32
	if b[0] == tagNewRef {
		if len(rest) < 1 {
			return nil, b, d.short(b, "NEW_REFERENCE_EXT creation")
		}
		creation = uint32(rest[0])
		rest = rest[1:]
	} else {
		if len(rest) < 4 {
			return nil, b, d.short(b, "NEWER_REFERENCE_EXT creation")
		}
		creation = binary.BigEndian.Uint32(rest)
		rest = rest[4:]
	}
	if len(rest) < 4*n {
		return nil, b, d.short(b, "reference words")
	}
	var id [5]uint32
	for i := 0; i < n; i++ {
		id[i] = binary.BigEndian.Uint32(rest[4*i:])
	}
	rest = rest[4*n:]
	if n == 3 || (n == 5 && id[3]|id[4] != 0) {
		if err := d.charge(b, heapSize(refBox), "reference"); err != nil {
			return nil, b, err
		}
		return etf.Ref{Node: node, Creation: creation, ID: id}, rest, nil
	}
	if err := d.charge(b, heapSize(ourRefBox), "reference"); err != nil {
		return nil, b, err
	}
	return Ref{Node: node, Creation: creation, Len: uint8(n), ID: id}, rest, nil
}

func (d *decoder) port(b []byte) (etf.Term, []byte, error) {
	node, rest, err := d.atom(b[1:])
	if err != nil {
		return nil, b, err
	}
	if err := d.charge(b, heapSize(max(portBox, ourPortBox)), "port"); err != nil {
		return nil, b, err
	}
	switch b[0] {
	case tagV4Port:
		if len(rest) < 12 {
			return nil, b, d.short(b, "V4_PORT_EXT")
		}
		return Port{Node: node, ID: binary.BigEndian.Uint64(rest), Creation: binary.BigEndian.Uint32(rest[8:])}, rest[12:], nil
	case tagNewPort:
		if len(rest) < 8 {
			return nil, b, d.short(b, "NEW_PORT_EXT")
		}
		return etf.Port{Node: node, ID: binary.BigEndian.Uint32(rest), Creation: binary.BigEndian.Uint32(rest[4:])}, rest[8:], nil
	}
	if len(rest) < 5 {
		return nil, b, d.short(b, "PORT_EXT")
	}
	return etf.Port{Node: node, ID: binary.BigEndian.Uint32(rest), Creation: uint32(rest[4])}, rest[5:], nil
}

// smallInt32 decodes the OldIndex/OldUniq integers of NEW_FUN_EXT, which the
// BEAM writes as SMALL_INTEGER_EXT or INTEGER_EXT.
func (d *decoder) smallInt32(b []byte, what string) (uint32, []byte, error) {
	if len(b) >= 2 && b[0] == tagSmallInteger {
		return uint32(b[1]), b[2:], nil
	}
	if len(b) >= 5 && b[0] == tagInteger {
		return binary.BigEndian.Uint32(b[1:]), b[5:], nil
	}
	return 0, b, d.errf(b, "NEW_FUN_EXT %s is not a SMALL_INTEGER_EXT or INTEGER_EXT", what)
}

func (d *decoder) fun(b []byte, depth int) (etf.Term, []byte, error) {
	body := b[1:]
	if len(body) < 4+1+16+4+4 {
		return nil, b, d.short(b, "NEW_FUN_EXT")
	}
	size := binary.BigEndian.Uint32(body)
	if uint64(size) > uint64(len(body)) || size < 29 {
		return nil, b, d.errf(b, "NEW_FUN_EXT size %d with %d bytes left", size, len(body))
	}
	f := etf.Function{Arity: body[4], Index: binary.BigEndian.Uint32(body[21:])}
	copy(f.Unique[:], body[5:21])
	numFree := binary.BigEndian.Uint32(body[25:])
	rest := body[29:]
	if uint64(numFree) > uint64(len(rest)) {
		return nil, b, d.errf(b, "NEW_FUN_EXT with %d free variables and %d bytes left", numFree, len(rest))
	}
	var err error
	if f.Module, rest, err = d.atom(rest); err != nil {
		return nil, b, err
	}
	if f.OldIndex, rest, err = d.smallInt32(rest, "OldIndex"); err != nil {
		return nil, b, err
	}
	if f.OldUnique, rest, err = d.smallInt32(rest, "OldUniq"); err != nil {
		return nil, b, err
	}
	if len(rest) == 0 || (rest[0] != tagNewPid && rest[0] != tagPid) {
		return nil, b, d.errf(rest, "NEW_FUN_EXT Pid is not a pid")
	}
	p, rest, err := d.pid(rest)
	if err != nil {
		return nil, b, err
	}
	f.Pid = p.(etf.Pid)
	if err := d.charge(b, heapSize(slotSize*int64(numFree))+heapSize(funBox), "NEW_FUN_EXT"); err != nil {
		return nil, b, err
	}
	f.FreeVars = make([]etf.Term, numFree)
	for i := range f.FreeVars {
		if f.FreeVars[i], rest, err = d.term(rest, depth+1); err != nil {
			return nil, b, err
		}
	}
	if used := len(body) - len(rest); used != int(size) {
		return nil, b, d.errf(b, "NEW_FUN_EXT size field says %d bytes but the fun takes %d", size, used)
	}
	return f, rest, nil
}

func (d *decoder) localTerm(b []byte, depth int) (etf.Term, []byte, error) {
	body := b[1:]
	if len(body) < 4 {
		return nil, b, d.short(b, "LOCAL_EXT hash")
	}
	// The content is decoded only to find its end, from the same budget.
	inner := decoder{atoms: d.atoms, ordered: true, maxDepth: d.maxDepth, local: true, start: d.start, left: d.left}
	_, rest, err := inner.term(body[4:], depth+1)
	d.left = inner.left
	if err != nil {
		return nil, b, fmt.Errorf("LOCAL_EXT content (a term only the encoding runtime can decode) could not be delimited: %w", err)
	}
	if err := d.charge(b, heapSize(int64(len(body)-len(rest)))+heapSize(localBox), "LOCAL_EXT"); err != nil {
		return nil, b, err
	}
	raw := make([]byte, len(body)-len(rest))
	copy(raw, body)
	return Local{Raw: raw}, rest, nil
}

// runeCount counts the characters of valid UTF-8 (utf8.RuneCount may
// allocate a copy of its input).
func runeCount(b []byte) int {
	n := 0
	for _, c := range b {
		if c&0xc0 != 0x80 { // not a continuation byte
			n++
		}
	}
	return n
}

func isASCIIBytes(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
