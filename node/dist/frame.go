package dist

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/ergo-services/ergo/etf"
)

// Wire constants of the connected-nodes protocol (OTP erl_dist_protocol and
// erl_ext_dist, "Distribution header").
const (
	tagPassThrough    = 112 // 'p': control and payload follow, each with a version byte
	tagVersion        = 131 // external term format version
	tagDistHeader     = 68  // 'D': normal distribution header
	tagFragmentHeader = 69  // 'E': first fragment of a fragmented message
	tagFragmentCont   = 70  // 'F': following fragment

	// atomCacheSize is the number of entries of a connection's atom cache:
	// 8 segments of 256 (the segment index has 3 bits).
	atomCacheSize = 2048
	// maxPartials bounds how many fragmented messages may be in reassembly at
	// once on one connection (OTP interleaves fragments of messages from
	// different sending processes).
	maxPartials = 4096
)

// Errors of the frame layer. A frame that fails with ErrMalformedFrame is
// dropped and the connection goes on; ErrFrameTooLarge ends the connection.
var (
	// ErrMalformedFrame is wrapped when a frame's distribution header,
	// fragment sequence or terms cannot be understood.
	ErrMalformedFrame = errors.New("dist: malformed frame")
	// ErrFrameTooLarge is wrapped when a frame, or a message reassembled from
	// fragments, exceeds ProtoConfig.MaxFrameSize.
	ErrFrameTooLarge = errors.New("dist: frame exceeds the maximum size")
)

// frameReader reads the 4-byte length-prefixed frames of a connected
// distribution channel. A frame of length 0 is a tick.
type frameReader struct {
	r   *bufio.Reader
	max int
	hdr [4]byte
	buf []byte // reused for bodies up to ownFrom bytes
}

// ownFrom is the smallest frame body read into a buffer of its own, which
// the message decoded from it may keep (term.WithSharedBinaries), instead
// of the reused buffer the decoder must copy out of. A first fragment that
// large gets room for the next fragment: reassembly then appends in place.
const ownFrom = 16 << 10

func newFrameReader(r io.Reader, size, max int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, size), max: max}
}

// next returns the body of the next frame: an empty slice for a tick. When
// owned is false the body is only valid until the next call (the buffer is
// reused); when true it is the caller's. A large body is read from the
// network straight into its own buffer.
func (fr *frameReader) next() (body []byte, owned bool, err error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return nil, false, err
	}
	n := binary.BigEndian.Uint32(fr.hdr[:])
	if n == 0 {
		return []byte{}, false, nil
	}
	if uint64(n) > uint64(fr.max) {
		return nil, false, fmt.Errorf("%w: %d bytes announced, limit %d", ErrFrameTooLarge, n, fr.max)
	}
	switch {
	case n >= ownFrom:
		extra := 0
		if p, _ := fr.r.Peek(2); len(p) == 2 && p[0] == tagVersion && p[1] == tagFragmentHeader {
			// Room for a short last fragment: OTP sends a 64 KiB binary
			// as a 64 KiB fragment and one of a few dozen bytes. Longer
			// messages grow by append's doubling.
			extra = 4 << 10
		}
		body = make([]byte, n, int(n)+extra)
		owned = true
	case int(n) <= cap(fr.buf):
		body = fr.buf[:n]
	default:
		body = make([]byte, n)
		fr.buf = body
	}
	if _, err := io.ReadFull(fr.r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, false, err
	}
	return body, owned, nil
}

// rawMessage is one complete distribution message, not yet decoded: the
// control term immediately followed by the optional payload term.
type rawMessage struct {
	// data holds the encoded terms.
	data []byte
	// versioned is true for the pass-through format, where each term starts
	// with the version byte 131; after a distribution header it does not.
	versioned bool
	// atoms resolves the ATOM_CACHE_REF indexes used by the terms.
	atoms []etf.Atom
	// owned is true when data is in a buffer of its own that the decoded
	// message may keep.
	owned bool
}

type cacheEntry struct {
	atom etf.Atom
	set  bool
}

type partial struct {
	atoms []etf.Atom
	buf   []byte
	next  uint64 // fragment id expected next
	held  int    // bytes counted in assembler.pending for this message
}

// assembler turns frame bodies into complete messages: it keeps the
// connection's atom cache and reassembles fragmented messages. It is used by
// the connection's single reader goroutine only.
type assembler struct {
	cache    [atomCacheSize]cacheEntry
	partials map[uint64]*partial
	pending  int // bytes held in partials
	max      int // largest message (and sum of partials) accepted
}

