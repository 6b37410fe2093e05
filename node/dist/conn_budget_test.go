package dist

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/node/term"
)

// nilList is the encoding of a list of n [] (the term
// lists:duplicate(N, [])): n+6 bytes, 16 bytes a slot once decoded.
func nilList(n int) []byte {
	b := binary.BigEndian.AppendUint32([]byte{108}, uint32(n))
	b = append(b, bytes.Repeat([]byte{106}, n)...)
	return append(b, 106)
}

// A message whose terms would take more memory than its decode budget is
// dropped and counted like a malformed frame, with one log line saying
// why; the next message on the connection is delivered.
func TestConnOverBudgetMessageDropped(t *testing.T) {
	small := DefaultProtoConfig()
	small.DecodeBudgetFloor = 64 << 10
	control, err := term.Encode(nil, etf.Tuple{int64(opSend), etf.Atom(""), ptLocalPid})
	if err != nil {
		t.Fatal(err)
	}
	passThrough := func(payload []byte) []byte {
		b := append([]byte{tagPassThrough, tagVersion}, control...)
		return ptFrame(append(append(b, tagVersion), payload...)...)
	}
	pid, err := term.Encode(nil, ptLocalPid)
	if err != nil {
		t.Fatal(err)
	}
	// {2, Unused, ToPid} with lists:duplicate(100000, []) as Unused.
	bigControl := append(append([]byte{104, 3, 97, opSend}, nilList(100000)...), pid...)
	tests := []struct {
		name  string
		cfg   ProtoConfig
		wire  []byte // the over-budget message's frames
		size  int    // its size: control and payload, with their version bytes if any
		alloc bool   // check what receiving it allocated
	}{
		{name: "one frame over the floor", cfg: small, wire: passThrough(nilList(100000)), size: 1 + len(control) + 1 + len(nilList(100000))},
		{name: "fragments", cfg: small, wire: fragmentFrames(nil, 1, 4000, control, nilList(100000)), size: len(control) + len(nilList(100000))},
		{name: "in the control message", cfg: small, wire: ptFrame(append([]byte{tagPassThrough, tagVersion}, bigControl...)...), size: 1 + len(bigControl)},
		// The message: a 16 MiB list of [], which took RSS from 69 to
		// 744 MB, with the default budget.
		{name: "16 MiB list of [], defaults", cfg: DefaultProtoConfig(), wire: passThrough(nilList(16 << 20)),
			size: 1 + len(control) + 1 + len(nilList(16<<20)), alloc: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &syncBuffer{}
			tt.cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
			h := ptStart(t, tt.cfg, ptFlags())
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			if _, err := h.peer.Write(tt.wire); err != nil {
				t.Fatal(err)
			}
			h.write(t, ptPassThrough(t, etf.Tuple{int64(opSend), etf.Atom(""), ptLocalPid}, etf.Atom("after")))
			call := h.router.next(t)
			runtime.ReadMemStats(&after)
			if call.op != "Send" || call.args[2] != etf.Atom("after") {
				t.Fatalf("router got %v, want the message sent after the one over budget", call)
			}
			if got := h.obs.dropped.Load(); got != 1 {
				t.Fatalf("dropped %d frames, want 1", got)
			}
			h.obs.mu.Lock()
			dropErr := h.obs.dropErrs[0]
			h.obs.mu.Unlock()
			if !errors.Is(dropErr, ErrMalformedFrame) || !errors.Is(dropErr, term.ErrDecodeBudget) {
				t.Fatalf("FrameDropped(%v): want ErrMalformedFrame and term.ErrDecodeBudget", dropErr)
			}
			budget := tt.cfg.decodeBudget(tt.size)
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], "decode budget") ||
				!strings.Contains(lines[0], fmt.Sprintf("message of %d bytes over its decode budget of %d bytes", tt.size, budget)) {
				t.Fatalf("log:\n%s\nwant one line about a message of %d bytes over its budget of %d", logs, tt.size, budget)
			}
			if tt.alloc {
				// The frame itself is read into memory (1x); decoding it
				// must not take much more.
				got := after.TotalAlloc - before.TotalAlloc
				if limit := uint64(4 * len(tt.wire)); got > limit {
					t.Fatalf("receiving a %d-byte message allocated %d bytes (%.1fx), more than %d", len(tt.wire), got, float64(got)/float64(len(tt.wire)), limit)
				}
				t.Logf("receiving a %d-byte message allocated %.2fx its size", len(tt.wire), float64(after.TotalAlloc-before.TotalAlloc)/float64(len(tt.wire)))
			}
			select {
			case <-h.served:
				t.Fatal("the connection closed")
			default:
			}
		})
	}
}

// A message within its budget is delivered, whether the floor or the
// factor gives it the room.
func TestConnWithinBudgetDelivered(t *testing.T) {
	list := func(n int) etf.List {
		l := make(etf.List, n)
		for i := range l {
			l[i] = etf.List{}
		}
		return l
	}
	floorOnly := DefaultProtoConfig()
	floorOnly.DecodeBudgetFactor = 1
	floorOnly.DecodeBudgetFloor = 2 << 20
	factorOnly := DefaultProtoConfig()
	factorOnly.DecodeBudgetFactor = 20
	factorOnly.DecodeBudgetFloor = 0
	tests := []struct {
		name string
		cfg  ProtoConfig
		msg  etf.Term
	}{
		{name: "the floor", cfg: floorOnly, msg: list(100000)},                   // 1.6 MB of slots in 2 MiB
		{name: "the factor", cfg: factorOnly, msg: list(100000)},                 // in 20x 100 KB
		{name: "defaults, dense", cfg: DefaultProtoConfig(), msg: list(1000000)}, // 16 MB in 16 MiB
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ptStart(t, tt.cfg, ptFlags())
			h.write(t, ptPassThrough(t, etf.Tuple{int64(opSend), etf.Atom(""), ptLocalPid}, tt.msg))
			call := h.router.next(t)
			if got, ok := call.args[2].(etf.List); call.op != "Send" || !ok || len(got) != len(tt.msg.(etf.List)) {
				t.Fatalf("router got %.100v, want the list", call)
			}
			if got := h.obs.dropped.Load(); got != 0 {
				t.Fatalf("dropped %d frames", got)
			}
		})
	}
}

func TestProtoConfigDecodeBudget(t *testing.T) {
	for _, tt := range []struct {
		factor, floor int
		ok            bool
	}{
		{4, 16 << 20, true}, {1, 0, true}, {1024, 0, true},
		{0, 16 << 20, false}, {1025, 0, false}, {-1, 0, false}, {4, -1, false},
	} {
		cfg := DefaultProtoConfig()
		cfg.DecodeBudgetFactor, cfg.DecodeBudgetFloor = tt.factor, tt.floor
		if err := cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("factor %d floor %d: Validate() = %v, want ok=%v", tt.factor, tt.floor, err, tt.ok)
		}
	}
	cfg := DefaultProtoConfig()
	if got := cfg.decodeBudget(1000); got != 16<<20 {
		t.Errorf("budget of 1000 bytes = %d, want the floor", got)
	}
	if got := cfg.decodeBudget(16 << 20); got != 64<<20 {
		t.Errorf("budget of 16 MiB = %d, want 64 MiB", got)
	}
	cfg.MaxFrameSize = 1<<32 - 1
	cfg.DecodeBudgetFactor = 1024
	if got := cfg.decodeBudget(cfg.MaxFrameSize); got != 1024*(1<<32-1) {
		t.Errorf("budget of the largest frame = %d, overflowed", got)
	}
}
