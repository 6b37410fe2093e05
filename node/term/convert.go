package term

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/ergo-services/ergo/etf"
)

// Errors of Marshal and Unmarshal; the error returned is a *FieldError
// naming the field, wrapping one of them.
var (
	// ErrMissingField: the map has no key for a struct field that is not
	// marked optional.
	ErrMissingField = errors.New("term: missing field")
	// ErrTypeMismatch: the Erlang value cannot be stored in the Go field, or
	// the map is not the expected Elixir struct.
	ErrTypeMismatch = errors.New("term: type mismatch")
)

// FieldError reports which field of which Go type failed, and why.
type FieldError struct {
	Path string   // Go path of the field, e.g. "User.Address.City"
	Key  string   // the map key that was looked up
	Want string   // the Go type of the field
	Got  etf.Term // the Erlang value found (nil when the key is missing)
	Err  error    // ErrMissingField or ErrTypeMismatch
}

func (e *FieldError) Error() string {
	if errors.Is(e.Err, ErrMissingField) {
		return fmt.Sprintf("term: field %s (key %s, Go type %s): missing from the map", e.Path, e.Key, e.Want)
	}
	return fmt.Sprintf("term: field %s (key %s): cannot store Erlang %s %s in Go type %s",
		e.Path, e.Key, erlangKind(e.Got), clip(Format(e.Got)), e.Want)
}

func (e *FieldError) Unwrap() error { return e.Err }

func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// erlangKind names the Erlang type of a term for error messages.
func erlangKind(t etf.Term) string {
	switch rank(t) {
	case rankNumber:
		if _, _, _, _, k := numParts(t); k == 3 {
			return "float"
		}
		return "integer"
	case rankAtom:
		return "atom"
	case rankRef:
		return "reference"
	case rankFun:
		return "fun"
	case rankPort:
		return "port"
	case rankPid:
		return "pid"
	case rankTuple:
		return "tuple"
	case rankMap:
		return "map"
	case rankNil, rankList:
		return "list"
	case rankBits:
		return "binary"
	}
	return "term"
}

// StructOption adjusts Marshal and Unmarshal.
type StructOption struct {
	name       etf.Atom
	stringKeys bool
}

// WithStructName makes Marshal write an Elixir struct ("__struct__" =>
// name, e.g. 'Elixir.MyApp.User') and Unmarshal require that name.
func WithStructName(name etf.Atom) StructOption { return StructOption{name: name} }

// WithStringKeys makes Marshal write binary keys (<<"name">>) instead of
// atom keys. Unmarshal always accepts both.
func WithStringKeys() StructOption { return StructOption{stringKeys: true} }

const structKey = "__struct__"

// Struct tags: `erl:"key"` names the map key (default: the field name in
// snake_case, as Elixir writes it), `erl:"key,optional"` lets the key be
// missing (the field keeps its value), `erl:"-"` skips the field. A field
// tagged `erl:"__struct__"` (type etf.Atom or string) receives the struct
// name on Unmarshal and supplies it on Marshal.
type fieldInfo struct {
	index    int
	key      string
	optional bool
	isName   bool
}

var fieldCache sync.Map // reflect.Type -> []fieldInfo

func structFields(t reflect.Type) []fieldInfo {
	if v, ok := fieldCache.Load(t); ok {
		return v.([]fieldInfo)
	}
	var out []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("erl")
		if tag == "-" {
			continue
		}
		name, flags, _ := strings.Cut(tag, ",")
		if name == "" {
			name = snakeCase(f.Name)
		}
		out = append(out, fieldInfo{index: i, key: name, optional: flags == "optional", isName: name == structKey})
	}
	fieldCache.Store(t, out)
	return out
}

func snakeCase(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mapLookup finds key k as an atom or as a binary.
func mapLookup(m etf.Term, k string) (etf.Term, bool) {
	switch v := m.(type) {
	case etf.Map:
		if x, ok := v[etf.Atom(k)]; ok {
			return x, true
		}
		if k == "true" || k == "false" {
			x, ok := v[k == "true"]
			return x, ok
		}
	case Map:
		for _, p := range v {
			switch key := p.Key.(type) {
			case etf.Atom:
				if string(key) == k {
					return p.Value, true
				}
			case []byte:
				if string(key) == k {
					return p.Value, true
				}
			}
		}
	}
	return nil, false
}

// Unmarshal stores an Erlang map or Elixir struct (atom or binary keys)
// into the struct v points to, field by field (see the erl struct tag).
// Keys without a field are ignored. Errors are *FieldError values wrapping
// ErrMissingField or ErrTypeMismatch.
func Unmarshal(t etf.Term, v any, opts ...StructOption) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("%w: Unmarshal needs a non-nil pointer to a struct, got %T", ErrTypeMismatch, v)
	}
	var want etf.Atom
	for _, o := range opts {
		if o.name != "" {
			want = o.name
		}
	}
	root := rv.Elem().Type().Name()
	if want != "" {
		got, ok := mapLookup(t, structKey)
		if a, isAtom := got.(etf.Atom); !ok || !isAtom || a != want {
			return &FieldError{Path: root, Key: structKey, Want: "struct " + string(want), Got: got, Err: ErrTypeMismatch}
		}
	}
	return fromTerm(t, rv.Elem(), root, structKey)
}

