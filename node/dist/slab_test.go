package dist

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/node/term"
)

// chunkReader returns the stream in reads of random sizes, as a socket does.
type chunkReader struct {
	b   []byte
	rnd *rand.Rand
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(r.b), 1+r.rnd.IntN(96<<10))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

// slabStream builds frames carrying count messages of random sizes: ticks,
// pass-through and header frames, and fragmented messages, two at a time
// interleaved, with first fragments large enough to be given away or not.
// It returns the stream and the data of every message in completion order.
func slabStream(rnd *rand.Rand, count int) ([]byte, [][]byte) {
	var out []byte
	var want [][]byte
	frame := func(body []byte) { out = append(out, ptFrame(body...)...) }
	data := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	size := func() int {
		switch rnd.IntN(3) {
		case 0:
			return 1 + rnd.IntN(200)
		case 1:
			return 1 + rnd.IntN(3<<10)
		default:
			return ownFrom - 64 + rnd.IntN(80<<10)
		}
	}
	type inflight struct {
		seq    uint64
		chunks [][]byte
		next   int
		whole  []byte
	}
	var open []*inflight
	seq := uint64(0)
	for len(want) < count || len(open) > 0 {
		switch op := rnd.IntN(6); {
		case op == 0:
			frame(nil) // tick
		case op == 1 && len(want) < count:
			d := data(size())
			frame(append([]byte{tagPassThrough}, d...))
			want = append(want, d)
		case op == 2 && len(want) < count:
			d := data(size())
			frame(append([]byte{tagVersion, tagDistHeader, 0}, d...))
			want = append(want, d)
		case op == 3 && len(open) < 2 && len(want) < count:
			seq++
			f := &inflight{seq: seq}
			for parts := 2 + rnd.IntN(3); parts > 0; parts-- {
				c := data(size())
				f.chunks = append(f.chunks, c)
				f.whole = append(f.whole, c...)
			}
			frame(append(append(fragHeader(tagFragmentHeader, seq, uint64(len(f.chunks))), 0), f.chunks[0]...))
			f.next = 1
			open = append(open, f)
		case len(open) > 0:
			i := rnd.IntN(len(open))
			f := open[i]
			frame(append(fragHeader(tagFragmentCont, f.seq, uint64(len(f.chunks)-f.next)), f.chunks[f.next]...))
			if f.next++; f.next == len(f.chunks) {
				want = append(want, f.whole)
				open = append(open[:i], open[i+1:]...)
			}
		}
	}
	return out, want
}

// TestFrameReaderSlabs checks what the reader's slabs must never do: change
// the bytes of a message given to a process, however the stream is cut into
// reads, however fragments interleave, and while collected slabs are
// recycled (the test collects garbage as it goes).
func TestFrameReaderSlabs(t *testing.T) {
	for _, slab := range []int{readSlab, 20 << 10} {
		for seed := uint64(1); seed <= 6; seed++ {
			rnd := rand.New(rand.NewPCG(seed, uint64(slab)))
			stream, want := slabStream(rnd, 400)
			fr := newFrameReader(&chunkReader{b: stream, rnd: rnd}, slab, 1<<30)
			asm := newAssembler(1 << 30)
			asm.extend = fr.extend
			type keptMsg struct {
				got  []byte
				want int
			}
			var kept []keptMsg
			n := 0
			for {
				body, owned, err := fr.next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("slab %d seed %d: %v", slab, seed, err)
				}
				if len(body) == 0 {
					continue
				}
				msg, ok, err := asm.feed(body, owned)
				if err != nil {
					t.Fatalf("slab %d seed %d: %v", slab, seed, err)
				}
				if !ok {
					continue
				}
				if !bytes.Equal(msg.data, want[n]) {
					t.Fatalf("slab %d seed %d: message %d: %d bytes differ from the %d sent", slab, seed, n, len(msg.data), len(want[n]))
				}
				if msg.owned {
					kept = append(kept, keptMsg{msg.data, n})
				}
				n++
				if n%50 == 0 {
					runtime.GC() // let finalizers recycle slabs nothing holds
				}
			}
			if n != len(want) {
				t.Fatalf("slab %d seed %d: %d messages, want %d", slab, seed, n, len(want))
			}
			if len(kept) == 0 {
				t.Fatalf("slab %d seed %d: no message was given away: the test covers nothing", slab, seed)
			}
			for _, k := range kept {
				if !bytes.Equal(k.got, want[k.want]) {
					t.Fatalf("slab %d seed %d: message %d, given away, changed after later reads", slab, seed, k.want)
				}
			}
			if len(asm.partials) != 0 {
				t.Fatalf("%d messages left in reassembly", len(asm.partials))
			}
		}
	}
}

