package term

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/internal/beamtest"
)

// The Elixir side of the conversion round trips: the modules the cases
// use, as an Elixir application would define them.
const elixirModules = `
defmodule Pricing.Tag do
  defstruct [:name]
end
defmodule Pricing.Price do
  defstruct [:sku, :amount, tags: []]
end
`

type beamTag struct {
	_    struct{} `erl:"__struct__,module=Elixir.Pricing.Tag"`
	Name string   `erl:"name"`
}

type beamPrice struct {
	_      struct{}  `erl:"__struct__,module=Elixir.Pricing.Price"`
	SKU    string    `erl:"sku"`
	Amount float64   `erl:"amount"`
	Tags   []beamTag `erl:"tags"`
}

type beamEvent struct {
	Type  etf.Atom `erl:"type"`
	Items []int    `erl:"items"`
	Note  string   `erl:"note,optional"`
	Path  string   `erl:"path,charlist,omitempty"`
}

// beamConvertCase: Elixir sends in (an Elixir expression); Go unmarshals
// it into a new value of the type of want, which must equal want, and
// marshals it back; the Elixir side checks that what came back is
// strictly equal (===) to back.
type beamConvertCase struct {
	name string
	in   string
	want any
	// generic: unmarshal into an any (the generic view), not into a value
	// of want's type.
	generic bool
	opts    []Option
	back    string
}

var beamConvertCases = []beamConvertCase{
	{name: "keyword_list_into_struct", in: `[type: :restock, items: [1, 2, 3], note: "late"]`,
		want: beamEvent{Type: "restock", Items: []int{1, 2, 3}, Note: "late"}, back: `%{type: :restock, items: [1, 2, 3], note: "late"}`},
	{name: "keyword_list_into_map", in: `[type: :restock, n: 1, type: :second]`,
		want: map[string]any{"type": etf.Atom("restock"), "n": int64(1)}, back: `%{"type" => :restock, "n" => 1}`},
	{name: "atom_keys_into_struct", in: `%{type: :restock, items: [1, 2, 300], path: ~c"/tmp/é"}`,
		want: beamEvent{Type: "restock", Items: []int{1, 2, 300}, Path: "/tmp/é"}, back: `%{type: :restock, items: [1, 2, 300], note: "", path: ~c"/tmp/é"}`},
	{name: "string_keys_into_struct", in: `%{"type" => "restock", "items" => [1, 2, 3], "note" => "x"}`,
		want: beamEvent{Type: "restock", Items: []int{1, 2, 3}, Note: "x"}, back: `%{type: :restock, items: [1, 2, 3], note: "x"}`},
	{name: "mixed_keys_into_struct", in: `%{"type" => "restock", :items => [1, 2, 3], {1, 2} => :ignored}`,
		want: beamEvent{Type: "restock", Items: []int{1, 2, 3}}, back: `%{type: :restock, items: [1, 2, 3], note: ""}`},
	{name: "string_keys_into_go_map", in: `%{"a" => 1, "b" => 2}`,
		want: map[string]int{"a": 1, "b": 2}, back: `%{"a" => 1, "b" => 2}`},
	{name: "atom_keys_into_go_map", in: `%{a: 1, b: 2}`,
		want: map[string]int{"a": 1, "b": 2}, back: `%{"a" => 1, "b" => 2}`},
	{name: "mixed_keys_generic", in: `%{"a" => "x", :b => [1, 2, 3], {1, 2} => ~c"hé", 3 => nil}`,
		generic: true, want: Map{{int64(3), nil}, {etf.Atom("b"), etf.List{int64(1), int64(2), int64(3)}},
			{etf.Tuple{int64(1), int64(2)}, etf.List{int64('h'), int64(0xe9)}}, {[]byte("a"), []byte("x")}},
		back: `%{"a" => "x", :b => [1, 2, 3], {1, 2} => ~c"hé", 3 => nil}`},
	{name: "charlist_into_string", in: `~c"héllo 日本"`, want: "héllo 日本", back: `"héllo 日本"`},
	{name: "string_into_string", in: `"héllo"`, want: "héllo", back: `"héllo"`},
	{name: "string_generic", in: `"héllo"`, generic: true, want: []byte("héllo"), back: `"héllo"`},
	{name: "charlist_generic", in: `~c"abc"`, generic: true, want: etf.List{int64('a'), int64('b'), int64('c')}, back: `~c"abc"`},
	{name: "charlist_generic_as_string", in: `~c"héllo"`, generic: true, want: "héllo", opts: []Option{WithCharlists()}, back: `"héllo"`},
	{name: "small_ints_into_ints", in: `[1, 2, 3]`, want: []int{1, 2, 3}, back: `[1, 2, 3]`},
	{name: "small_ints_into_bytes", in: `[1, 2, 3]`, want: []byte{1, 2, 3}, back: `<<1, 2, 3>>`},
	{name: "binary_into_bytes", in: `<<1, 2, 3>>`, want: []byte{1, 2, 3}, back: `<<1, 2, 3>>`},
	{name: "small_ints_generic", in: `[1, 2, 3]`, generic: true, want: etf.List{int64(1), int64(2), int64(3)}, back: `[1, 2, 3]`},
	{name: "nested_elixir_structs", in: `%Pricing.Price{sku: "a-1", amount: 9.5, tags: [%Pricing.Tag{name: "new"}, %Pricing.Tag{name: ~c"hé"}]}`,
		want: beamPrice{SKU: "a-1", Amount: 9.5, Tags: []beamTag{{Name: "new"}, {Name: "hé"}}},
		back: `%Pricing.Price{sku: "a-1", amount: 9.5, tags: [%Pricing.Tag{name: "new"}, %Pricing.Tag{name: "hé"}]}`},
	{name: "pointer_target_struct_defaults", in: `%Pricing.Price{sku: "a-1", amount: 1.0}`,
		want: &beamPrice{SKU: "a-1", Amount: 1, Tags: []beamTag{}}, back: `%Pricing.Price{sku: "a-1", amount: 1.0, tags: []}`},
	{name: "tuple_generic", in: `{:ok, "x", [a: 1]}`, generic: true, want: etf.Tuple{etf.Atom("ok"), []byte("x"), etf.List{etf.Tuple{etf.Atom("a"), int64(1)}}},
		back: `{:ok, "x", [a: 1]}`},
}

