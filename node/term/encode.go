package term

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ergo-services/ergo/etf"
)

// EncodeOption adjusts Encode. The zero value does nothing.
type EncodeOption struct {
	maxDepth int
}

// WithEncodeMaxDepth sets the nesting depth above which Encode fails
// (default DefaultMaxDepth; zero or negative keeps the default). It also
// stops a Go value that contains itself.
func WithEncodeMaxDepth(n int) EncodeOption { return EncodeOption{maxDepth: n} }

type encoder struct {
	maxDepth int
}

// Encode appends the encoding of t (WITHOUT the 131 version byte) to dst.
// On error the returned slice is dst unchanged in length. Errors wrap
// ErrUnsupportedType or ErrInvalidTerm. See the package documentation for
// how each Go type is written.
func Encode(dst []byte, t etf.Term, opts ...EncodeOption) ([]byte, error) {
	e := encoder{maxDepth: DefaultMaxDepth}
	for _, o := range opts {
		if o.maxDepth > 0 {
			e.maxDepth = o.maxDepth
		}
	}
	n := len(dst)
	out, err := e.term(dst, t, 0)
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}

func (e *encoder) term(b []byte, t etf.Term, depth int) ([]byte, error) {
	if depth > e.maxDepth {
		return b, fmt.Errorf("%w: nesting deeper than %d", ErrInvalidTerm, e.maxDepth)
	}
	switch v := t.(type) {
	case int64:
		return appendInt(b, v), nil
	case etf.Atom:
		return appendAtom(b, v)
	case etf.Tuple:
		return e.tuple(b, v, depth)
	case etf.List:
		return e.list(b, v, depth)
	case []byte:
		return appendBinary(b, v), nil
	case etf.Map:
		return e.etfMap(b, v, depth)
	case Map:
		return e.pairs(b, v, depth)
	case string:
		return appendString(b, v), nil
	case bool:
		if v {
			return append(b, tagSmallAtomUTF8, 4, 't', 'r', 'u', 'e'), nil
		}
		return append(b, tagSmallAtomUTF8, 5, 'f', 'a', 'l', 's', 'e'), nil
	case etf.Pid:
		return appendPid(b, v)
	case etf.Ref:
		n := 3
		if v.ID[3]|v.ID[4] != 0 {
			n = 5
		}
		return appendRef(b, v.Node, v.Creation, v.ID[:n])
	case float64:
		return appendFloat(b, v)
	case int:
		return appendInt(b, int64(v)), nil
	case nil:
		return append(b, tagNil), nil
	case etf.ListImproper:
		return e.improper(b, v, depth)
	case *big.Int:
		if v == nil {
			return b, fmt.Errorf("%w: nil *big.Int", ErrInvalidTerm)
		}
		return appendBig(b, v), nil
	case big.Int:
		return appendBig(b, &v), nil
	case int8:
		return appendInt(b, int64(v)), nil
	case int16:
		return appendInt(b, int64(v)), nil
	case int32:
		return appendInt(b, int64(v)), nil
	case uint8:
		return appendInt(b, int64(v)), nil
	case uint16:
		return appendInt(b, int64(v)), nil
	case uint32:
		return appendInt(b, int64(v)), nil
	case uint:
		return appendUint(b, uint64(v)), nil
	case uint64:
		return appendUint(b, v), nil
	case uintptr:
		return appendUint(b, uint64(v)), nil
	case float32:
		return appendFloat(b, float64(v))
	case BitString:
		if v.Bits < 1 || v.Bits > 8 || len(v.Bytes) == 0 || uint64(len(v.Bytes)) > math.MaxUint32 {
			return b, fmt.Errorf("%w: bit string with %d bytes and %d bits in the last byte", ErrInvalidTerm, len(v.Bytes), v.Bits)
		}
		b = append(b, tagBitBinary)
		b = binary.BigEndian.AppendUint32(b, uint32(len(v.Bytes)))
		b = append(b, v.Bits)
		return append(b, v.Bytes...), nil
	case etf.Alias:
		n := 3
		if v.ID[3]|v.ID[4] != 0 {
			n = 5
		}
		return appendRef(b, v.Node, v.Creation, v.ID[:n])
	case Ref:
		if v.Len < 1 || v.Len > 5 {
			return b, fmt.Errorf("%w: reference with %d words", ErrInvalidTerm, v.Len)
		}
		return appendRef(b, v.Node, v.Creation, v.ID[:v.Len])
	case etf.Port:
		b = append(b, tagNewPort)
		b, err := appendAtom(b, v.Node)
		if err != nil {
			return b, err
		}
		b = binary.BigEndian.AppendUint32(b, v.ID)
		return binary.BigEndian.AppendUint32(b, v.Creation), nil
	case Port:
		b = append(b, tagV4Port)
		b, err := appendAtom(b, v.Node)
		if err != nil {
			return b, err
		}
		b = binary.BigEndian.AppendUint64(b, v.ID)
		return binary.BigEndian.AppendUint32(b, v.Creation), nil
	case etf.Export:
		if v.Arity < 0 || v.Arity > 255 {
			return b, fmt.Errorf("%w: export fun arity %d", ErrInvalidTerm, v.Arity)
		}
		b = append(b, tagExport)
		b, err := appendAtom(b, v.Module)
		if err != nil {
			return b, err
		}
		if b, err = appendAtom(b, v.Function); err != nil {
			return b, err
		}
		return append(b, tagSmallInteger, byte(v.Arity)), nil
	case etf.Function:
		return e.fun(b, v, depth)
	case Local:
		b = append(b, tagLocal)
		return append(b, v.Raw...), nil
	case etf.String:
		return appendBinaryString(b, string(v)), nil
	case etf.Charlist:
		return e.charlist(b, string(v)), nil
	case []etf.Term:
		return e.list(b, etf.List(v), depth)
	}
	return b, fmt.Errorf("%w: %T", ErrUnsupportedType, t)
}

func appendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0 && v <= 255:
		return append(b, tagSmallInteger, byte(v))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		b = append(b, tagInteger)
		return binary.BigEndian.AppendUint32(b, uint32(int32(v)))
	}
	sign := byte(0)
	u := uint64(v)
	if v < 0 {
		sign = 1
		u = uint64(-v) // MinInt64 wraps to 1<<63, which is its magnitude
	}
	return appendSmallBig(b, sign, u)
}

func appendUint(b []byte, u uint64) []byte {
	if u <= math.MaxInt64 {
		return appendInt(b, int64(u))
	}
	return appendSmallBig(b, 0, u)
}

func appendSmallBig(b []byte, sign byte, u uint64) []byte {
	n := 0
	for x := u; x != 0; x >>= 8 {
		n++
	}
	b = append(b, tagSmallBig, byte(n), sign)
	for i := 0; i < n; i++ {
		b = append(b, byte(u>>(8*i)))
	}
	return b
}

func appendBig(b []byte, v *big.Int) []byte {
	if v.IsInt64() {
		return appendInt(b, v.Int64())
	}
	if v.IsUint64() {
		return appendUint(b, v.Uint64())
	}
	mag := v.Bytes() // big-endian magnitude, no leading zeros
	n := len(mag)
	sign := byte(0)
	if v.Sign() < 0 {
		sign = 1
	}
	if n <= 255 {
		b = append(b, tagSmallBig, byte(n), sign)
	} else {
		b = append(b, tagLargeBig)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
		b = append(b, sign)
	}
	for i := n - 1; i >= 0; i-- {
		b = append(b, mag[i])
	}
	return b
}

func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, fmt.Errorf("%w: float %v (Erlang floats are finite)", ErrInvalidTerm, f)
	}
	b = append(b, tagNewFloat)
	return binary.BigEndian.AppendUint64(b, math.Float64bits(f)), nil
}

