package node_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/term"
)

// echoServer answers every gen_server call with the message itself.
type echoServer struct{ gen.Server }

func (*echoServer) HandleCall(_ *gen.ServerProcess, _ gen.ServerFrom, message etf.Term) (etf.Term, gen.ServerStatus) {
	return message, gen.ServerStatusOK
}

// fidUser is the Go side of the Elixir struct %Fid.User{}.
type fidUser struct {
	Name string   `erl:"name"`
	Age  int      `erl:"age"`
	Tags []string `erl:"tags"`
}

// fidURI takes the fields of an Elixir %URI{} that the test sets.
type fidURI struct {
	Scheme string `erl:"scheme"`
	Host   string `erl:"host"`
	Port   int    `erl:"port"`
	Path   string `erl:"path"`
	Query  string `erl:"query"`
}

// structServer converts Elixir structs to Go structs and back:
// {birthday, %Fid.User{}} -> the user one year older; {uri, %URI{}} -> ok.
// What it decoded goes to got.
type structServer struct {
	gen.Server
	got chan any
}

func (s *structServer) HandleCall(_ *gen.ServerProcess, _ gen.ServerFrom, message etf.Term) (etf.Term, gen.ServerStatus) {
	req, ok := message.(etf.Tuple)
	if !ok || len(req) != 2 {
		return etf.Tuple{etf.Atom("error"), etf.Atom("bad_request")}, gen.ServerStatusOK
	}
	fail := func(err error) (etf.Term, gen.ServerStatus) {
		return etf.Tuple{etf.Atom("error"), []byte(err.Error())}, gen.ServerStatusOK
	}
	switch req[0] {
	case etf.Atom("birthday"):
		var u fidUser
		if err := term.Unmarshal(req[1], &u, term.WithStructName("Elixir.Fid.User")); err != nil {
			return fail(err)
		}
		s.got <- u
		u.Age++
		out, err := term.Marshal(u, term.WithStructName("Elixir.Fid.User"))
		if err != nil {
			return fail(err)
		}
		return out, gen.ServerStatusOK
	case etf.Atom("uri"):
		var u fidURI
		if err := term.Unmarshal(req[1], &u, term.WithStructName("Elixir.URI")); err != nil {
			return fail(err)
		}
		s.got <- u
		return etf.Atom("ok"), gen.ServerStatusOK
	}
	return etf.Tuple{etf.Atom("error"), etf.Atom("unknown")}, gen.ServerStatusOK
}

// fidelityTerms is Elixir code binding `terms` to a list of
// {label, term} pairs covering every kind of term the BEAM sends in
// messages. Maps with more than 32 keys and maps with atom keys are in it:
// gonode may re-encode their keys in another order, which the BEAM reads
// as the same map, so term_to_binary on the BEAM side is identical too.
const fidelityTerms = `
neg_zero = :erlang.binary_to_term(<<131, 70, 128, 0, 0, 0, 0, 0, 0, 0>>)
terms = [
  {"map with string keys", %{"name" => "José", "tags" => ["a", "b"], "n" => 1}},
  {"nested maps with tuple, map, list and float keys", %{{1, 2} => %{%{k: 1} => [1]}, [1] => :list_key, 1.5 => :float_key, "s" => %{}}},
  {"map with atom keys", %{alpha: 1, beta: [2], gamma: "3", delta: %{epsilon: :zeta}}},
  {"map with 40 keys", Map.new(1..40, fn i -> {"k#{i}", i} end)},
  {"map with 40 atom keys", Map.new(1..40, fn i -> {String.to_atom("a#{i}"), i} end)},
  {"user struct", %Fid.User{name: "Ann", age: 33, tags: ["x"]}},
  {"URI struct", URI.parse("https://example.com:8443/p?q=1")},
  {"keyword list", [a: 1, b: "two", c: [d: :e]]},
  {"charlist", ~c"charlist"},
  {"latin-1 charlist", ~c"ünï"},
  {"unicode charlist", [?日, ?本]},
  {"binary", "binary"},
  {"UTF-8 binary", "ünïcödé 日本"},
  {"empty binary", ""},
  {"bytes", <<0, 255, 1>>},
  {"UTF-8 atom", :"ünïcödé_atom"},
  {"CJK atom", :"日本"},
  {"atoms", [:ok, true, false, nil]},
  {"small integers", [0, 255, 256, -1, 2147483647, -2147483648]},
  {"64-bit edges", [9223372036854775807, -9223372036854775808, 18446744073709551615]},
  {"integers beyond 64 bits", [18446744073709551616, 2 ** 70, -(2 ** 100), 2 ** 2000]},
  {"floats", [3.14159, neg_zero, 0.0, 1.0e300, 5.0e-324, -2.5]},
  {"bitstrings", [<<1::3>>, <<255, 1::1>>, <<1, 2, 3::5>>]},
  {"pid", self()},
  {"reference", make_ref()},
  {"alias", :erlang.alias()},
  {"monitor reference", Process.monitor(spawn(fn -> :ok end))},
  {"port", hd(Port.list())},
  {"export funs", [&Enum.map/2, &:erlang.node/0]},
  {"empty list", []},
  {"empty map", %{}},
  {"empty tuple", {}},
  {"nested tuples", {:a, {:b, [], {}}}},
  {"improper lists", [[1 | 2], [1, 2 | :tail]]}
]
`