func newAssembler(max int) *assembler {
	return &assembler{partials: map[uint64]*partial{}, max: max}
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedFrame, fmt.Sprintf(format, args...))
}

// feed processes one non-empty frame body. It returns the completed message
// and true, or false when the body was a fragment of a message still
// incomplete. owned tells that body is the caller's to give away (see
// frameReader.next); a message reassembled from fragments always is.
// Errors wrap ErrMalformedFrame (drop the frame) or ErrFrameTooLarge (end
// the connection).
func (a *assembler) feed(body []byte, owned bool) (rawMessage, bool, error) {
	if len(body) == 0 {
		return rawMessage{}, false, malformed("empty frame")
	}
	switch body[0] {
	case tagPassThrough:
		return rawMessage{data: body[1:], versioned: true, owned: owned}, true, nil
	case tagVersion:
	default:
		return rawMessage{}, false, malformed("unknown frame type %d", body[0])
	}
	if len(body) < 2 {
		return rawMessage{}, false, malformed("truncated distribution header")
	}
	switch body[1] {
	case tagDistHeader:
		atoms, rest, err := a.atomCacheRefs(body[2:])
		if err != nil {
			return rawMessage{}, false, err
		}
		return rawMessage{data: rest, atoms: atoms, owned: owned}, true, nil
	case tagFragmentHeader:
		return a.firstFragment(body[2:], owned)
	case tagFragmentCont:
		return a.nextFragment(body[2:])
	default:
		return rawMessage{}, false, malformed("unknown distribution header %d", body[1])
	}
}

func (a *assembler) firstFragment(b []byte, owned bool) (rawMessage, bool, error) {
	if len(b) < 16 {
		return rawMessage{}, false, malformed("truncated fragment header")
	}
	seq := binary.BigEndian.Uint64(b)
	frag := binary.BigEndian.Uint64(b[8:])
	atoms, rest, err := a.atomCacheRefs(b[16:])
	if err != nil {
		return rawMessage{}, false, err
	}
	if old, ok := a.partials[seq]; ok {
		// A new message reuses the sequence id of one never finished: the
		// old one is lost. Drop it and go on with the new one.
		a.pending -= old.held
		delete(a.partials, seq)
	}
	switch {
	case frag == 0:
		return rawMessage{}, false, malformed("fragment id 0 in sequence %d", seq)
	case frag == 1:
		return rawMessage{data: rest, atoms: atoms, owned: owned}, true, nil
	}
	if len(a.partials) >= maxPartials {
		return rawMessage{}, false, fmt.Errorf("%w: more than %d fragmented messages in reassembly", ErrFrameTooLarge, maxPartials)
	}
	buf := rest // reassembly appends in place to a body of its own
	if !owned {
		buf = make([]byte, len(rest), 2*len(rest))
		copy(buf, rest)
	}
	if err := a.grow(cap(buf)); err != nil {
		return rawMessage{}, false, err
	}
	a.partials[seq] = &partial{atoms: atoms, buf: buf, next: frag - 1, held: cap(buf)}
	return rawMessage{}, false, nil
}

func (a *assembler) nextFragment(b []byte) (rawMessage, bool, error) {
	if len(b) < 16 {
		return rawMessage{}, false, malformed("truncated fragment header")
	}
	seq := binary.BigEndian.Uint64(b)
	frag := binary.BigEndian.Uint64(b[8:])
	p, ok := a.partials[seq]
	if !ok {
		return rawMessage{}, false, malformed("fragment %d of unknown sequence %d", frag, seq)
	}
	if frag != p.next {
		a.pending -= p.held
		delete(a.partials, seq)
		return rawMessage{}, false, malformed("fragment %d of sequence %d, expected %d", frag, seq, p.next)
	}
	if err := a.grow(len(b) - 16); err != nil {
		return rawMessage{}, false, err
	}
	p.held += len(b) - 16
	p.buf = append(p.buf, b[16:]...)
	if frag > 1 {
		p.next--
		return rawMessage{}, false, nil
	}
	a.pending -= p.held
	delete(a.partials, seq)
	return rawMessage{data: p.buf, atoms: p.atoms, owned: true}, true, nil
}

func (a *assembler) grow(n int) error {
	if a.pending+n > a.max {
		return fmt.Errorf("%w: fragmented messages hold more than %d bytes", ErrFrameTooLarge, a.max)
	}
	a.pending += n
	return nil
}

