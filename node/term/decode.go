package term

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ergo-services/ergo/etf"
)

// DecodeOption adjusts Decode. The zero value does nothing.
type DecodeOption struct {
	atoms    []etf.Atom
	hasAtoms bool
	ordered  bool
	maxDepth int
	share    bool
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
	recent   [8]etf.Atom
	next     int
}

// Decode decodes one term starting at b[0] (the caller has already removed
// the 131 version byte if present) and returns the rest of the buffer.
// The result never aliases b, unless WithSharedBinaries is given. Every
// error wraps ErrMalformed.
func Decode(b []byte, opts ...DecodeOption) (etf.Term, []byte, error) {
	d := decoder{maxDepth: DefaultMaxDepth, start: len(b)}
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
	}
	return d.term(b, 0)
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
		return int64(int32(binary.BigEndian.Uint32(body))), body[4:], nil

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
		return f, body[8:], nil

	case tagFloat:
		if len(body) < 31 {
			return nil, b, d.short(b, "FLOAT_EXT")
		}
		s := strings.TrimSpace(strings.TrimRight(string(body[:31]), "\x00"))
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, b, d.errf(b, "FLOAT_EXT %q: not a finite float", s)
		}
		return f, body[31:], nil

	case tagAtomUTF8, tagSmallAtomUTF8, tagAtom, tagSmallAtom, tagAtomCacheRef:
		a, rest, err := d.atom(b)
		if err != nil {
			return nil, b, err
		}
		switch a {
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
		return etf.List{}, body, nil

	case tagString:
		if len(body) < 2 {
			return nil, b, d.short(b, "STRING_EXT")
		}
		n := int(binary.BigEndian.Uint16(body))
		if n > len(body)-2 {
			return nil, b, d.short(b, "STRING_EXT characters")
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
		if d.share && n >= MinSharedBinary && 2*uint64(n) >= uint64(d.start) {
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
			return int64(u), rest, nil
		}
		if sign == 1 && u <= 1<<63 {
			return int64(-u), rest, nil // -(1<<63) wraps to MinInt64 exactly
		}
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

// atom decodes an atom (any atom tag) without the true/false mapping.
func (d *decoder) atom(b []byte) (etf.Atom, []byte, error) {
	if len(b) == 0 {
		return "", b, d.short(b, "atom: no tag")
	}
	body := b[1:]
	var n int
	switch b[0] {
	case tagSmallAtomUTF8, tagSmallAtom:
		if len(body) < 1 {
			return "", b, d.short(b, "small atom")
		}
		n = int(body[0])
		body = body[1:]
	case tagAtomUTF8, tagAtom:
		if len(body) < 2 {
			return "", b, d.short(b, "atom")
		}
		n = int(binary.BigEndian.Uint16(body))
		body = body[2:]
	case tagAtomCacheRef:
		if len(body) < 1 {
			return "", b, d.short(b, "ATOM_CACHE_REF")
		}
		i := int(body[0])
		if i >= len(d.atoms) {
			return "", b, d.errf(b, "ATOM_CACHE_REF %d but the atom cache of this message has %d entries", i, len(d.atoms))
		}
		return d.atoms[i], body[1:], nil
	case tagNil:
		if d.local {
			return "", body, nil
		}
		return "", b, d.errf(b, "expected an atom, found tag %d", b[0])
	default:
		return "", b, d.errf(b, "expected an atom, found tag %d", b[0])
	}
	if n > len(body) {
		return "", b, d.short(b, "atom text")
	}
	text := body[:n]
	rest := body[n:]
	if b[0] == tagAtom || b[0] == tagSmallAtom {
		if n > 255 {
			return "", b, d.errf(b, "atom of %d characters (the BEAM allows 255)", n)
		}
		// Latin-1: convert to UTF-8.
		if !isASCIIBytes(text) {
			buf := make([]byte, 0, 2*n)
			for _, c := range text {
				buf = utf8.AppendRune(buf, rune(c))
			}
			return etf.Atom(buf), rest, nil
		}
	}
	if !isASCIIBytes(text) {
		if !utf8.Valid(text) {
			return "", b, d.errf(b, "atom is not valid UTF-8")
		}
		if n > 255 && utf8.RuneCount(text) > 255 {
			return "", b, d.errf(b, "atom of %d characters (the BEAM allows 255)", utf8.RuneCount(text))
		}
	} else if n > 255 {
		return "", b, d.errf(b, "atom of %d characters (the BEAM allows 255)", n)
	}
	if a, ok := commonAtoms[string(text)]; ok {
		return a, rest, nil
	}
	// Node names and map keys repeat within a message: reuse recent atoms.
	for _, a := range d.recent {
		if string(a) == string(text) {
			return a, rest, nil
		}
	}
	a := etf.Atom(text)
	d.recent[d.next] = a
	d.next = (d.next + 1) % len(d.recent)
	return a, rest, nil
}

// commonAtoms avoids an allocation for atoms that most messages contain.
// It is never written after init, so concurrent reads are safe.
var commonAtoms = func() map[string]etf.Atom {
	m := map[string]etf.Atom{}
	for _, a := range []string{
		"ok", "error", "undefined", "nil", "normal", "shutdown", "kill", "killed",
		"noproc", "noconnection", "timeout", "alias", "$gen_call", "$gen_cast",
		"reply", "badarg", "badrpc", "EXIT", "DOWN", "process", "nonode@nohost",
		"__struct__", "infinity", "call", "cast", "info", "exit", "throw", "nodedown",
	} {
		m[a] = etf.Atom(a)
	}
	return m
}()

func (d *decoder) tuple(b []byte, n int, depth int) (etf.Term, []byte, error) {
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
	l := make([]etf.Term, n, n+1)
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
	return etf.ListImproper(append(l, tail)), rest, nil
}

func (d *decoder) mapTerm(b []byte, n int, depth int) (etf.Term, []byte, error) {
	pairs := make(Map, n)
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
		return pairs, b, nil
	}
	m := make(etf.Map, n)
	for _, p := range pairs {
		if _, dup := m[p.Key]; dup {
			// Two keys equal in Go but distinct in Erlang (0.0 and -0.0)
			// or a duplicate: keep every pair.
			return pairs, b, nil
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
		return etf.Ref{Node: node, Creation: creation, ID: id}, rest, nil
	}
	return Ref{Node: node, Creation: creation, Len: uint8(n), ID: id}, rest, nil
}

func (d *decoder) port(b []byte) (etf.Term, []byte, error) {
	node, rest, err := d.atom(b[1:])
	if err != nil {
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
	inner := decoder{atoms: d.atoms, ordered: true, maxDepth: d.maxDepth, local: true, start: d.start}
	_, rest, err := inner.term(body[4:], depth+1)
	if err != nil {
		return nil, b, fmt.Errorf("LOCAL_EXT content (a term only the encoding runtime can decode) could not be delimited: %w", err)
	}
	raw := make([]byte, len(body)-len(rest))
	copy(raw, body)
	return Local{Raw: raw}, rest, nil
}

func isASCIIBytes(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
