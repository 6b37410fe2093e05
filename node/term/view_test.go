package term

import (
	"errors"
	"math/big"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
)

// wire returns x as it arrives from the BEAM: encoded and decoded again
// (a list of bytes becomes STRING_EXT, a Go string...).
func wire(t *testing.T, x etf.Term) etf.Term {
	t.Helper()
	b, err := Encode(nil, x)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func a(s string) etf.Atom { return etf.Atom(s) }

// TestUnmarshalStringsRule: one rule for binaries, charlists and lists of
// small integers, whatever the Go target.
func TestUnmarshalStringsRule(t *testing.T) {
	// As they come off the wire: [1,2,3] and ~c"héllo" are STRING_EXT (a Go
	// string of code points 0..255), ~c"日本" a LIST_EXT of integers.
	ints := wire(t, etf.List{int64(1), int64(2), int64(3)})
	latin := wire(t, etf.Charlist("héllo"))
	cjk := wire(t, etf.Charlist("日本"))
	bin := []byte("héllo")
	cases := []struct {
		name string
		in   etf.Term
		into any // a pointer to a zero target
		want any
		opts []Option
	}{
		{"binary_to_string", bin, new(string), "héllo", nil},
		{"latin1_charlist_to_string", latin, new(string), "héllo", nil},
		{"unicode_charlist_to_string", cjk, new(string), "日本", nil},
		{"empty_list_to_string", etf.List{}, new(string), "", nil},
		{"binary_to_bytes", bin, new([]byte), []byte("héllo"), nil},
		{"small_ints_to_int_slice", ints, new([]int), []int{1, 2, 3}, nil},
		{"small_ints_to_int64_slice", ints, new([]int64), []int64{1, 2, 3}, nil},
		{"small_ints_to_any_slice", ints, new([]any), []any{int64(1), int64(2), int64(3)}, nil},
		{"small_ints_to_any", ints, new(any), etf.List{int64(1), int64(2), int64(3)}, nil},
		{"charlist_to_any", latin, new(any), etf.List{int64('h'), int64(0xe9), int64('l'), int64('l'), int64('o')}, nil},
		{"binary_to_any", bin, new(any), []byte("héllo"), nil},
		{"binary_to_term", bin, new(etf.Term), []byte("héllo"), nil},
		{"charlist_to_any_with_charlists", latin, new(any), "héllo", []Option{WithCharlists()}},
		{"unicode_charlist_to_any_with_charlists", cjk, new(any), "日本", []Option{WithCharlists()}},
		{"not_a_charlist_with_charlists", etf.List{int64(1), a("x")}, new(any), etf.List{int64(1), a("x")}, []Option{WithCharlists()}},
		{"empty_list_with_charlists", etf.List{}, new(any), etf.List{}, []Option{WithCharlists()}},
		{"nil_to_any", a("nil"), new(any), nil, nil},
		{"tuple_to_any", etf.Tuple{a("ok"), []byte("x"), ints}, new(any), etf.Tuple{a("ok"), []byte("x"), etf.List{int64(1), int64(2), int64(3)}}, nil},
		{"tuple_to_array", etf.Tuple{int64(1), []byte("x")}, new([2]any), [2]any{int64(1), []byte("x")}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := Unmarshal(c.in, c.into, c.opts...); err != nil {
				t.Fatal(err)
			}
			if got := reflect.ValueOf(c.into).Elem().Interface(); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
		})
	}
	var s string
	if err := Unmarshal(etf.List{int64(0xD800)}, &s); !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("a surrogate code point is no string: %v", err)
	}
}

