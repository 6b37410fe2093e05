package term

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/ergo-services/ergo/etf"
)

// Errors of Marshal and Unmarshal. Every error they return is a
// *FieldError naming the place in the value, wrapping one of these (or
// ErrUnsupportedType for a Go value Marshal cannot convert).
var (
	// ErrMissingField: the map or keyword list has no key for a struct
	// field that is not marked optional or omitempty.
	ErrMissingField = errors.New("term: missing field")
	// ErrTypeMismatch: the Erlang value cannot be stored in the Go value,
	// or the map is not the expected Elixir struct.
	ErrTypeMismatch = errors.New("term: type mismatch")
	// ErrDuplicateKey: two keys of one Erlang map fill the same Go field or
	// map key (an atom key and a binary key of the same name, as in
	// %{"a" => 1, a: 2}).
	ErrDuplicateKey = errors.New("term: duplicate key")
	// ErrTooDeep: the value is nested deeper than DefaultMaxDepth (or is
	// cyclic: a Go value that contains itself).
	ErrTooDeep = errors.New("term: nested too deep")
	// ErrBadTag: an erl struct tag of the Go type has an unknown option or
	// one that does not fit its field (a mistake in the program, reported
	// by every Marshal and Unmarshal of the type rather than ignored).
	ErrBadTag = errors.New("term: bad erl struct tag")
)

// FieldError reports where in a value Marshal or Unmarshal failed, and why.
type FieldError struct {
	// Path is the place of the failing value, starting from the Go type's
	// name ("value" for a type without one, such as []int): struct keys as
	// ".key" (the erl tag's key, as the Erlang side names it), list and
	// tuple elements as "[2]", the value under a map key as the key in
	// Erlang syntax ("[a]", "[<<"a">>]"), a map key itself as "[key k]";
	// e.g. "Event.items[2]".
	Path string
	// Key is the last map key looked up ("" when there was none).
	Key string
	// Want is the Go type expected.
	Want string
	// Got is the Erlang value found (nil when the key is missing).
	Got etf.Term
	// Err is (or wraps) ErrMissingField, ErrTypeMismatch, ErrDuplicateKey,
	// ErrTooDeep, ErrBadTag or ErrUnsupportedType.
	Err error

	rev []string // path segments, innermost first, while unwinding
}

func (e *FieldError) Error() string {
	where := e.Path
	if where == "" {
		where = "value"
	}
	switch {
	case errors.Is(e.Err, ErrMissingField):
		return fmt.Sprintf("term: %s: missing (want %s)", where, e.Want)
	case errors.Is(e.Err, ErrDuplicateKey):
		return fmt.Sprintf("term: %s: two keys fill the same Go key (%s)", where, clip(Format(e.Got)))
	case errors.Is(e.Err, ErrTooDeep):
		return fmt.Sprintf("term: %s: nested deeper than %d", where, DefaultMaxDepth)
	case errors.Is(e.Err, ErrBadTag):
		return fmt.Sprintf("term: %s: %s", where, strings.TrimPrefix(e.Err.Error(), "term: "))
	case errors.Is(e.Err, ErrUnsupportedType):
		return fmt.Sprintf("term: %s: Go type %s has no Erlang representation", where, e.Want)
	}
	return fmt.Sprintf("term: %s: want %s, got %s %s", where, e.Want, erlangKind(e.Got), clip(Format(e.Got)))
}

func (e *FieldError) Unwrap() error { return e.Err }

// at prepends a path segment while the error travels up.
func (e *FieldError) at(seg string) *FieldError {
	e.rev = append(e.rev, seg)
	return e
}

// finish builds Path from the root name and the collected segments.
func (e *FieldError) finish(root string) *FieldError {
	var b strings.Builder
	if root == "" {
		root = "value"
	}
	b.WriteString(root)
	for i := len(e.rev) - 1; i >= 0; i-- {
		b.WriteString(e.rev[i])
	}
	e.Path, e.rev = b.String(), nil
	return e
}

// rootName is the start of an error's path: the name of a type defined in
// a package (Event, Tuple), "" for the others (string, []int, pointers),
// which finish writes as "value".
func rootName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer && t.Name() == "" {
		t = t.Elem()
	}
	if t.PkgPath() == "" {
		return ""
	}
	return t.Name()
}

func atSeg(err error, seg string) error {
	if fe, ok := err.(*FieldError); ok {
		return fe.at(seg)
	}
	return err
}

func indexSeg(i int) string { return "[" + strconv.Itoa(i) + "]" }

func keySeg(k etf.Term) string { return "[" + clip(Format(k)) + "]" }

