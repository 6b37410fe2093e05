package node

import (
	"bytes"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"log"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ergo-services/ergo/lib"
)

// routeErgoLogs is WithErgoLogs' routing, which Start runs only for a node
// given that option. ergo writes its warnings through the standard library's
// log package, and prints them only when its -ergo.warning flag is set.
// routeErgoLogs turns them on and sends them to slog: a dropped message
// (ergo's "mailbox ... is full") becomes a rate-limited warning and an
// Observer.MailboxOverflow call; every other ergo warning becomes a warning
// with component=ergo. Lines that are not ergo's (anything else using the log
// package) go to the log package's previous output unchanged. The routing is
// process-wide (ergo's logging is global); the most recently started node
// with the option receives ergo's warnings.
//
// Why a drop is read from ergo's text: a message one local process sends
// another goes through ergo's own send (gen.Process.Send, called by user
// code), which returns lib.ErrProcessMailboxFull to the sender, not to
// gonode; ergo's warning is the only trace gonode sees of it. (Node.Call's
// own send returns that error to Call's caller; counting it there as well
// would count its drop twice.) A full mailbox met
// by a message from a peer is not counted here: the dist layer keeps it in
// the connection's overflow until the mailbox has room, and reports the
// message only if it finally drops it (wireStats.MessageDropped), with or
// without this routing.
func routeErgoLogs(l *slog.Logger, obs Observer, nodeName string) {
	ergoLogOnce.Do(func() {
		_ = flag.Set("ergo.warning", "true")
		ergoLog.setPrevious(log.Writer())
		log.SetOutput(ergoLog)
	})
	// slog.Default() may write through the log package (slog's built-in
	// handler does), whose output the routing replaces: logging to it from
	// inside the log package's Write would wait for the log package's own
	// lock forever. ergo's warnings then go, as text, to the log package's
	// previous output.
	if l == slog.Default() {
		l = slog.New(slog.NewTextHandler(ergoLog.passThrough(), nil))
	}
	ergoLog.set(l.With("component", "ergo"), obs, nodeName)
}

var (
	ergoLogOnce sync.Once
	ergoLog     = &ergoLogWriter{limit: newRateLimiter(time.Second)}
)

var mailboxFull = regexp.MustCompile(`mailbox of (\S+)\[("[^"]*")\] is full\. dropped message from <([0-9A-F]{8})\.`)

type ergoLogWriter struct {
	mu        sync.Mutex
	log       *slog.Logger
	obs       Observer
	limit     *rateLimiter
	localHash string    // how ergo prints the local node in a pid
	previous  io.Writer // the log package's output before the routing
}

func (w *ergoLogWriter) set(l *slog.Logger, obs Observer, nodeName string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log, w.obs = l, obs
	w.localHash = fmt.Sprintf("%08X", crc32.Checksum([]byte(nodeName), lib.CRC32Q))
}

func (w *ergoLogWriter) setPrevious(out io.Writer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.previous = out
}

// passThrough is the log package's output from before the routing.
func (w *ergoLogWriter) passThrough() io.Writer {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.previous == nil {
		return os.Stderr
	}
	return w.previous
}

// ergoMark starts every line ergo's lib.Warning prints (after log's prefix).
var ergoMark = []byte("WARNING! ")

func (w *ergoLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	l, obs, localHash, previous := w.log, w.obs, w.localHash, w.previous
	w.mu.Unlock()
	i := bytes.Index(p, ergoMark)
	if i < 0 || l == nil {
		if previous == nil {
			previous = os.Stderr
		}
		return previous.Write(p)
	}
	msg := strings.TrimSpace(string(p[i+len(ergoMark):]))
	if m := mailboxFull.FindStringSubmatch(msg); m != nil {
		process := strings.Trim(m[2], `"`)
		if process == "" {
			process = m[1]
		}
		if m[3] != localHash {
			// From a peer: the dist layer keeps it in the connection's
			// overflow and reports a message it finally drops itself
			// (wireStats.MessageDropped).
			return len(p), nil
		}
		obs.MailboxOverflow(process)
		if n, ok := w.limit.allow("mailbox:" + process); ok {
			l.Warn("mailbox full: message dropped", "process", process, "dropped_since_last_log", n)
		}
		return len(p), nil
	}
	if ergoRepeats(msg) {
		return len(p), nil
	}
	l.Warn(msg)
	return len(p), nil
}

// ergoRepeats reports whether an ergo warning repeats what gonode reports
// itself: a failed outgoing handshake (logged by dist.Handshake, with its
// cause) and a failed dial (returned by Node.Connect, which its callers log:
// discovery's connect-failure line). The node's own connections never make
// ergo print those (the registrar's Resolve dials and runs the handshake,
// outgoing.go); an ergo node of the same process might. Every incoming
// handshake is ours (dist.Handshake.Serve), so ergo has nothing to say about
// those.
func ergoRepeats(msg string) bool {
	return strings.HasPrefix(msg, "Handshake error: ") || strings.HasPrefix(msg, "Could not connect to ")
}

// rateLimiter allows one event per key per interval and counts the rest.
type rateLimiter struct {
	mu    sync.Mutex
	every time.Duration
	last  map[string]time.Time
	held  map[string]int
}

func newRateLimiter(every time.Duration) *rateLimiter {
	return &rateLimiter{every: every, last: map[string]time.Time{}, held: map[string]int{}}
}

// allow reports whether key may be logged now and how many events were held
// back since it last was (including this one).
func (r *rateLimiter) allow(key string) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held[key]++
	now := time.Now()
	if t, ok := r.last[key]; ok && now.Sub(t) < r.every {
		return 0, false
	}
	if len(r.last) > 1024 || len(r.held) > 1024 { // bound memory: forget old keys
		clear(r.last)
		clear(r.held)
		r.held[key] = 1
	}
	r.last[key] = now
	n := r.held[key]
	delete(r.held, key)
	return n, true
}