// TestBEAMConvertRoundTrip: terms an Elixir script writes go through
// Unmarshal into Go values and back through Marshal, and the Elixir side
// checks what it gets back, on every release of the OTP matrix (each with
// its own Elixir).
func TestBEAMConvertRoundTrip(t *testing.T) {
	var send strings.Builder
	send.WriteString(elixirModules)
	// The cases live in a module compiled after the struct modules (a
	// struct cannot be used in the context that defines it).
	send.WriteString("defmodule Send do\ndef run do\nfor {name, v} <- [\n")
	for i, c := range beamConvertCases {
		sep := ","
		if i == len(beamConvertCases)-1 {
			sep = ""
		}
		fmt.Fprintf(&send, "  {%q, %s}%s\n", c.name, c.in, sep)
	}
	send.WriteString("], do: IO.puts(\"TERM\\t\" <> name <> \"\\t\" <> Base.encode16(:erlang.term_to_binary(v)))\nend\nend\nSend.run()\n")

	for _, rel := range beamReleases(t) {
		t.Run(rel.Name, func(t *testing.T) {
			root := chrootOf(t, rel)
			beamtest.RequireRelease(t, rel, "elixir")
			got := map[string][]byte{}
			for _, line := range strings.Split(runElixir(t, root, send.String()), "\n") {
				if f := strings.Split(line, "\t"); len(f) == 3 && f[0] == "TERM" {
					b, err := hex.DecodeString(f[2])
					if err != nil || len(b) < 2 || b[0] != 131 {
						t.Fatalf("%s: bad bytes %q", f[1], f[2])
					}
					got[f[1]] = b[1:]
				}
			}
			var check strings.Builder
			check.WriteString(elixirModules)
			check.WriteString(`defmodule Check do
def check(name, hex, want) do
  case :erlang.binary_to_term(Base.decode16!(hex)) do
    got when got === want -> IO.puts("OK\t" <> name)
    other -> IO.puts("FAIL\t" <> name <> "\t" <> inspect(other) <> " !== " <> inspect(want))
  end
end
def run do
`)
			for _, c := range beamConvertCases {
				b, ok := got[c.name]
				if !ok {
					t.Fatalf("%s: Elixir sent nothing", c.name)
				}
				in, _, err := Decode(b)
				if err != nil {
					t.Fatalf("%s: Decode: %v", c.name, err)
				}
				dst := reflect.New(reflect.TypeOf(c.want))
				if c.generic {
					dst = reflect.New(reflect.TypeFor[any]())
				}
				if err := Unmarshal(in, dst.Interface(), c.opts...); err != nil {
					t.Fatalf("%s: Unmarshal of %s: %v", c.name, Format(in), err)
				}
				if v := dst.Elem().Interface(); !reflect.DeepEqual(v, c.want) {
					t.Fatalf("%s: Unmarshal of %s gave %#v, want %#v", c.name, Format(in), v, c.want)
				}
				out, err := Marshal(dst.Elem().Interface())
				if err != nil {
					t.Fatalf("%s: Marshal: %v", c.name, err)
				}
				enc, err := Encode([]byte{131}, out)
				if err != nil {
					t.Fatalf("%s: Encode: %v", c.name, err)
				}
				fmt.Fprintf(&check, "check(%q, %q, %s)\n", c.name, strings.ToUpper(hex.EncodeToString(enc)), c.back)
			}
			check.WriteString("end\nend\nCheck.run()\n")
			res := runElixir(t, root, check.String())
			if n := strings.Count(res, "OK\t"); n != len(beamConvertCases) || strings.Contains(res, "FAIL") {
				t.Fatalf("%d of %d came back as Elixir expects:\n%s", n, len(beamConvertCases), res)
			}
		})
	}
}