// TestUnmarshalGenericMaps: every map is a Map in the generic view,
// whatever its keys, with keys and values in the generic view too.
func TestUnmarshalGenericMaps(t *testing.T) {
	cases := []struct {
		name string
		in   etf.Term
		want Map
	}{
		{"atom_keys", etf.Map{a("b"): int64(2), a("a"): []byte("x")}, Map{{a("a"), []byte("x")}, {a("b"), int64(2)}}},
		{"binary_keys", wire(t, Map{{[]byte("k"), int64(1)}, {[]byte("j"), etf.Map{}}}), Map{{[]byte("j"), Map{}}, {[]byte("k"), int64(1)}}},
		{"mixed_keys", Map{{a("a"), int64(1)}, {[]byte("a"), int64(2)}, {etf.Tuple{int64(1)}, int64(3)}},
			Map{{a("a"), int64(1)}, {etf.Tuple{int64(1)}, int64(3)}, {[]byte("a"), int64(2)}}}, // atom < tuple < binary
		{"integer_keys", etf.Map{int64(2): a("nil"), int64(1): "ab"}, Map{{int64(1), etf.List{int64('a'), int64('b')}}, {int64(2), nil}}},
		{"empty", etf.Map{}, Map{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got any
			if err := Unmarshal(c.in, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
			var m Map
			if err := Unmarshal(c.in, &m); err != nil || !reflect.DeepEqual(m, c.want) {
				t.Fatalf("into Map: %#v, %v", m, err)
			}
		})
	}
}

type item struct {
	SKU string `erl:"sku"`
	Qty int    `erl:"qty"`
}

type event struct {
	Type  etf.Atom       `erl:"type"`
	Items []int          `erl:"items"`
	Lines []item         `erl:"lines,optional"`
	Note  *string        `erl:"note,optional"`
	Meta  map[string]any `erl:"meta,optional"`
}

// TestUnmarshalKeysAlike: atom keys, binary keys, mixed keys and keyword
// lists all fill structs and maps.
func TestUnmarshalKeysAlike(t *testing.T) {
	note := "late"
	want := event{Type: "restock", Items: []int{1, 2, 3}, Lines: []item{{"a-1", 2}}, Note: &note,
		Meta: map[string]any{"by": []byte("ops"), "n": int64(1)}}
	ints := wire(t, etf.List{int64(1), int64(2), int64(3)})
	cases := []struct {
		name string
		in   etf.Term
	}{
		{"atom_keys", etf.Map{a("type"): a("restock"), a("items"): ints, a("note"): []byte("late"),
			a("lines"): etf.List{etf.Map{a("sku"): []byte("a-1"), a("qty"): int64(2)}},
			a("meta"):  etf.Map{a("by"): []byte("ops"), a("n"): int64(1)}}},
		{"binary_keys", Map{{[]byte("type"), []byte("restock")}, {[]byte("items"), ints}, {[]byte("note"), []byte("late")},
			{[]byte("lines"), etf.List{Map{{[]byte("sku"), []byte("a-1")}, {[]byte("qty"), int64(2)}}}},
			{[]byte("meta"), Map{{[]byte("by"), []byte("ops")}, {[]byte("n"), int64(1)}}}}},
		{"mixed_keys", Map{{a("type"), a("restock")}, {[]byte("items"), ints}, {[]byte("note"), []byte("late")},
			{a("lines"), etf.List{Map{{[]byte("sku"), []byte("a-1")}, {a("qty"), int64(2)}}}},
			{[]byte("meta"), Map{{a("by"), []byte("ops")}, {[]byte("n"), int64(1)}}}}},
		{"keyword_list", etf.List{etf.Tuple{a("type"), a("restock")}, etf.Tuple{a("items"), ints}, etf.Tuple{a("note"), []byte("late")},
			etf.Tuple{a("lines"), etf.List{etf.List{etf.Tuple{a("sku"), []byte("a-1")}, etf.Tuple{a("qty"), int64(2)}}}},
			etf.Tuple{a("meta"), etf.List{etf.Tuple{a("by"), []byte("ops")}, etf.Tuple{a("n"), int64(1)}, etf.Tuple{a("n"), int64(9)}}},
			etf.Tuple{a("type"), a("ignored_second")}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e event
			if err := Unmarshal(c.in, &e); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(e, want) {
				t.Fatalf("got %+v, want %+v", e, want)
			}
			var m map[string]any
			if err := Unmarshal(c.in, &m); err != nil || len(m) != 5 {
				t.Fatalf("into map[string]any: %v %v", m, err)
			}
			var am map[etf.Atom]any
			if err := Unmarshal(c.in, &am); err != nil || am["items"] == nil {
				t.Fatalf("into map[etf.Atom]any: %v %v", am, err)
			}
		})
	}
	// An atom and a binary key of one name in a map: which one was meant?
	var e event
	err := Unmarshal(Map{{a("type"), a("x")}, {[]byte("type"), []byte("y")}, {a("items"), etf.List{}}}, &e)
	if !errors.Is(err, ErrDuplicateKey) || err.Error() != `term: event.type: two keys fill the same Go key (#{type => x,<<"type">> => <<"y">>})` {
		t.Fatalf("duplicate: %v", err)
	}
	var m map[string]int
	err = Unmarshal(Map{{a("n"), int64(1)}, {[]byte("n"), int64(2)}}, &m)
	if !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("duplicate in map[string]int: %v", err)
	}
}

