package discovery

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// DNS message layout (RFC 1035 section 4).
const (
	maxNameLen  = 255
	maxPointers = 64
	typeCNAME   = 5
	classINET   = 1
)

var errShort = errors.New("message ends early")

// rrRef locates one answer record inside a raw message.
type rrRef struct {
	owner int // offset of the owner name
	typ   uint16
	rdata int // offset of the rdata
	rdlen int
}

// decodeReply parses a raw reply to the question (name, qtype) sent with id,
// without building a record object per answer: a 4,000-record answer costs
// a handful of allocations. It rejects replies that do not parse, are not
// responses, carry another ID or another question. A truncated reply that
// does not parse is returned with truncated set and nothing else. Records
// not owned by the question's name (or the end of its CNAME chain) are
// ignored. Every error wraps ErrMalformed or ErrLookupFailed.
func decodeReply(raw []byte, id uint16, name string, qtype uint16) (decoded, error) {
	if len(raw) < headerLen {
		return decoded{}, fmt.Errorf("%w: %d bytes, shorter than a header", ErrMalformed, len(raw))
	}
	if got := binary.BigEndian.Uint16(raw); got != id {
		return decoded{}, fmt.Errorf("%w: reply ID %d, want %d", ErrMalformed, got, id)
	}
	flags := binary.BigEndian.Uint16(raw[2:])
	if flags&0x8000 == 0 {
		return decoded{}, fmt.Errorf("%w: not a response", ErrMalformed)
	}
	truncated := flags&0x0200 != 0
	d, err := parseBody(raw, name, qtype)
	if err != nil {
		if truncated { // a cut reply need not parse: the caller retries or flags it
			return decoded{truncated: true, rcode: int(flags & 0xf)}, nil
		}
		return decoded{}, err
	}
	d.truncated = truncated
	d.rcode = int(flags & 0xf)
	return d, nil
}

