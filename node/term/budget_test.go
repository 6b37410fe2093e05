package term

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"testing"

	"github.com/ergo-services/ergo/etf"
)

// allocated returns the heap bytes f allocates (MemStats.TotalAlloc), with
// the other goroutines held off as testing.AllocsPerRun does.
func allocated(f func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// repeatList is a LIST_EXT of elem repeated to fill about size bytes,
// with tail (NIL for a proper list).
func repeatList(size int, tail []byte, elems ...[]byte) []byte {
	per := 0
	for _, e := range elems {
		per += len(e)
	}
	n := (size - 5 - len(tail)) / per * len(elems)
	b := make([]byte, 0, size)
	b = append(b, tagList)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	for i := 0; i < n; i++ {
		b = append(b, elems[i%len(elems)]...)
	}
	return append(b, tail...)
}

// amplifyingPayloads are 16 MiB terms whose Go form takes 8 to 80 times
// their size: each element takes a few bytes of input and a 16-byte slot
// plus whatever it boxes or allocates.
func amplifyingPayloads() []struct {
	name string
	in   []byte
} {
	const size = 16 << 20
	nils := bytes.Repeat([]byte{tagNil}, size)
	tuple := binary.BigEndian.AppendUint32([]byte{tagLargeTuple}, uint32(size-5))
	tuple = append(tuple, nils[:size-5]...)
	m := binary.BigEndian.AppendUint32([]byte{tagMap}, uint32((size-5)/6))
	for i := 0; i < (size-5)/6; i++ {
		m = append(m, tagInteger)
		m = binary.BigEndian.AppendUint32(m, uint32(i))
		m = append(m, tagNil)
	}
	tuple15 := append([]byte{tagSmallTuple, 15}, nils[:15]...)
	var atoms [][]byte
	for c := byte('a'); c < 'a'+16; c++ { // more than the decoder's 8 recent atoms
		atoms = append(atoms, []byte{tagSmallAtomUTF8, 1, c})
	}
	return []struct {
		name string
		in   []byte
	}{
		{"list of []", repeatList(size, []byte{tagNil}, []byte{tagNil})},
		{"tuple of []", tuple},
		{"map of integer keys", m},
		{"list of maps", repeatList(size, []byte{tagNil}, []byte{tagMap, 0, 0, 0, 1, tagSmallInteger, 7, tagNil})},
		{"list of tuples of 15 []", repeatList(size, []byte{tagNil}, tuple15)},
		{"improper list of improper lists", repeatList(size, []byte{tagSmallInteger, 1}, []byte{tagList, 0, 0, 0, 1, tagNil, tagSmallInteger, 0})},
		{"list of lists, nested", repeatList(size, []byte{tagNil}, []byte{tagList, 0, 0, 0, 1, tagList, 0, 0, 0, 1, tagNil, tagNil, tagNil})},
		{"list of empty binaries", repeatList(size, []byte{tagNil}, []byte{tagBinary, 0, 0, 0, 0})},
		{"list of 1-byte binaries", repeatList(size, []byte{tagNil}, []byte{tagBinary, 0, 0, 0, 1, 'x'})},
		{"list of 1-byte strings", repeatList(size, []byte{tagNil}, []byte{tagString, 0, 1, 'x'})},
		{"list of 16 atoms", repeatList(size, []byte{tagNil}, atoms...)},
		{"list of big integers", repeatList(size, []byte{tagNil}, []byte{tagSmallBig, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9})},
		{"list of integers", repeatList(size, []byte{tagNil}, []byte{tagInteger, 0, 0, 1, 0})},
	}
}

// A 16 MiB term whose Go form would take many times its size is refused
// with ErrDecodeBudget, having allocated no more than the budget: four
// times its size.
func TestDecodeBudgetRefusesAmplifyingPayloads(t *testing.T) {
	for _, c := range amplifyingPayloads() {
		t.Run(c.name, func(t *testing.T) {
			limit := 4 * int64(len(c.in))
			var err error
			got := allocated(func() { _, _, err = Decode(c.in, WithDecodeBudget(NewDecodeBudget(limit))) })
			if !errors.Is(err, ErrDecodeBudget) {
				t.Fatalf("Decode of %d bytes with a budget of %d: err = %v, want ErrDecodeBudget", len(c.in), limit, err)
			}
			if errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v also wraps ErrMalformed: the term is well formed", err)
			}
			// The error's text takes a few hundred bytes beyond the budget.
			if got > uint64(limit)+4096 {
				t.Fatalf("allocated %d bytes (%.1fx the input) for a budget of %d (4x): %v", got, float64(got)/float64(len(c.in)), limit, err)
			}
			t.Logf("allocated %.2fx the input: %v", float64(got)/float64(len(c.in)), err)
		})
	}
}

