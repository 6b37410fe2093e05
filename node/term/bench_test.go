package term

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

func benchTerms() []struct {
	name string
	t    etf.Term
} {
	nested := etf.Map{}
	for i := 0; i < 8; i++ {
		inner := etf.Map{etf.Atom("id"): int64(i), etf.Atom("name"): []byte(fmt.Sprintf("user-%d", i)),
			etf.Atom("tags"): etf.List{etf.Atom("a"), etf.Atom("b")}, etf.Atom("score"): float64(i) / 3}
		nested[etf.Atom(fmt.Sprintf("k%d", i))] = inner
	}
	// Dense lists: the decoder's cost per element (slots, boxing, the
	// memory budget's bookkeeping) dominates.
	ints := make(etf.List, 1000)
	rows := make(etf.List, 1000)
	for i := range ints {
		ints[i] = int64(1000 + i)
		rows[i] = etf.Tuple{etf.Atom("row"), int64(i), etf.Atom("ok"), etf.List{}}
	}
	return []struct {
		name string
		t    etf.Term
	}{
		{"small", etf.Tuple{etf.Atom("$gen_call"), etf.Tuple{etf.Pid{Node: "a@host", ID: 80, Creation: 7}, etf.Ref{Node: "a@host", Creation: 7, ID: [5]uint32{1, 2, 3}}}, etf.Tuple{etf.Atom("get"), int64(42)}}},
		{"binary_1KiB", bytes.Repeat([]byte{'x'}, 1024)},
		{"binary_64KiB", bytes.Repeat([]byte{'x'}, 64*1024)},
		{"nested_map", nested},
		{"list_1000_ints", ints},
		{"list_1000_tuples", rows},
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, c := range benchTerms() {
		b.Run(c.name, func(b *testing.B) {
			buf, _ := Encode(nil, c.t)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = Encode(buf[:0], c.t); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, c := range benchTerms() {
		b.Run(c.name, func(b *testing.B) {
			buf, err := Encode(nil, c.t)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Decode(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConvert measures Unmarshal and Marshal on what a typed handler
// converts per message: a string and an int argument, an atom-keyed map
// into a struct, and a struct and a map[string]int reply.
func BenchmarkConvert(b *testing.B) {
	type ev struct {
		Type  etf.Atom `erl:"type"`
		Items []int    `erl:"items"`
		Note  string   `erl:"note"`
	}
	in := etf.Map{etf.Atom("type"): etf.Atom("restock"), etf.Atom("items"): "\x01\x02\x03", etf.Atom("note"): []byte("late")}
	b.Run("unmarshal_string", func(b *testing.B) {
		var s string
		for i := 0; i < b.N; i++ {
			if err := Unmarshal([]byte("sku-1"), &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal_int", func(b *testing.B) {
		var n int
		for i := 0; i < b.N; i++ {
			if err := Unmarshal(int64(7), &n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal_struct", func(b *testing.B) {
		var e ev
		for i := 0; i < b.N; i++ {
			if err := Unmarshal(in, &e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("marshal_struct", func(b *testing.B) {
		e := ev{Type: "restock", Items: []int{1, 2, 3}, Note: "late"}
		for i := 0; i < b.N; i++ {
			if _, err := Marshal(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("marshal_map", func(b *testing.B) {
		m := map[string]int{"a": 1, "b": 2, "c": 3}
		for i := 0; i < b.N; i++ {
			if _, err := Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
