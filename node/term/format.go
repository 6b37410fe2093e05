package term

import (
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ergo-services/ergo/etf"
)

// Format renders t in Erlang syntax, like io_lib:format("~0p") without line
// breaks: {shutdown,restart}, <<"abc">>, 'quoted atom', [1,2,3], #{a => 1},
// fun lists:map/2. Terms that Erlang prints in a form it cannot read back are
// rendered in this package's extension form #Name<Term,...>, which Parse reads:
//
//	pid            #Pid<Node,Number,Serial,Creation>            (Node is an atom: a@host)
//	reference      #Ref<Node,Creation,Word0,Word1,...>          (every word on the wire)
//	port           #Port<Node,ID,Creation>                      (etf.Port, NEW_PORT_EXT)
//	port           #PortV4<Node,ID,Creation>                    (Port, V4_PORT_EXT)
//	local fun      #Fun<Module,Arity,Index,<<Uniq>>,OldIndex,OldUniq,Pid,[FreeVar,...]>
//	LOCAL_EXT      #Local<<<Bytes>>>
//
// A Go string (an Erlang list of bytes) is rendered as "text" with \x{HH}
// escapes for bytes outside printable ASCII; a binary that is printable ASCII
// as <<"text">>, printable UTF-8 as <<"text"/utf8>>, anything else as
// <<1,2,3>>. Maps are rendered in Erlang's map-key order (etf.Map) or in
// their pair order (Map). A Go value with no Erlang meaning is rendered as
// the atom '#Go<TYPE>'.
func Format(t etf.Term) string {
	if a, ok := t.(etf.Atom); ok && bareAtom(string(a)) {
		return string(a) // the common exit reasons (normal, noproc, ...): no copy
	}
	return string(appendFormat(nil, t, 0))
}

const formatMaxDepth = DefaultMaxDepth

func appendFormat(b []byte, t etf.Term, depth int) []byte {
	if depth > formatMaxDepth {
		return append(b, "'#Go<too deep>'"...)
	}
	switch v := t.(type) {
	case int64:
		return strconv.AppendInt(b, v, 10)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int8, int16, int32, uint, uint8, uint16, uint32, uint64, uintptr:
		return fmt.Appendf(b, "%d", v)
	case *big.Int:
		if v == nil {
			return append(b, "'#Go<nil *big.Int>'"...)
		}
		return v.Append(b, 10)
	case big.Int:
		return v.Append(b, 10)
	case float64:
		return appendErlFloat(b, v)
	case float32:
		return appendErlFloat(b, float64(v))
	case etf.Atom:
		return appendAtomText(b, string(v))
	case bool:
		if v {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case string:
		return appendByteString(b, v)
	case etf.Charlist:
		return appendFormat(b, charlistTerm(string(v)), depth)
	case nil:
		return append(b, "[]"...)
	case etf.List:
		b = append(b, '[')
		b = appendSeq(b, v, depth)
		return append(b, ']')
	case []etf.Term:
		return appendFormat(b, etf.List(v), depth)
	case etf.ListImproper:
		if len(v) < 2 {
			return appendFormat(b, etf.List(v), depth)
		}
		b = append(b, '[')
		b = appendSeq(b, v[:len(v)-1], depth)
		b = append(b, '|')
		b = appendFormat(b, v[len(v)-1], depth+1)
		return append(b, ']')
	case etf.Tuple:
		b = append(b, '{')
		b = appendSeq(b, v, depth)
		return append(b, '}')
	case etf.Map:
		keys := make([]etf.Term, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(x, y etf.Term) int { return compare(x, y, true) })
		b = append(b, "#{"...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendFormat(b, k, depth+1)
			b = append(b, " => "...)
			b = appendFormat(b, v[k], depth+1)
		}
		return append(b, '}')
	case Map:
		b = append(b, "#{"...)
		for i, p := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendFormat(b, p.Key, depth+1)
			b = append(b, " => "...)
			b = appendFormat(b, p.Value, depth+1)
		}
		return append(b, '}')
	case []byte:
		return appendBinaryText(b, v)
	case etf.String:
		return appendBinaryText(b, []byte(v))
	case BitString:
		return appendBitString(b, v)
	case etf.Pid:
		b = append(b, "#Pid<"...)
		b = appendAtomText(b, string(v.Node))
		return fmt.Appendf(b, ",%d,%d,%d>", uint32(v.ID), uint32(v.ID>>32), v.Creation)
	case etf.Ref, etf.Alias, Ref:
		node, creation, words := refParts(v)
		b = append(b, "#Ref<"...)
		b = appendAtomText(b, string(node))
		b = fmt.Appendf(b, ",%d", creation)
		for _, w := range words {
			b = fmt.Appendf(b, ",%d", w)
		}
		return append(b, '>')
	case etf.Port:
		b = append(b, "#Port<"...)
		b = appendAtomText(b, string(v.Node))
		return fmt.Appendf(b, ",%d,%d>", v.ID, v.Creation)
	case Port:
		b = append(b, "#PortV4<"...)
		b = appendAtomText(b, string(v.Node))
		return fmt.Appendf(b, ",%d,%d>", v.ID, v.Creation)
	case etf.Export:
		b = append(b, "fun "...)
		b = appendAtomText(b, string(v.Module))
		b = append(b, ':')
		b = appendAtomText(b, string(v.Function))
		return fmt.Appendf(b, "/%d", v.Arity)
	case etf.Function:
		b = append(b, "#Fun<"...)
		b = appendAtomText(b, string(v.Module))
		b = fmt.Appendf(b, ",%d,%d,", v.Arity, v.Index)
		b = appendBinaryText(b, v.Unique[:])
		b = fmt.Appendf(b, ",%d,%d,", v.OldIndex, v.OldUnique)
		b = appendFormat(b, v.Pid, depth+1)
		b = append(b, ',')
		b = appendFormat(b, etf.List(v.FreeVars), depth+1)
		return append(b, '>')
	case Local:
		b = append(b, "#Local<"...)
		b = appendBinaryText(b, v.Raw)
		return append(b, '>')
	}
	return appendAtomText(b, fmt.Sprintf("#Go<%T>", t))
}

