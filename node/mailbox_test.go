package node_test

import (
	"errors"
	"log"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/nodetest"
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

// startSmallMailboxes starts a node whose processes have a mailbox of 2.
func startSmallMailboxes(t *testing.T, obs node.Observer, opts ...node.Option) (*node.Node, *testutil.SyncBuffer) {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = uniq("go")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie())
	cfg.MailboxSize = 2
	logs := &testutil.SyncBuffer{}
	return nodetest.Start(t, cfg, logs, append(opts, node.WithObserver(obs))...), logs
}

// sendUntilFull sends 10 messages from one local process to a blocked one
// and returns how many of them ergo's send refused as the mailbox being full
// (ergo writes its warning before its send returns).
func sendUntilFull(t *testing.T, n *node.Node) int {
	t.Helper()
	b := &blocker{release: make(chan struct{})}
	t.Cleanup(func() { close(b.release) })
	target, err := n.RegisterServer("slow", b)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := n.RegisterServer("", &blocker{release: make(chan struct{})})
	if err != nil {
		t.Fatal(err)
	}
	full := 0
	for i := 0; i < 10; i++ {
		if err := sender.Send(target.Self(), etf.Atom("m")); errors.Is(err, lib.ErrProcessMailboxFull) {
			full++
		}
	}
	if full == 0 {
		t.Fatal("no send met a full mailbox of 2 in 10 sends to a blocked process")
	}
	return full
}

// A message dropped at a full mailbox is counted and logged, never silent,
// when the program routes ergo's logs (WithErgoLogs).
func TestMailboxOverflowIsVisible(t *testing.T) {
	obs := &overflowCounter{}
	n, logs := startSmallMailboxes(t, obs, node.WithErgoLogs())
	sendUntilFull(t, n)
	testutil.Eventually(t, 10*time.Second, func() (bool, string) {
		return obs.n.Load() > 0 && strings.Contains(logs.String(), "mailbox full"), logs.String()
	})
	// 10 sent, the process holds one in hand and two in its mailbox.
	if got := obs.n.Load(); got < 5 || got > 10 {
		t.Fatalf("overflows counted = %d, want 5 to 10 of the 10 messages (each dropped message once)", got)
	}
}

// Without WithErgoLogs, Start leaves the log package's output alone and
// ergo's warnings are not read: a drop between two local processes reaches
// neither the node's log nor its Observer.
func TestErgoLogsAreOptIn(t *testing.T) {
	before := log.Writer()
	obs := &overflowCounter{}
	n, logs := startSmallMailboxes(t, obs)
	if log.Writer() != before {
		t.Error("Start without WithErgoLogs replaced the log package's output")
	}
	sendUntilFull(t, n)
	if got := obs.n.Load(); got != 0 {
		t.Errorf("%d overflows reported without WithErgoLogs, want 0 (ergo's text is read only when asked)", got)
	}
	if strings.Contains(logs.String(), "component=ergo") {
		t.Errorf("ergo's warnings reached the node's log without WithErgoLogs:\n%s", logs.String())
	}
}
