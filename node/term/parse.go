package term

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ergo-services/ergo/etf"
)

// Parse reads one term written in the syntax Format produces (Erlang term
// syntax plus the #Name<...> extension forms) and returns it in the
// representation Decode would return: integers as int64 (*big.Int beyond
// 64 bits), atoms as etf.Atom (true and false as bool), "text" as a Go
// string when every character is below 256 (otherwise an etf.List of
// integers), maps as etf.Map or Map by the same rule as Decode. Surrounding
// white space is allowed; anything else after the term is an error. Every
// error wraps ErrSyntax.
func Parse(s string) (etf.Term, error) {
	p := parser{s: s}
	p.space()
	t, err := p.term(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, p.errf("unexpected %q after the term", p.rest(10))
	}
	return t, nil
}

type parser struct {
	s string
	i int
}

func (p *parser) errf(format string, args ...any) error {
	return fmt.Errorf("%w: at offset %d: %s", ErrSyntax, p.i, fmt.Sprintf(format, args...))
}

func (p *parser) rest(n int) string {
	r := p.s[p.i:]
	if len(r) > n {
		r = r[:n]
	}
	return r
}

func (p *parser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *parser) accept(tok string) bool {
	p.space()
	if strings.HasPrefix(p.s[p.i:], tok) {
		p.i += len(tok)
		return true
	}
	return false
}

func (p *parser) expect(tok string) error {
	if !p.accept(tok) {
		return p.errf("expected %q, found %q", tok, p.rest(10))
	}
	return nil
}

func (p *parser) term(depth int) (etf.Term, error) {
	if depth > DefaultMaxDepth {
		return nil, p.errf("nesting deeper than %d", DefaultMaxDepth)
	}
	p.space()
	c := p.peek()
	switch {
	case c == 0:
		return nil, p.errf("unexpected end of input")
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == '\'':
		a, err := p.quoted('\'')
		if err != nil {
			return nil, err
		}
		return atomTerm(a), nil
	case c == '"':
		return p.stringTerm()
	case c == '[':
		return p.list(depth)
	case c == '{':
		p.i++
		var t etf.Tuple = etf.Tuple{}
		if p.accept("}") {
			return t, nil
		}
		for {
			x, err := p.term(depth + 1)
			if err != nil {
				return nil, err
			}
			t = append(t, x)
			if p.accept("}") {
				return t, nil
			}
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
	case strings.HasPrefix(p.s[p.i:], "#{"):
		return p.mapTerm(depth)
	case c == '#':
		return p.extension(depth)
	case strings.HasPrefix(p.s[p.i:], "<<"):
		return p.binary()
	case c >= 'a' && c <= 'z':
		start := p.i
		for p.i < len(p.s) && isAtomChar(p.s[p.i]) {
			p.i++
		}
		word := p.s[start:p.i]
		if word == "fun" {
			return p.export()
		}
		if reservedWord(word) {
			return nil, p.errf("reserved word %q is not a term", word)
		}
		return atomTerm(word), nil
	}
	return nil, p.errf("unexpected %q", p.rest(10))
}

func isAtomChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '@'
}

func atomTerm(a string) etf.Term {
	switch a {
	case "true":
		return true
	case "false":
		return false
	}
	return etf.Atom(a)
}

func (p *parser) number() (etf.Term, error) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if digits() == 0 {
		return nil, p.errf("expected digits")
	}
	isFloat := false
	if p.peek() == '.' && p.i+1 < len(p.s) && p.s[p.i+1] >= '0' && p.s[p.i+1] <= '9' {
		isFloat = true
		p.i++
		digits()
		if c := p.peek(); c == 'e' || c == 'E' {
			p.i++
			if c := p.peek(); c == '+' || c == '-' {
				p.i++
			}
			if digits() == 0 {
				return nil, p.errf("expected exponent digits")
			}
		}
	}
	text := p.s[start:p.i]
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, p.errf("bad float %q", text)
		}
		return f, nil
	}
	if v, err := strconv.ParseInt(text, 10, 64); err == nil {
		return v, nil
	}
	v, ok := new(big.Int).SetString(text, 10)
	if !ok {
		return nil, p.errf("bad integer %q", text)
	}
	return v, nil
}

