package dist

import (
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
//
// It reads from the network into slabs: each read system call fills as
// much of the current slab as the socket has ready, and a frame body is
// handed out as a slice of the slab, so a large message is copied once, by
// the kernel. A body of ownFrom bytes or more is handed out to keep (see
// ownFrom); the slab is then never written below the end of that body, and
// when it is full the reader moves to a new one. Until a body is given away
// the slab is reused, as a bufio buffer would be.
type frameReader struct {
	src  io.Reader
	max  int
	slab int    // size of a new slab
	buf  []byte // the current slab; buf[r:w] is read and not yet consumed
	r, w int
	err  error // the read error to return once buf[r:w] is consumed

	// kept is the end in buf of the bodies given away: buf[:kept] is not
	// the reader's any more. lastEnd is the end of the body the last next
	// returned; lastOwned tells that it was given away.
	kept      int
	lastEnd   int
	lastOwned bool
	// filled tells that a read filled the slab to its end since the
	// slab was last reused (makeRoom then grows a small slab).
	filled bool
}

// ownFrom is the smallest frame body handed out for the caller to keep
// rather than only until the next read: the first fragment of a large
// message, to which the next fragments are joined, and the message a large
// binary may share (shareFrom). A smaller body is decoded by copying out of
// it, and the slab is reused.
const ownFrom = 32 << 10

// A connection whose frames are small reads into a small slab, reused over
// and over: minSlab at first, doubled up to firstSlab each time a read
// filled it (the socket had more ready than it held), so an idle or quiet
// peer costs minSlab and a busy one reads up to firstSlab per system call.
const (
	minSlab   = 4 << 10
	firstSlab = 64 << 10
)

func newFrameReader(r io.Reader, slab, max int) *frameReader {
	return &frameReader{src: r, max: max, slab: slab}
}

// next returns the body of the next frame: an empty slice for a tick. When
// owned is false the body is only valid until the next call (the memory is
// reused); when true it is the caller's.
func (fr *frameReader) next() (body []byte, owned bool, err error) {
	if fr.lastOwned {
		fr.kept = fr.lastEnd
		fr.lastOwned = false
	}
	if err := fr.fill(4); err != nil {
		return nil, false, err
	}
	size := binary.BigEndian.Uint32(fr.buf[fr.r:])
	fr.r += 4
	if size == 0 {
		return []byte{}, false, nil
	}
	if uint64(size) > uint64(fr.max) {
		return nil, false, fmt.Errorf("%w: %d bytes announced, limit %d", ErrFrameTooLarge, size, fr.max)
	}
	n := int(size)
	if err := fr.fill(n); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, false, err
	}
	start, end := fr.r, fr.r+n
	fr.r = end
	fr.lastEnd = end
	fr.lastOwned = n >= ownFrom
	return fr.buf[start:end:end], fr.lastOwned, nil
}

// ready reports whether a whole frame is buffered: next returns it without
// reading.
func (fr *frameReader) ready() bool {
	if fr.w-fr.r < 4 {
		return false
	}
	return uint64(fr.w-fr.r-4) >= uint64(binary.BigEndian.Uint32(fr.buf[fr.r:]))
}

// fill makes buf[r:w] hold at least k bytes, reading as much as the source
// has ready into the room after w.
func (fr *frameReader) fill(k int) error {
	if fr.w-fr.r >= k {
		return nil
	}
	if len(fr.buf)-fr.r < k {
		fr.makeRoom(k)
	}
	for fr.w-fr.r < k {
		if fr.err != nil {
			err := fr.err
			if fr.w > fr.r && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // a frame cut short
			}
			return err
		}
		m, err := fr.src.Read(fr.buf[fr.w:])
		fr.w += m
		if fr.w == len(fr.buf) {
			fr.filled = true
		}
		if err != nil {
			fr.err = err
		} else if m == 0 {
			fr.err = io.ErrNoProgress
		}
	}
	return nil
}

// makeRoom moves the unconsumed bytes to where k bytes fit after them: to
// the start of the slab when nothing of it was given away and k fits, else
// to a new slab.
func (fr *frameReader) makeRoom(k int) {
	unread := fr.buf[fr.r:fr.w]
	small := len(fr.buf) < firstSlab && k < ownFrom
	grow := small && fr.filled
	fr.filled = false
	if fr.kept == 0 && !fr.lastOwned && k <= len(fr.buf) && !grow {
		copy(fr.buf, unread)
	} else {
		size := fr.slab
		if small {
			// A connection that never sees a large frame keeps a small
			// slab, read into over and over (minSlab, firstSlab).
			size = min(size, max(minSlab, 2*len(fr.buf)))
		}
		nb := getSlab(max(size, k))
		copy(nb, unread)
		fr.buf = nb
		fr.kept = 0
		fr.lastOwned = false
		fr.lastEnd = 0
	}
	fr.w = len(unread)
	fr.r = 0
}

// extend appends data, the tail of the body the last next returned, to
// prev, the tail of a body given away earlier, in place when prev ends
// where the given-away part of the slab ends: data then moves down to
// right after prev (over bytes already consumed), and the body it came from
// is not given away. It reports false when prev cannot be extended in
// place; the caller then appends with a copy.
func (fr *frameReader) extend(prev, data []byte) ([]byte, bool) {
	k := fr.kept
	if len(prev) == 0 || len(data) == 0 || k == 0 || len(prev) > k || fr.lastEnd <= k {
		return nil, false
	}
	// prev must end at buf[k-1], data at the end of the last body.
	if &prev[len(prev)-1] != &fr.buf[k-1] || &data[len(data)-1] != &fr.buf[fr.lastEnd-1] {
		return nil, false
	}
	if fr.lastEnd-len(data) < k {
		return nil, false
	}
	n := copy(fr.buf[k:], data)
	fr.kept = k + n
	fr.lastOwned = false
	return fr.buf[k-len(prev) : k+n : k+n], true
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
	// extend, when set, appends a fragment's data to the message in
	// reassembly without a copy of what it holds (frameReader.extend).
	extend func(prev, data []byte) ([]byte, bool)
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
	if nb, ok := a.appendInPlace(p.buf, b[16:]); ok {
		p.buf = nb
	} else {
		p.buf = append(p.buf, b[16:]...)
	}
	if frag > 1 {
		p.next--
		return rawMessage{}, false, nil
	}
	a.pending -= p.held
	delete(a.partials, seq)
	return rawMessage{data: p.buf, atoms: p.atoms, owned: true}, true, nil
}

func (a *assembler) appendInPlace(prev, data []byte) ([]byte, bool) {
	if a.extend == nil {
		return nil, false
	}
	return a.extend(prev, data)
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
