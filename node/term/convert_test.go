package term

import (
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

type address struct {
	City string `erl:"city"`
}

type user struct {
	Struct   etf.Atom          `erl:"__struct__"`
	Name     string            `erl:"name"`
	Age      int               `erl:"age"`
	Tags     []string          `erl:"tags"`
	Address  *address          `erl:"address"`
	Admin    bool              `erl:"admin,optional"`
	Meta     map[string]int    `erl:"meta,optional"`
	Extra    etf.Term          `erl:"extra,optional"`
	Skipped  string            `erl:"-"`
	LastSeen int64             // key last_seen
	Attrs    map[etf.Atom]bool `erl:"attrs,optional"`
}

func TestUnmarshalElixirStruct(t *testing.T) {
	in := etf.Map{
		etf.Atom("__struct__"): etf.Atom("Elixir.MyApp.User"),
		etf.Atom("name"):       []byte("José"),
		etf.Atom("age"):        int64(42),
		etf.Atom("tags"):       etf.List{[]byte("a"), "b"},
		etf.Atom("address"):    etf.Atom("nil"),
		etf.Atom("extra"):      etf.Tuple{etf.Atom("x")},
		etf.Atom("last_seen"):  int64(1700000000),
		etf.Atom("ignored"):    int64(1),
		etf.Atom("attrs"):      etf.Map{etf.Atom("vip"): true},
	}
	var u user
	if err := Unmarshal(in, &u, WithStructName("Elixir.MyApp.User")); err != nil {
		t.Fatal(err)
	}
	want := user{Struct: "Elixir.MyApp.User", Name: "José", Age: 42, Tags: []string{"a", "b"}, Extra: etf.Tuple{etf.Atom("x")},
		LastSeen: 1700000000, Attrs: map[etf.Atom]bool{"vip": true}}
	if !reflect.DeepEqual(u, want) {
		t.Fatalf("got %+v\nwant %+v", u, want)
	}

	// String keys (a plain Elixir map from JSON) work too.
	strKeys := Map{{[]byte("name"), []byte("Ann")}, {[]byte("age"), int64(3)}, {[]byte("tags"), etf.List{}},
		{[]byte("address"), Map{{[]byte("city"), []byte("Oslo")}}}, {[]byte("last_seen"), int64(0)}, {[]byte("meta"), Map{{[]byte("n"), int64(1)}}}}
	var u2 user
	if err := Unmarshal(strKeys, &u2); err != nil {
		t.Fatal(err)
	}
	if u2.Address == nil || u2.Address.City != "Oslo" || u2.Meta["n"] != 1 || u2.Name != "Ann" {
		t.Fatalf("got %+v", u2)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	base := func() etf.Map {
		return etf.Map{etf.Atom("__struct__"): etf.Atom("Elixir.MyApp.User"), etf.Atom("name"): []byte("x"), etf.Atom("age"): int64(1),
			etf.Atom("tags"): etf.List{}, etf.Atom("address"): etf.Atom("nil"), etf.Atom("last_seen"): int64(0)}
	}
	cases := []struct {
		name    string
		mutate  func(etf.Map)
		opts    []StructOption
		want    error
		message string
	}{
		{"missing", func(m etf.Map) { delete(m, etf.Atom("age")) }, nil, ErrMissingField, "term: user.age: missing (want int)"},
		{"wrong_type", func(m etf.Map) { m[etf.Atom("age")] = []byte("old") }, nil, ErrTypeMismatch, `term: user.age: want int, got binary <<"old">>`},
		{"overflow", func(m etf.Map) { m[etf.Atom("age")] = new(big.Int).Lsh(big.NewInt(1), 70) }, nil, ErrTypeMismatch, "user.age: want int, got integer 1180591620717411303424"},
		{"nested", func(m etf.Map) { m[etf.Atom("address")] = etf.Map{etf.Atom("city"): int64(5)} }, nil, ErrTypeMismatch, "user.address.city: want string, got integer 5"},
		{"list_elem", func(m etf.Map) { m[etf.Atom("tags")] = etf.List{int64(5)} }, nil, ErrTypeMismatch, "user.tags[0]: want string, got integer 5"},
		{"struct_name", func(etf.Map) {}, []StructOption{WithStructName("Elixir.Other")}, ErrTypeMismatch, "user.__struct__: want struct Elixir.Other, got atom 'Elixir.MyApp.User'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := base()
			c.mutate(m)
			var u user
			err := Unmarshal(m, &u, c.opts...)
			var fe *FieldError
			if !errors.Is(err, c.want) || !errors.As(err, &fe) {
				t.Fatalf("err = %v, want %v as *FieldError", err, c.want)
			}
			if !strings.Contains(err.Error(), c.message) {
				t.Fatalf("message %q does not contain %q", err.Error(), c.message)
			}
		})
	}
	if err := Unmarshal(etf.Map{}, user{}); !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("non-pointer: %v", err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	u := user{Name: "José", Age: 42, Tags: []string{"a"}, Address: &address{City: "Oslo"}, Admin: true, Meta: map[string]int{"n": 1}, Attrs: map[etf.Atom]bool{"vip": true}}
	got, err := Marshal(u, WithStructName("Elixir.MyApp.User"))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := got.(etf.Map)
	if !ok {
		t.Fatalf("Marshal = %T, want etf.Map", got)
	}
	if m[etf.Atom("__struct__")] != etf.Atom("Elixir.MyApp.User") || string(m[etf.Atom("name")].([]byte)) != "José" {
		t.Fatalf("got %s", Format(got))
	}
	// Through the wire and back.
	enc, err := Encode(nil, got)
	if err != nil {
		t.Fatal(err)
	}
	dec, _, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	var back user
	if err := Unmarshal(dec, &back, WithStructName("Elixir.MyApp.User")); err != nil {
		t.Fatal(err)
	}
	u.Struct = "Elixir.MyApp.User"
	if !reflect.DeepEqual(back, u) {
		t.Fatalf("got %+v\nwant %+v", back, u)
	}

	sk, err := Marshal(address{City: "Oslo"}, WithStringKeys())
	if err != nil {
		t.Fatal(err)
	}
	if Format(sk) != `#{<<"city">> => <<"Oslo">>}` {
		t.Fatalf("string keys: %s", Format(sk))
	}
	if _, err := Marshal(struct{ C chan int }{}); !errors.Is(err, ErrUnsupportedType) || err.Error() != "term: value.c: Go type chan int has no Erlang representation" {
		t.Fatalf("chan field: %v", err)
	}
}
