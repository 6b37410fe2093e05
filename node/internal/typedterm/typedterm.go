// Package typedterm converts between terms and the Go values of typed
// handlers (node/genserver's TypedServer) and Node.CallInto: per-type plans
// built once (Plan), so that a message costs no reflection beyond setting
// the values, and a marshalling that also reaches into tuples and lists.
//
// It follows node/term's rules (term.Marshal, term.Unmarshal) and adds two
// things they do not do:
//
//   - Encode converts the elements of etf.Tuple and etf.List values too
//     (term.Marshal passes those through unchanged, so a Go string inside
//     an etf.Tuple would reach Elixir as a charlist);
//   - a Plan decodes into any Go type term.Unmarshal can store into a
//     struct field, not only into a struct: string, int, []int, maps... It
//     does so by term.Unmarshal into a one-field struct when its own fast
//     paths (binary -> string, integer -> int, atom -> node.Atom, ...) do
//     not apply, so the rules stay term's.
//
// Only node and node/genserver import it.
package typedterm

import (
	"fmt"
	"math/big"
	"reflect"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/node/term"
)

// Decoder stores a term into dst (an addressable value of the planned type).
type Decoder func(t etf.Term, dst reflect.Value) error

var (
	atomType  = reflect.TypeFor[etf.Atom]()
	bytesType = reflect.TypeFor[[]byte]()
)

// Plan returns the decoder for Go type typ, or an error saying why no term
// can be stored in it (a channel, a function, a complex number, an
// interface with methods, anywhere inside typ).
func Plan(typ reflect.Type) (Decoder, error) {
	if err := Decodable(typ); err != nil {
		return nil, err
	}
	switch {
	case typ == atomType:
		return decodeAtom(typ), nil
	case typ.Kind() == reflect.String:
		return decodeString(typ), nil
	case typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Int64:
		return decodeInt(typ), nil
	case typ.Kind() == reflect.Bool:
		return decodeBool(typ), nil
	case typ.Kind() == reflect.Float64 || typ.Kind() == reflect.Float32:
		return decodeFloat(typ), nil
	case typ.Kind() == reflect.Interface:
		return decodeAny(typ), nil
	case typ.Kind() == reflect.Struct && !isEtfStruct(typ):
		return decodeStruct(typ), nil
	}
	return decodeWrapped(typ), nil
}

// isEtfStruct: etf's struct types (Pid, Ref, ...), stored as they are.
func isEtfStruct(typ reflect.Type) bool { return typ.PkgPath() == atomType.PkgPath() }

func decodeAtom(typ reflect.Type) Decoder {
	slow := decodeWrapped(typ)
	return func(t etf.Term, dst reflect.Value) error {
		if a, ok := t.(etf.Atom); ok {
			dst.SetString(string(a))
			return nil
		}
		return slow(t, dst)
	}
}

func decodeString(typ reflect.Type) Decoder {
	slow := decodeWrapped(typ)
	return func(t etf.Term, dst reflect.Value) error {
		if v, ok := t.([]byte); ok {
			dst.SetString(string(v))
			return nil
		}
		return slow(t, dst) // a charlist: its code points UTF-8 encoded (term.Unmarshal)
	}
}

func decodeInt(typ reflect.Type) Decoder {
	slow := decodeWrapped(typ)
	return func(t etf.Term, dst reflect.Value) error {
		if i, ok := t.(int64); ok && !dst.OverflowInt(i) {
			dst.SetInt(i)
			return nil
		}
		return slow(t, dst)
	}
}

func decodeBool(typ reflect.Type) Decoder {
	slow := decodeWrapped(typ)
	return func(t etf.Term, dst reflect.Value) error {
		if b, ok := t.(bool); ok {
			dst.SetBool(b)
			return nil
		}
		return slow(t, dst)
	}
}

func decodeFloat(typ reflect.Type) Decoder {
	slow := decodeWrapped(typ)
	return func(t etf.Term, dst reflect.Value) error {
		if f, ok := t.(float64); ok && !dst.OverflowFloat(f) {
			dst.SetFloat(f)
			return nil
		}
		return slow(t, dst)
	}
}

// decodeAny: an empty interface (any, node.Term) gets term.Unmarshal's
// generic view (every map a term.Map, every list an etf.List, charlists
// included, binaries as []byte, Elixir's nil as Go nil), also inside tuples.
func decodeAny(typ reflect.Type) Decoder { return decodeWrapped(typ) }

// decodeStruct: term.Unmarshal itself, with the struct's name in its errors.
func decodeStruct(typ reflect.Type) Decoder {
	return func(t etf.Term, dst reflect.Value) error {
		return term.Unmarshal(t, dst.Addr().Interface())
	}
}

