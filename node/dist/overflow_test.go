package dist

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"

	"github.com/gonode/gonode/internal/beamtest"
)

// gatedSink records the messages it receives, each only once the test
// opened its gate: until then its mailbox fills and stays full. Killed, it
// records nothing more.
type gatedSink struct {
	gen.Server
	gate chan struct{}
	mu   sync.Mutex
	got  []etf.Term
}

func (s *gatedSink) HandleInfo(p *gen.ServerProcess, m etf.Term) gen.ServerStatus {
	select {
	case <-s.gate:
	case <-p.Context().Done():
		return gen.ServerStatusStop
	}
	s.mu.Lock()
	s.got = append(s.got, m)
	s.mu.Unlock()
	return gen.ServerStatusOK
}

func (s *gatedSink) received() []etf.Term {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]etf.Term(nil), s.got...)
}

// connTap is a Proto that hands the test every connection it makes.
type connTap struct {
	*Proto
	conns chan *conn
}

func (p connTap) Init(ctx context.Context, nc lib.NetReadWriter, nodename string, d node.HandshakeDetails) (node.ConnectionInterface, error) {
	ci, err := p.Proto.Init(ctx, nc, nodename, d)
	if c, ok := ci.(*conn); ok {
		p.conns <- c
	}
	return ci, err
}

// tappedGoNode is ptGoNode whose connections the test gets from the
// returned channel.
func tappedGoNode(t *testing.T, name, cookie string, edit func(*ProtoConfig)) (node.Node, <-chan *conn) {
	t.Helper()
	hs, err := NewHandshake(DefaultHandshakeConfig())
	if err != nil {
		t.Fatal(err)
	}
	pcfg := DefaultProtoConfig()
	pcfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	edit(&pcfg)
	proto, err := NewProto(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	tap := connTap{Proto: proto, conns: make(chan *conn, 16)}
	return startErgoNode(t, name, cookie, hs, tap), tap.conns
}

// A BEAM sends a burst of 16 KiB binaries, 12 times the overflow's bound, to
// a process whose mailbox of 4 stays full. The connection holds no more than
// its bound (the reader stops reading from the peer instead), and once the
// process reads its mailbox every message arrives, in order.
func TestOverflowBoundedBEAM(t *testing.T) {
	const (
		limit = 256 << 10
		burst = 200
		size  = 16 << 10
	)
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		a := beamtest.Start(t, rel, beamtest.Options{Name: "ovfb_" + rel.Name + "@127.0.0.1", Cookie: cookie})
		goName := "goovfb_" + rel.Name + "@127.0.0.1"
		n, conns := tappedGoNode(t, goName, cookie, func(c *ProtoConfig) { c.MaxOverflowBytes = limit })
		sink := &gatedSink{gate: make(chan struct{})}
		opened := false
		open := func() {
			if !opened {
				opened = true
				close(sink.gate)
			}
		}
		t.Cleanup(open)
		slow, err := n.Spawn("slow", gen.ProcessOptions{MailboxSize: 4}, sink)
		if err != nil {
			t.Fatal(err)
		}
		a.Eval(t, fmt.Sprintf(`G = '%s', B = binary:copy(<<7>>, %d),
			spawn(fun() -> [{slow, G} ! {seq, I, B} || I <- lists:seq(1, %d)] end), ok.`, goName, size, burst))
		var c *conn
		select {
		case c = <-conns:
		case <-time.After(30 * time.Second):
			t.Fatal("the BEAM did not connect within 30s")
		}
		one := overflowItemOverhead + termSize(etf.Tuple{etf.Atom("seq"), int64(1), make([]byte, size)}, limit)
		ptEventually(t, "the overflow fills to its bound", func() (bool, string) {
			c.overflow.mu.Lock()
			defer c.overflow.mu.Unlock()
			return c.overflow.bytes > limit-one, fmt.Sprintf("overflow holds %d bytes, bound %d", c.overflow.bytes, limit)
		})
		c.overflow.mu.Lock()
		peak := c.overflow.peak
		c.overflow.mu.Unlock()
		if peak > limit {
			t.Fatalf("the overflow held %d bytes, over its bound of %d", peak, limit)
		}
		if !c.overflowing(slow.Self()) {
			t.Fatal("overflowing(slow) = false while slow's messages wait in the overflow")
		}
		if in := c.msgsIn.Load(); in >= burst {
			t.Fatalf("the reader read all %d messages while the receiver was blocked: nothing held the peer back", in)
		}
		open()
		ptEventually(t, "every message arrives", func() (bool, string) {
			got := sink.received()
			return len(got) == burst, fmt.Sprintf("%d of %d", len(got), burst)
		})
		for i, m := range sink.received() {
			tup, ok := m.(etf.Tuple)
			if !ok || len(tup) != 3 || tup[1] != int64(i+1) {
				t.Fatalf("message %d is %.60v, want {seq, %d, _}", i+1, m, i+1)
			}
		}
		ptEventually(t, "the overflow is empty", func() (bool, string) {
			c.overflow.mu.Lock()
			defer c.overflow.mu.Unlock()
			return c.overflow.bytes == 0 && len(c.overflow.queues) == 0 && !c.overflow.holding(),
				fmt.Sprintf("%d bytes in %d queues", c.overflow.bytes, len(c.overflow.queues))
		})
		if c.overflowing(slow.Self()) {
			t.Fatal("overflowing(slow) = true once its queue is empty")
		}
	})
}

