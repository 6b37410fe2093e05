package term

import (
	"bytes"
	"cmp"
	"math"
	"math/big"
	"slices"
	"strings"

	"github.com/ergo-services/ergo/etf"
)

// Compare orders two terms the way Erlang's term order does
// (number < atom < reference < fun < port < pid < tuple < map < [] < list <
// bit string), comparing integers and floats by value as Erlang's < does:
// it returns -1, 0 or +1. Values of different Go representations of the same
// Erlang term (int and int64, etf.Map and Map, a string and a list of bytes)
// compare equal.
func Compare(a, b etf.Term) int { return compare(a, b, false) }

// Equal reports whether a and b are the same Erlang term under exact
// equality (=:=): 1 and 1.0 differ, 0.0 and -0.0 differ, an int and an
// int64 of the same value are equal, a Go string equals the list of its
// bytes, etf.Map and Map holding the same pairs are equal.
func Equal(a, b etf.Term) bool { return compare(a, b, true) == 0 }

const (
	rankNumber = iota + 1
	rankAtom
	rankRef
	rankFun
	rankPort
	rankPid
	rankTuple
	rankMap
	rankNil
	rankList
	rankBits
	rankOther
)

func rank(t etf.Term) int {
	switch v := t.(type) {
	case int64, int, int8, int16, int32, uint, uint8, uint16, uint32, uint64, uintptr, float64, float32, *big.Int, big.Int:
		return rankNumber
	case etf.Atom, bool:
		return rankAtom
	case etf.Ref, etf.Alias, Ref:
		return rankRef
	case etf.Export, etf.Function:
		return rankFun
	case etf.Port, Port:
		return rankPort
	case etf.Pid:
		return rankPid
	case etf.Tuple:
		return rankTuple
	case etf.Map, Map:
		return rankMap
	case nil:
		return rankNil
	case etf.List:
		if len(v) == 0 {
			return rankNil
		}
		return rankList
	case []etf.Term:
		if len(v) == 0 {
			return rankNil
		}
		return rankList
	case string:
		if len(v) == 0 {
			return rankNil
		}
		return rankList
	case etf.Charlist:
		if len(v) == 0 {
			return rankNil
		}
		return rankList
	case etf.ListImproper:
		return rankList
	case []byte, etf.String, BitString:
		return rankBits
	}
	return rankOther
}

func compare(a, b etf.Term, exact bool) int {
	ra, rb := rank(a), rank(b)
	if ra != rb {
		return cmp.Compare(ra, rb)
	}
	switch ra {
	case rankNumber:
		return compareNumbers(a, b, exact)
	case rankAtom:
		return strings.Compare(atomText(a), atomText(b))
	case rankRef:
		na, ca, wa := refParts(a)
		nb, cb, wb := refParts(b)
		if c := strings.Compare(string(na), string(nb)); c != 0 {
			return c
		}
		if c := cmp.Compare(ca, cb); c != 0 {
			return c
		}
		if c := cmp.Compare(len(wa), len(wb)); c != 0 {
			return c
		}
		for i := len(wa) - 1; i >= 0; i-- {
			if c := cmp.Compare(wa[i], wb[i]); c != 0 {
				return c
			}
		}
		return 0
	case rankFun:
		return compareFuns(a, b, exact)
	case rankPort:
		na, ia, ca, va := portParts(a)
		nb, ib, cb, vb := portParts(b)
		if c := strings.Compare(string(na), string(nb)); c != 0 {
			return c
		}
		if c := cmp.Compare(ca, cb); c != 0 {
			return c
		}
		if c := cmp.Compare(ia, ib); c != 0 {
			return c
		}
		return cmp.Compare(va, vb)
	case rankPid:
		pa, pb := a.(etf.Pid), b.(etf.Pid)
		if c := strings.Compare(string(pa.Node), string(pb.Node)); c != 0 {
			return c
		}
		if c := cmp.Compare(pa.ID>>32, pb.ID>>32); c != 0 {
			return c
		}
		if c := cmp.Compare(uint32(pa.ID), uint32(pb.ID)); c != 0 {
			return c
		}
		return cmp.Compare(pa.Creation, pb.Creation)
	case rankTuple:
		ta, tb := a.(etf.Tuple), b.(etf.Tuple)
		if c := cmp.Compare(len(ta), len(tb)); c != 0 {
			return c
		}
		for i := range ta {
			if c := compare(ta[i], tb[i], exact); c != 0 {
				return c
			}
		}
		return 0
	case rankMap:
		pa, pb := sortedPairs(a), sortedPairs(b)
		if c := cmp.Compare(len(pa), len(pb)); c != 0 {
			return c
		}
		for i := range pa {
			if c := compare(pa[i].Key, pb[i].Key, true); c != 0 {
				return c
			}
		}
		for i := range pa {
			if c := compare(pa[i].Value, pb[i].Value, exact); c != 0 {
				return c
			}
		}
		return 0
	case rankNil:
		return 0
	case rankList:
		return compareLists(a, b, exact)
	case rankBits:
		da, ba := bitParts(a)
		db, bb := bitParts(b)
		// Compare bit by bit: whole bytes first, then the partial byte.
		la, lb := len(da)*8, len(db)*8
		if ba != 0 {
			la = (len(da)-1)*8 + int(ba)
		}
		if bb != 0 {
			lb = (len(db)-1)*8 + int(bb)
		}
		n := min(la, lb)
		for i := 0; i < n; i += 8 {
			x, y := da[i/8], db[i/8]
			if rem := n - i; rem < 8 {
				mask := byte(0xFF << (8 - rem))
				x, y = x&mask, y&mask
			}
			if x != y {
				return cmp.Compare(x, y)
			}
		}
		return cmp.Compare(la, lb)
	}
	if la, ok := a.(Local); ok {
		if lb, ok := b.(Local); ok {
			return bytes.Compare(la.Raw, lb.Raw)
		}
	}
	return 0
}

