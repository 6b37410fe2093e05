package term

import (
	"errors"
	"math"
	"math/big"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

func TestFormatParse(t *testing.T) {
	huge, _ := new(big.Int).SetString("-123456789012345678901234567890", 10)
	cases := []struct {
		name string
		in   etf.Term
		want string
	}{
		{"shutdown_tuple", etf.Tuple{etf.Atom("shutdown"), etf.Atom("restart")}, "{shutdown,restart}"},
		{"binary", []byte("abc"), `<<"abc">>`},
		{"binary_utf8", []byte("José"), `<<"José"/utf8>>`},
		{"binary_bytes", []byte{0, 255}, "<<0,255>>"},
		{"bitstring", BitString{Bytes: []byte{1, 0x30}, Bits: 4}, "<<1,3:4>>"},
		{"quoted_atom", etf.Atom("quoted atom"), "'quoted atom'"},
		{"reserved_atom", etf.Atom("end"), "'end'"},
		{"atom_escape", etf.Atom("it's\n"), `'it\'s\n'`},
		{"list", etf.List{int64(1), int64(2), int64(3)}, "[1,2,3]"},
		{"improper", etf.ListImproper{etf.Atom("a"), etf.Atom("b")}, "[a|b]"},
		{"map", etf.Map{etf.Atom("b"): int64(2), etf.Atom("a"): int64(1)}, "#{a => 1,b => 2}"},
		{"pairs_map", Map{{[]byte("k"), etf.Map{}}}, `#{<<"k">> => #{}}`},
		{"string", "hi \"x\"\x01\xe9", `"hi \"x\"\x{1}\x{E9}"`},
		{"floats", etf.List{1.0, math.Copysign(0, -1), 1e300, 0.1, 5e-324}, "[1.0,-0.0,1.0e300,0.1,5.0e-324]"},
		{"big", huge, "-123456789012345678901234567890"},
		{"bools", etf.Tuple{true, false}, "{true,false}"},
		{"export", etf.Export{Module: "erlang", Function: "+", Arity: 2}, "fun erlang:'+'/2"},
		{"pid", etf.Pid{Node: "a@b", ID: 80 | 1<<32, Creation: 7}, "#Pid<a@b,80,1,7>"},
		{"ref3", etf.Ref{Node: "a@b", Creation: 7, ID: [5]uint32{1, 2, 3}}, "#Ref<a@b,7,1,2,3>"},
		{"ref5", etf.Ref{Node: "a@b", Creation: 7, ID: [5]uint32{1, 2, 3, 4, 0}}, "#Ref<a@b,7,1,2,3,4,0>"},
		{"ref4", Ref{Node: "a@b", Creation: 7, Len: 4, ID: [5]uint32{1, 2, 3, 4}}, "#Ref<a@b,7,1,2,3,4>"},
		{"port", etf.Port{Node: "a@b", ID: 5, Creation: 7}, "#Port<a@b,5,7>"},
		{"port_v4", Port{Node: "a@b", ID: 1 << 40, Creation: 7}, "#PortV4<a@b,1099511627776,7>"},
		{"fun", etf.Function{Module: "m", Arity: 1, Index: 2, OldIndex: 3, OldUnique: 4, Pid: etf.Pid{Node: "a"}, FreeVars: []etf.Term{int64(5)}},
			"#Fun<m,1,2,<<0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0>>,3,4,#Pid<a,0,0,0>,[5]>"},
		{"local", Local{Raw: []byte{1, 2}}, "#Local<<<1,2>>>"},
		{"empty", etf.Tuple{etf.List{}, etf.Map{}, []byte{}, etf.Tuple{}}, "{[],#{},<<>>,{}}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Format(c.in)
			if s != c.want {
				t.Fatalf("Format = %s, want %s", s, c.want)
			}
			back, err := Parse(s)
			if err != nil {
				t.Fatalf("Parse(%s): %v", s, err)
			}
			if !Equal(back, c.in) {
				t.Fatalf("Parse(%s) = %#v, want %#v", s, back, c.in)
			}
		})
	}
	if s := Format(math.Copysign(0, -1)); s != "-0.0" {
		t.Fatalf("-0.0 formats as %s", s)
	}
}

func TestParseReasons(t *testing.T) {
	cases := []struct {
		in   string
		want etf.Term
	}{
		{"normal", etf.Atom("normal")},
		{" {shutdown, {failed, 3}} ", etf.Tuple{etf.Atom("shutdown"), etf.Tuple{etf.Atom("failed"), int64(3)}}},
		{`"日本"`, etf.List{int64(0x65e5), int64(0x672c)}},
		{`<<"a", 1, 2:4>>`, BitString{Bytes: []byte{'a', 1, 0x20}, Bits: 4}},
		{"[1 | 2]", etf.ListImproper{int64(1), int64(2)}},
		{"18446744073709551616", new(big.Int).Lsh(big.NewInt(1), 64)},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil || !Equal(got, c.want) {
			t.Errorf("Parse(%q) = %#v, %v; want %#v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "some error: boom", "{a,", "[1,2", "'open", "#Nope<1>", "#{a => }", "fun m:f", "1.5e", "end", "<<1:99>>", "{a} b"} {
		if got, err := Parse(bad); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) = %#v, %v; want ErrSyntax", bad, got, err)
		}
	}
}
