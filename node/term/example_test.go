package term_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ergo-services/ergo/etf"
	"github.com/gonode/gonode/node/term"
)

func Example() {
	// {ok, #{<<"name">> => <<"José">>}} as the BEAM writes it (without 131).
	wire := []byte{104, 2, 119, 2, 'o', 'k', 116, 0, 0, 0, 1,
		109, 0, 0, 0, 4, 'n', 'a', 'm', 'e', 109, 0, 0, 0, 5, 'J', 'o', 's', 0xc3, 0xa9}
	t, rest, err := term.Decode(wire)
	if err != nil {
		panic(err)
	}
	fmt.Println(term.Format(t), len(rest))
	m := t.(etf.Tuple)[1].(term.Map) // binary keys: ordered pairs
	v, _ := m.Get([]byte("name"))
	fmt.Printf("%s\n", v)
	out, _ := term.Encode(nil, t)
	fmt.Println(string(out) == string(wire))
	// Output:
	// {ok,#{<<"name">> => <<"José"/utf8>>}} 0
	// José
	// true
}

func ExampleParse() {
	// An exit reason carried through a Go string and back.
	reason := etf.Tuple{etf.Atom("shutdown"), etf.Tuple{etf.Atom("timeout"), int64(5000)}}
	s := term.Format(reason)
	back, err := term.Parse(s)
	fmt.Println(s, err, term.Equal(back, reason))
	_, err = term.Parse("connection reset by peer")
	fmt.Println(err != nil)
	// Output:
	// {shutdown,{timeout,5000}} <nil> true
	// true
}

func ExampleUnmarshal() {
	type Event struct {
		Type  etf.Atom `erl:"type"`
		Items []int    `erl:"items"`
		Note  string   `erl:"note,optional"`
	}
	// Elixir's %{type: :restock, items: [1, 2, 3]}: [1, 2, 3] arrives as
	// STRING_EXT (a Go string in the raw codec), a list of ints here.
	atomKeys := etf.Map{etf.Atom("type"): etf.Atom("restock"), etf.Atom("items"): "\x01\x02\x03"}
	// %{"type" => "restock", "items" => [4], "note" => ~c"late"}: binary keys.
	binaryKeys := term.Map{{Key: []byte("type"), Value: []byte("restock")},
		{Key: []byte("items"), Value: etf.List{int64(4)}}, {Key: []byte("note"), Value: "late"}}
	// [type: :restock, items: [5, 300]]: a keyword list.
	keyword := etf.List{etf.Tuple{etf.Atom("type"), etf.Atom("restock")},
		etf.Tuple{etf.Atom("items"), etf.List{int64(5), int64(300)}}}
	for _, in := range []etf.Term{atomKeys, binaryKeys, keyword} {
		var e Event
		err := term.Unmarshal(in, &e)
		fmt.Printf("%+v %v\n", e, err)
	}
	// The error names the place.
	var e Event
	fmt.Println(term.Unmarshal(etf.Map{etf.Atom("type"): etf.Atom("x"),
		etf.Atom("items"): etf.List{int64(1), int64(2), []byte("3")}}, &e))
	// Output:
	// {Type:restock Items:[1 2 3] Note:} <nil>
	// {Type:restock Items:[4] Note:late} <nil>
	// {Type:restock Items:[5 300] Note:} <nil>
	// term: Event.items[2]: want int, got binary <<"3">>
}

func ExampleUnmarshal_generic() {
	// Elixir's %{"name" => "Ann", tags: [1, 2], nick: nil}: Decode gives a
	// term.Map (a binary key) and [1, 2] in it as a Go string (STRING_EXT).
	in := term.Map{{Key: []byte("name"), Value: []byte("Ann")}, {Key: etf.Atom("tags"), Value: "\x01\x02"},
		{Key: etf.Atom("nick"), Value: etf.Atom("nil")}}
	// Into an any, every map is a term.Map whatever its keys, every list an
	// etf.List (charlists included), Elixir's nil Go's nil.
	var v any
	if err := term.Unmarshal(in, &v); err != nil {
		panic(err)
	}
	m := v.(term.Map)
	name, _ := m.Get([]byte("name"))
	tags, _ := m.Get(etf.Atom("tags"))
	nick, _ := m.Get(etf.Atom("nick"))
	fmt.Printf("%s %#v %v\n", name, tags, nick)
	// Marshal gives back the same Erlang term.
	back, _ := term.Marshal(v)
	fmt.Println(term.Format(back), term.Equal(back, in))
	// Output:
	// Ann etf.List{1, 2} <nil>
	// #{nick => nil,tags => [1,2],<<"name">> => <<"Ann">>} true
}

func ExampleWithCharlists() {
	// ~c"héllo" from Elixir (STRING_EXT, one byte per code point).
	in := etf.Tuple{etf.Atom("log"), "h\xe9llo"}
	var plain, text any
	_ = term.Unmarshal(in, &plain)
	_ = term.Unmarshal(in, &text, term.WithCharlists())
	var s string // a string target needs no option
	_ = term.Unmarshal(in[1], &s)
	fmt.Println(plain, text, s)
	// Output: [log [104 233 108 108 111]] [log héllo] héllo
}

func ExampleMarshal() {
	type Price struct {
		_      struct{} `erl:"__struct__,module=Elixir.Pricing.Price"`
		SKU    string   `erl:"sku"`
		Amount float64
		Note   string `erl:"note,omitempty"`
		Path   string `erl:"path,charlist"`
	}
	for _, v := range []any{
		Price{SKU: "a-1", Amount: 9.5, Path: "/tmp"},   // an Elixir struct
		map[string]int{"b": 2, "a": 1},                 // binary keys: %{"a" => 1, "b" => 2}
		etf.Tuple{etf.Atom("ok"), "text", []int{1, 2}}, // Go strings are binaries everywhere
	} {
		t, err := term.Marshal(v)
		fmt.Println(term.Format(t), err)
	}
	// Output:
	// #{'__struct__' => 'Elixir.Pricing.Price',amount => 9.5,path => "/tmp",sku => <<"a-1">>} <nil>
	// #{<<"a">> => 1,<<"b">> => 2} <nil>
	// {ok,<<"text">>,[1,2]} <nil>
}

func ExampleWithAtomCache() {
	// {ok, self()} where the distribution header cached 'ok' and the node name.
	wire := []byte{104, 2, 82, 0, 88, 82, 1, 0, 0, 0, 80, 0, 0, 0, 0, 0, 0, 0, 7}
	t, _, err := term.Decode(wire, term.WithAtomCache([]etf.Atom{"ok", "a@host"}))
	fmt.Println(term.Format(t), err)
	// Output:
	// {ok,#Pid<a@host,80,0,7>} <nil>
}

func ExampleWithDecodeBudget() {
	// A list of 1000 [] takes 1006 bytes, and 16 KiB as an etf.List: one
	// 16-byte slot per element.
	wire := append([]byte{108, 0, 0, 0x03, 0xe8}, bytes.Repeat([]byte{106}, 1001)...)
	budget := term.NewDecodeBudget(4 * int64(len(wire)))
	_, _, err := term.Decode(wire, term.WithDecodeBudget(budget))
	fmt.Println(errors.Is(err, term.ErrDecodeBudget), budget.Left())
	// Output: true 4024
}