// TestUnmarshalErrorPaths: the error names the place in the value, for
// maps and keyword lists alike.
func TestUnmarshalErrorPaths(t *testing.T) {
	cases := []struct {
		name string
		in   etf.Term
		into any
		want error
		msg  string
	}{
		{"list_element", etf.Map{a("type"): a("x"), a("items"): etf.List{int64(1), int64(2), []byte("3")}}, new(event), ErrTypeMismatch,
			`term: event.items[2]: want int, got binary <<"3">>`},
		{"keyword_value", etf.List{etf.Tuple{a("type"), a("x")}, etf.Tuple{a("items"), []byte("no")}}, new(event), ErrTypeMismatch,
			`term: event.items: want []int, got binary <<"no">>`},
		{"keyword_missing", etf.List{etf.Tuple{a("type"), a("x")}}, new(event), ErrMissingField,
			`term: event.items: missing (want []int)`},
		{"nested_struct", etf.Map{a("type"): a("x"), a("items"): etf.List{}, a("lines"): etf.List{etf.Map{a("sku"): []byte("s"), a("qty"): 1.5}}},
			new(event), ErrTypeMismatch, `term: event.lines[0].qty: want int, got float 1.5`},
		{"map_value", etf.Map{a("type"): a("x"), a("items"): etf.List{}, a("meta"): Map{{etf.Tuple{}, int64(1)}}},
			new(event), ErrTypeMismatch, `term: event.meta[key {}]: want string, got tuple {}`},
		{"not_a_keyword_list", etf.List{int64(1)}, new(event), ErrTypeMismatch, `term: event: want term.event, got list [1]`},
		{"go_map_value", Map{{[]byte("a"), []byte("x")}}, new(map[string]int), ErrTypeMismatch, `term: value[<<"a">>]: want int, got binary <<"x">>`},
		{"top_scalar", []byte("x"), new(int), ErrTypeMismatch, `term: value: want int, got binary <<"x">>`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Unmarshal(c.in, c.into)
			var fe *FieldError
			if !errors.Is(err, c.want) || !errors.As(err, &fe) || err.Error() != c.msg {
				t.Fatalf("err = %v\nwant %q (%v)", err, c.msg, c.want)
			}
		})
	}
	if err := Unmarshal(etf.Map{}, event{}); !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("non-pointer: %v", err)
	}
}

// TestUnmarshalBounded: a term nested deeper than DefaultMaxDepth (a
// cyclic list built in Go) is an error, not a stack overflow.
func TestUnmarshalBounded(t *testing.T) {
	cyc := etf.List{nil}
	cyc[0] = cyc
	for _, into := range []any{new(any), new([]any), new([][]any)} {
		if err := Unmarshal(cyc, into); !errors.Is(err, ErrTooDeep) {
			t.Fatalf("%T: %v", into, err)
		}
	}
	type node struct {
		Next *node `erl:"next"`
	}
	loop := &node{}
	loop.Next = loop
	if _, err := Marshal(loop); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("Marshal of a cycle: %v", err)
	}
}

