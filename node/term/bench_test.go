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
