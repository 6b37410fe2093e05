package dist

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/ergo-services/ergo/etf"
)

func ptFrame(body ...byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func TestFrameReader(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    [][]byte
		wantErr error
	}{
		{name: "tick then frame", in: append(ptFrame(), ptFrame(112, 1, 2)...), want: [][]byte{{}, {112, 1, 2}}, wantErr: io.EOF},
		{name: "at the limit", in: ptFrame(bytes.Repeat([]byte{7}, 16)...), want: [][]byte{bytes.Repeat([]byte{7}, 16)}, wantErr: io.EOF},
		{name: "over the limit", in: ptFrame(bytes.Repeat([]byte{7}, 17)...), wantErr: ErrFrameTooLarge},
		{name: "truncated body", in: ptFrame(1, 2, 3)[:6], wantErr: io.ErrUnexpectedEOF},
		{name: "truncated length", in: []byte{0, 0}, wantErr: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := newFrameReader(bytes.NewReader(tt.in), 16, 16)
			var got [][]byte
			var err error
			for {
				var b []byte
				if b, _, err = fr.next(); err != nil {
					break
				}
				got = append(got, bytes.Clone(b))
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("frames = %v, want %v", got, tt.want)
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Fatalf("frame %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// header builds a normal distribution header (131, 68) with the given
// cache references: new entries carry their atom text.
type cacheRef struct {
	idx  int // 0..2047
	atom string
	new  bool
}

func atomCacheHeader(long bool, refs ...cacheRef) []byte {
	n := len(refs)
	b := []byte{byte(n)}
	if n == 0 {
		return b
	}
	flags := make([]byte, n/2+1)
	set := func(i int, v byte) { flags[i/2] |= v << (4 * uint(i%2)) }
	for i, r := range refs {
		v := byte(r.idx >> 8)
		if r.new {
			v |= 8
		}
		set(i, v)
	}
	if long {
		set(n, 1)
	}
	b = append(b, flags...)
	for _, r := range refs {
		b = append(b, byte(r.idx))
		if r.new {
			if long {
				b = binary.BigEndian.AppendUint16(b, uint16(len(r.atom)))
			} else {
				b = append(b, byte(len(r.atom)))
			}
			b = append(b, r.atom...)
		}
	}
	return b
}

func fragHeader(tag byte, seq, id uint64) []byte {
	b := []byte{131, tag}
	b = binary.BigEndian.AppendUint64(b, seq)
	return binary.BigEndian.AppendUint64(b, id)
}

func TestAssemblerAtomCache(t *testing.T) {
	a := newAssembler(1 << 20)
	first := append([]byte{131, 68}, atomCacheHeader(false,
		cacheRef{idx: 5, atom: "hello", new: true},
		cacheRef{idx: 0x3ff, atom: "world", new: true},
		cacheRef{idx: 0x700, atom: "x", new: true})...)
	first = append(first, 'D', 'A', 'T', 'A')
	msg, ok, err := a.feed(first, false)
	if err != nil || !ok {
		t.Fatalf("feed = %v, %v", ok, err)
	}
	if want := []etf.Atom{"hello", "world", "x"}; !equalAtoms(msg.atoms, want) || string(msg.data) != "DATA" || msg.versioned {
		t.Fatalf("message = %+v, want atoms %v and DATA", msg, want)
	}
	// The entries are now cached: reference them without text, long atoms flag set.
	second := append([]byte{131, 68}, atomCacheHeader(true,
		cacheRef{idx: 0x3ff}, cacheRef{idx: 5}, cacheRef{idx: 0x100, atom: "long", new: true})...)
	msg, ok, err = a.feed(second, false)
	if err != nil || !ok {
		t.Fatalf("feed = %v, %v", ok, err)
	}
	if want := []etf.Atom{"world", "hello", "long"}; !equalAtoms(msg.atoms, want) {
		t.Fatalf("atoms = %v, want %v", msg.atoms, want)
	}
	// An empty entry is malformed.
	_, _, err = a.feed(append([]byte{131, 68}, atomCacheHeader(false, cacheRef{idx: 9})...), false)
	if !errors.Is(err, ErrMalformedFrame) {
		t.Fatalf("reference to an empty entry: err = %v", err)
	}
}

func equalAtoms(a, b []etf.Atom) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAssemblerFragments(t *testing.T) {
	t.Run("interleaved sequences reassemble", func(t *testing.T) {
		a := newAssembler(1 << 20)
		steps := []struct {
			body []byte
			want string // complete message data, "" when incomplete
		}{
			{append(append(fragHeader(69, 1, 3), atomCacheHeader(false, cacheRef{idx: 1, atom: "a", new: true})...), "one-"...), ""},
			{append(append(fragHeader(69, 2, 2), 0), "two-"...), ""},
			{append(fragHeader(70, 1, 2), "one-"...), ""},
			{append(fragHeader(70, 2, 1), "two!"...), "two-two!"},
			{append(fragHeader(70, 1, 1), "one!"...), "one-one-one!"},
			{append(append(fragHeader(69, 3, 1), 0), "single"...), "single"},
		}
		for i, s := range steps {
			msg, ok, err := a.feed(s.body, false)
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			if ok != (s.want != "") || ok && string(msg.data) != s.want {
				t.Fatalf("step %d: complete=%v data=%q, want %q", i, ok, msg.data, s.want)
			}
		}
		if len(a.partials) != 0 || a.pending != 0 {
			t.Fatalf("left in reassembly: %d partials, %d bytes", len(a.partials), a.pending)
		}
	})
	bad := []struct {
		name  string
		steps [][]byte
		want  error
	}{
		{"unknown sequence", [][]byte{append(fragHeader(70, 9, 1), 'x')}, ErrMalformedFrame},
		{"fragment out of order", [][]byte{append(fragHeader(69, 1, 3), 0, 'x'), append(fragHeader(70, 1, 1), 'y')}, ErrMalformedFrame},
		{"fragment id 0", [][]byte{append(fragHeader(69, 1, 0), 0, 'x')}, ErrMalformedFrame},
		{"truncated fragment header", [][]byte{{131, 69, 0, 0}}, ErrMalformedFrame},
		{"unknown header", [][]byte{{131, 99, 0}}, ErrMalformedFrame},
		{"unknown frame type", [][]byte{{7}}, ErrMalformedFrame},
		{"truncated atom cache flags", [][]byte{{131, 68, 4, 0}}, ErrMalformedFrame},
		{"truncated atom text", [][]byte{{131, 68, 1, 8, 0, 9, 'a'}}, ErrMalformedFrame},
		{"too large", [][]byte{append(fragHeader(69, 1, 3), append([]byte{0}, make([]byte, 600)...)...), append(fragHeader(70, 1, 2), make([]byte, 600)...)}, ErrFrameTooLarge},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			a := newAssembler(1000)
			var err error
			for _, s := range tt.steps {
				if _, _, err = a.feed(s, false); err != nil {
					break
				}
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFragmentFramesRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name       string
		ctrl, pay  int
		size       int
		wantFrames int
	}{
		{"payload spans fragments", 30, 1000, 256, 5},
		{"control alone", 600, 0, 256, 3},
		{"exact multiple", 56, 200, 128, 2},
		{"single fragment", 10, 10, 256, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctrl := bytes.Repeat([]byte{'c'}, tt.ctrl)
			pay := make([]byte, tt.pay)
			for i := range pay {
				pay[i] = byte(i)
			}
			out := fragmentFrames(nil, 42, tt.size, ctrl, pay)
			fr := newFrameReader(bytes.NewReader(out), 64, 1<<20)
			a := newAssembler(1 << 20)
			frames := 0
			for {
				body, _, err := fr.next()
				if errors.Is(err, io.EOF) {
					t.Fatalf("stream ended after %d frames without a complete message", frames)
				}
				if err != nil {
					t.Fatal(err)
				}
				frames++
				if len(body) > tt.size+19 {
					t.Fatalf("frame of %d bytes, fragment size %d", len(body), tt.size)
				}
				msg, ok, err := a.feed(body, false)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					if want := append(bytes.Clone(ctrl), pay...); !bytes.Equal(msg.data, want) {
						t.Fatalf("reassembled %d bytes, want %d", len(msg.data), len(want))
					}
					break
				}
			}
			if frames != tt.wantFrames {
				t.Fatalf("%d frames, want %d", frames, tt.wantFrames)
			}
		})
	}
}

// FuzzAssembler feeds arbitrary frame bodies: the assembler may reject them
// but must never panic, and must keep its bookkeeping within the bound.
func FuzzAssembler(f *testing.F) {
	f.Add([]byte{112, 131, 104, 1, 97, 1}, []byte{131, 68, 0})
	f.Add(append(append(fragHeader(69, 1, 2), 0), 'x'), append(fragHeader(70, 1, 1), 'y'))
	f.Add(append([]byte{131, 68}, atomCacheHeader(true, cacheRef{idx: 2047, atom: "z", new: true})...), []byte{131, 68, 1, 7, 255})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		asm := newAssembler(4096)
		for i, body := range [][]byte{a, b, a, b} {
			// Alternately a reused buffer and one the assembler may keep.
			_, _, _ = asm.feed(bytes.Clone(body), i%2 == 1)
			if asm.pending > 4096 || asm.pending < 0 {
				t.Fatalf("pending = %d", asm.pending)
			}
		}
	})
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

// A connection's reader costs little while its peer is quiet, and reads
// in large chunks once the peer streams: its slab starts at minSlab and
// doubles, up to firstSlab, each time a read filled it.
func TestFrameReaderSlabGrowsWithTraffic(t *testing.T) {
	frame := func(n int) []byte {
		b := make([]byte, 4+n)
		binary.BigEndian.PutUint32(b, uint32(n))
		return b
	}
	t.Run("quiet peer", func(t *testing.T) {
		var in []byte
		for range 100 {
			in = append(in, frame(0)...) // ticks
			in = append(in, frame(200)...)
		}
		// One frame per read, as a quiet peer's frames arrive.
		fr := newFrameReader(iotest.OneByteReader(bytes.NewReader(in)), readSlab, 1<<20)
		for range 200 {
			if _, _, err := fr.next(); err != nil {
				t.Fatal(err)
			}
		}
		if len(fr.buf) != minSlab {
			t.Fatalf("slab of a quiet connection = %d bytes, want %d", len(fr.buf), minSlab)
		}
	})
	t.Run("streaming peer", func(t *testing.T) {
		var in []byte
		for range 2000 {
			in = append(in, frame(1000)...)
		}
		fr := newFrameReader(bytes.NewReader(in), readSlab, 1<<20)
		sizes := map[int]bool{}
		for range 2000 {
			if _, _, err := fr.next(); err != nil {
				t.Fatal(err)
			}
			sizes[len(fr.buf)] = true
		}
		if len(fr.buf) != firstSlab {
			t.Fatalf("slab of a streaming connection = %d bytes, want %d (sizes seen %v)", len(fr.buf), firstSlab, sizes)
		}
	})
}

// The writer's scratch buffer, where small frames are gathered for one
// write, grows with what is written: a connection that only ticks keeps a
// few bytes, not scratchCap.
func TestVecWriterScratchGrowsWithWrites(t *testing.T) {
	var out bytes.Buffer
	v := newVecWriter(&out)
	for range 100 {
		if err := v.add(frameBuf{b: tickFrame[:], size: len(tickFrame)}); err != nil {
			t.Fatal(err)
		}
		if err := v.flush(); err != nil {
			t.Fatal(err)
		}
	}
	if out.Len() != 400 {
		t.Fatalf("wrote %d bytes, want 400", out.Len())
	}
	if cap(v.scratch) > 64 {
		t.Fatalf("scratch of a ticking connection holds %d bytes, want a few", cap(v.scratch))
	}
}
