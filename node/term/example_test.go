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
	type User struct {
		Name string `erl:"name"`
		Age  int    `erl:"age"`
	}
	// %MyApp.User{name: "Ann", age: "old"} from Elixir.
	in := etf.Map{etf.Atom("__struct__"): etf.Atom("Elixir.MyApp.User"),
		etf.Atom("name"): []byte("Ann"), etf.Atom("age"): []byte("old")}
	var u User
	err := term.Unmarshal(in, &u, term.WithStructName("Elixir.MyApp.User"))
	fmt.Println(err)
	// Output:
	// term: User.age: want int, got binary <<"old">>
}

func ExampleMarshal() {
	type User struct {
		Name string `erl:"name"`
		Age  int    `erl:"age"`
	}
	t, err := term.Marshal(User{Name: "Ann", Age: 3}, term.WithStructName("Elixir.MyApp.User"))
	fmt.Println(term.Format(t), err)
	// Output:
	// #{'__struct__' => 'Elixir.MyApp.User',age => 3,name => <<"Ann">>} <nil>
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
