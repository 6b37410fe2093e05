package typedterm_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/node/internal/typedterm"
	"github.com/gonode/gonode/node/term"
)

type point struct {
	X int `erl:"x"`
	Y int `erl:"y"`
}

// TestInto: a term goes into any Go type by term's rules, through the fast
// paths and the one-field-struct route alike.
func TestInto(t *testing.T) {
	cases := []struct {
		name string
		in   etf.Term
		out  any // a pointer to a zero value of the target type
		want any
	}{
		{"binary into string", []byte("abc"), new(string), "abc"},
		{"charlist into string", etf.List{int64('h'), int64('i')}, new(string), "hi"},
		{"ergo's string (a small-integer list) into string", "hi", new(string), "hi"},
		{"atom into string", etf.Atom("ok"), new(string), "ok"},
		{"atom into Atom", etf.Atom("restock"), new(etf.Atom), etf.Atom("restock")},
		{"integer into int", int64(42), new(int), 42},
		{"integer into float64", int64(2), new(float64), 2.0},
		{"small-integer list into []int", "\x01\x02\x03", new([]int), []int{1, 2, 3}},
		{"list into []string", etf.List{[]byte("a"), []byte("b")}, new([]string), []string{"a", "b"}},
		{"map with binary keys into map[string]int", term.Map{{Key: []byte("a"), Value: int64(1)}}, new(map[string]int), map[string]int{"a": 1}},
		{"map with atom keys into map[string]int", etf.Map{etf.Atom("a"): int64(1)}, new(map[string]int), map[string]int{"a": 1}},
		{"map into struct", etf.Map{etf.Atom("x"): int64(1), etf.Atom("y"): int64(2)}, new(point), point{1, 2}},
		{"nil atom into any", etf.Atom("nil"), new(any), nil},
		{"tuple into any", etf.Tuple{etf.Atom("a")}, new(any), etf.Tuple{etf.Atom("a")}},
		{"tuple into Tuple", etf.Tuple{etf.Atom("a")}, new(etf.Tuple), etf.Tuple{etf.Atom("a")}},
		{"nil atom into pointer", etf.Atom("nil"), new(*point), (*point)(nil)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := typedterm.Into(c.in, c.out); err != nil {
				t.Fatal(err)
			}
			if got := reflect.ValueOf(c.out).Elem().Interface(); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

// TestIntoMismatch: what does not fit is a *term.FieldError wrapping
// ErrTypeMismatch, which names the Erlang value and the Go type.
func TestIntoMismatch(t *testing.T) {
	cases := []struct {
		name string
		in   etf.Term
		out  any
		want string
	}{
		{"integer into string", int64(42), new(string), "term: value: want string, got integer 42"},
		{"overflow", int64(300), new(int8), "term: value: want int8, got integer 300"},
		{"binary element into []int", etf.List{int64(1), []byte("x")}, new([]int), `term: value[1]: want int, got binary <<"x">>`},
		{"not a pointer", int64(1), 0, "needs a non-nil pointer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := typedterm.Into(c.in, c.out)
			if !errors.Is(err, term.ErrTypeMismatch) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrTypeMismatch with %q", err, c.want)
			}
		})
	}
}

// TestEncode: Go strings become binaries also inside tuples and lists; a
// tuple that needs no conversion is not copied.
func TestEncode(t *testing.T) {
	got, err := typedterm.Encode(etf.Tuple{etf.Atom("price"), "sku-1", etf.List{"a", int64(1)}, 2})
	if err != nil {
		t.Fatal(err)
	}
	if s := term.Format(got); s != `{price,<<"sku-1">>,[<<"a">>,1],2}` {
		t.Fatalf("encoded %s", s)
	}
	plain := etf.Tuple{etf.Atom("a"), int64(1)}
	got, _ = typedterm.Encode(plain)
	if &got.(etf.Tuple)[0] != &plain[0] {
		t.Fatal("a tuple needing no conversion was copied")
	}
	if _, err := typedterm.Encode(etf.Tuple{etf.Atom("a"), make(chan int)}); err == nil || !strings.Contains(err.Error(), "element 2") {
		t.Fatalf("error %v, want one naming element 2", err)
	}
}

// TestDecodableEncodable: the types no term fits are found at any depth.
func TestDecodableEncodable(t *testing.T) {
	type inner struct{ C chan int }
	type outer struct{ In []inner }
	for _, c := range []struct {
		typ    reflect.Type
		decErr string // "" when decodable
		encErr string
	}{
		{reflect.TypeFor[string](), "", ""},
		{reflect.TypeFor[map[string][]point](), "", ""},
		{reflect.TypeFor[any](), "", ""},
		{reflect.TypeFor[outer](), "field typedterm_test.inner.C: type chan int cannot hold an Erlang term", "field typedterm_test.inner.C: type chan int has no Erlang term"},
		{reflect.TypeFor[error](), "is an interface with methods", ""},
		{reflect.TypeFor[[2]int](), "is an array", ""},
		{reflect.TypeFor[func()](), "cannot hold", "has no Erlang term"},
	} {
		t.Run(c.typ.String(), func(t *testing.T) {
			for _, x := range []struct {
				what string
				err  error
				want string
			}{{"Decodable", typedterm.Decodable(c.typ), c.decErr}, {"Encodable", typedterm.Encodable(c.typ), c.encErr}} {
				if fmt.Sprint(x.err == nil) != fmt.Sprint(x.want == "") || (x.err != nil && !strings.Contains(x.err.Error(), x.want)) {
					t.Errorf("%s(%s) = %v, want %q", x.what, c.typ, x.err, x.want)
				}
			}
		})
	}
}
