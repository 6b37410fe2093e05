package term

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

func mustEncode(t *testing.T, x etf.Term) []byte {
	t.Helper()
	b, err := Encode(nil, x)
	if err != nil {
		t.Fatalf("Encode(%#v): %v", x, err)
	}
	return b
}

func TestEncodeGoTypes(t *testing.T) {
	big2p70, _ := new(big.Int).SetString("1180591620717411303424", 10)
	cases := []struct {
		name string
		in   etf.Term
		want []byte
		back etf.Term // what Decode returns
	}{
		{"int", int(7), []byte{97, 7}, int64(7)},
		{"int8_neg", int8(-1), []byte{98, 255, 255, 255, 255}, int64(-1)},
		{"uint64_max", uint64(math.MaxUint64), []byte{110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 255}, new(big.Int).SetUint64(math.MaxUint64)},
		{"int64_min", int64(math.MinInt64), []byte{110, 8, 1, 0, 0, 0, 0, 0, 0, 0, 128}, int64(math.MinInt64)},
		{"big_value", *big2p70, []byte{110, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64}, big2p70},
		{"big_small", big.NewInt(5), []byte{97, 5}, int64(5)},
		{"float32", float32(0.5), []byte{70, 63, 224, 0, 0, 0, 0, 0, 0}, 0.5},
		{"true", true, []byte{119, 4, 't', 'r', 'u', 'e'}, true},
		{"nil", nil, []byte{106}, etf.List{}},
		{"empty_list", etf.List{}, []byte{106}, etf.List{}},
		{"term_slice", []etf.Term{int64(1)}, []byte{108, 0, 0, 0, 1, 97, 1, 106}, etf.List{int64(1)}},
		{"empty_string", "", []byte{107, 0, 0}, ""},
		{"etf_string", etf.String("hi"), []byte{109, 0, 0, 0, 2, 'h', 'i'}, []byte("hi")},
		{"charlist_bytes", etf.Charlist("hé"), []byte{107, 0, 2, 'h', 0xe9}, "h\xe9"},
		{"charlist_unicode", etf.Charlist("日"), []byte{108, 0, 0, 0, 1, 98, 0, 0, 0x65, 0xe5, 106}, etf.List{int64(0x65e5)}},
		{"empty_charlist", etf.Charlist(""), []byte{106}, etf.List{}},
		{"alias", etf.Alias{Node: "a", Creation: 1, ID: [5]uint32{1, 2, 3}}, []byte{90, 0, 3, 119, 1, 'a', 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}, etf.Ref{Node: "a", Creation: 1, ID: [5]uint32{1, 2, 3}}},
		{"ref5_trailing_zero", etf.Ref{Node: "a", Creation: 1, ID: [5]uint32{1, 2, 3, 0x503, 0}}, []byte{90, 0, 5, 119, 1, 'a', 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 5, 3, 0, 0, 0, 0}, etf.Ref{Node: "a", Creation: 1, ID: [5]uint32{1, 2, 3, 0x503, 0}}},
		{"ref_1_word", Ref{Node: "a", Creation: 1, Len: 1, ID: [5]uint32{9}}, []byte{90, 0, 1, 119, 1, 'a', 0, 0, 0, 1, 0, 0, 0, 9}, Ref{Node: "a", Creation: 1, Len: 1, ID: [5]uint32{9}}},
		{"ref5_zero_tail", Ref{Node: "a", Creation: 1, Len: 5, ID: [5]uint32{1, 2, 3}}, []byte{90, 0, 5, 119, 1, 'a', 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0}, Ref{Node: "a", Creation: 1, Len: 5, ID: [5]uint32{1, 2, 3}}},
		{"ordered_map_keeps_order", Map{{etf.Atom("b"), int64(1)}, {etf.Atom("a"), int64(2)}}, []byte{116, 0, 0, 0, 2, 119, 1, 'b', 97, 1, 119, 1, 'a', 97, 2}, etf.Map{etf.Atom("a"): int64(2), etf.Atom("b"): int64(1)}},
		{"local", Local{Raw: []byte{1, 2, 3, 4, 106}}, []byte{121, 1, 2, 3, 4, 106}, Local{Raw: []byte{1, 2, 3, 4, 106}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := mustEncode(t, c.in)
			if !bytes.Equal(got, c.want) {
				t.Fatalf("Encode = %v, want %v", got, c.want)
			}
			back, rest, err := Decode(got)
			if err != nil || len(rest) != 0 {
				t.Fatalf("Decode: %v (%d left)", err, len(rest))
			}
			if !reflect.DeepEqual(back, c.back) {
				t.Fatalf("Decode = %#v, want %#v", back, c.back)
			}
			if !Equal(back, c.in) && c.name != "empty_charlist" {
				t.Fatalf("Equal(%#v, %#v) = false", back, c.in)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	self := etf.List{nil}
	self[0] = self
	cases := []struct {
		name string
		in   etf.Term
		want error
	}{
		{"struct", struct{ A int }{1}, ErrUnsupportedType},
		{"chan", make(chan int), ErrUnsupportedType},
		{"long_atom", etf.Atom(strings.Repeat("日", 256)), ErrInvalidTerm},
		{"invalid_utf8_atom", etf.Atom("\xff"), ErrInvalidTerm},
		{"improper_one", etf.ListImproper{etf.Atom("a")}, ErrInvalidTerm},
		{"bits_zero", BitString{Bytes: []byte{1}, Bits: 0}, ErrInvalidTerm},
		{"bits_empty", BitString{Bits: 3}, ErrInvalidTerm},
		{"nan", math.NaN(), ErrInvalidTerm},
		{"inf", math.Inf(1), ErrInvalidTerm},
		{"ref_len_0", Ref{Node: "a"}, ErrInvalidTerm},
		{"export_arity", etf.Export{Module: "m", Function: "f", Arity: 300}, ErrInvalidTerm},
		{"self_containing_list", self, ErrInvalidTerm},
		{"nested_unsupported", etf.Tuple{etf.Atom("ok"), struct{}{}}, ErrUnsupportedType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := []byte{1, 2}
			out, err := Encode(dst, c.in)
			if !errors.Is(err, c.want) {
				t.Fatalf("Encode error = %v, want %v", err, c.want)
			}
			if len(out) != 2 {
				t.Fatalf("Encode returned %d bytes on error, want the 2 of dst", len(out))
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	u32 := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	deep := append(bytes.Repeat([]byte{108, 0, 0, 0, 1}, 20000), 106)
	cases := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown_tag", []byte{1}},
		{"version_byte", []byte{131, 97, 1}},
		{"compressed", []byte{80, 0, 0, 0, 1}},
		{"old_fun", []byte{117}},
		{"small_int_short", []byte{97}},
		{"int_short", []byte{98, 0, 0}},
		{"float_short", []byte{70, 1, 2}},
		{"float_nan", []byte{70, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0}},
		{"old_float_garbage", append([]byte{99}, bytes.Repeat([]byte{'x'}, 31)...)},
		{"atom_short", []byte{119, 5, 'a'}},
		{"atom_cache_no_table", []byte{82, 0}},
		{"binary_4gib", cat([]byte{109}, u32(math.MaxUint32), []byte{1, 2, 3})},
		{"list_4gib", cat([]byte{108}, u32(math.MaxUint32), []byte{106})},
		{"tuple_4gib", cat([]byte{105}, u32(math.MaxUint32), []byte{106})},
		{"map_4gib", cat([]byte{116}, u32(math.MaxUint32), []byte{106, 106})},
		{"large_big_4gib", cat([]byte{111}, u32(math.MaxUint32), []byte{0, 1})},
		{"big_bad_sign", []byte{110, 1, 7, 1}},
		{"string_short", []byte{107, 0, 5, 'a'}},
		{"bit_binary_zero_bits", cat([]byte{77}, u32(1), []byte{0, 1})},
		{"bit_binary_nine_bits", cat([]byte{77}, u32(1), []byte{9, 1})},
		{"list_missing_tail", cat([]byte{108}, u32(1), []byte{97, 1})},
		{"ref_6_words", cat([]byte{90, 0, 6, 119, 1, 'a'}, u32(0), bytes.Repeat([]byte{0}, 24))},
		{"ref_0_words", []byte{90, 0, 0, 119, 1, 'a', 0, 0, 0, 0}},
		{"pid_short", []byte{88, 119, 1, 'a', 0, 0, 0, 1}},
		{"pid_node_not_atom", cat([]byte{88, 97, 1}, bytes.Repeat([]byte{0}, 12))},
		{"port_short", []byte{120, 119, 1, 'a', 0}},
		{"export_arity_not_small_int", []byte{113, 119, 1, 'm', 119, 1, 'f', 98, 0, 0, 0, 1}},
		{"fun_size_mismatch", func() []byte {
			f := mustEncode(t, etf.Function{Module: "m", Pid: etf.Pid{Node: "a"}})
			binary.BigEndian.PutUint32(f[1:], binary.BigEndian.Uint32(f[1:])+1)
			return append(f, 0)
		}()},
		{"fun_truncated", []byte{112, 0, 0, 0, 40, 1}},
		{"local_truncated", []byte{121, 1, 2}},
		{"too_deep", deep},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := Decode(c.in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode(%x) = %#v, %v; want an ErrMalformed error", c.in[:min(len(c.in), 32)], got, err)
			}
		})
	}
}

func TestDecodeAtomCache(t *testing.T) {
	in := []byte{104, 3, 82, 0, 82, 1, 88, 82, 2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1}
	got, rest, err := Decode(in, WithAtomCache([]etf.Atom{"ok", "true", "true"}))
	if err != nil || len(rest) != 0 {
		t.Fatal(err)
	}
	// A cached atom 'true' is a bool as a term but stays an atom as a node name.
	want := etf.Tuple{etf.Atom("ok"), true, etf.Pid{Node: "true", ID: 5, Creation: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
	if _, _, err := Decode([]byte{82, 3}, WithAtomCache([]etf.Atom{"a"})); !errors.Is(err, ErrMalformed) {
		t.Fatalf("out-of-range cache index: %v", err)
	}
}

func TestDecodeLegacyTags(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want etf.Term
	}{
		{"atom_latin1", []byte{100, 0, 2, 'h', 0xe9}, etf.Atom("hé")},
		{"small_atom", []byte{115, 2, 'o', 'k'}, etf.Atom("ok")},
		{"float_ext", append(append([]byte{99}, "1.50000000000000000000e+00"...), 0, 0, 0, 0, 0), 1.5},
		{"pid_ext", []byte{103, 119, 1, 'a', 0, 0, 0, 5, 0, 0, 0, 2, 3}, etf.Pid{Node: "a", ID: 5 | 2<<32, Creation: 3}},
		{"new_reference", []byte{114, 0, 3, 119, 1, 'a', 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}, etf.Ref{Node: "a", Creation: 2, ID: [5]uint32{1, 2, 3}}},
		{"port_ext", []byte{102, 119, 1, 'a', 0, 0, 0, 9, 1}, etf.Port{Node: "a", ID: 9, Creation: 1}},
		{"map_duplicate_keys", []byte{116, 0, 0, 0, 2, 97, 1, 97, 2, 97, 1, 97, 3}, Map{{int64(1), int64(2)}, {int64(1), int64(3)}}},
		{"list_with_list_tail", []byte{108, 0, 0, 0, 1, 97, 1, 107, 0, 1, 2}, etf.ListImproper{int64(1), "\x02"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, rest, err := Decode(c.in)
			if err != nil || len(rest) != 0 {
				t.Fatalf("Decode: %v (%d left)", err, len(rest))
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

func TestDecodeRestAndNoAliasing(t *testing.T) {
	in := []byte{109, 0, 0, 0, 2, 'h', 'i', 97, 7}
	got, rest, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rest, []byte{97, 7}) {
		t.Fatalf("rest = %v", rest)
	}
	in[5] = 'X'
	if string(got.([]byte)) != "hi" {
		t.Fatalf("decoded binary aliases the input: %q", got)
	}
}

func TestDecodeSharedBinaries(t *testing.T) {
	large := bytes.Repeat([]byte{'x'}, MinSharedBinary)
	tests := []struct {
		name  string
		term  etf.Term
		share bool // the binary found first is expected to share the input
	}{
		{"large binary alone", large, true},
		{"large binary followed by more terms", etf.Tuple{large, etf.Atom("data")}, true},
		{"small binary", []byte("hi"), false},
		{"large binary but a minority of the input", etf.Tuple{large, bytes.Repeat([]byte{'y'}, 3*MinSharedBinary)}, false},
	}
	first := func(x etf.Term) []byte {
		switch v := x.(type) {
		case []byte:
			return v
		case etf.Tuple:
			for _, e := range v {
				if b, ok := e.([]byte); ok {
					return b
				}
			}
		}
		return nil
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := mustEncode(t, tt.term)
			got, rest, err := Decode(in, WithSharedBinaries())
			if err != nil || len(rest) != 0 {
				t.Fatalf("Decode: %v, %d bytes left", err, len(rest))
			}
			if !Equal(got, tt.term) {
				t.Fatalf("decoded %v, want %v", got, tt.term)
			}
			b := first(got)
			want := append([]byte{}, b...)
			shared := inside(in, b)
			if shared != tt.share {
				t.Fatalf("binary of %d bytes shares the input: %v, want %v", len(b), shared, tt.share)
			}
			// Appending to a shared binary never overwrites what follows it.
			tail := append([]byte{}, in...)
			_ = append(b, 'Z')
			if !bytes.Equal(in, tail) || !bytes.Equal(b, want) {
				t.Fatal("an append to the decoded binary changed the input")
			}
			// Without the option nothing is shared.
			got, _, _ = Decode(in)
			if inside(in, first(got)) {
				t.Fatal("Decode without WithSharedBinaries shares the input")
			}
		})
	}
}

// inside reports whether b's bytes lie within buf's memory.
func inside(buf, b []byte) bool {
	if len(b) == 0 || len(buf) == 0 {
		return false
	}
	for i := range buf {
		if &buf[i] == &b[0] {
			return true
		}
	}
	return false
}

func TestCompareOrder(t *testing.T) {
	// Erlang's term order, smallest first.
	ordered := []etf.Term{
		int64(-5), 1.5, int64(2), etf.Atom("a"), true,
		etf.Ref{Node: "a", ID: [5]uint32{1, 2, 3}},
		etf.Export{Module: "m", Function: "f", Arity: 1},
		etf.Port{Node: "a", ID: 1},
		etf.Pid{Node: "a", ID: 1},
		etf.Tuple{int64(1)}, etf.Tuple{int64(1), int64(2)},
		etf.Map{}, etf.List{}, etf.List{int64(1)}, "\x01\x02", etf.ListImproper{int64(1), int64(3), etf.Atom("t")},
		[]byte("a"), BitString{Bytes: []byte{'a', 0x00}, Bits: 1}, []byte("ab"),
	}
	for i := 0; i+1 < len(ordered); i++ {
		if c := Compare(ordered[i], ordered[i+1]); c != -1 {
			t.Errorf("Compare(%s, %s) = %d, want -1", Format(ordered[i]), Format(ordered[i+1]), c)
		}
		if c := Compare(ordered[i+1], ordered[i]); c != 1 {
			t.Errorf("Compare(%s, %s) = %d, want 1", Format(ordered[i+1]), Format(ordered[i]), c)
		}
	}
	if Compare(int64(1), 1.0) != 0 || Equal(int64(1), 1.0) {
		t.Error("1 == 1.0 but 1 =/= 1.0")
	}
	if Equal(0.0, math.Copysign(0, -1)) {
		t.Error("0.0 =:= -0.0 must be false")
	}
	if !Equal("ab", etf.List{int64('a'), int64('b')}) || !Equal(etf.Map{int64(1): int64(2)}, Map{{int64(1), int64(2)}}) {
		t.Error("equal terms in different representations must be Equal")
	}
}

func TestMapKeyOrderSmallMaps(t *testing.T) {
	// The BEAM's own order for #{1.0 => a, 2 => b, 1 => c, 0.5 => d, -1 => e}
	// (integers before floats), checked byte for byte in the golden tests.
	m := etf.Map{1.0: etf.Atom("a"), int64(2): etf.Atom("b"), int64(1): etf.Atom("c"), 0.5: etf.Atom("d"), int64(-1): etf.Atom("e")}
	got, _, err := Decode(mustEncode(t, m), WithOrderedMaps())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range got.(Map) {
		keys = append(keys, Format(p.Key))
	}
	if strings.Join(keys, " ") != "-1 1 2 0.5 1.0" {
		t.Fatalf("key order %v", keys)
	}
}

func TestAdaptGenCall(t *testing.T) {
	ref := etf.Ref{Node: "a", ID: [5]uint32{1, 2, 3, 0x503}}
	pid := etf.Pid{Node: "a", ID: 80}
	in := etf.Tuple{etf.Atom("$gen_call"), etf.Tuple{pid, etf.ListImproper{etf.Atom("alias"), ref}}, etf.Atom("req")}
	want := etf.Tuple{etf.Atom("$gen_call"), etf.Tuple{pid, etf.List{etf.Atom("alias"), ref}}, etf.Atom("req")}
	if got := AdaptGenCall(in); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
	for _, other := range []etf.Term{
		etf.Tuple{etf.Atom("$gen_call"), etf.Tuple{pid, ref}, etf.Atom("req")},
		etf.Tuple{etf.Atom("$gen_cast"), etf.Atom("x")},
		etf.Atom("hello"),
	} {
		if got := AdaptGenCall(other); !reflect.DeepEqual(got, other) {
			t.Fatalf("AdaptGenCall changed %#v into %#v", other, got)
		}
	}
}