func atomText(t etf.Term) string {
	switch v := t.(type) {
	case etf.Atom:
		return string(v)
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return ""
}

func refParts(t etf.Term) (etf.Atom, uint32, []uint32) {
	switch v := t.(type) {
	case etf.Ref:
		if v.ID[3]|v.ID[4] != 0 {
			return v.Node, v.Creation, v.ID[:5]
		}
		return v.Node, v.Creation, v.ID[:3]
	case etf.Alias:
		return refParts(etf.Ref(v))
	case Ref:
		n := min(int(v.Len), 5)
		return v.Node, v.Creation, v.ID[:n]
	}
	return "", 0, nil
}

func portParts(t etf.Term) (etf.Atom, uint64, uint32, int) {
	switch v := t.(type) {
	case etf.Port:
		return v.Node, uint64(v.ID), v.Creation, 0
	case Port:
		return v.Node, v.ID, v.Creation, 1
	}
	return "", 0, 0, 0
}

func bitParts(t etf.Term) ([]byte, uint8) {
	switch v := t.(type) {
	case []byte:
		return v, 0
	case etf.String:
		return []byte(v), 0
	case BitString:
		if v.Bits >= 8 {
			return v.Bytes, 0
		}
		return v.Bytes, v.Bits
	}
	return nil, 0
}

func compareFuns(a, b etf.Term, exact bool) int {
	ea, aIsExport := a.(etf.Export)
	eb, bIsExport := b.(etf.Export)
	switch {
	case aIsExport && bIsExport:
		if c := strings.Compare(string(ea.Module), string(eb.Module)); c != 0 {
			return c
		}
		if c := strings.Compare(string(ea.Function), string(eb.Function)); c != 0 {
			return c
		}
		return cmp.Compare(ea.Arity, eb.Arity)
	case aIsExport:
		return 1
	case bIsExport:
		return -1
	}
	fa, fb := a.(etf.Function), b.(etf.Function)
	if c := strings.Compare(string(fa.Module), string(fb.Module)); c != 0 {
		return c
	}
	if c := cmp.Compare(fa.OldIndex, fb.OldIndex); c != 0 {
		return c
	}
	if c := cmp.Compare(fa.OldUnique, fb.OldUnique); c != 0 {
		return c
	}
	if c := cmp.Compare(fa.Index, fb.Index); c != 0 {
		return c
	}
	if c := bytes.Compare(fa.Unique[:], fb.Unique[:]); c != 0 {
		return c
	}
	if c := cmp.Compare(fa.Arity, fb.Arity); c != 0 {
		return c
	}
	if c := compare(fa.Pid, fb.Pid, exact); c != 0 {
		return c
	}
	if c := cmp.Compare(len(fa.FreeVars), len(fb.FreeVars)); c != 0 {
		return c
	}
	for i := range fa.FreeVars {
		if c := compare(fa.FreeVars[i], fb.FreeVars[i], exact); c != 0 {
			return c
		}
	}
	return 0
}

// listView gives uniform access to the list representations.
type listView struct {
	l    []etf.Term
	s    string
	r    []rune
	kind int // 0 terms, 1 bytes of s, 2 runes
	tail etf.Term
}

func viewList(t etf.Term) listView {
	switch v := t.(type) {
	case etf.List:
		return listView{l: v}
	case []etf.Term:
		return listView{l: v}
	case string:
		return listView{s: v, kind: 1}
	case etf.Charlist:
		return listView{r: []rune(string(v)), kind: 2}
	case etf.ListImproper:
		if len(v) == 0 {
			return listView{}
		}
		return listView{l: v[:len(v)-1], tail: v[len(v)-1]}
	}
	return listView{}
}

func (v listView) len() int {
	switch v.kind {
	case 1:
		return len(v.s)
	case 2:
		return len(v.r)
	}
	return len(v.l)
}

func (v listView) at(i int) etf.Term {
	switch v.kind {
	case 1:
		return int64(v.s[i])
	case 2:
		return int64(v.r[i])
	}
	return v.l[i]
}

func compareLists(a, b etf.Term, exact bool) int {
	va, vb := viewList(a), viewList(b)
	if va.kind == 1 && vb.kind == 1 {
		return strings.Compare(va.s, vb.s)
	}
	na, nb := va.len(), vb.len()
	for i := 0; i < min(na, nb); i++ {
		if c := compare(va.at(i), vb.at(i), exact); c != 0 {
			return c
		}
	}
	// One list is a prefix of the other: compare what follows (a tail or
	// the remaining cells).
	switch {
	case na == nb:
		return compare(tailOrNil(va.tail), tailOrNil(vb.tail), exact)
	case na < nb:
		if va.tail == nil {
			return -1 // [] < any non-empty list
		}
		return compare(va.tail, restList(vb, na), exact)
	default:
		if vb.tail == nil {
			return 1
		}
		return compare(restList(va, nb), vb.tail, exact)
	}
}

func tailOrNil(t etf.Term) etf.Term {
	if t == nil {
		return etf.List{}
	}
	return t
}

func restList(v listView, from int) etf.Term {
	rest := make(etf.List, 0, v.len()-from)
	for i := from; i < v.len(); i++ {
		rest = append(rest, v.at(i))
	}
	if v.tail != nil {
		return etf.ListImproper(append(rest, v.tail))
	}
	return rest
}

func sortedPairs(t etf.Term) []Pair {
	var ps []Pair
	switch v := t.(type) {
	case etf.Map:
		ps = make([]Pair, 0, len(v))
		for k, x := range v {
			ps = append(ps, Pair{k, x})
		}
	case Map:
		ps = slices.Clone([]Pair(v))
	}
	slices.SortFunc(ps, func(x, y Pair) int { return compare(x.Key, y.Key, true) })
	return ps
}

// numeric forms: small (int64), unsigned (uint64 above MaxInt64), big, float.
func numParts(t etf.Term) (i int64, u uint64, bi *big.Int, f float64, kind int) {
	switch v := t.(type) {
	case int64:
		return v, 0, nil, 0, 0
	case int:
		return int64(v), 0, nil, 0, 0
	case int8:
		return int64(v), 0, nil, 0, 0
	case int16:
		return int64(v), 0, nil, 0, 0
	case int32:
		return int64(v), 0, nil, 0, 0
	case uint8:
		return int64(v), 0, nil, 0, 0
	case uint16:
		return int64(v), 0, nil, 0, 0
	case uint32:
		return int64(v), 0, nil, 0, 0
	case uint:
		return numParts(uint64(v))
	case uintptr:
		return numParts(uint64(v))
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v), 0, nil, 0, 0
		}
		return 0, 0, new(big.Int).SetUint64(v), 0, 2
	case *big.Int:
		if v == nil {
			return 0, 0, nil, 0, 0
		}
		if v.IsInt64() {
			return v.Int64(), 0, nil, 0, 0
		}
		return 0, 0, v, 0, 2
	case big.Int:
		return numParts(&v)
	case float64:
		return 0, 0, nil, v, 3
	case float32:
		return 0, 0, nil, float64(v), 3
	}
	return 0, 0, nil, 0, 0
}