// quoted reads a quoted atom or string body and returns its characters.
func (p *parser) quotedRunes(q byte) ([]rune, error) {
	p.i++ // opening quote
	var out []rune
	for {
		if p.i >= len(p.s) {
			return nil, p.errf("unterminated %c", q)
		}
		c := p.s[p.i]
		if c == q {
			p.i++
			return out, nil
		}
		if c != '\\' {
			r, n := utf8.DecodeRuneInString(p.s[p.i:])
			out = append(out, r)
			p.i += n
			continue
		}
		p.i++
		if p.i >= len(p.s) {
			return nil, p.errf("unterminated escape")
		}
		e := p.s[p.i]
		p.i++
		switch e {
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case 's':
			out = append(out, ' ')
		case 'e':
			out = append(out, 27)
		case 'd':
			out = append(out, 127)
		case 'b':
			out = append(out, 8)
		case 'f':
			out = append(out, 12)
		case 'v':
			out = append(out, 11)
		case 'x':
			var hexs string
			if p.peek() == '{' {
				end := strings.IndexByte(p.s[p.i:], '}')
				if end < 0 {
					return nil, p.errf("unterminated \\x{")
				}
				hexs = p.s[p.i+1 : p.i+end]
				p.i += end + 1
			} else {
				if p.i+2 > len(p.s) {
					return nil, p.errf("short \\x escape")
				}
				hexs = p.s[p.i : p.i+2]
				p.i += 2
			}
			v, err := strconv.ParseUint(hexs, 16, 32)
			if err != nil || v > utf8.MaxRune {
				return nil, p.errf("bad \\x escape %q", hexs)
			}
			out = append(out, rune(v))
		default:
			if e >= '0' && e <= '7' {
				v := int(e - '0')
				for k := 0; k < 2 && p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '7'; k++ {
					v = v*8 + int(p.s[p.i]-'0')
					p.i++
				}
				out = append(out, rune(v))
				continue
			}
			out = append(out, rune(e))
		}
	}
}

func (p *parser) quoted(q byte) (string, error) {
	rs, err := p.quotedRunes(q)
	if err != nil {
		return "", err
	}
	return string(rs), nil
}

func (p *parser) stringTerm() (etf.Term, error) {
	rs, err := p.quotedRunes('"')
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if r > 255 {
			l := make(etf.List, len(rs))
			for i, r := range rs {
				l[i] = int64(r)
			}
			return l, nil
		}
	}
	if len(rs) > 65535 {
		l := make(etf.List, len(rs))
		for i, r := range rs {
			l[i] = int64(r)
		}
		return l, nil
	}
	buf := make([]byte, len(rs))
	for i, r := range rs {
		buf[i] = byte(r)
	}
	return string(buf), nil
}