func charlistTerm(s string) etf.Term {
	l := make(etf.List, 0, len(s))
	bytesOnly := true
	for _, r := range s {
		if r > 255 {
			bytesOnly = false
		}
		l = append(l, int64(r))
	}
	if bytesOnly && len(l) > 0 && len(l) <= 65535 {
		buf := make([]byte, len(l))
		for i, x := range l {
			buf[i] = byte(x.(int64))
		}
		return string(buf)
	}
	return l
}

// appendSeq writes the elements of a list or tuple at depth, separated by
// commas.
func appendSeq(b []byte, elems []etf.Term, depth int) []byte {
	for i, x := range elems {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendFormat(b, x, depth+1)
	}
	return b
}

// appendErlFloat writes the shortest decimal that reads back as f, in a form
// Erlang accepts (a digit on each side of the point).
func appendErlFloat(b []byte, f float64) []byte {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	mant, exp, hasExp := strings.Cut(s, "e")
	if !strings.ContainsAny(mant, ".") {
		mant += ".0"
	}
	b = append(b, mant...)
	if hasExp {
		exp = strings.TrimPrefix(exp, "+")
		neg := strings.HasPrefix(exp, "-")
		exp = strings.TrimLeft(strings.TrimPrefix(exp, "-"), "0")
		b = append(b, 'e')
		if neg {
			b = append(b, '-')
		}
		b = append(b, exp...)
	}
	return b
}

// bareAtom reports an atom that Erlang writes without quotes: a lower-case
// letter followed by letters, digits, _ and @, and not a reserved word.
func bareAtom(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' || reservedWord(s) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isAtomChar(s[i]) {
			return false
		}
	}
	return true
}

// reservedWord reports Erlang's reserved words, which are atoms only when
// quoted.
func reservedWord(s string) bool {
	switch s {
	case "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case", "catch",
		"cond", "div", "else", "end", "fun", "if", "let", "maybe", "not", "of", "or", "orelse", "receive",
		"rem", "try", "when", "xor":
		return true
	}
	return false
}

func appendAtomText(b []byte, s string) []byte {
	if bareAtom(s) {
		return append(b, s...)
	}
	b = append(b, '\'')
	for _, r := range s {
		b = appendEscapedRune(b, r, '\'')
	}
	return append(b, '\'')
}

func appendEscapedRune(b []byte, r rune, quote byte) []byte {
	switch {
	case r == rune(quote) || r == '\\':
		return append(b, '\\', byte(r))
	case r == '\n':
		return append(b, `\n`...)
	case r == '\t':
		return append(b, `\t`...)
	case r < 0x20 || r == 0x7f || r == utf8.RuneError:
		return fmt.Appendf(b, `\x{%X}`, r)
	}
	return utf8.AppendRune(b, r)
}

func appendByteString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '\t':
			b = append(b, `\t`...)
		case c < 0x20 || c >= 0x7f:
			b = fmt.Appendf(b, `\x{%X}`, c)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func printable(r rune) bool {
	return r >= 0x20 && r != 0x7f && !(r >= 0x80 && r < 0xa0) && r != utf8.RuneError || r == '\n' || r == '\t'
}

func appendBinaryText(b []byte, v []byte) []byte {
	if len(v) == 0 {
		return append(b, "<<>>"...)
	}
	ascii, text := true, utf8.Valid(v)
	for _, c := range v {
		if c >= 0x80 {
			ascii = false
		}
	}
	if text {
		for _, r := range string(v) {
			if !printable(r) {
				text = false
				break
			}
		}
	}
	if text {
		b = append(b, "<<\""...)
		for _, r := range string(v) {
			b = appendEscapedRune(b, r, '"')
		}
		if !ascii {
			return append(b, "\"/utf8>>"...)
		}
		return append(b, "\">>"...)
	}
	b = append(b, "<<"...)
	for i, c := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(c), 10)
	}
	return append(b, ">>"...)
}

func appendBitString(b []byte, v BitString) []byte {
	if len(v.Bytes) == 0 || v.Bits < 1 || v.Bits > 8 {
		return appendAtomText(b, "#Go<invalid BitString>")
	}
	b = append(b, "<<"...)
	last := len(v.Bytes) - 1
	for i, c := range v.Bytes[:last] {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(c), 10)
	}
	if last > 0 {
		b = append(b, ',')
	}
	b = strconv.AppendUint(b, uint64(v.Bytes[last]>>(8-v.Bits)), 10)
	b = fmt.Appendf(b, ":%d>>", v.Bits)
	return b
}