// decodeWrapped stores t through term.Unmarshal, which takes any Go type.
func decodeWrapped(reflect.Type) Decoder {
	return func(t etf.Term, dst reflect.Value) error {
		return term.Unmarshal(t, dst.Addr().Interface())
	}
}

// Decodable reports why no term can be stored in a value of Go type typ, or
// nil.
func Decodable(typ reflect.Type) error { return check(typ, map[reflect.Type]bool{}, false) }

// Encodable reports why a value of Go type typ cannot become a term, or nil.
// An interface type is accepted: what it holds is checked when encoded.
func Encodable(typ reflect.Type) error { return check(typ, map[reflect.Type]bool{}, true) }

func check(typ reflect.Type, seen map[reflect.Type]bool, encode bool) error {
	if seen[typ] {
		return nil
	}
	seen[typ] = true
	bad := func(why string) error {
		return fmt.Errorf("type %s %s", typ, why)
	}
	switch typ.Kind() {
	case reflect.Chan, reflect.Func, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer, reflect.Invalid:
		if encode {
			return bad("has no Erlang term")
		}
		return bad("cannot hold an Erlang term")
	case reflect.Interface:
		if !encode && typ.NumMethod() > 0 {
			return bad("is an interface with methods, which no term implements (use any or node.Term)")
		}
	case reflect.Array:
		if !encode {
			return bad("is an array (use a slice)")
		}
		return check(typ.Elem(), seen, encode)
	case reflect.Pointer, reflect.Slice:
		return check(typ.Elem(), seen, encode)
	case reflect.Map:
		if err := check(typ.Key(), seen, encode); err != nil {
			return err
		}
		return check(typ.Elem(), seen, encode)
	case reflect.Struct:
		if isEtfStruct(typ) || typ == reflect.TypeFor[big.Int]() {
			return nil
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() || f.Tag.Get("erl") == "-" {
				continue
			}
			if err := check(f.Type, seen, encode); err != nil {
				return fmt.Errorf("field %s.%s: %w", typ, f.Name, err)
			}
		}
	}
	return nil
}

// Encode converts a Go value into a term as term.Marshal does (strings as
// binaries, structs and maps as maps, slices as lists), and also converts
// the elements of etf.Tuple and etf.List values, which term.Marshal passes
// through as they are.
func Encode(v any) (etf.Term, error) {
	t, _, err := encode(v)
	return t, err
}

// encode also reports whether the term differs from v, so a tuple or list
// whose elements need no conversion is not copied.
func encode(v any) (etf.Term, bool, error) {
	switch x := v.(type) {
	case nil:
		return etf.Atom("nil"), true, nil
	case etf.Atom, int64, []byte, bool, float64, etf.Pid, etf.Ref, etf.Alias:
		return x, false, nil
	case string:
		return []byte(x), true, nil
	case int:
		return int64(x), true, nil
	case etf.Tuple:
		out, changed, err := encodeSeq(x)
		if err != nil || !changed {
			return x, false, err
		}
		return etf.Tuple(out), true, nil
	case etf.List:
		out, changed, err := encodeSeq(x)
		if err != nil || !changed {
			return x, false, err
		}
		return etf.List(out), true, nil
	}
	t, err := term.Marshal(v)
	return t, true, err
}

func encodeSeq(elems []etf.Term) ([]etf.Term, bool, error) {
	var out []etf.Term
	for i, e := range elems {
		t, changed, err := encode(e)
		if err != nil {
			return nil, false, fmt.Errorf("element %d: %w", i+1, err)
		}
		if changed && out == nil {
			out = make([]etf.Term, len(elems))
			copy(out, elems[:i])
		}
		if out != nil {
			out[i] = t
		}
	}
	return out, out != nil, nil
}

// EncodeValue is Encode for a reflect.Value, with fast paths for the
// common scalar kinds (no boxing of the value first).
func EncodeValue(v reflect.Value) (etf.Term, error) {
	if v.Type() == atomType {
		return etf.Atom(v.String()), nil
	}
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		if s == "" {
			return []byte{}, nil
		}
		return []byte(s), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Float32, reflect.Float64:
		return v.Float(), nil
	case reflect.Interface:
		if v.IsNil() {
			return etf.Atom("nil"), nil
		}
		return Encode(v.Elem().Interface())
	}
	if v.Kind() == reflect.Slice && v.Type() == bytesType {
		return v.Interface(), nil
	}
	return Encode(v.Interface())
}

// Into decodes t into the value out points to (any decodable type; a
// struct through term.Unmarshal).
func Into(t etf.Term, out any) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: decoding needs a non-nil pointer, got %T", term.ErrTypeMismatch, out)
	}
	dec, err := Plan(rv.Type().Elem())
	if err != nil {
		return fmt.Errorf("%w: %w", term.ErrTypeMismatch, err)
	}
	return dec(t, rv.Elem())
}