// A tuple, list or map whose slots alone exceed the budget is refused
// before anything is allocated for it.
func TestDecodeBudgetRefusesArityAtOnce(t *testing.T) {
	for _, c := range amplifyingPayloads()[:3] { // list, tuple, map of one level
		t.Run(c.name, func(t *testing.T) {
			budget := NewDecodeBudget(4 * int64(len(c.in)))
			var err error
			got := allocated(func() { _, _, err = Decode(c.in, WithDecodeBudget(budget)) })
			if !errors.Is(err, ErrDecodeBudget) {
				t.Fatalf("err = %v, want ErrDecodeBudget", err)
			}
			if budget.Left() != 4*int64(len(c.in)) {
				t.Errorf("budget left %d, want it untouched (%d)", budget.Left(), 4*len(c.in))
			}
			if got > 4096 {
				t.Fatalf("allocated %d bytes before refusing the arity", got)
			}
		})
	}
}

// ordinaryTerms are terms whose Go form takes at most about four times
// their encoded size, and ones whose form is small whatever the ratio.
func ordinaryTerms() map[string]etf.Term {
	floats := make(etf.List, 1<<20)
	bins := make(etf.List, 1<<12)
	pids := make(etf.List, 1<<16)
	for i := range floats {
		floats[i] = float64(i) / 7
	}
	for i := range bins {
		bins[i] = bytes.Repeat([]byte{byte(i)}, 1000+i)
	}
	for i := range pids {
		pids[i] = etf.Pid{Node: "a@host", ID: uint64(i), Creation: 3}
	}
	return map[string]etf.Term{
		"list of floats":   floats,
		"list of binaries": bins,
		"list of pids":     pids,
		"binary":           bytes.Repeat([]byte("0123456789abcdef"), 1<<20),
		"string":           string(bytes.Repeat([]byte("x"), 65535)),
		"call": etf.Tuple{etf.Atom("$gen_call"), etf.Tuple{etf.Pid{Node: "a@host", ID: 80, Creation: 7},
			etf.ListImproper{etf.Atom("alias"), etf.Ref{Node: "a@host", Creation: 7, ID: [5]uint32{1, 2, 3}}}},
			etf.Map{etf.Atom("key"): []byte("value"), int64(1): etf.List{true, false, etf.List{}, etf.Tuple{}}}},
	}
}

// Terms whose Go form takes at most four times their size decode with a
// budget of four times their size, to the same term as without a budget.
func TestDecodeBudgetOrdinaryPayloads(t *testing.T) {
	for name, x := range ordinaryTerms() {
		t.Run(name, func(t *testing.T) {
			in := mustEncode(t, x)
			plain, _, err := Decode(in)
			if err != nil {
				t.Fatal(err)
			}
			limit := max(4*int64(len(in)), 64<<10)
			budget := NewDecodeBudget(limit)
			got, rest, err := Decode(in, WithDecodeBudget(budget))
			if err != nil || len(rest) != 0 {
				t.Fatalf("Decode of %d bytes with a budget of %d: %v (%d left)", len(in), limit, err, len(rest))
			}
			if !Equal(got, plain) || !Equal(got, x) {
				t.Fatalf("decoded with a budget: %.200s, want %.200s", Format(got), Format(plain))
			}
			t.Logf("%d bytes charged %.2fx", len(in), float64(limit-budget.Left())/float64(len(in)))
		})
	}
}

