package node_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
)

// blocker handles nothing until released, so its mailbox fills.
type blocker struct {
	gen.Server
	release chan struct{}
}

func (b *blocker) HandleInfo(*gen.ServerProcess, etf.Term) gen.ServerStatus {
	<-b.release
	return gen.ServerStatusOK
}

type overflowCounter struct {
	node.NopObserver
	n atomic.Int64
}

func (o *overflowCounter) MailboxOverflow(string) { o.n.Add(1) }

// A message dropped at a full mailbox is counted and logged, never silent
// (ergo alone drops it with only a warning line).
func TestMailboxOverflowIsVisible(t *testing.T) {
	obs := &overflowCounter{}
	n, logs := startGoObserved(t, uniq("go")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie()), obs, func(c *node.Config) {
		c.MailboxSize = 2
	})
	b := &blocker{release: make(chan struct{})}
	defer close(b.release)
	target, err := n.RegisterServer("slow", b)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := n.RegisterServer("", &blocker{release: make(chan struct{})})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		_ = sender.Send(target.Self(), etf.Atom("m"))
	}
	testutil.Eventually(t, 10*time.Second, func() (bool, string) {
		return obs.n.Load() > 0 && strings.Contains(logs.String(), "mailbox full"), logs.String()
	})
	// 10 sent, the process holds one in hand and two in its mailbox.
	if got := obs.n.Load(); got < 5 || got > 10 {
		t.Fatalf("overflows counted = %d, want 5 to 10 of the 10 messages (each dropped message once)", got)
	}
}