type price struct {
	_      struct{} `erl:"__struct__,module=Elixir.Pricing.Price"`
	SKU    string   `erl:"sku"`
	Amount float64  `erl:"amount"`
	Note   string   `erl:"note,omitempty"`
	Path   string   `erl:"path,charlist,omitempty"`
}

// TestMarshalRule: Go strings are binaries everywhere, Go maps with string
// keys have binary keys, structs atom keys, and a type can name its Elixir
// struct.
func TestMarshalRule(t *testing.T) {
	cases := []struct {
		name string
		in   any
		want string // Format of the result
	}{
		{"string", "héllo", `<<"héllo"/utf8>>`},
		{"tuple_with_string", etf.Tuple{a("ok"), "x", etf.List{"y"}}, `{ok,<<"x">>,[<<"y">>]}`},
		{"string_keyed_map", map[string]int{"b": 2, "a": 1}, `#{<<"a">> => 1,<<"b">> => 2}`},
		{"atom_keyed_map", map[etf.Atom]int{"b": 2, "a": 1}, `#{a => 1,b => 2}`},
		{"etf_map_with_string_keys", etf.Map{"k": "v"}, `#{<<"k">> => <<"v">>}`},
		{"struct", item{SKU: "a-1", Qty: 2}, `#{qty => 2,sku => <<"a-1">>}`},
		{"elixir_struct", price{SKU: "a", Amount: 1.5}, `#{'__struct__' => 'Elixir.Pricing.Price',amount => 1.5,sku => <<"a">>}`},
		{"omitempty_and_charlist", price{SKU: "a", Note: "n", Path: "/tmp"},
			`#{'__struct__' => 'Elixir.Pricing.Price',amount => 0.0,note => <<"n">>,path => "/tmp",sku => <<"a">>}`},
		{"charlist_value", etf.Charlist("ab"), `"ab"`},
		{"slice_of_structs", []item{{"a", 1}}, `[#{qty => 1,sku => <<"a">>}]`},
		{"nil_pointer", (*item)(nil), `nil`},
		{"ints", []int{1, 2, 3}, `[1,2,3]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Marshal(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if s := Format(got); s != c.want {
				t.Fatalf("got %s, want %s", s, c.want)
			}
			if _, err := Encode(nil, got); err != nil {
				t.Fatalf("Encode: %v", err)
			}
		})
	}
	// The module a type names is checked on the way in.
	var p price
	err := Unmarshal(etf.Map{a("__struct__"): a("Elixir.Other"), a("sku"): []byte("a"), a("amount"): 1.0}, &p)
	if !errors.Is(err, ErrTypeMismatch) || !strings.Contains(err.Error(), "price.__struct__: want struct Elixir.Pricing.Price") {
		t.Fatalf("other struct: %v", err)
	}
	if err := Unmarshal(etf.List{etf.Tuple{a("sku"), []byte("a")}, etf.Tuple{a("amount"), int64(2)}}, &p); err != nil || p.Amount != 2 {
		t.Fatalf("keyword list into a struct type: %+v %v", p, err)
	}
	// Go types that are not records: text when they have one, else an error
	// (never an empty map).
	type stamped struct {
		At   time.Time  `erl:"at"`
		Addr netip.Addr `erl:"addr"`
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st, err := Marshal(stamped{At: at, Addr: netip.MustParseAddr("10.0.0.1")})
	if err != nil || Format(st) != `#{addr => <<"10.0.0.1">>,at => <<"2026-01-02T03:04:05Z">>}` {
		t.Fatalf("text: %s %v", Format(st), err)
	}
	var back stamped
	if err := Unmarshal(etf.Map{a("at"): []byte("2026-01-02T03:04:05Z"), a("addr"): "10.0.0.1"}, &back); err != nil ||
		!back.At.Equal(at) || back.Addr.String() != "10.0.0.1" {
		t.Fatalf("text back: %+v %v", back, err)
	}
	if err := Unmarshal(etf.Map{a("at"): []byte("yesterday"), a("addr"): "10.0.0.1"}, &back); !errors.Is(err, ErrTypeMismatch) ||
		err.Error() != `term: stamped.at: want time.Time, got binary <<"yesterday">>` {
		t.Fatalf("bad text: %v", err)
	}
	_, err = Marshal(struct{ R strings.Reader }{})
	if !errors.Is(err, ErrUnsupportedType) || err.Error() != "term: value.r: Go type strings.Reader has no Erlang representation" {
		t.Fatalf("a struct of unexported fields: %v", err)
	}
	// A mistyped tag option is an error, not ignored.
	type typo struct {
		Note string `erl:"note,omitemtpy"`
	}
	_, err = Marshal(typo{})
	want := `term: typo: bad erl struct tag: field Note: unknown option "omitemtpy" (want optional, omitempty, charlist or module=)`
	if !errors.Is(err, ErrBadTag) || err.Error() != want {
		t.Fatalf("tag typo, Marshal: %v", err)
	}
	if err := Unmarshal(etf.Map{a("note"): []byte("x")}, &typo{}); !errors.Is(err, ErrBadTag) || err.Error() != want {
		t.Fatalf("tag typo, Unmarshal: %v", err)
	}
	type misplaced struct {
		N int `erl:"n,charlist"`
	}
	if _, err := Marshal(misplaced{}); !errors.Is(err, ErrBadTag) {
		t.Fatalf("charlist on an int: %v", err)
	}
	type skipped struct {
		Secret string `erl:"-"`
	}
	if sk, err := Marshal(skipped{Secret: "x"}); err != nil || Format(sk) != "#{}" {
		t.Fatalf("every field skipped: %s %v", Format(sk), err)
	}
	_, err = Marshal(etf.Tuple{a("ok"), make(chan int)})
	if !errors.Is(err, ErrUnsupportedType) || err.Error() != "term: Tuple[1]: Go type chan int has no Erlang representation" {
		t.Fatalf("chan in a tuple: %v", err)
	}
}

// TestGenericViewRoundTrip: Marshal gives back the Erlang term that
// Unmarshal's generic view was made from, for every term of the golden
// files (what OTP 25 and 29 write).
func TestGenericViewRoundTrip(t *testing.T) {
	n := 0
	for name, es := range goldenFiles(t) {
		for _, e := range es {
			orig, _, err := Decode(e.bytes)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, opts := range [][]Option{nil, {WithCharlists()}} {
				var g any
				if err := Unmarshal(orig, &g, opts...); err != nil {
					t.Fatalf("%s %s: Unmarshal: %v", e.release, name, err)
				}
				back, err := Marshal(g)
				if err != nil {
					t.Fatalf("%s %s: Marshal: %v", e.release, name, err)
				}
				if len(opts) == 0 && !Equal(back, orig) {
					t.Fatalf("%s %s: %s came back as %s", e.release, name, Format(orig), Format(back))
				}
				// The generic view is a term too: unmarshalled again, it stays
				// what it is (a binary does not turn into a charlist).
				var again any
				if err := Unmarshal(g, &again); err != nil || (len(opts) == 0 && !reflect.DeepEqual(again, g)) {
					t.Fatalf("%s %s: the generic view %#v unmarshalled again: %#v, %v", e.release, name, g, again, err)
				}
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no golden terms")
	}
	big1 := new(big.Int).Lsh(big.NewInt(1), 70)
	var g any
	if err := Unmarshal(big1, &g); err != nil || g.(*big.Int).Cmp(big1) != 0 {
		t.Fatalf("big: %v %v", g, err)
	}
}