func parseBody(raw []byte, name string, qtype uint16) (decoded, error) {
	qd := binary.BigEndian.Uint16(raw[4:])
	an := int(binary.BigEndian.Uint16(raw[6:]))
	if qd != 1 {
		return decoded{}, fmt.Errorf("%w: %d questions", ErrMalformed, qd)
	}
	var scratch [maxNameLen]byte
	qn, off, err := readName(raw, headerLen, scratch[:0])
	if err != nil {
		return decoded{}, fmt.Errorf("%w: question: %w", ErrMalformed, err)
	}
	if off+4 > len(raw) {
		return decoded{}, fmt.Errorf("%w: question: %w", ErrMalformed, errShort)
	}
	if binary.BigEndian.Uint16(raw[off:]) != qtype || !nameEqual(qn, name) {
		return decoded{}, fmt.Errorf("%w: the reply answers another question", ErrMalformed)
	}
	off += 4
	// Every record takes at least 11 bytes: bound the slice by the message.
	refs := make([]rrRef, 0, min(an, (len(raw)-off)/11+1))
	var cnames map[string]string
	for i := 0; i < an; i++ {
		owner := off
		if off, err = skipName(raw, off); err != nil {
			return decoded{}, fmt.Errorf("%w: answer %d: %w", ErrMalformed, i, err)
		}
		if off+10 > len(raw) {
			return decoded{}, fmt.Errorf("%w: answer %d: %w", ErrMalformed, i, errShort)
		}
		typ := binary.BigEndian.Uint16(raw[off:])
		class := binary.BigEndian.Uint16(raw[off+2:])
		rdlen := int(binary.BigEndian.Uint16(raw[off+8:]))
		off += 10
		if off+rdlen > len(raw) {
			return decoded{}, fmt.Errorf("%w: answer %d: %w", ErrMalformed, i, errShort)
		}
		if class == classINET {
			if typ == typeCNAME {
				o, _, err := readName(raw, owner, scratch[:0])
				if err != nil {
					return decoded{}, fmt.Errorf("%w: answer %d: %w", ErrMalformed, i, err)
				}
				ownerName := string(o)
				t, _, err := readName(raw, off, scratch[:0])
				if err != nil {
					return decoded{}, fmt.Errorf("%w: answer %d: %w", ErrMalformed, i, err)
				}
				if cnames == nil {
					cnames = map[string]string{}
				}
				if _, dup := cnames[ownerName]; !dup {
					cnames[ownerName] = string(t)
				}
			} else if typ == qtype {
				refs = append(refs, rrRef{owner: owner, typ: typ, rdata: off, rdlen: rdlen})
			}
		}
		off += rdlen
	}
	d := decoded{records: an, final: strings.ToLower(name)}
	for d.hops = 0; ; d.hops++ {
		next, ok := cnames[d.final]
		if !ok {
			break
		}
		if d.hops == MaxCNAMEHops {
			return decoded{}, fmt.Errorf("%w: more than %d CNAMEs", ErrLookupFailed, MaxCNAMEHops)
		}
		d.final = next
	}
	// Owner names are mostly the same compression pointer: remember the
	// verdict per offset the name's first label sits at.
	lastAt, lastOK := -1, false
	owned := 0
	for _, r := range refs {
		at, err := firstLabel(raw, r.owner)
		if err != nil {
			return decoded{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if at != lastAt {
			o, _, err := readName(raw, r.owner, scratch[:0])
			if err != nil {
				return decoded{}, fmt.Errorf("%w: %w", ErrMalformed, err)
			}
			lastAt, lastOK = at, string(o) == d.final
		}
		if !lastOK {
			continue
		}
		owned++
		rd := raw[r.rdata : r.rdata+r.rdlen]
		switch r.typ {
		case uint16(TypeA):
			if len(rd) == 4 {
				d.addrs = append(d.addrs, netip.AddrFrom4([4]byte(rd)))
			}
		case uint16(TypeAAAA):
			if len(rd) == 16 {
				d.addrs = append(d.addrs, netip.AddrFrom16([16]byte(rd)))
			}
		case uint16(TypeSRV):
			if len(rd) < 7 {
				return decoded{}, fmt.Errorf("%w: SRV rdata of %d bytes", ErrMalformed, len(rd))
			}
			t, _, err := readName(raw, r.rdata+6, scratch[:0])
			if err != nil {
				return decoded{}, fmt.Errorf("%w: SRV target: %w", ErrMalformed, err)
			}
			if len(t) > 1 { // "." means no service
				d.srv = append(d.srv, SRV{Target: string(t[:len(t)-1]),
					Priority: binary.BigEndian.Uint16(rd), Weight: binary.BigEndian.Uint16(rd[2:]), Port: binary.BigEndian.Uint16(rd[4:])})
			}
		}
	}
	d.dangling = d.hops > 0 && owned == 0
	// A reply that could not hold one more record of its kind may have been cut.
	if an > 0 {
		per := (len(raw) - headerLen) / an
		d.nearLimit = len(raw)+2*per > MaxMessageSize
	}
	return d, nil
}

// readName decodes the name at off into buf as lower-case dotted text with a
// trailing dot ("." for the root) and returns the offset after it.
func readName(raw []byte, off int, buf []byte) ([]byte, int, error) {
	end := -1
	for jumps := 0; ; {
		if off >= len(raw) {
			return nil, 0, errShort
		}
		l := int(raw[off])
		switch {
		case l == 0:
			if end < 0 {
				end = off + 1
			}
			if len(buf) == 0 {
				buf = append(buf, '.')
			}
			return buf, end, nil
		case l&0xc0 == 0xc0:
			if off+1 >= len(raw) {
				return nil, 0, errShort
			}
			if jumps++; jumps > maxPointers {
				return nil, 0, errors.New("compression pointer loop")
			}
			if end < 0 {
				end = off + 2
			}
			off = int(binary.BigEndian.Uint16(raw[off:]) & 0x3fff)
		case l&0xc0 != 0:
			return nil, 0, fmt.Errorf("label type %#x", l&0xc0)
		default:
			if off+1+l > len(raw) {
				return nil, 0, errShort
			}
			if len(buf)+l+1 > maxNameLen {
				return nil, 0, errors.New("name longer than 255 bytes")
			}
			for _, c := range raw[off+1 : off+1+l] {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				buf = append(buf, c)
			}
			buf = append(buf, '.')
			off += 1 + l
		}
	}
}

// skipName returns the offset after the name at off, without following
// pointers.
func skipName(raw []byte, off int) (int, error) {
	for n := 0; n < maxNameLen; n++ {
		if off >= len(raw) {
			return 0, errShort
		}
		l := int(raw[off])
		switch {
		case l == 0:
			return off + 1, nil
		case l&0xc0 == 0xc0:
			if off+2 > len(raw) {
				return 0, errShort
			}
			return off + 2, nil
		case l&0xc0 != 0:
			return 0, fmt.Errorf("label type %#x", l&0xc0)
		}
		off += 1 + l
	}
	return 0, errors.New("name longer than 255 bytes")
}

// firstLabel follows the pointers at off to the offset of the name's first
// label (or root byte).
func firstLabel(raw []byte, off int) (int, error) {
	for jumps := 0; ; jumps++ {
		if off+1 >= len(raw) || raw[off]&0xc0 != 0xc0 {
			if off >= len(raw) {
				return 0, errShort
			}
			return off, nil
		}
		if jumps >= maxPointers {
			return 0, errors.New("compression pointer loop")
		}
		off = int(binary.BigEndian.Uint16(raw[off:]) & 0x3fff)
	}
}

// nameEqual compares a decoded lower-case name with a name given by the
// caller, ignoring case and a missing trailing dot.
func nameEqual(decoded []byte, name string) bool {
	return strings.EqualFold(string(decoded), strings.TrimSuffix(name, ".")+".")
}