// TestFrameReaderExtendsInPlace checks that OTP's way of sending a 64 KiB
// binary, a fragment of 64 KiB and a short last one, reassembles in the
// slab the first fragment was read into, without copying it.
func TestFrameReaderExtendsInPlace(t *testing.T) {
	first := append(append(fragHeader(tagFragmentHeader, 7, 2), 0), bytes.Repeat([]byte{'a'}, 64<<10)...)
	last := append(fragHeader(tagFragmentCont, 7, 1), "tail"...)
	stream := append(append(append(ptFrame(first...), ptFrame(last...)...), ptFrame(tagPassThrough, 'x')...), ptFrame(first...)...)
	fr := newFrameReader(bytes.NewReader(stream), readSlab, 1<<20)
	asm := newAssembler(1 << 20)
	asm.extend = fr.extend
	body, owned, err := fr.next()
	if err != nil || !owned {
		t.Fatalf("first fragment: owned=%v err=%v", owned, err)
	}
	if _, ok, err := asm.feed(body, owned); ok || err != nil {
		t.Fatalf("first fragment: complete=%v err=%v", ok, err)
	}
	body2, owned2, err := fr.next()
	if err != nil {
		t.Fatal(err)
	}
	msg, ok, err := asm.feed(body2, owned2)
	if err != nil || !ok {
		t.Fatalf("last fragment: complete=%v err=%v", ok, err)
	}
	if want := append(bytes.Repeat([]byte{'a'}, 64<<10), "tail"...); !bytes.Equal(msg.data, want) {
		t.Fatalf("reassembled %d bytes, not the %d sent", len(msg.data), len(want))
	}
	if &msg.data[0] != &body[19] {
		t.Fatal("the message was copied out of the slab the first fragment was read into")
	}
	// The frames after it are still read correctly, and the message keeps
	// its bytes.
	if b, _, err := fr.next(); err != nil || string(b) != "px" {
		t.Fatalf("next frame = %q, %v", b, err)
	}
	if b, _, err := fr.next(); err != nil || !bytes.Equal(b, first) {
		t.Fatalf("frame after it: %d bytes, %v", len(b), err)
	}
	if !bytes.HasSuffix(msg.data, []byte("tail")) || msg.data[0] != 'a' {
		t.Fatal("the reassembled message changed")
	}
}

// TestDecodeSharesOnlyFromShareFrom checks the bound on the memory a
// received binary keeps: one in a message of shareFrom bytes or more keeps
// its bytes where they were read, a smaller one is copied out, so that it
// does not keep a 256 KiB slab alive.
func TestDecodeSharesOnlyFromShareFrom(t *testing.T) {
	for _, tt := range []struct {
		size   int
		shared bool
	}{{40 << 10, false}, {shareFrom, true}, {200 << 10, true}} {
		control, err := term.Encode(nil, etf.Tuple{int64(opSend), etf.Atom(""), etf.Atom("sink")})
		if err != nil {
			t.Fatal(err)
		}
		bin := bytes.Repeat([]byte{'b'}, tt.size)
		data, err := term.Encode(control, bin)
		if err != nil {
			t.Fatal(err)
		}
		_, payload, ok, err := decodeMessage(rawMessage{data: data, owned: true}, nil)
		if err != nil || !ok {
			t.Fatalf("%d bytes: payload %v, %v", tt.size, ok, err)
		}
		got, _ := payload.([]byte)
		if !bytes.Equal(got, bin) {
			t.Fatalf("%d bytes: payload is not the binary sent", tt.size)
		}
		if shared := &got[0] == &data[len(data)-tt.size]; shared != tt.shared {
			t.Fatalf("binary of %d bytes: shares the message's memory = %v, want %v", tt.size, shared, tt.shared)
		}
	}
}

// TestSlabsBoundMemoryOfAStream streams 64 KiB messages between two
// connections over TCP; the receiver's router drops each one at once, as a
// process that handles its messages does. The memory the receiver takes
// must stay bounded however long the stream runs: recycled slabs are live
// memory, and recycling every slab made each collection cycle longer than
// the one before, so the heap grew by gigabytes.
func TestSlabsBoundMemoryOfAStream(t *testing.T) {
	const messages = 30000 // 1.9 GiB
	router := &benchRouter{ptRouter: newPTRouter(), done: make(chan struct{}), target: messages}
	cfg := DefaultProtoConfig()
	cfg.MaxQueueBytes = 1 << 20 // the sender's share of the heap stays small
	send := tcpPair(t, cfg, router)
	msg := bytes.Repeat([]byte{'m'}, 64<<10)
	proc := ptProcess{self: ptLocalPid}

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	for n := 1; n <= messages; n++ {
		if err := send.Send(proc, ptRemotePid, msg); err != nil {
			t.Fatal(err)
		}
		if n%500 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	<-router.done
	slabs.mu.Lock()
	live := slabs.live
	slabs.mu.Unlock()
	if live > maxRecycledSlabs {
		t.Errorf("%d recycled slabs exist, over the budget of %d", live, maxRecycledSlabs)
	}
	// The budget (32 MiB) is live memory, and the collector lets the heap
	// grow to about twice what is live before it collects.
	const bound = 128 << 20
	if grew := peak - min(peak, base); grew > bound {
		t.Fatalf("the heap grew by %d MiB while %d messages of 64 KiB were received, more than %d MiB", grew>>20, messages, bound>>20)
	}
	t.Logf("heap in use grew by at most %d MiB; %d recycled slabs", (peak-min(peak, base))>>20, live)
}

// TestSlabsIdleGoBack checks that free recycled slabs go back to the
// collector once no reader asked for one during slabIdle, so a burst of
// large messages leaves no memory behind.
func TestSlabsIdleGoBack(t *testing.T) {
	defer func(d time.Duration) { slabIdle = d }(slabIdle)
	slabIdle = 50 * time.Millisecond
	slabs.mu.Lock()
	if slabs.trim != nil { // armed by an earlier test with the old idle time
		slabs.trim.Reset(slabIdle)
	}
	slabs.mu.Unlock()
	state := func() (live, free int) {
		slabs.mu.Lock()
		defer slabs.mu.Unlock()
		return slabs.live, len(slabs.free)
	}
	for range 4 {
		_ = getSlab(readSlab) // dropped at once
	}
	if live, _ := state(); live == 0 {
		t.Fatal("no recycled slab was handed out")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC() // finds the slabs unreferenced; their finalizers free them
		live, free := state()
		if live == 0 && free == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s idle: %d recycled slabs exist, %d of them free; want none", slabIdle, live, free)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
