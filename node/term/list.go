package term

import "github.com/ergo-services/ergo/etf"

// ListElements returns the elements of a proper list in any of the forms a
// list takes here: an etf.List; a string, which Decode returns for a list of
// small integers (STRING_EXT), each of its bytes an int64 element; or nil,
// which Encode writes as the empty list. It reports false for any other
// term. The elements of an etf.List are returned without a copy.
func ListElements(t etf.Term) ([]etf.Term, bool) {
	switch v := t.(type) {
	case etf.List:
		return v, true
	case string:
		out := make([]etf.Term, len(v))
		for i := 0; i < len(v); i++ {
			out[i] = int64(v[i])
		}
		return out, true
	case nil:
		return []etf.Term{}, true
	}
	return nil, false
}
