package node_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
)

// gate blocks a receiver until the test opens it, and records what the
// receiver then takes: until it opens, the receiver's mailbox fills.
type gate struct {
	ch   chan struct{}
	once sync.Once
	mu   sync.Mutex
	got  []etf.Term
}

func newGate(t *testing.T) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

func (g *gate) take(m etf.Term) {
	<-g.ch
	g.mu.Lock()
	g.got = append(g.got, m)
	g.mu.Unlock()
}

func (g *gate) received() []etf.Term {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]etf.Term(nil), g.got...)
}

// gatedRecorder is an ergo gen.Server behind a gate.
type gatedRecorder struct {
	gen.Server
	*gate
}

func newGatedRecorder(t *testing.T) *gatedRecorder { return &gatedRecorder{gate: newGate(t)} }

func (g *gatedRecorder) HandleInfo(_ *gen.ServerProcess, m etf.Term) gen.ServerStatus {
	g.take(m)
	return gen.ServerStatusOK
}

// gatedInline is a genserver.Server behind a gate: the connection's reader
// queues the peer's messages in its own inbox and runs its callbacks.
type gatedInline struct {
	genserver.Server
	*gate
}

func (g *gatedInline) HandleInfo(_ *genserver.Process, m etf.Term) gen.ServerStatus {
	g.take(m)
	return gen.ServerStatusOK
}

const (
	burstSenders = 4
	burstEach    = 300 // 1,200 messages in all, to a mailbox of 16
	burstMailbox = 16
)

// checkBurst pins what a burst from a peer bigger than the receiver's
// mailbox must give: send has burstSenders processes of the peer send
// {seq, K, I} for I in 1..burstEach to slow, concurrently, then ping to
// fast. slow is blocked all along: fast still gets its ping (a blocked
// receiver does not hold up another process on the same connection), and
// once slow reads its mailbox it gets every message, each sender's in
// order.
func checkBurst(t *testing.T, slow *gate, fast *recorder, send func()) {
	t.Helper()
	send()
	select {
	case m := <-fast.got:
		if m != etf.Atom("ping") {
			t.Fatalf("fast received %v, want ping", m)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("fast did not receive its ping within 30s while slow was blocked (slow had taken %d messages)", len(slow.received()))
	}
	slow.open()
	total := burstSenders * burstEach
	testutil.Eventually(t, 30*time.Second, func() (bool, string) {
		got := len(slow.received())
		return got >= total, fmt.Sprintf("slow received %d of %d", got, total)
	})
	next := map[int64]int64{}
	for _, m := range slow.received() {
		tup, ok := m.(etf.Tuple)
		if !ok || len(tup) != 3 || tup[0] != etf.Atom("seq") {
			t.Fatalf("slow received %v, want {seq, K, I}", m)
		}
		k, _ := tup[1].(int64)
		i, _ := tup[2].(int64)
		if i != next[k]+1 {
			t.Fatalf("from sender %d: message %d after %d (per-pair order broken)", k, i, next[k])
		}
		next[k] = i
	}
	for k := int64(1); k <= burstSenders; k++ {
		if next[k] != burstEach {
			t.Fatalf("from sender %d: %d messages, want %d", k, next[k], burstEach)
		}
	}
	if got := len(slow.received()); got != total {
		t.Fatalf("slow received %d messages, want %d", got, total)
	}
}

// startBurstTarget starts a node whose processes have a mailbox of
// burstMailbox, with slow (an ergo gen.Server, or a genserver.Server with
// inline) and fast registered.
func startBurstTarget(t *testing.T, cookie node.Cookie, inline ...bool) (*node.Node, *gate, *recorder) {
	t.Helper()
	name := uniq("go") + "@127.0.0.1"
	gn, _ := startGo(t, name, cookie, func(c *node.Config) { c.MailboxSize = burstMailbox })
	g := newGate(t)
	var slow gen.ProcessBehavior = &gatedRecorder{gate: g}
	if len(inline) > 0 && inline[0] {
		slow = &gatedInline{gate: g}
	}
	fast := &recorder{got: make(chan etf.Term, 16)}
	if _, err := gn.RegisterServer("slow", slow); err != nil {
		t.Fatal(err)
	}
	if _, err := gn.RegisterServer("fast", fast); err != nil {
		t.Fatal(err)
	}
	return gn, g, fast
}

// A BEAM's burst to a Go process, 75 times its mailbox, loses nothing and
// keeps each sender's order, while the process is blocked; another process
// on the same connection receives meanwhile.
// The receiver is an ergo gen.Server (messages through ergo's mailbox), and
// a genserver.Server (the reader queues them in its own inbox, of the
// mailbox's size, and runs its callbacks: inline delivery).
func TestPeerBurstOverSmallMailboxBEAM(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		for _, inline := range []bool{false, true} {
			t.Run(map[bool]string{false: "gen.Server", true: "genserver.Server"}[inline], func(t *testing.T) {
				cookie := beamtest.RandomCookie()
				gn, slow, fast := startBurstTarget(t, node.Cookie(cookie), inline)
				erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
				checkBurst(t, slow, fast, func() {
					erl.Eval(t, fmt.Sprintf(`G = '%s', Self = self(),
						[spawn(fun() -> [{slow, G} ! {seq, K, I} || I <- lists:seq(1, %d)], Self ! {sent, K} end) || K <- lists:seq(1, %d)],
						[receive {sent, K} -> ok end || K <- lists:seq(1, %d)],
						{fast, G} ! ping, ok.`, gn.Name(), burstEach, burstSenders, burstSenders))
				})
			})
		}
	})
}