func TestTermSize(t *testing.T) {
	bin := make([]byte, 1000)
	for _, tc := range []struct {
		name     string
		term     etf.Term
		min, max int64
	}{
		{"atom", etf.Atom("ok"), 16, 64},
		{"binary", bin, 1000, 1100},
		{"tuple of binaries", etf.Tuple{bin, bin}, 2000, 2200},
		{"list", etf.List{int64(1), int64(2), int64(3)}, 48, 128},
		{"map", etf.Map{etf.Atom("k"): bin}, 1000, 1200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := termSize(tc.term, 1<<30); got < tc.min || got > tc.max {
				t.Fatalf("termSize = %d, want %d to %d", got, tc.min, tc.max)
			}
		})
	}
	t.Run("stops past the limit", func(t *testing.T) {
		long := make(etf.List, 1<<16)
		for i := range long {
			long[i] = bin
		}
		if got := termSize(long, 10_000); got > 20_000 {
			t.Fatalf("termSize with a limit of 10000 = %d, want it to stop soon after", got)
		}
	})
}

// A process that exits frees its queue in the overflow: its messages go
// where messages to a dead process go, and the connection's memory with
// them.
func TestOverflowFreedWhenProcessExitsBEAM(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		a := beamtest.Start(t, rel, beamtest.Options{Name: "ovfx_" + rel.Name + "@127.0.0.1", Cookie: cookie})
		goName := "goovfx_" + rel.Name + "@127.0.0.1"
		n, conns := tappedGoNode(t, goName, cookie, func(*ProtoConfig) {})
		sink := &gatedSink{gate: make(chan struct{})}
		t.Cleanup(func() { close(sink.gate) })
		slow, err := n.Spawn("slow", gen.ProcessOptions{MailboxSize: 4}, sink)
		if err != nil {
			t.Fatal(err)
		}
		a.Eval(t, fmt.Sprintf(`[{slow, '%s'} ! {seq, I} || I <- lists:seq(1, 100)], ok.`, goName))
		var c *conn
		select {
		case c = <-conns:
		case <-time.After(30 * time.Second):
			t.Fatal("the BEAM did not connect within 30s")
		}
		ptEventually(t, "slow's messages wait in the overflow", func() (bool, string) {
			return c.overflowing(slow.Self()), fmt.Sprintf("%d messages read", c.msgsIn.Load())
		})
		slow.Kill()
		ptEventually(t, "the overflow is empty once slow is gone", func() (bool, string) {
			c.overflow.mu.Lock()
			defer c.overflow.mu.Unlock()
			return c.overflow.bytes == 0 && len(c.overflow.queues) == 0 && !c.overflow.holding(),
				fmt.Sprintf("%d bytes in %d queues; slow alive: %v", c.overflow.bytes, len(c.overflow.queues), slow.IsAlive())
		})
		if got := len(sink.received()); got != 0 {
			t.Fatalf("slow recorded %d messages, want none (it was killed before its gate opened)", got)
		}
	})
}