// budgetCases are the golden terms the BEAM wrote and the ordinary and
// amplifying terms above (cut to 64 KiB, so they decode).
func budgetCases(t *testing.T) []struct {
	name string
	in   []byte
} {
	var out []struct {
		name string
		in   []byte
	}
	for name, es := range goldenFiles(t) {
		for _, e := range es {
			out = append(out, struct {
				name string
				in   []byte
			}{e.release + "/" + name, e.bytes})
		}
	}
	for name, x := range ordinaryTerms() {
		out = append(out, struct {
			name string
			in   []byte
		}{name, mustEncode(t, x)})
	}
	// Go maps of every size class of their tables.
	for _, n := range []int{1, 8, 9, 14, 15, 16, 100, 453, 897, 1000, 5000, 100000} {
		m := etf.Map{}
		for i := 0; i < n; i++ {
			m[int64(i)*1000] = int64(i)
		}
		out = append(out, struct {
			name string
			in   []byte
		}{fmt.Sprintf("map of %d keys", n), mustEncode(t, m)})
	}
	for _, c := range amplifyingPayloads() {
		if c.in[0] != tagList {
			continue
		}
		short := repeatList(64<<10, []byte{tagNil}, c.in[5:5+64]) // whole elements: the payloads repeat every 64 bytes or less
		if _, _, err := Decode(short); err != nil {
			continue // an element that does not divide 64 bytes
		}
		out = append(out, struct {
			name string
			in   []byte
		}{c.name + ", 64 KiB", short})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Decode charges at least what it allocates, and a budget one byte short of
// its charge refuses the term: the budget is an upper bound of the memory a
// decoding allocates, exact enough to test.
func TestDecodeBudgetCoversAllocations(t *testing.T) {
	for _, c := range budgetCases(t) {
		t.Run(c.name, func(t *testing.T) {
			budget := NewDecodeBudget(math.MaxInt64)
			if _, _, err := Decode(c.in, WithDecodeBudget(budget)); err != nil {
				t.Fatalf("a case that is not a whole term: %v", err)
			}
			charged := math.MaxInt64 - budget.Left()
			runs := 20
			if len(c.in) > 1<<20 {
				runs = 2
			}
			budgets := make([]DecodeBudget, runs)
			var err error
			got := uint64(math.MaxUint64)
			for try := 0; try < 3; try++ { // the least of 3: other goroutines may allocate too
				for i := range budgets {
					budgets[i] = *NewDecodeBudget(charged)
				}
				got = min(got, allocated(func() {
					for i := range budgets {
						_, _, err = Decode(c.in, WithDecodeBudget(&budgets[i]))
					}
				})/uint64(runs))
			}
			if err != nil {
				t.Fatalf("Decode with a budget of its own charge (%d): %v", charged, err)
			}
			if got > uint64(charged) {
				t.Fatalf("Decode of %d bytes allocated %d bytes but charged %d", len(c.in), got, charged)
			}
			if charged > 0 {
				_, _, err := Decode(c.in, WithDecodeBudget(NewDecodeBudget(charged-1)))
				if !errors.Is(err, ErrDecodeBudget) {
					t.Fatalf("Decode with a budget of %d, one byte short: %v", charged-1, err)
				}
			}
		})
	}
}

// The terms decoded with one budget share it; a budget used up refuses
// what costs anything and lets through what costs nothing.
func TestDecodeBudgetShared(t *testing.T) {
	in := mustEncode(t, etf.Tuple{etf.Atom("a"), []byte("some bytes")})
	b := NewDecodeBudget(math.MaxInt64)
	if _, _, err := Decode(in, WithDecodeBudget(b)); err != nil {
		t.Fatal(err)
	}
	once := math.MaxInt64 - b.Left()
	b = NewDecodeBudget(2*once + once/2)
	for i := 0; i < 2; i++ {
		if _, _, err := Decode(in, WithDecodeBudget(b)); err != nil {
			t.Fatalf("decoding %d: %v", i+1, err)
		}
	}
	_, _, err := Decode(in, WithDecodeBudget(b))
	if !errors.Is(err, ErrDecodeBudget) {
		t.Fatalf("third decoding with %d left of a budget for 2.5: %v", b.Left(), err)
	}
	for _, free := range []etf.Term{int64(7), etf.List{}, etf.Tuple{}, true, etf.Atom("ok")} {
		if _, _, err := Decode(mustEncode(t, free), WithDecodeBudget(NewDecodeBudget(-1))); err != nil {
			t.Errorf("%s with no budget: %v", Format(free), err)
		}
	}
	if _, _, err := Decode(mustEncode(t, int64(1000)), WithDecodeBudget(NewDecodeBudget(0))); !errors.Is(err, ErrDecodeBudget) {
		t.Errorf("1000 with no budget: %v, want ErrDecodeBudget", err)
	}
}

// Without a budget Decode sizes nothing from a claimed arity beyond the
// bytes left: a short SMALL_TUPLE_EXT fails before allocating its slots.
func TestDecodeSmallTupleArityBoundedByInput(t *testing.T) {
	in := []byte{tagSmallTuple, 255, tagNil}
	var err error
	got := allocated(func() { _, _, err = Decode(in) })
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	if got >= 255*16 {
		t.Fatalf("allocated %d bytes for a tuple of 255 claimed elements in 1 byte", got)
	}
}

// maxCostPerByte is the most a term costs in Go per byte of its encoding,
// as the docs of node/dist's ProtoConfig say.
const maxCostPerByte = 64

// The costliest terms known, maps of one small integer key, nested or in a
// list, cost less than maxCostPerByte times their size.
func TestDecodeCostPerByte(t *testing.T) {
	nested := func(key []byte) []byte {
		var b []byte
		for i := 0; i < 5000; i++ {
			b = append(append(b, tagMap, 0, 0, 0, 1), key...)
		}
		return append(b, tagNil)
	}
	for _, c := range []struct {
		name  string
		in    []byte
		atoms []etf.Atom
	}{
		{name: "list of #{0 => []}", in: repeatList(1<<20, []byte{tagNil}, []byte{tagMap, 0, 0, 0, 1, tagSmallInteger, 0, tagNil})},
		{name: "nested #{0 => ...}", in: nested([]byte{tagSmallInteger, 0})},
		{name: "nested #{A => ...}, A from the atom cache", in: nested([]byte{tagAtomCacheRef, 0}), atoms: []etf.Atom{"a"}},
		{name: "list of #{}", in: repeatList(1<<20, []byte{tagNil}, []byte{tagMap, 0, 0, 0, 0})},
		{name: "list of {[]}", in: repeatList(1<<20, []byte{tagNil}, []byte{tagSmallTuple, 1, tagNil})},
	} {
		t.Run(c.name, func(t *testing.T) {
			budget := NewDecodeBudget(math.MaxInt64)
			if _, _, err := Decode(c.in, WithDecodeBudget(budget), WithAtomCache(c.atoms)); err != nil {
				t.Fatal(err)
			}
			cost := math.MaxInt64 - budget.Left()
			if cost > maxCostPerByte*int64(len(c.in)) {
				t.Fatalf("%d bytes cost %d: %.1fx", len(c.in), cost, float64(cost)/float64(len(c.in)))
			}
			t.Logf("%.1fx", float64(cost)/float64(len(c.in)))
		})
	}
}