// The same from Go processes on another gonode node.
func TestPeerBurstOverSmallMailboxGo(t *testing.T) {
	cookie := node.Cookie(beamtest.RandomCookie())
	gn, slow, fast := startBurstTarget(t, cookie)
	sender := connectedSender(t, gn, cookie)
	checkBurst(t, slow, fast, func() { goBurst(t, sender, gn) })
}

// The drainer that moves a process's queue into its mailbox watches how
// full the mailbox is while other processes monitor and demonitor the
// process by name. It used ergo's Process.Info for that, which reads the
// monitor tables without their lock: the node died with "concurrent map
// iteration and map write" (seen in make bench).
func TestOverflowDrainerWhileMonitored(t *testing.T) {
	cookie := node.Cookie(beamtest.RandomCookie())
	gn, slow, fast := startBurstTarget(t, cookie)
	sender := connectedSender(t, gn, cookie)
	stop := make(chan struct{})
	var churn sync.WaitGroup
	for range 4 {
		w, err := gn.RegisterServer("", &recorder{got: make(chan etf.Term, 1)})
		if err != nil {
			t.Fatal(err)
		}
		churn.Add(1)
		go func() {
			defer churn.Done()
			to := gen.ProcessID{Name: "slow", Node: gn.Name()}
			for {
				select {
				case <-stop:
					return
				default:
				}
				w.DemonitorProcess(w.MonitorProcess(to))
			}
		}()
	}
	defer func() {
		close(stop)
		churn.Wait()
	}()
	checkBurst(t, slow, fast, func() { goBurst(t, sender, gn) })
}

// connectedSender starts a gonode node connected to gn.
func connectedSender(t *testing.T, gn *node.Node, cookie node.Cookie) *node.Node {
	t.Helper()
	sender, _ := startGo(t, uniq("gosend")+"@127.0.0.1", cookie)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sender.Connect(ctx, gn.Name()); err != nil {
		t.Fatal(err)
	}
	return sender
}

// goBurst has burstSenders processes of sender send {seq, K, I} for I in
// 1..burstEach to slow on gn, concurrently, then ping to fast.
func goBurst(t *testing.T, sender, gn *node.Node) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, burstSenders+1)
	var ps []gen.Process
	for range burstSenders + 1 {
		p, err := sender.RegisterServer("", &recorder{got: make(chan etf.Term, 1)})
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	to := gen.ProcessID{Name: "slow", Node: gn.Name()}
	for k := 1; k <= burstSenders; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= burstEach; i++ {
				if err := ps[k].Send(to, etf.Tuple{etf.Atom("seq"), int64(k), int64(i)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := ps[0].Send(gen.ProcessID{Name: "fast", Node: gn.Name()}, etf.Atom("ping")); err != nil {
		errs <- err
	}
	close(errs)
	for err := range errs {
		t.Fatalf("send: %v", err)
	}
}

func TestRegisterServerWithMailbox(t *testing.T) {
	gn, _ := startGo(t, uniq("go")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie()), func(c *node.Config) { c.MailboxSize = 2 })
	big := newGatedRecorder(t)
	p, err := gn.RegisterServerWith("big", node.ServerOptions{MailboxSize: 64}, big)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := gn.RegisterServer("", &recorder{got: make(chan etf.Term, 1)})
	if err != nil {
		t.Fatal(err)
	}
	// 40 local sends to a blocked process: a mailbox of 2 (the node's) would
	// refuse most of them.
	for i := range 40 {
		if err := sender.Send(p.Self(), int64(i)); err != nil {
			t.Fatalf("send %d to a mailbox of 64: %v", i, err)
		}
	}
	if _, err := gn.RegisterServerWith("bad", node.ServerOptions{MailboxSize: 70000}, &recorder{}); !errors.Is(err, node.ErrInvalidServerOptions) {
		t.Fatalf("RegisterServerWith with a mailbox of 70000: err = %v, want ErrInvalidServerOptions", err)
	}
}