func (p *parser) list(depth int) (etf.Term, error) {
	p.i++ // [
	if p.accept("]") {
		return etf.List{}, nil
	}
	var l []etf.Term
	for {
		x, err := p.term(depth + 1)
		if err != nil {
			return nil, err
		}
		l = append(l, x)
		if p.accept("]") {
			return etf.List(l), nil
		}
		if p.accept("|") {
			tail, err := p.term(depth + 1)
			if err != nil {
				return nil, err
			}
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			return etf.ListImproper(append(l, tail)), nil
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
	}
}

func (p *parser) mapTerm(depth int) (etf.Term, error) {
	p.i += 2 // #{
	var pairs Map
	if !p.accept("}") {
		for {
			k, err := p.term(depth + 1)
			if err != nil {
				return nil, err
			}
			if err := p.expect("=>"); err != nil {
				return nil, err
			}
			v, err := p.term(depth + 1)
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, Pair{k, v})
			if p.accept("}") {
				break
			}
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
	}
	for _, pr := range pairs {
		if !isHashable(pr.Key) {
			return pairs, nil
		}
	}
	m := make(etf.Map, len(pairs))
	for _, pr := range pairs {
		if _, dup := m[pr.Key]; dup {
			return pairs, nil
		}
		m[pr.Key] = pr.Value
	}
	return m, nil
}

// binary reads <<Seg,...>> where Seg is "text", "text"/utf8 or Int[:Size].
func (p *parser) binary() (etf.Term, error) {
	p.i += 2
	var out []byte
	var acc uint64 // pending bits
	var nbits uint
	put := func(v uint64, size uint) {
		for size > 0 {
			take := min(size, 8)
			size -= take
			bits := (v >> size) & (1<<take - 1)
			acc = acc<<take | bits
			nbits += take
			for nbits >= 8 {
				out = append(out, byte(acc>>(nbits-8)))
				nbits -= 8
				acc &= 1<<nbits - 1
			}
		}
	}
	if !p.accept(">>") {
		for {
			p.space()
			if p.peek() == '"' {
				rs, err := p.quotedRunes('"')
				if err != nil {
					return nil, err
				}
				if p.accept("/utf8") {
					for _, r := range rs {
						for _, c := range []byte(string(r)) {
							put(uint64(c), 8)
						}
					}
				} else {
					for _, r := range rs {
						put(uint64(byte(r)), 8)
					}
				}
			} else {
				iv, err := p.intIn(math.MinInt64, math.MaxInt64, "binary segment %v is not a small integer")
				if err != nil {
					return nil, err
				}
				size := uint64(8)
				if p.accept(":") {
					p.space()
					s, err := p.intIn(1, 64, "binary segment size %v (1..64 supported)")
					if err != nil {
						return nil, err
					}
					size = uint64(s)
				}
				put(uint64(iv), uint(size))
			}
			if p.accept(">>") {
				break
			}
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
	}
	if nbits == 0 {
		if out == nil {
			out = []byte{}
		}
		return out, nil
	}
	out = append(out, byte(acc<<(8-nbits)))
	return BitString{Bytes: out, Bits: uint8(nbits)}, nil
}

func (p *parser) export() (etf.Term, error) {
	mod, err := p.atomOnly()
	if err != nil {
		return nil, err
	}
	if err := p.expect(":"); err != nil {
		return nil, err
	}
	fn, err := p.atomOnly()
	if err != nil {
		return nil, err
	}
	if err := p.expect("/"); err != nil {
		return nil, err
	}
	p.space()
	ar, err := p.intIn(0, 255, "fun arity %v")
	if err != nil {
		return nil, err
	}
	return etf.Export{Module: mod, Function: fn, Arity: int(ar)}, nil
}

// intIn reads an integer from lo to hi; anything else is the error
// p.errf(format, what was read).
func (p *parser) intIn(lo, hi int64, format string) (int64, error) {
	v, err := p.number()
	if err != nil {
		return 0, err
	}
	n, ok := v.(int64)
	if !ok || n < lo || n > hi {
		return 0, p.errf(format, v)
	}
	return n, nil
}

// atomOnly reads an atom without turning true/false into bool.
func (p *parser) atomOnly() (etf.Atom, error) {
	p.space()
	if p.peek() == '\'' {
		a, err := p.quoted('\'')
		return etf.Atom(a), err
	}
	start := p.i
	if c := p.peek(); !(c >= 'a' && c <= 'z') {
		return "", p.errf("expected an atom, found %q", p.rest(10))
	}
	for p.i < len(p.s) && isAtomChar(p.s[p.i]) {
		p.i++
	}
	return etf.Atom(p.s[start:p.i]), nil
}

func (p *parser) uintArg(bits int) (uint64, error) {
	if err := p.expect(","); err != nil {
		return 0, err
	}
	p.space()
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	v, err := strconv.ParseUint(p.s[start:p.i], 10, bits)
	if err != nil {
		return 0, p.errf("expected an unsigned %d-bit integer: %v", bits, err)
	}
	return v, nil
}

// extension reads a #Name<...> form (see Format) after its '#'.
func (p *parser) extension(depth int) (etf.Term, error) {
	p.i++ // #
	start := p.i
	for p.i < len(p.s) && isAtomChar(p.s[p.i]) {
		p.i++
	}
	name := p.s[start:p.i]
	if p.peek() != '<' {
		return nil, p.errf("expected '<' after #%s", name)
	}
	p.i++
	var t etf.Term
	var err error
	switch name {
	case "Ref":
		return p.extRef() // reads its own '>'
	case "Pid":
		t, err = p.extPid()
	case "Port", "PortV4":
		t, err = p.extPort(name == "PortV4")
	case "Fun":
		t, err = p.extFun(depth)
	case "Local":
		t, err = p.extLocal()
	default:
		return nil, p.errf("unknown extension form #%s", name)
	}
	if err != nil {
		return nil, err
	}
	if err := p.expect(">"); err != nil {
		return nil, err
	}
	return t, nil
}

// uintArgs reads one comma-preceded unsigned integer of each size in bits.
func (p *parser) uintArgs(bits ...int) ([]uint64, error) {
	out := make([]uint64, len(bits))
	for i, n := range bits {
		v, err := p.uintArg(n)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// #Pid<Node,Number,Serial,Creation>
func (p *parser) extPid() (etf.Term, error) {
	node, err := p.atomOnly()
	if err != nil {
		return nil, err
	}
	v, err := p.uintArgs(32, 32, 32)
	if err != nil {
		return nil, err
	}
	return etf.Pid{Node: node, ID: v[0] | v[1]<<32, Creation: uint32(v[2])}, nil
}

// #Ref<Node,Creation,Word0,Word1,...> with 1 to 5 words, and its '>'.
func (p *parser) extRef() (etf.Term, error) {
	node, err := p.atomOnly()
	if err != nil {
		return nil, err
	}
	cr, err := p.uintArg(32)
	if err != nil {
		return nil, err
	}
	var id [5]uint32
	n := 0
	for !p.accept(">") {
		if n == 5 {
			return nil, p.errf("reference with more than 5 words")
		}
		w, err := p.uintArg(32)
		if err != nil {
			return nil, err
		}
		id[n] = uint32(w)
		n++
	}
	if n == 0 {
		return nil, p.errf("reference without words")
	}
	if n == 3 || (n == 5 && id[3]|id[4] != 0) {
		return etf.Ref{Node: node, Creation: uint32(cr), ID: id}, nil
	}
	return Ref{Node: node, Creation: uint32(cr), Len: uint8(n), ID: id}, nil
}

// #Port<Node,ID,Creation> | #PortV4<Node,ID,Creation> (v4: a 64-bit ID)
func (p *parser) extPort(v4 bool) (etf.Term, error) {
	node, err := p.atomOnly()
	if err != nil {
		return nil, err
	}
	bits := 32
	if v4 {
		bits = 64
	}
	v, err := p.uintArgs(bits, 32)
	if err != nil {
		return nil, err
	}
	if v4 {
		return Port{Node: node, ID: v[0], Creation: uint32(v[1])}, nil
	}
	return etf.Port{Node: node, ID: uint32(v[0]), Creation: uint32(v[1])}, nil
}

// #Fun<Module,Arity,Index,<<Uniq>>,OldIndex,OldUniq,Pid,[FreeVar,...]>
func (p *parser) extFun(depth int) (etf.Term, error) {
	var f etf.Function
	var err error
	if f.Module, err = p.atomOnly(); err != nil {
		return nil, err
	}
	v, err := p.uintArgs(8, 32)
	if err != nil {
		return nil, err
	}
	f.Arity, f.Index = byte(v[0]), uint32(v[1])
	if err := p.expect(","); err != nil {
		return nil, err
	}
	p.space()
	u, err := p.binary()
	if err != nil {
		return nil, err
	}
	ub, ok := u.([]byte)
	if !ok || len(ub) != 16 {
		return nil, p.errf("fun Uniq must be a 16-byte binary")
	}
	copy(f.Unique[:], ub)
	if v, err = p.uintArgs(32, 32); err != nil {
		return nil, err
	}
	f.OldIndex, f.OldUnique = uint32(v[0]), uint32(v[1])
	pid, err := p.commaTerm(depth)
	if err != nil {
		return nil, err
	}
	if f.Pid, ok = pid.(etf.Pid); !ok {
		return nil, p.errf("fun Pid is not a pid")
	}
	fv, err := p.commaTerm(depth)
	if err != nil {
		return nil, err
	}
	if f.FreeVars, ok = ListElements(fv); !ok {
		return nil, p.errf("fun free variables must be a list")
	}
	return f, nil
}

// commaTerm reads a comma and the term after it, one level below depth.
func (p *parser) commaTerm(depth int) (etf.Term, error) {
	if err := p.expect(","); err != nil {
		return nil, err
	}
	return p.term(depth + 1)
}

// #Local<<<Bytes>>>
func (p *parser) extLocal() (etf.Term, error) {
	p.space()
	raw, err := p.binary()
	if err != nil {
		return nil, err
	}
	rb, ok := raw.([]byte)
	if !ok {
		return nil, p.errf("#Local needs a binary")
	}
	return Local{Raw: rb}, nil
}
