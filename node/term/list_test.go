package term

import (
	"reflect"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

func TestListElements(t *testing.T) {
	tests := []struct {
		name string
		in   etf.Term
		want []etf.Term
		ok   bool
	}{
		{name: "list", in: etf.List{etf.Atom("a"), int64(300)}, want: []etf.Term{etf.Atom("a"), int64(300)}, ok: true},
		{name: "empty list", in: etf.List{}, want: []etf.Term{}, ok: true},
		{name: "string is a list of bytes", in: "a\x00\xff", want: []etf.Term{int64('a'), int64(0), int64(255)}, ok: true},
		{name: "empty string", in: "", want: []etf.Term{}, ok: true},
		{name: "nil is the empty list", in: nil, want: []etf.Term{}, ok: true},
		{name: "improper list", in: etf.ListImproper{etf.Atom("a"), etf.Atom("b")}, ok: false},
		{name: "binary", in: []byte("ab"), ok: false},
		{name: "tuple", in: etf.Tuple{int64(1)}, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ListElements(tt.in)
			if ok != tt.ok || (ok && !reflect.DeepEqual(got, tt.want)) {
				t.Fatalf("ListElements(%#v) = %#v, %v; want %#v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