func compareNumbers(a, b etf.Term, exact bool) int {
	ia, _, ba, fa, ka := numParts(a)
	ib, _, bb, fb, kb := numParts(b)
	aFloat, bFloat := ka == 3, kb == 3
	if aFloat && bFloat {
		if c := cmp.Compare(fa, fb); c != 0 || !exact {
			return c
		}
		// Exact: -0.0 < 0.0 (OTP 27 distinguishes them).
		return cmp.Compare(math.Float64bits(fb)>>63, math.Float64bits(fa)>>63)
	}
	if exact && aFloat != bFloat {
		if aFloat {
			return 1 // map-key order: integers before floats
		}
		return -1
	}
	if !aFloat && !bFloat {
		if ka == 0 && kb == 0 {
			return cmp.Compare(ia, ib)
		}
		return toBig(ia, ba).Cmp(toBig(ib, bb))
	}
	// One float, one integer, by value. Infinities and NaN (not Erlang
	// values, but a Go caller may pass them) compare through float64.
	if math.IsNaN(fa) || math.IsInf(fa, 0) || math.IsNaN(fb) || math.IsInf(fb, 0) {
		if aFloat {
			g, _ := new(big.Float).SetInt(toBig(ib, bb)).Float64()
			return cmp.Compare(fa, g)
		}
		g, _ := new(big.Float).SetInt(toBig(ia, ba)).Float64()
		return cmp.Compare(g, fb)
	}
	var x, y *big.Float
	if aFloat {
		x = big.NewFloat(fa)
		y = new(big.Float).SetInt(toBig(ib, bb))
	} else {
		x = new(big.Float).SetInt(toBig(ia, ba))
		y = big.NewFloat(fb)
	}
	return x.Cmp(y)
}

func toBig(i int64, b *big.Int) *big.Int {
	if b != nil {
		return b
	}
	return big.NewInt(i)
}