var (
	atomType = reflect.TypeFor[etf.Atom]()
	bytesTyp = reflect.TypeFor[[]byte]()
)

func fromTerm(t etf.Term, dst reflect.Value, path, key string) error {
	mismatch := func() error {
		return &FieldError{Path: path, Key: key, Want: dst.Type().String(), Got: t, Err: ErrTypeMismatch}
	}
	if t != nil && dst.Kind() != reflect.Interface && reflect.TypeOf(t) == dst.Type() &&
		dst.Kind() != reflect.Struct {
		dst.Set(reflect.ValueOf(t))
		return nil
	}
	switch dst.Kind() {
	case reflect.Interface:
		if a, ok := t.(etf.Atom); ok && a == "nil" {
			t = nil // Elixir's nil
		}
		if t == nil {
			dst.SetZero()
			return nil
		}
		if !reflect.TypeOf(t).AssignableTo(dst.Type()) {
			return mismatch()
		}
		dst.Set(reflect.ValueOf(t))
		return nil
	case reflect.Pointer:
		if a, ok := t.(etf.Atom); ok && (a == "nil" || a == "undefined") {
			dst.SetZero()
			return nil
		}
		p := reflect.New(dst.Type().Elem())
		if err := fromTerm(t, p.Elem(), path, key); err != nil {
			return err
		}
		dst.Set(p)
		return nil
	case reflect.String:
		switch v := t.(type) {
		case []byte:
			dst.SetString(string(v))
		case string:
			dst.SetString(v)
		case etf.Atom:
			dst.SetString(string(v))
		case bool:
			dst.SetString(atomText(v))
		case etf.List:
			rs := make([]rune, len(v))
			for i, x := range v {
				c, ok := x.(int64)
				if !ok || c < 0 || c > unicode.MaxRune {
					return mismatch()
				}
				rs[i] = rune(c)
			}
			dst.SetString(string(rs))
		default:
			return mismatch()
		}
		return nil
	case reflect.Bool:
		b, ok := t.(bool)
		if !ok {
			return mismatch()
		}
		dst.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := t.(int64)
		if !ok || dst.OverflowInt(i) {
			return mismatch()
		}
		dst.SetInt(i)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		switch v := t.(type) {
		case int64:
			if v < 0 || dst.OverflowUint(uint64(v)) {
				return mismatch()
			}
			dst.SetUint(uint64(v))
		case *big.Int:
			if !v.IsUint64() || dst.OverflowUint(v.Uint64()) {
				return mismatch()
			}
			dst.SetUint(v.Uint64())
		default:
			return mismatch()
		}
		return nil
	case reflect.Float32, reflect.Float64:
		switch v := t.(type) {
		case float64:
			if dst.OverflowFloat(v) {
				return mismatch()
			}
			dst.SetFloat(v)
		case int64:
			dst.SetFloat(float64(v))
		default:
			return mismatch()
		}
		return nil
	case reflect.Slice:
		if dst.Type() == bytesTyp || dst.Type().Elem().Kind() == reflect.Uint8 {
			if b, ok := t.([]byte); ok {
				dst.SetBytes(slices.Clone(b))
				return nil
			}
		}
		elems, ok := ListElements(t)
		if !ok || t == nil {
			return mismatch()
		}
		out := reflect.MakeSlice(dst.Type(), len(elems), len(elems))
		for i, x := range elems {
			if err := fromTerm(x, out.Index(i), fmt.Sprintf("%s[%d]", path, i), key); err != nil {
				return err
			}
		}
		dst.Set(out)
		return nil
	case reflect.Map:
		var pairs []Pair
		switch v := t.(type) {
		case etf.Map:
			for k, x := range v {
				pairs = append(pairs, Pair{k, x})
			}
		case Map:
			pairs = v
		default:
			return mismatch()
		}
		out := reflect.MakeMapWithSize(dst.Type(), len(pairs))
		for _, p := range pairs {
			kv := reflect.New(dst.Type().Key()).Elem()
			ks := Format(p.Key)
			if err := fromTerm(p.Key, kv, path+"[key]", ks); err != nil {
				return err
			}
			vv := reflect.New(dst.Type().Elem()).Elem()
			if err := fromTerm(p.Value, vv, path+"["+ks+"]", ks); err != nil {
				return err
			}
			out.SetMapIndex(kv, vv)
		}
		dst.Set(out)
		return nil
	case reflect.Struct:
		if _, ok := t.(etf.Map); !ok {
			if _, ok := t.(Map); !ok {
				if reflect.TypeOf(t) == dst.Type() {
					dst.Set(reflect.ValueOf(t))
					return nil
				}
				return mismatch()
			}
		}
		for _, f := range structFields(dst.Type()) {
			fv := dst.Field(f.index)
			fpath := path + "." + dst.Type().Field(f.index).Name
			x, ok := mapLookup(t, f.key)
			if !ok {
				if f.optional || f.isName {
					continue
				}
				return &FieldError{Path: fpath, Key: f.key, Want: fv.Type().String(), Err: ErrMissingField}
			}
			if err := fromTerm(x, fv, fpath, f.key); err != nil {
				return err
			}
		}
		return nil
	}
	return mismatch()
}