// atomCacheRefs parses the NumberOfAtomCacheRefs, Flags and AtomCacheRefs
// fields of a distribution header, updates the atom cache and returns the
// atoms the message's ATOM_CACHE_REF indexes name, and the bytes after.
func (a *assembler) atomCacheRefs(b []byte) ([]etf.Atom, []byte, error) {
	if len(b) < 1 {
		return nil, nil, malformed("truncated atom cache header")
	}
	n := int(b[0])
	b = b[1:]
	if n == 0 {
		return nil, b, nil
	}
	flagLen := n/2 + 1
	if len(b) < flagLen {
		return nil, nil, malformed("truncated atom cache flags")
	}
	flags := b[:flagLen]
	b = b[flagLen:]
	nibble := func(i int) byte { return (flags[i/2] >> (4 * uint(i%2))) & 0x0f }
	long := nibble(n)&0x01 != 0
	atoms := make([]etf.Atom, n)
	for i := 0; i < n; i++ {
		f := nibble(i)
		if len(b) < 1 {
			return nil, nil, malformed("truncated atom cache reference %d", i)
		}
		idx := int(f&0x07)<<8 | int(b[0])
		b = b[1:]
		if f&0x08 == 0 {
			e := a.cache[idx]
			if !e.set {
				return nil, nil, malformed("atom cache reference %d names empty entry %d", i, idx)
			}
			atoms[i] = e.atom
			continue
		}
		var l int
		if long {
			if len(b) < 2 {
				return nil, nil, malformed("truncated atom length")
			}
			l = int(binary.BigEndian.Uint16(b))
			b = b[2:]
		} else {
			if len(b) < 1 {
				return nil, nil, malformed("truncated atom length")
			}
			l = int(b[0])
			b = b[1:]
		}
		if len(b) < l {
			return nil, nil, malformed("truncated atom text")
		}
		if !utf8.Valid(b[:l]) {
			return nil, nil, malformed("atom cache entry %d is not UTF-8", idx)
		}
		atom := etf.Atom(b[:l])
		b = b[l:]
		a.cache[idx] = cacheEntry{atom: atom, set: true}
		atoms[i] = atom
	}
	return atoms, b, nil
}

// frameBuf is an outgoing unit for the writer: one or more complete frames
// (length prefixes included) carrying msgs distribution messages. The
// frames are b, or, when segs is set, the segments of segs in order
// (fragment headers and the slices of b they frame), written with one
// vectored write instead of being joined.
type frameBuf struct {
	b    []byte
	segs [][]byte
	size int // bytes on the wire
	msgs int
	bp   *[]byte // the pooled slice b came from; nil: not pooled
}

// fragment turns the data of one message (the control and payload terms,
// no version bytes) into fragment frames of at most size data bytes each:
// header and data segments in wire order. The data is not copied: the data
// segments point into data. seq identifies the message among those in
// flight.
func fragment(data []byte, seq uint64, size int) [][]byte {
	total := len(data)
	count := (total + size - 1) / size
	hdrs := make([]byte, 0, count*(4+2+16)+1)
	segs := make([][]byte, 0, 2*count)
	for i := 0; i < count; i++ {
		id := uint64(count - i)
		chunk := data[i*size : min((i+1)*size, total)]
		at := len(hdrs)
		if i == 0 {
			hdrs = binary.BigEndian.AppendUint32(hdrs, uint32(2+16+1+len(chunk)))
			hdrs = append(hdrs, tagVersion, tagFragmentHeader)
		} else {
			hdrs = binary.BigEndian.AppendUint32(hdrs, uint32(2+16+len(chunk)))
			hdrs = append(hdrs, tagVersion, tagFragmentCont)
		}
		hdrs = binary.BigEndian.AppendUint64(hdrs, seq)
		hdrs = binary.BigEndian.AppendUint64(hdrs, id)
		if i == 0 {
			hdrs = append(hdrs, 0) // NumberOfAtomCacheRefs = 0
		}
		segs = append(segs, hdrs[at:len(hdrs):len(hdrs)], chunk)
	}
	return segs
}

// fragmentFrames splits the control and payload bytes (no version bytes) of
// one message into fragment frames of at most size data bytes each, appended
// to dst: the frames fragment produces, joined.
func fragmentFrames(dst []byte, seq uint64, size int, control, payload []byte) []byte {
	data := append(append([]byte{}, control...), payload...)
	for _, s := range fragment(data, seq, size) {
		dst = append(dst, s...)
	}
	return dst
}
