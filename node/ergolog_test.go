package node

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

type countingObserver struct {
	NopObserver
	overflows []string
}

func (o *countingObserver) MailboxOverflow(p string) { o.overflows = append(o.overflows, p) }

// The log bridge takes ergo's warnings and leaves every other user of the log
// package alone.
func TestErgoLogBridge(t *testing.T) {
	var previous, routed bytes.Buffer
	obs := &countingObserver{}
	w := &ergoLogWriter{limit: newRateLimiter(0)}
	w.setPrevious(&previous)
	w.set(slog.New(slog.NewTextHandler(&routed, nil)), obs, "go@127.0.0.1")
	local := w.localHash

	lines := []string{
		"2026/11/24 04:00:00 some other library says hello\n",
		"2026/11/24 04:00:00 WARNING! process terminated <" + local + ".0.1011>[\"worker\"] \"boom\"\n",
		"2026/11/24 04:00:00 WARNING! mailbox of <" + local + ".0.1012>[\"slow\"] is full. dropped message from <" + local + ".0.1013>\n",
		"2026/11/24 04:00:00 WARNING! mailbox of <" + local + ".0.1012>[\"slow\"] is full. dropped message from <0A0B0C0D.0.77>\n",
	}
	for _, l := range lines {
		if n, err := w.Write([]byte(l)); err != nil || n != len(l) {
			t.Fatalf("Write(%q) = %d, %v", l, n, err)
		}
	}
	if got := previous.String(); got != lines[0] {
		t.Errorf("passed through %q, want only the other library's line %q", got, lines[0])
	}
	if !strings.Contains(routed.String(), `msg="process terminated`) || !strings.Contains(routed.String(), "level=WARN") {
		t.Errorf("ergo's warning was not routed to slog:\n%s", routed.String())
	}
	if !strings.Contains(routed.String(), "mailbox full: message dropped") || !strings.Contains(routed.String(), "process=slow") {
		t.Errorf("the local drop was not logged:\n%s", routed.String())
	}
	// The local sender's drop counts; the peer's message is retried by dist
	// and counted there, so the bridge does not count it.
	if len(obs.overflows) != 1 || obs.overflows[0] != "slow" {
		t.Errorf("overflows = %v, want [slow]", obs.overflows)
	}
}

// A failed outgoing handshake or dial is logged once, by gonode, not a
// second time in ergo's words.
func TestErgoLogBridgeDropsRepeats(t *testing.T) {
	var previous, routed bytes.Buffer
	w := &ergoLogWriter{limit: newRateLimiter(0)}
	w.setPrevious(&previous)
	w.set(slog.New(slog.NewTextHandler(&routed, nil)), &countingObserver{}, "go@127.0.0.1")
	for _, l := range []string{
		"2026/11/24 04:00:00 WARNING! Handshake error: dist: cookie mismatch with node erl@127.0.0.1: its challenge ack does not match our cookie\n",
		"2026/11/24 04:00:00 WARNING! Could not connect to \"erl@127.0.0.1\" (127.0.0.1:4370): dial tcp 127.0.0.1:4370: connect: connection refused\n",
	} {
		if _, err := w.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	if routed.Len() != 0 || previous.Len() != 0 {
		t.Errorf("ergo's repeat of a failure gonode reports was logged:\n%s%s", routed.String(), previous.String())
	}
}