func TestTermFidelityThroughGoEcho(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		gn, _ := startGo(t, goName, node.Cookie(cookie))
		if _, err := gn.RegisterServer("echo", &echoServer{}); err != nil {
			t.Fatal(err)
		}
		structs := &structServer{got: make(chan any, 4)}
		if _, err := gn.RegisterServer("structs", structs); err != nil {
			t.Fatal(err)
		}
		ex := beamtest.Start(t, rel, beamtest.Options{Name: uniq("ex") + "@127.0.0.1", Cookie: cookie, Elixir: true})
		ex.Eval(t, `defmodule Fid.User do
			  defstruct name: nil, age: 0, tags: []
			end`)
		eval := func(t *testing.T, expr string) string {
			t.Helper()
			return ex.Eval(t, fmt.Sprintf(`go = :"%s"
				%s
				%s`, goName, fidelityTerms, expr))
		}

		// Every term comes back with term_to_binary identical to what was
		// sent; the list names the terms that did not.
		t.Run("each term", func(t *testing.T) {
			got := eval(t, `for {label, term} <- terms,
				  reply = GenServer.call({:echo, go}, term),
				  :erlang.term_to_binary(reply) != :erlang.term_to_binary(term),
				  do: {label, term, reply}`)
			if got != "[]" {
				t.Fatalf("terms that came back different: %s", got)
			}
		})
		t.Run("all terms in one message", func(t *testing.T) {
			got := eval(t, `reply = GenServer.call({:echo, go}, terms)
				{:erlang.term_to_binary(reply) == :erlang.term_to_binary(terms), reply === terms, length(reply)}`)
			if !strings.HasPrefix(got, "{true, true, ") {
				t.Fatalf("{same binary, exactly equal, length} = %s", got)
			}
		})

		t.Run("Elixir struct to Go and back", func(t *testing.T) {
			got := eval(t, `u = %Fid.User{name: "Ann", age: 33, tags: ["x", "y"]}
				r = GenServer.call({:structs, go}, {:birthday, u})
				{r, is_struct(r, Fid.User), r == %Fid.User{u | age: 34}}`)
			want := `{%Fid.User{name: "Ann", age: 34, tags: ["x", "y"]}, true, true}`
			if got != want {
				t.Fatalf("struct round trip = %s, want %s", got, want)
			}
			if u := testutil.Receive(t, structs.got, 10*time.Second); fmt.Sprint(u) != fmt.Sprint(fidUser{Name: "Ann", Age: 33, Tags: []string{"x", "y"}}) {
				t.Fatalf("Go got %#v", u)
			}
		})
		t.Run("URI struct to Go", func(t *testing.T) {
			if got := eval(t, `GenServer.call({:structs, go}, {:uri, URI.parse("https://example.com:8443/p?q=1")})`); got != ":ok" {
				t.Fatalf("uri call = %s", got)
			}
			want := fidURI{Scheme: "https", Host: "example.com", Port: 8443, Path: "/p", Query: "q=1"}
			if u := testutil.Receive(t, structs.got, 10*time.Second); u != want {
				t.Fatalf("Go got %#v, want %#v", u, want)
			}
		})
	})
}
