package term

import (
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

// FuzzDecode: Decode never panics; whatever it decodes re-encodes, decodes
// again to an equal term (byte-identical on the second round), and survives
// Format/Parse.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/otp*.golden")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if _, hx, ok := strings.Cut(line, "\t"); ok {
				if raw, err := hex.DecodeString(hx); err == nil && len(raw) > 1 {
					f.Add(raw[1:])
				}
			}
		}
	}
	f.Add([]byte{108, 0, 0, 0, 1, 97, 1, 119, 1, 't'})
	f.Add([]byte{116, 0, 0, 0, 1, 70, 0, 0, 0, 0, 0, 0, 0, 0, 109, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		x, _, err := Decode(in, WithMaxDepth(200))
		xs, _, errs := Decode(append([]byte{}, in...), WithMaxDepth(200), WithSharedBinaries())
		if (err == nil) != (errs == nil) || (err == nil && !Equal(x, xs)) {
			t.Fatalf("WithSharedBinaries changed the result: %v (%v) vs %v (%v)", x, err, xs, errs)
		}
		// The budget changes nothing but its own errors: a budget of
		// exactly what a term costs decodes it, one byte less refuses it.
		budget := NewDecodeBudget(math.MaxInt64)
		xb, _, errb := Decode(in, WithMaxDepth(200), WithDecodeBudget(budget))
		if (err == nil) != (errb == nil) || (err == nil && !Equal(x, xb)) {
			t.Fatalf("an unlimited budget changed the result: %v (%v) vs %v (%v)", x, err, xb, errb)
		}
		if err != nil {
			return
		}
		if cost := math.MaxInt64 - budget.Left(); cost > 0 {
			if cost > maxCostPerByte*int64(len(in)) {
				t.Fatalf("%d bytes cost %d (%.1fx), more than %dx", len(in), cost, float64(cost)/float64(len(in)), maxCostPerByte)
			}
			if _, _, err := Decode(in, WithMaxDepth(200), WithDecodeBudget(NewDecodeBudget(cost))); err != nil {
				t.Fatalf("a budget of the term's cost (%d) refused it: %v", cost, err)
			}
			if _, _, err := Decode(in, WithMaxDepth(200), WithDecodeBudget(NewDecodeBudget(cost-1))); !errors.Is(err, ErrDecodeBudget) {
				t.Fatalf("a budget one byte short of the term's cost (%d): %v", cost, err)
			}
		}
		enc, err := Encode(nil, x)
		if err != nil {
			t.Fatalf("decoded %#v but cannot re-encode it: %v", x, err)
		}
		y, rest, err := Decode(enc)
		if err != nil || len(rest) != 0 {
			t.Fatalf("re-encoded bytes %x do not decode: %v (%d left)", enc, err, len(rest))
		}
		if !Equal(x, y) {
			t.Fatalf("round trip changed the term: %s -> %s", Format(x), Format(y))
		}
		enc2, err := Encode(nil, y)
		if err != nil || string(enc2) != string(enc) {
			t.Fatalf("second encoding differs: %x vs %x (%v)", enc, enc2, err)
		}
		s := Format(x)
		z, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(Format(%#v)) = %q: %v", x, s, err)
		}
		if !Equal(x, z) {
			t.Fatalf("Parse(Format(t)) changed the term: %q -> %s", s, Format(z))
		}
	})
}

// FuzzUnmarshal: Unmarshal never panics on a decoded term, whatever the Go
// target, and Marshal of the generic view gives back an equal term.
func FuzzUnmarshal(f *testing.F) {
	files, _ := filepath.Glob("testdata/otp*.golden")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if _, hx, ok := strings.Cut(line, "\t"); ok {
				if raw, err := hex.DecodeString(hx); err == nil && len(raw) > 1 {
					f.Add(raw[1:])
				}
			}
		}
	}
	// [{type, restock}, {items, "\x01\x02"}] and #{<<"a">> => 1, a => 2}
	f.Add([]byte{108, 0, 0, 0, 2, 104, 2, 119, 4, 't', 'y', 'p', 'e', 119, 7, 'r', 'e', 's', 't', 'o', 'c', 'k',
		104, 2, 119, 5, 'i', 't', 'e', 'm', 's', 107, 0, 2, 1, 2, 106})
	f.Add([]byte{116, 0, 0, 0, 2, 109, 0, 0, 0, 1, 'a', 97, 1, 119, 1, 'a', 97, 2})
	f.Fuzz(func(t *testing.T, in []byte) {
		x, _, err := Decode(in, WithMaxDepth(200))
		if err != nil {
			return
		}
		targets := []any{new(any), new(event), new(map[string]any), new(map[etf.Atom]int), new([]int), new(string),
			new([]byte), new([2]any), new(*price), new(Map), new(etf.Tuple), new(float64), new(uint8), new([]event),
			new(etf.Map), new(map[int]string), new(*big.Int), new(etf.Pid)}
		for _, p := range targets {
			_ = Unmarshal(x, p)
			_ = Unmarshal(x, p, WithCharlists(), WithStructName("Elixir.X"))
		}
		var g any
		if err := Unmarshal(x, &g); errors.Is(err, ErrDuplicateKey) {
			return // a map with a key twice (Decode keeps it; the BEAM refuses it)
		} else if err != nil {
			t.Fatalf("generic view of %s: %v", Format(x), err)
		}
		back, err := Marshal(g)
		if err != nil {
			t.Fatalf("Marshal of the generic view of %s: %v", Format(x), err)
		}
		if !Equal(back, x) {
			t.Fatalf("%s came back as %s", Format(x), Format(back))
		}
		if _, err := Encode(nil, back); err != nil {
			t.Fatalf("Encode of Marshal's %s: %v", Format(back), err)
		}
	})
}