func appendAtom(b []byte, a etf.Atom) ([]byte, error) {
	n := len(a)
	if n <= 255 {
		if n > 0 && !isASCII(string(a)) && !utf8.ValidString(string(a)) {
			return b, fmt.Errorf("%w: atom %q is not valid UTF-8", ErrInvalidTerm, string(a))
		}
		b = append(b, tagSmallAtomUTF8, byte(n))
		return append(b, a...), nil
	}
	if !utf8.ValidString(string(a)) {
		return b, fmt.Errorf("%w: atom %q is not valid UTF-8", ErrInvalidTerm, string(a))
	}
	if utf8.RuneCountInString(string(a)) > 255 {
		return b, fmt.Errorf("%w: atom of %d characters (the BEAM allows 255)", ErrInvalidTerm, utf8.RuneCountInString(string(a)))
	}
	b = append(b, tagAtomUTF8)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	return append(b, a...), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func appendBinary(b []byte, v []byte) []byte {
	b = append(b, tagBinary)
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

func appendBinaryString(b []byte, v string) []byte {
	b = append(b, tagBinary)
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// appendString writes a Go string as the Erlang list of its bytes, the way
// the BEAM does: STRING_EXT up to 65535 bytes, LIST_EXT beyond.
func appendString(b []byte, s string) []byte {
	if len(s) <= 65535 {
		b = append(b, tagString)
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		return append(b, s...)
	}
	b = append(b, tagList)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	for i := 0; i < len(s); i++ {
		b = append(b, tagSmallInteger, s[i])
	}
	return append(b, tagNil)
}

func (e *encoder) charlist(b []byte, s string) []byte {
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return append(b, tagNil)
	}
	bytesOnly := n <= 65535
	for _, r := range s {
		if r > 255 {
			bytesOnly = false
			break
		}
	}
	if bytesOnly {
		b = append(b, tagString)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		for _, r := range s {
			b = append(b, byte(r))
		}
		return b
	}
	b = append(b, tagList)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	for _, r := range s {
		b = appendInt(b, int64(r))
	}
	return append(b, tagNil)
}

func appendPid(b []byte, p etf.Pid) ([]byte, error) {
	b = append(b, tagNewPid)
	b, err := appendAtom(b, p.Node)
	if err != nil {
		return b, err
	}
	b = binary.BigEndian.AppendUint32(b, uint32(p.ID))
	b = binary.BigEndian.AppendUint32(b, uint32(p.ID>>32))
	return binary.BigEndian.AppendUint32(b, p.Creation), nil
}

func appendRef(b []byte, node etf.Atom, creation uint32, words []uint32) ([]byte, error) {
	b = append(b, tagNewerRef)
	b = binary.BigEndian.AppendUint16(b, uint16(len(words)))
	b, err := appendAtom(b, node)
	if err != nil {
		return b, err
	}
	b = binary.BigEndian.AppendUint32(b, creation)
	for _, w := range words {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	return b, nil
}

// terms writes the elements of a list or tuple at depth.
func (e *encoder) terms(b []byte, elems []etf.Term, depth int) ([]byte, error) {
	var err error
	for _, x := range elems {
		if b, err = e.term(b, x, depth+1); err != nil {
			return b, err
		}
	}
	return b, nil
}

func (e *encoder) tuple(b []byte, t etf.Tuple, depth int) ([]byte, error) {
	if len(t) < 256 {
		b = append(b, tagSmallTuple, byte(len(t)))
	} else {
		b = append(b, tagLargeTuple)
		b = binary.BigEndian.AppendUint32(b, uint32(len(t)))
	}
	return e.terms(b, t, depth)
}

func (e *encoder) list(b []byte, l etf.List, depth int) ([]byte, error) {
	if len(l) == 0 {
		return append(b, tagNil), nil
	}
	b = append(b, tagList)
	b = binary.BigEndian.AppendUint32(b, uint32(len(l)))
	b, err := e.terms(b, l, depth)
	if err != nil {
		return b, err
	}
	return append(b, tagNil), nil
}

func (e *encoder) improper(b []byte, l etf.ListImproper, depth int) ([]byte, error) {
	if len(l) < 2 {
		return b, fmt.Errorf("%w: improper list with %d elements (at least one element and a tail are needed)", ErrInvalidTerm, len(l))
	}
	b = append(b, tagList)
	b = binary.BigEndian.AppendUint32(b, uint32(len(l)-1))
	return e.terms(b, l, depth)
}

// etfMap writes the keys in the BEAM's map-key order, which is the order the
// BEAM itself writes maps of up to 32 keys, so those re-encode byte for byte.
func (e *encoder) etfMap(b []byte, m etf.Map, depth int) ([]byte, error) {
	b = append(b, tagMap)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
	var small [16]etf.Term
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	if len(keys) > 1 {
		slices.SortFunc(keys, func(x, y etf.Term) int {
			if ax, ok := x.(etf.Atom); ok {
				if ay, ok := y.(etf.Atom); ok {
					return strings.Compare(string(ax), string(ay))
				}
			}
			return compare(x, y, true)
		})
	}
	var err error
	for _, k := range keys {
		if b, err = e.term(b, k, depth+1); err != nil {
			return b, err
		}
		if b, err = e.term(b, m[k], depth+1); err != nil {
			return b, err
		}
	}
	return b, nil
}

func (e *encoder) pairs(b []byte, m Map, depth int) ([]byte, error) {
	b = append(b, tagMap)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
	var err error
	for _, p := range m {
		if b, err = e.term(b, p.Key, depth+1); err != nil {
			return b, err
		}
		if b, err = e.term(b, p.Value, depth+1); err != nil {
			return b, err
		}
	}
	return b, nil
}

func appendInt32Small(b []byte, v uint32) []byte {
	if v <= 255 {
		return append(b, tagSmallInteger, byte(v))
	}
	b = append(b, tagInteger)
	return binary.BigEndian.AppendUint32(b, v)
}

func (e *encoder) fun(b []byte, f etf.Function, depth int) ([]byte, error) {
	start := len(b)
	b = append(b, tagNewFun, 0, 0, 0, 0, f.Arity)
	b = append(b, f.Unique[:]...)
	b = binary.BigEndian.AppendUint32(b, f.Index)
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.FreeVars)))
	b, err := appendAtom(b, f.Module)
	if err != nil {
		return b, err
	}
	b = appendInt32Small(b, f.OldIndex)
	b = appendInt32Small(b, f.OldUnique)
	if b, err = appendPid(b, f.Pid); err != nil {
		return b, err
	}
	for _, x := range f.FreeVars {
		if b, err = e.term(b, x, depth+1); err != nil {
			return b, err
		}
	}
	size := len(b) - start - 1
	binary.BigEndian.PutUint32(b[start+1:], uint32(size))
	return b, nil
}