// Marshal converts a Go value into a term: a struct becomes a map with atom
// keys (binary keys with WithStringKeys), and an Elixir struct when a name
// is given (WithStructName, or a non-empty field tagged erl:"__struct__").
// Go strings become binaries (Elixir strings), nil pointers the atom nil,
// slices lists, Go maps maps; etf and term values pass through unchanged.
func Marshal(v any, opts ...StructOption) (etf.Term, error) {
	var o StructOption
	for _, x := range opts {
		if x.name != "" {
			o.name = x.name
		}
		if x.stringKeys {
			o.stringKeys = true
		}
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	name := "value"
	if rv.IsValid() {
		name = rv.Type().Name()
	}
	return toTerm(rv, o, name, true)
}

func toTerm(v reflect.Value, o StructOption, path string, top bool) (etf.Term, error) {
	if !v.IsValid() {
		return etf.Atom("nil"), nil
	}
	if v.Type() == atomType {
		return etf.Atom(v.String()), nil
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return etf.Atom("nil"), nil
		}
		inner := v.Elem()
		if isTermValue(inner) {
			return inner.Interface(), nil
		}
		return toTerm(inner, o, path, false)
	case reflect.Pointer:
		if v.IsNil() {
			return etf.Atom("nil"), nil
		}
		return toTerm(v.Elem(), o, path, false)
	case reflect.String:
		return []byte(v.String()), nil
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := v.Uint()
		if u > math.MaxInt64 {
			return new(big.Int).SetUint64(u), nil
		}
		return int64(u), nil
	case reflect.Float32, reflect.Float64:
		return v.Float(), nil
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return slices.Clone(v.Bytes()), nil
		}
		if isTermValue(v) {
			return v.Interface(), nil
		}
		l := make(etf.List, v.Len())
		for i := range l {
			x, err := toTerm(v.Index(i), o, fmt.Sprintf("%s[%d]", path, i), false)
			if err != nil {
				return nil, err
			}
			l[i] = x
		}
		return l, nil
	case reflect.Map:
		if isTermValue(v) {
			return v.Interface(), nil
		}
		var pairs Map
		it := v.MapRange()
		for it.Next() {
			k, err := toTerm(it.Key(), o, path+"[key]", false)
			if err != nil {
				return nil, err
			}
			x, err := toTerm(it.Value(), o, path+"["+fmt.Sprint(it.Key().Interface())+"]", false)
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, Pair{k, x})
		}
		slices.SortFunc(pairs, func(a, b Pair) int { return compare(a.Key, b.Key, true) })
		return pairsToTerm(pairs), nil
	case reflect.Struct:
		if isTermValue(v) {
			return v.Interface(), nil
		}
		var pairs Map
		var name etf.Atom
		if top {
			name = o.name
		}
		for _, f := range structFields(v.Type()) {
			fv := v.Field(f.index)
			if f.isName {
				if name == "" && fv.Kind() == reflect.String {
					name = etf.Atom(fv.String())
				}
				continue
			}
			x, err := toTerm(fv, o, path+"."+v.Type().Field(f.index).Name, false)
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, Pair{mapKey(f.key, o), x})
		}
		if name != "" {
			pairs = append(pairs, Pair{mapKey(structKey, o), name})
		}
		return pairsToTerm(pairs), nil
	}
	return nil, &FieldError{Path: path, Key: "-", Want: "an Erlang-representable value", Got: etf.Atom(v.Type().String()), Err: ErrTypeMismatch}
}

func mapKey(k string, o StructOption) etf.Term {
	if o.stringKeys && k != structKey {
		return []byte(k)
	}
	return etf.Atom(k)
}

func pairsToTerm(pairs Map) etf.Term {
	m := make(etf.Map, len(pairs))
	for _, p := range pairs {
		if !isHashable(p.Key) {
			return pairs
		}
		m[p.Key] = p.Value
	}
	return m
}

// isTermValue reports whether v already is a codec value (etf or term type).
func isTermValue(v reflect.Value) bool {
	switch v.Interface().(type) {
	case etf.Tuple, etf.List, etf.ListImproper, etf.Map, Map, etf.Pid, etf.Ref, etf.Alias, etf.Port,
		etf.Export, etf.Function, Ref, Port, BitString, Local, *big.Int, etf.Atom:
		return true
	}
	return false
}