func clip(s string) string {
	if len(s) > 60 {
		cut := 57
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return s[:cut] + "..."
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

// Option adjusts Marshal and Unmarshal.
type Option struct {
	name       etf.Atom
	stringKeys bool
	charlists  bool
}

// StructOption is the former name of Option.
type StructOption = Option

// WithStructName makes Marshal write the top-level struct as an Elixir
// struct ("__struct__" => name, e.g. 'Elixir.MyApp.User') and Unmarshal
// require that name.
func WithStructName(name etf.Atom) Option { return Option{name: name} }

// WithStringKeys makes Marshal write struct fields with binary keys
// (<<"name">>) instead of atom keys. Unmarshal always accepts both.
func WithStringKeys() Option { return Option{stringKeys: true} }

// WithCharlists makes Unmarshal give a charlist (a non-empty list of
// Unicode code points, ~c"text" in Elixir, "text" in Erlang) as a Go
// string wherever the target is an interface (any, etf.Term), instead of a
// list of integers. A string target takes charlists without it.
func WithCharlists() Option { return Option{charlists: true} }

func merge(opts []Option) Option {
	var o Option
	for _, x := range opts {
		if x.name != "" {
			o.name = x.name
		}
		o.stringKeys = o.stringKeys || x.stringKeys
		o.charlists = o.charlists || x.charlists
	}
	return o
}

const structKey = "__struct__"

// fieldInfo is one struct field as the erl tag describes it.
type fieldInfo struct {
	index     int
	key       string
	optional  bool     // optional or omitempty: may be missing on Unmarshal
	omitEmpty bool     // Marshal leaves out a zero value
	charlist  bool     // a string written as a charlist; an interface given charlists as strings
	isName    bool     // the __struct__ field
	module    etf.Atom // the Elixir module the type stands for (on the __struct__ field)
	blank     bool     // a `_` field: carries only its tag
}

type typeInfo struct {
	fields []fieldInfo
	module etf.Atom
	// closed: no exported field, but unexported ones (time.Time,
	// strings.Reader): not a record, and not convertible field by field.
	closed bool
	// err: an erl tag of the type is wrong (ErrBadTag).
	err error
}

var fieldCache sync.Map // reflect.Type -> *typeInfo

func structInfo(t reflect.Type) *typeInfo {
	if v, ok := fieldCache.Load(t); ok {
		return v.(*typeInfo)
	}
	ti := &typeInfo{}
	exported := 0
	bad := func(f reflect.StructField, format string, args ...any) {
		if ti.err == nil {
			ti.err = fmt.Errorf("%w: field %s: %s", ErrBadTag, f.Name, fmt.Sprintf(format, args...))
		}
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, tagged := f.Tag.Lookup("erl")
		blank := f.Name == "_"
		if f.IsExported() {
			exported++
		}
		if (!f.IsExported() && !blank) || tag == "-" || (blank && !tagged) {
			continue
		}
		name, flags, _ := strings.Cut(tag, ",")
		if name == "" {
			name = snakeCase(f.Name)
		}
		fi := fieldInfo{index: i, key: name, isName: name == structKey, blank: blank}
		for flags != "" {
			var fl string
			fl, flags, _ = strings.Cut(flags, ",")
			switch {
			case fl == "optional":
				fi.optional = true
			case fl == "omitempty":
				fi.optional, fi.omitEmpty = true, true
			case fl == "charlist":
				fi.charlist = true
				if k := f.Type.Kind(); k != reflect.String && k != reflect.Interface {
					bad(f, "charlist applies to a string or interface field, not %s", f.Type)
				}
			case strings.HasPrefix(fl, "module=") && fi.isName:
				fi.module = etf.Atom(strings.TrimPrefix(fl, "module="))
			case strings.HasPrefix(fl, "module="):
				bad(f, "module= belongs on the field named __struct__")
			default:
				bad(f, "unknown option %q (want optional, omitempty, charlist or module=)", fl)
			}
		}
		if fi.isName && fi.module != "" {
			ti.module = fi.module
		}
		if blank && !fi.isName {
			bad(f, `a _ field carries only erl:"__struct__,module=..."`)
			continue
		}
		ti.fields = append(ti.fields, fi)
	}
	ti.closed = exported == 0 && ti.module == "" && t.NumField() > 0
	fieldCache.Store(t, ti)
	return ti
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

// keyName returns the text of a key that can name a struct field or a
// string map key: an atom or a binary.
func keyName(k etf.Term) (string, bool) {
	switch v := k.(type) {
	case etf.Atom:
		return string(v), true
	case []byte:
		return string(v), true
	case bool:
		return atomText(v), true
	}
	return "", false
}

// entries gives the key/value pairs of a map, or of a keyword list (a list
// of 2-tuples whose first elements are atoms or binaries). kw reports a
// keyword list, whose first occurrence of a key wins, as in Keyword.get.
// With sorted, the pairs of a map come in Erlang's term order of the keys
// (Go's map order or wire order otherwise).
func entries(t etf.Term, sorted bool) (pairs []Pair, kw, ok bool) {
	switch v := t.(type) {
	case etf.Map:
		pairs = make([]Pair, 0, len(v))
		for k, x := range v {
			pairs = append(pairs, Pair{k, x})
		}
		if sorted {
			slices.SortFunc(pairs, func(a, b Pair) int { return compare(a.Key, b.Key, true) })
		}
		return pairs, false, true
	case Map:
		if sorted {
			pairs = slices.Clone(v)
			slices.SortStableFunc(pairs, func(a, b Pair) int { return compare(a.Key, b.Key, true) })
			return pairs, false, true
		}
		return v, false, true
	case etf.List:
		pairs = make([]Pair, len(v))
		for i, x := range v {
			tu, isTuple := x.(etf.Tuple)
			if !isTuple || len(tu) != 2 {
				return nil, false, false
			}
			if _, named := keyName(tu[0]); !named {
				return nil, false, false
			}
			pairs[i] = Pair{tu[0], tu[1]}
		}
		return pairs, true, true
	case nil:
		return nil, true, true
	}
	return nil, false, false
}

// Unmarshal stores the Erlang term t into the Go value v points to.
//
// The rules, by the Go type of the target:
//
//   - string: a binary (an Elixir string), a charlist (a list of Unicode
//     code points: ~c"text" in Elixir, "text" in Erlang, UTF-8 encoded into
//     the Go string), an atom (its name) or a boolean ("true", "false").
//   - []byte: a binary, or a list of integers 0..255.
//   - []T, [N]T: a list, each element unmarshalled into T; a list of small
//     integers such as [1,2,3] is a list here, never a string. A [N]T also
//     takes a tuple of N elements.
//   - integers, floats, bool: an Erlang integer (that fits), a float (or an
//     integer, for a float target), true or false.
//   - pointers: Elixir's nil (and Erlang's undefined) leave a nil pointer;
//     anything else is stored into a new value.
//   - struct: an Erlang map or Elixir struct, with atom keys or binary keys
//     alike, or a keyword list ([a: 1, b: 2]); each field takes the key its
//     erl tag names (see below). Keys without a field are ignored.
//   - map[K]V: a map or a keyword list; an atom key and a binary key both
//     fill a string (or etf.Atom) key, so %{"a" => 1} and %{a: 1} give the
//     same Go map.
//   - a struct with a pointer UnmarshalText method (time.Time,
//     netip.Addr...): a binary or charlist, through UnmarshalText. A struct
//     with only unexported fields and no such method takes nothing.
//   - interfaces (any, etf.Term): the generic view below.
//   - etf.Pid, etf.Ref, *big.Int and the other term types: that type.
//
// The generic view, what an interface target gets, is one Go type per
// Erlang type: binary -> []byte; integer -> int64 (*big.Int beyond int64);
// float -> float64; true/false -> bool; nil -> nil (a nil interface); other
// atoms -> etf.Atom; tuple -> etf.Tuple; list (charlists included, [] too)
// -> etf.List; improper list -> etf.ListImproper; every map, whatever its
// keys -> Map (pairs sorted in Erlang's term order of the keys); pids,
// references, ports, funs, bit strings as Decode gives them. Elements, keys
// and values are in the generic view too. It is a term as Decode would
// give it, only without its two ambiguities (a list as a Go string, a map
// as etf.Map or Map), so Format, Equal, Map.Get and Unmarshal read it as
// they read any term, and Marshal turns it back into the same Erlang term.
// With WithCharlists a non-empty charlist is a Go string (UTF-8 text)
// instead, which Marshal sends as a binary.
//
// In a map or keyword list, an atom key and a binary key that name the same
// field or Go map key are an error (ErrDuplicateKey) in a map; in a keyword
// list the first one wins, as Keyword.get does.
//
// # The erl struct tag
//
//	Name  string   `erl:"name"`           // key name (atom or binary on input)
//	Age   int      `erl:"age,optional"`   // may be missing: the field keeps its value
//	Note  string   `erl:"note,omitempty"` // optional, and Marshal leaves it out when zero
//	Path  string   `erl:"path,charlist"`  // Marshal writes a charlist, not a binary
//	Raw   any      `erl:"raw,charlist"`   // charlists arrive as Go strings (as WithCharlists)
//	Skip  int      `erl:"-"`              // not converted
//	LastSeen int64                        // no tag: key last_seen (snake_case)
//	Mod   etf.Atom `erl:"__struct__"`     // receives / supplies the Elixir struct name
//	_ struct{} `erl:"__struct__,module=Elixir.MyApp.User"` // the type is that Elixir struct
//
// Any other option is an error (ErrBadTag) from every Marshal and Unmarshal
// of the type. Unexported fields are left alone. An embedded struct is one field like
// the others (key: its type's name in snake_case), not flattened.
//
// A type that names its module (module=) marshals as that Elixir struct
// and, on Unmarshal, rejects a map whose __struct__ is another module (a
// plain map or keyword list without __struct__ is accepted).
// WithStructName does the same for the top-level value.
//
// Errors (but for a v that is not a non-nil pointer) are *FieldError
// values naming the place ("Event.items[2]: want int, got binary
// <<"x">>") and wrapping ErrMissingField, ErrTypeMismatch, ErrDuplicateKey,
// ErrTooDeep or ErrBadTag. Unmarshal does not panic on any term, stops at
// DefaultMaxDepth levels of nesting, and allocates in proportion to the
// term (a list of small integers that came as STRING_EXT takes what the
// same list decoded from LIST_EXT takes).
func Unmarshal(t etf.Term, v any, opts ...Option) error {
	if len(opts) == 0 && fastUnmarshal(t, v) {
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: Unmarshal needs a non-nil pointer, got %T", ErrTypeMismatch, v)
	}
	d := unmarshaller{opts: merge(opts)}
	dst := rv.Elem()
	if err := d.fromTerm(t, dst, d.opts.name, 0); err != nil {
		if fe, ok := err.(*FieldError); ok {
			return fe.finish(rootName(dst.Type()))
		}
		return err
	}
	return nil
}

// fastUnmarshal stores t into the most common targets without reflection;
// false leaves the work (and the error) to the general path.
func fastUnmarshal(t etf.Term, v any) bool {
	switch p := v.(type) {
	case *string:
		if s, ok := stringOf(t); ok && p != nil {
			*p = s
			return true
		}
	case *int:
		if i, ok := t.(int64); ok && p != nil && int64(int(i)) == i {
			*p = int(i)
			return true
		}
	case *int64:
		if i, ok := t.(int64); ok && p != nil {
			*p = i
			return true
		}
	case *float64:
		if f, ok := t.(float64); ok && p != nil {
			*p = f
			return true
		}
	case *bool:
		if b, ok := t.(bool); ok && p != nil {
			*p = b
			return true
		}
	case *[]byte:
		if b, ok := t.([]byte); ok && p != nil {
			*p = slices.Clone(b)
			return true
		}
	}
	return false
}

type unmarshaller struct {
	opts Option
}

var (
	atomType     = reflect.TypeFor[etf.Atom]()
	mapType      = reflect.TypeFor[Map]()
	tupleType    = reflect.TypeFor[etf.Tuple]()
	imprType     = reflect.TypeFor[etf.ListImproper]()
	bigType      = reflect.TypeFor[*big.Int]()
	charlistType = reflect.TypeFor[etf.Charlist]()
)

func mismatch(t etf.Term, dst reflect.Value) error {
	return &FieldError{Want: dst.Type().String(), Got: t, Err: ErrTypeMismatch}
}

// fromTerm stores t into dst. module, when set, is the Elixir struct name a
// struct target must carry.
func (d *unmarshaller) fromTerm(t etf.Term, dst reflect.Value, module etf.Atom, depth int) error {
	if depth > DefaultMaxDepth {
		return &FieldError{Want: dst.Type().String(), Err: ErrTooDeep}
	}
	if isOpaque(t) && reflect.TypeOf(t) == dst.Type() {
		dst.Set(reflect.ValueOf(t))
		return nil
	}
	switch dst.Kind() {
	case reflect.Interface:
		g, err := d.generic(t, d.opts.charlists, depth)
		if err != nil {
			return err
		}
		if g == nil {
			dst.SetZero()
			return nil
		}
		if !reflect.TypeOf(g).AssignableTo(dst.Type()) {
			return mismatch(t, dst)
		}
		dst.Set(reflect.ValueOf(g))
		return nil
	case reflect.Pointer:
		if a, ok := t.(etf.Atom); ok && (a == "nil" || a == "undefined") {
			dst.SetZero()
			return nil
		}
		if dst.Type() == bigType {
			if i, ok := toInt64(t); ok {
				dst.Set(reflect.ValueOf(big.NewInt(i)))
				return nil
			}
			return mismatch(t, dst)
		}
		p := reflect.New(dst.Type().Elem())
		if err := d.fromTerm(t, p.Elem(), module, depth+1); err != nil {
			return err
		}
		dst.Set(p)
		return nil
	case reflect.String:
		s, ok := stringOf(t)
		if !ok {
			return mismatch(t, dst)
		}
		dst.SetString(s)
		return nil
	case reflect.Bool:
		b, ok := t.(bool)
		if !ok {
			return mismatch(t, dst)
		}
		dst.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := toInt64(t)
		if !ok || dst.OverflowInt(i) {
			return mismatch(t, dst)
		}
		dst.SetInt(i)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u, ok := toUint64(t)
		if !ok || dst.OverflowUint(u) {
			return mismatch(t, dst)
		}
		dst.SetUint(u)
		return nil
	case reflect.Float32, reflect.Float64:
		var f float64
		switch v := t.(type) {
		case float64:
			f = v
		case float32:
			f = float64(v)
		default:
			i, ok := toInt64(t)
			if !ok {
				return mismatch(t, dst)
			}
			f = float64(i)
		}
		if dst.OverflowFloat(f) {
			return mismatch(t, dst)
		}
		dst.SetFloat(f)
		return nil
	case reflect.Slice:
		return d.slice(t, dst, depth)
	case reflect.Array:
		elems, ok := ListElements(t)
		if tu, isTuple := t.(etf.Tuple); isTuple {
			elems, ok = tu, true
		}
		if !ok || len(elems) != dst.Len() {
			return mismatch(t, dst)
		}
		for i, x := range elems {
			if err := d.fromTerm(x, dst.Index(i), "", depth+1); err != nil {
				return atSeg(err, indexSeg(i))
			}
		}
		return nil
	case reflect.Map:
		return d.goMap(t, dst, depth)
	case reflect.Struct:
		return d.structure(t, dst, module, depth)
	}
	return mismatch(t, dst)
}

func (d *unmarshaller) slice(t etf.Term, dst reflect.Value, depth int) error {
	typ := dst.Type()
	switch typ {
	case mapType:
		if _, isMap := t.(etf.Map); !isMap {
			if _, isMap = t.(Map); !isMap {
				return mismatch(t, dst)
			}
		}
		g, err := d.generic(t, d.opts.charlists, depth)
		if err != nil {
			return err
		}
		dst.Set(reflect.ValueOf(g))
		return nil
	case tupleType, imprType:
		if reflect.TypeOf(t) != typ {
			return mismatch(t, dst)
		}
		g, err := d.generic(t, d.opts.charlists, depth)
		if err != nil {
			return err
		}
		dst.Set(reflect.ValueOf(g))
		return nil
	}
	if typ.Elem().Kind() == reflect.Uint8 {
		switch b := t.(type) {
		case []byte:
			dst.SetBytes(slices.Clone(b))
			return nil
		case etf.String:
			dst.SetBytes([]byte(b))
			return nil
		}
	}
	elems, ok := ListElements(t)
	if !ok {
		return mismatch(t, dst)
	}
	out := reflect.MakeSlice(typ, len(elems), len(elems))
	for i, x := range elems {
		if err := d.fromTerm(x, out.Index(i), "", depth+1); err != nil {
			return atSeg(err, indexSeg(i))
		}
	}
	dst.Set(out)
	return nil
}

func (d *unmarshaller) goMap(t etf.Term, dst reflect.Value, depth int) error {
	pairs, kw, ok := entries(t, false)
	if !ok {
		return mismatch(t, dst)
	}
	typ := dst.Type()
	out := reflect.MakeMapWithSize(typ, len(pairs))
	for _, p := range pairs {
		kv := reflect.New(typ.Key()).Elem()
		if err := d.fromTerm(p.Key, kv, "", depth+1); err != nil {
			return atSeg(err, "[key "+clip(Format(p.Key))+"]")
		}
		if !kv.Comparable() {
			return atSeg(mismatch(p.Key, kv), "[key "+clip(Format(p.Key))+"]")
		}
		if out.MapIndex(kv).IsValid() {
			if kw {
				continue // Keyword.get: the first one wins
			}
			return &FieldError{Want: typ.String(), Got: p.Key, Err: ErrDuplicateKey, rev: []string{keySeg(p.Key)}}
		}
		vv := reflect.New(typ.Elem()).Elem()
		if err := d.fromTerm(p.Value, vv, "", depth+1); err != nil {
			fe, isFE := err.(*FieldError)
			if isFE && fe.Key == "" {
				fe.Key = Format(p.Key)
			}
			return atSeg(err, keySeg(p.Key))
		}
		out.SetMapIndex(kv, vv)
	}
	dst.Set(out)
	return nil
}

func (d *unmarshaller) structure(t etf.Term, dst reflect.Value, module etf.Atom, depth int) error {
	if dst.CanAddr() {
		if tu, ok := dst.Addr().Interface().(encoding.TextUnmarshaler); ok {
			s, isText := t.([]byte)
			if !isText {
				if c, isCharlist := stringOf(t); isCharlist && t != nil {
					if _, isAtom := t.(etf.Atom); !isAtom {
						s, isText = []byte(c), true
					}
				}
			}
			if !isText || tu.UnmarshalText(s) != nil {
				return mismatch(t, dst)
			}
			return nil
		}
	}
	ti := structInfo(dst.Type())
	if ti.err != nil {
		return &FieldError{Want: dst.Type().String(), Err: ti.err}
	}
	if ti.closed {
		return mismatch(t, dst)
	}
	get, err := fieldSource(t, dst)
	if err != nil {
		return err
	}
	required := module != "" // WithStructName: __struct__ must be there
	if module == "" {
		module = ti.module
	}
	if module != "" {
		got, _ := get(structKey)
		a, isAtom := got.(etf.Atom)
		if (got != nil || required) && (!isAtom || a != module) {
			return &FieldError{Key: structKey, Want: "struct " + string(module), Got: got, Err: ErrTypeMismatch, rev: []string{"." + structKey}}
		}
	}
	for _, f := range ti.fields {
		if f.blank {
			continue
		}
		fv := dst.Field(f.index)
		x, has := get(f.key)
		if !has {
			if f.optional || f.isName {
				continue
			}
			return &FieldError{Key: f.key, Want: fv.Type().String(), Err: ErrMissingField, rev: []string{"." + f.key}}
		}
		var err error
		if f.charlist && fv.Kind() == reflect.Interface {
			var g etf.Term
			if g, err = d.generic(x, true, depth+1); err == nil {
				if g == nil {
					fv.SetZero()
				} else if reflect.TypeOf(g).AssignableTo(fv.Type()) {
					fv.Set(reflect.ValueOf(g))
				} else {
					err = mismatch(x, fv)
				}
			}
		} else {
			err = d.fromTerm(x, fv, "", depth+1)
		}
		if err != nil {
			if fe, isFE := err.(*FieldError); isFE && fe.Key == "" {
				fe.Key = f.key
			}
			return atSeg(err, "."+f.key)
		}
	}
	return nil
}

// fieldSource returns the lookup of a struct's keys by name in a map or
// keyword list: an atom key or a binary key. An etf.Map (atom keys, as
// Decode gives them) is looked up in place; a Map or keyword list is
// indexed first, and a name given twice in a map is ErrDuplicateKey.
func fieldSource(t etf.Term, dst reflect.Value) (func(string) (etf.Term, bool), error) {
	if m, ok := t.(etf.Map); ok {
		return func(k string) (etf.Term, bool) {
			if x, ok := m[etf.Atom(k)]; ok {
				return x, true
			}
			if k == "true" || k == "false" {
				x, ok := m[k == "true"]
				return x, ok
			}
			return nil, false
		}, nil
	}
	pairs, kw, ok := entries(t, false)
	if !ok {
		return nil, mismatch(t, dst)
	}
	idx := make(map[string]Pair, len(pairs))
	for _, p := range pairs {
		name, named := keyName(p.Key)
		if !named {
			continue
		}
		if first, seen := idx[name]; seen {
			if kw {
				continue // Keyword.get: the first one wins
			}
			return nil, &FieldError{Want: dst.Type().String(), Key: name, Got: Map{first, p}, Err: ErrDuplicateKey, rev: []string{"." + name}}
		}
		idx[name] = p
	}
	return func(k string) (etf.Term, bool) {
		p, ok := idx[k]
		return p.Value, ok
	}, nil
}

// stringOf is what a string target accepts.
func stringOf(t etf.Term) (string, bool) {
	switch v := t.(type) {
	case []byte:
		return string(v), true
	case string: // STRING_EXT: each byte is a code point 0..255
		for i := 0; i < len(v); i++ {
			if v[i] >= utf8.RuneSelf {
				rs := make([]rune, len(v))
				for j := 0; j < len(v); j++ {
					rs[j] = rune(v[j])
				}
				return string(rs), true
			}
		}
		return v, true
	case etf.List:
		var b strings.Builder
		for _, x := range v {
			c, ok := toInt64(x)
			if !ok || c < 0 || c > unicode.MaxRune || !utf8.ValidRune(rune(c)) {
				return "", false
			}
			b.WriteRune(rune(c))
		}
		return b.String(), true
	case etf.Atom:
		return string(v), true
	case bool:
		return atomText(v), true
	case etf.String:
		return string(v), true
	case etf.Charlist:
		return string(v), true
	case nil:
		return "", true
	}
	return "", false
}

func toInt64(t etf.Term) (int64, bool) {
	switch v := t.(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	case int32:
		return int64(v), true
	case int16:
		return int64(v), true
	case int8:
		return int64(v), true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v), true
		}
	case uint:
		if uint64(v) <= math.MaxInt64 {
			return int64(v), true
		}
	case *big.Int:
		if v != nil && v.IsInt64() {
			return v.Int64(), true
		}
	}
	return 0, false
}

func toUint64(t etf.Term) (uint64, bool) {
	switch v := t.(type) {
	case *big.Int:
		if v != nil && v.IsUint64() {
			return v.Uint64(), true
		}
		return 0, false
	case uint64:
		return v, true
	case uint:
		return uint64(v), true
	}
	i, ok := toInt64(t)
	if !ok || i < 0 {
		return 0, false
	}
	return uint64(i), true
}

// isOpaque reports the term types that a target of the same Go type takes
// as they are.
func isOpaque(t etf.Term) bool {
	switch t.(type) {
	case etf.Pid, etf.Ref, etf.Alias, etf.Port, etf.Export, etf.Function, Ref, Port, BitString, Local, *big.Int, big.Int:
		return true
	}
	return false
}

// genericElems is the generic view of each element of a list, an improper
// list or a tuple, an error naming the element's index.
func (d *unmarshaller) genericElems(elems []etf.Term, charlists bool, depth int) ([]etf.Term, error) {
	out := make([]etf.Term, len(elems))
	for i, x := range elems {
		g, err := d.generic(x, charlists, depth+1)
		if err != nil {
			return nil, atSeg(err, indexSeg(i))
		}
		out[i] = g
	}
	return out, nil
}

// generic converts a term into the generic view (see Unmarshal).
func (d *unmarshaller) generic(t etf.Term, charlists bool, depth int) (etf.Term, error) {
	if depth > DefaultMaxDepth {
		return nil, &FieldError{Want: "any", Err: ErrTooDeep}
	}
	switch v := t.(type) {
	case []byte:
		return v, nil
	case etf.String:
		return []byte(v), nil
	case etf.Atom:
		if v == "nil" {
			return nil, nil
		}
		return v, nil
	case nil:
		return nil, nil
	case string: // STRING_EXT
		if charlists && v != "" {
			s, _ := stringOf(v)
			return s, nil
		}
		out := make(etf.List, len(v))
		for i := 0; i < len(v); i++ {
			out[i] = int64(v[i])
		}
		return out, nil
	case etf.Charlist:
		if charlists && v != "" {
			return string(v), nil
		}
		out := make(etf.List, 0, len(v))
		for _, r := range string(v) {
			out = append(out, int64(r))
		}
		return out, nil
	case etf.List:
		if charlists && len(v) > 0 {
			if s, ok := stringOf(v); ok {
				return s, nil
			}
		}
		out, err := d.genericElems(v, charlists, depth)
		if err != nil {
			return nil, err
		}
		return etf.List(out), nil
	case etf.ListImproper:
		out, err := d.genericElems(v, charlists, depth)
		if err != nil {
			return nil, err
		}
		return etf.ListImproper(out), nil
	case etf.Tuple:
		out, err := d.genericElems(v, charlists, depth)
		if err != nil {
			return nil, err
		}
		return etf.Tuple(out), nil
	case etf.Map, Map:
		pairs, _, _ := entries(v, true)
		out := make(Map, len(pairs))
		for i, p := range pairs {
			if i > 0 && compare(pairs[i-1].Key, p.Key, true) == 0 {
				// Only a Map built or decoded with a key twice, which the
				// BEAM would reject.
				return nil, &FieldError{Want: "any", Got: p.Key, Err: ErrDuplicateKey, rev: []string{keySeg(p.Key)}}
			}
			k, err := d.generic(p.Key, charlists, depth+1)
			if err != nil {
				return nil, atSeg(err, "[key "+clip(Format(p.Key))+"]")
			}
			x, err := d.generic(p.Value, charlists, depth+1)
			if err != nil {
				return nil, atSeg(err, keySeg(p.Key))
			}
			out[i] = Pair{k, x}
		}
		return out, nil
	case int, int8, int16, int32, uint8, uint16, uint32:
		i, _ := toInt64(v)
		return i, nil
	case uint, uint64:
		if i, ok := toInt64(v); ok {
			return i, nil
		}
		u, _ := toUint64(v)
		return new(big.Int).SetUint64(u), nil
	case float32:
		return float64(v), nil
	}
	return t, nil
}

// Marshal converts a Go value into a term that Encode writes, by the one
// rule Unmarshal reads back:
//
//   - Go string (and etf.String) -> binary (an Elixir string), everywhere,
//     also inside etf.Tuple, etf.List and maps; etf.Charlist -> a charlist;
//     a string field tagged `erl:",charlist"` -> a charlist.
//   - []byte -> binary; other slices and arrays -> lists.
//   - struct -> map with atom keys (binary keys with WithStringKeys), named
//     by the erl tag (see Unmarshal); an Elixir struct when the type names
//     its module (`erl:"__struct__,module=..."`), when a field tagged
//     erl:"__struct__" is set, or with WithStructName.
//   - a struct with a MarshalText method (time.Time, netip.Addr...) -> a
//     binary of its text; a struct with only unexported fields and no such
//     method is an error (ErrUnsupportedType), never an empty map.
//   - Go map -> map (a map[string]T has binary keys: Map; atom or integer
//     keys: etf.Map), pairs in Erlang's term order of the keys.
//   - nil, a nil pointer or interface -> the atom nil; bool -> true/false;
//     integers -> int64 (*big.Int beyond int64); floats -> float64.
//   - etf.Atom, pids, references, ports, funs, *big.Int, BitString: as they are.
//   - Map, etf.Map, etf.Tuple, etf.List, etf.ListImproper: the same
//     container with its elements marshalled by these rules.
//
// Marshal(x) for x in Unmarshal's generic view is the Erlang term x was
// made from. Channels, funcs, complex numbers and unsafe pointers have no
// Erlang form: the error is a *FieldError wrapping ErrUnsupportedType and
// naming the place ("Reply.c: Go type chan int has no Erlang
// representation"). Values nested deeper than DefaultMaxDepth (a cyclic
// value) fail with ErrTooDeep.
func Marshal(v any, opts ...Option) (etf.Term, error) {
	m := marshaller{opts: merge(opts)}
	t, err := m.marshal(v, true, 0)
	if err != nil {
		if fe, ok := err.(*FieldError); ok {
			root := ""
			if rv := reflect.ValueOf(v); rv.IsValid() {
				root = rootName(rv.Type())
			}
			return nil, fe.finish(root)
		}
		return nil, err
	}
	return t, nil
}

type marshaller struct {
	opts Option
}

// marshal converts v: the common term and Go types without reflection, the
// rest through toTerm.
func (m *marshaller) marshal(v any, top bool, depth int) (etf.Term, error) {
	if t, ok, err := m.fast(v, depth); ok {
		return t, err
	}
	return m.toTerm(reflect.ValueOf(v), top, depth)
}

// fast converts the term types and the most common Go types; ok is false
// for any other type.
func (m *marshaller) fast(v any, depth int) (t etf.Term, ok bool, err error) {
	if depth > DefaultMaxDepth {
		return nil, true, &FieldError{Want: fmt.Sprintf("%T", v), Err: ErrTooDeep}
	}
	switch x := v.(type) {
	case nil:
		return etf.Atom("nil"), true, nil
	case string:
		return []byte(x), true, nil
	case etf.String:
		return []byte(x), true, nil
	case []byte:
		return slices.Clone(x), true, nil
	case int64, float64, bool, etf.Atom, etf.Charlist:
		return x, true, nil
	case int:
		return int64(x), true, nil
	case etf.Tuple:
		out, err := m.elems(x, depth)
		return etf.Tuple(out), true, err
	case etf.List:
		out, err := m.elems(x, depth)
		return etf.List(out), true, err
	case etf.ListImproper:
		out, err := m.elems(x, depth)
		return etf.ListImproper(out), true, err
	case Map:
		out := make(Map, len(x))
		for i, p := range x {
			k, err := m.marshal(p.Key, false, depth+1)
			if err != nil {
				return nil, true, atSeg(err, "[key "+clip(Format(p.Key))+"]")
			}
			val, err := m.marshal(p.Value, false, depth+1)
			if err != nil {
				return nil, true, atSeg(err, keySeg(p.Key))
			}
			out[i] = Pair{k, val}
		}
		return out, true, nil
	case etf.Map:
		pairs := make(Map, 0, len(x))
		for k, e := range x {
			kt, err := m.marshal(k, false, depth+1)
			if err != nil {
				return nil, true, atSeg(err, "[key "+clip(Format(k))+"]")
			}
			val, err := m.marshal(e, false, depth+1)
			if err != nil {
				return nil, true, atSeg(err, keySeg(k))
			}
			pairs = append(pairs, Pair{kt, val})
		}
		return pairsToTerm(pairs), true, nil
	}
	if isOpaque(v) {
		return v, true, nil
	}
	return nil, false, nil
}

func (m *marshaller) elems(x []etf.Term, depth int) ([]etf.Term, error) {
	out := make([]etf.Term, len(x))
	for i, e := range x {
		t, err := m.marshal(e, false, depth+1)
		if err != nil {
			return nil, atSeg(err, indexSeg(i))
		}
		out[i] = t
	}
	return out, nil
}

func (m *marshaller) toTerm(v reflect.Value, top bool, depth int) (etf.Term, error) {
	if depth > DefaultMaxDepth {
		return nil, &FieldError{Want: v.Type().String(), Err: ErrTooDeep}
	}
	if !v.IsValid() {
		return etf.Atom("nil"), nil
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Map, reflect.Struct, reflect.Pointer:
		if v.CanInterface() { // term types: etf.Tuple, Map, etf.Pid...
			if t, ok, err := m.fast(v.Interface(), depth); ok {
				return t, err
			}
		}
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return etf.Atom("nil"), nil
		}
		return m.marshal(v.Elem().Interface(), top, depth+1)
	case reflect.Pointer:
		if v.IsNil() {
			return etf.Atom("nil"), nil
		}
		return m.toTerm(v.Elem(), top, depth+1)
	case reflect.String:
		switch v.Type() {
		case atomType:
			return etf.Atom(v.String()), nil
		case charlistType:
			return etf.Charlist(v.String()), nil
		}
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
		l := make(etf.List, v.Len())
		for i := range l {
			x, err := m.toTerm(v.Index(i), false, depth+1)
			if err != nil {
				return nil, atSeg(err, indexSeg(i))
			}
			l[i] = x
		}
		return l, nil
	case reflect.Map:
		pairs := make(Map, 0, v.Len())
		it := v.MapRange()
		for it.Next() {
			k, err := m.toTerm(it.Key(), false, depth+1)
			if err != nil {
				return nil, atSeg(err, "[key]")
			}
			x, err := m.toTerm(it.Value(), false, depth+1)
			if err != nil {
				return nil, atSeg(err, keySeg(k))
			}
			pairs = append(pairs, Pair{k, x})
		}
		return pairsToTerm(pairs), nil
	case reflect.Struct:
		if v.CanInterface() {
			if tm, ok := v.Interface().(encoding.TextMarshaler); ok {
				text, err := tm.MarshalText()
				if err != nil {
					return nil, &FieldError{Want: v.Type().String(), Err: fmt.Errorf("%w: %w", ErrUnsupportedType, err)}
				}
				return text, nil
			}
		}
		ti := structInfo(v.Type())
		if ti.err != nil {
			return nil, &FieldError{Want: v.Type().String(), Err: ti.err}
		}
		if ti.closed {
			return nil, &FieldError{Want: v.Type().String(), Err: ErrUnsupportedType}
		}
		name := ti.module
		if top && m.opts.name != "" {
			name = m.opts.name
		}
		pairs := make(Map, 0, len(ti.fields)+1)
		for _, f := range ti.fields {
			if f.blank {
				continue
			}
			fv := v.Field(f.index)
			if f.isName {
				if fv.Kind() == reflect.String && fv.String() != "" {
					name = etf.Atom(fv.String())
				}
				continue
			}
			if f.omitEmpty && fv.IsZero() {
				continue
			}
			var x etf.Term
			var err error
			if f.charlist && fv.Kind() == reflect.String {
				x = etf.Charlist(fv.String())
			} else {
				x, err = m.toTerm(fv, false, depth+1)
			}
			if err != nil {
				return nil, atSeg(err, "."+f.key)
			}
			pairs = append(pairs, Pair{m.mapKey(f.key), x})
		}
		if name != "" {
			pairs = append(pairs, Pair{etf.Atom(structKey), name})
		}
		return pairsToTerm(pairs), nil
	}
	return nil, &FieldError{Want: v.Type().String(), Err: ErrUnsupportedType}
}

func (m *marshaller) mapKey(k string) etf.Term {
	if m.opts.stringKeys {
		return []byte(k)
	}
	return etf.Atom(k)
}

// pairsToTerm sorts pairs by key in Erlang's term order and returns an
// etf.Map when every key can be a Go map key, else the sorted Map.
func pairsToTerm(pairs Map) etf.Term {
	slices.SortFunc(pairs, func(a, b Pair) int { return compare(a.Key, b.Key, true) })
	for _, p := range pairs {
		if !isHashable(p.Key) {
			return pairs
		}
	}
	out := make(etf.Map, len(pairs))
	for _, p := range pairs {
		out[p.Key] = p.Value
	}
	if len(out) != len(pairs) { // keys equal in Go, distinct in Erlang (0.0, -0.0)
		return pairs
	}
	return out
}
