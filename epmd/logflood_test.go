package epmd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gonode/gonode/epmd"
	"github.com/gonode/gonode/epmd/epmdtest"
	"github.com/gonode/gonode/internal/testutil"
)

// stepClock is a clock that moves only when told.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logLines parses a JSON log.
func logLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// logCount returns how many lines have message msg and the suppressed counts
// they and the summary lines carry.
func logCount(t *testing.T, log, msg string) (lines, suppressed, summarized int) {
	t.Helper()
	for _, m := range logLines(t, log) {
		n, _ := m["suppressed"].(float64)
		switch m["msg"] {
		case msg:
			lines++
			suppressed += int(n)
		case "log lines suppressed by the rate limit":
			summarized += int(n)
		}
	}
	return lines, suppressed, summarized
}

// from dials addr from the loopback address 127.0.0.<host>, sends b and
// reads until the server closes the connection.
func from(t *testing.T, host int, addr string, b []byte) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(host))}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if len(b) > 0 {
		if _, err := conn.Write(b); err != nil && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Fatal(err)
		}
	}
	if _, err := io.Copy(io.Discard, conn); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("waiting for the server to close: %v", err)
	}
}

// TestServerLogFloodIsRateLimited: a flood of connections that a stranger
// can open (over MaxConns, garbage, registrations of a taken name), from one
// address and from many, writes at most 3 lines a minute per source address
// and 30 in all, while the Observer counts every request, and the lines plus
// their suppressed counts add up to every request.
func TestServerLogFloodIsRateLimited(t *testing.T) {
	alive2Taken := frame(alive2Body("taken", nil)...)
	tests := []struct {
		name   string
		cfg    func(*epmd.Config)
		setup  func(t *testing.T, addr string)
		send   []byte
		msg    string
		level  slog.Level // the logger's
		kind   epmd.RequestKind
		result epmd.Result
	}{
		{
			name: "silent connections over MaxConns",
			// No read deadline fires during the test: the four stay.
			cfg: func(c *epmd.Config) { c.MaxConns, c.ReadTimeout = 4, time.Hour },
			setup: func(t *testing.T, addr string) {
				// Four silent connections take every slot (the server accepts
				// in order, so they are served before any later one).
				for range 4 {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { c.Close() })
				}
			},
			// At info level: the four silent connections' own lines at Close
			// (debug) are not part of the count.
			msg: "EPMD connection refused: too many connections", level: slog.LevelInfo,
			kind: epmd.RequestUnknown, result: epmd.ResultRefused,
		},
		{
			name: "garbage", send: []byte{0, 1, 200},
			msg: "EPMD bad request", level: slog.LevelDebug, kind: epmd.RequestUnknown, result: epmd.ResultError,
		},
		{
			name: "registrations of a taken name",
			setup: func(t *testing.T, addr string) {
				register(t, &epmd.Client{Addr: addr}, node("taken", 1))
			},
			send: alive2Taken,
			msg:  "EPMD registration refused", level: slog.LevelDebug, kind: epmd.RequestAlive2, result: epmd.ResultRefused,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := epmd.DefaultConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			var buf testutil.SyncBuffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tt.level}))
			clk := &stepClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			rec := &epmdtest.Recorder{}
			srv, addr := epmdtest.StartServer(t, cfg, epmd.WithObserver(rec), epmd.WithLogger(log), epmd.WithLogClock(clk))
			if tt.setup != nil {
				tt.setup(t, addr)
			}

			// 100 connections from 127.0.0.2, then 2 from each of 50 other
			// addresses, all within one minute of the limiter's clock.
			const first, others, each = 100, 50, 2
			for range first {
				from(t, 2, addr, tt.send)
			}
			for h := range others {
				for range each {
					from(t, 3+h, addr, tt.send)
				}
			}
			want := first + others*each
			if n := rec.WaitFor(tt.kind, tt.result, want); n != want {
				t.Fatalf("%s/%s = %d after %d connections, want every one counted (%s)", tt.kind, tt.result, n, want, rec)
			}
			// The server counts a request before it logs it: wait for the
			// first lines, then check that no more than the limit came.
			testutil.Eventually(t, 10*time.Second, func() (bool, string) {
				lines, _, _ := logCount(t, buf.String(), tt.msg)
				return lines >= 30, fmt.Sprintf("%d %q lines", lines, tt.msg)
			})
			if lines, _, _ := logCount(t, buf.String(), tt.msg); lines > 30 {
				t.Fatalf("%d %q lines for %d connections in one minute, want at most 30", lines, tt.msg, want)
			}

			// A minute on, 127.0.0.2's next line says how many of its lines
			// were held back: all but its first 3.
			clk.Advance(time.Minute)
			from(t, 2, addr, tt.send)
			want++
			if n := rec.WaitFor(tt.kind, tt.result, want); n != want {
				t.Fatalf("%s/%s = %d, want %d (%s)", tt.kind, tt.result, n, want, rec)
			}
			testutil.Eventually(t, 10*time.Second, func() (bool, string) {
				var last map[string]any
				for _, m := range logLines(t, buf.String()) {
					if m["msg"] == tt.msg && strings.HasPrefix(fmt.Sprint(m["peer"]), "127.0.0.2:") {
						last = m
					}
				}
				return last != nil && last["suppressed"] == float64(first-3),
					fmt.Sprintf("127.0.0.2's last line %v, want one with suppressed=%d", last, first-3)
			})

			// At Close, the rest is summarized: every request is a line or
			// counted in one.
			srv.Close()
			lines, suppressed, summarized := logCount(t, buf.String(), tt.msg)
			if got := lines + suppressed + summarized; got != want {
				t.Fatalf("%d lines + %d suppressed + %d summarized = %d, want %d", lines, suppressed, summarized, got, want)
			}
		})
	}
}

// TestServerLogsTruncatedNames: a name of 255 characters (1,020 bytes, the
// longest EPMD takes) is cut in the log lines of its registration and of a
// refused one.
func TestServerLogsTruncatedNames(t *testing.T) {
	var buf testutil.SyncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	rec := &epmdtest.Recorder{}
	_, addr := epmdtest.StartServer(t, epmd.DefaultConfig(), epmd.WithObserver(rec), epmd.WithLogger(log))
	long := strings.Repeat("\U0001F600", 255)
	c := &epmd.Client{Addr: addr}
	register(t, c, node(long, 1))
	if _, err := c.Register(context.Background(), node(long, 2)); !errors.Is(err, epmd.ErrRegistrationRefused) {
		t.Fatalf("second registration: %v", err)
	}
	if n := rec.WaitFor(epmd.RequestAlive2, epmd.ResultRefused, 1); n != 1 {
		t.Fatalf("alive2/refused = %d", n)
	}
	var seen int
	for _, m := range logLines(t, buf.String()) {
		name, ok := m["name"].(string)
		if !ok {
			continue
		}
		seen++
		if len(name) > 300 || !strings.HasSuffix(name, "...(1020 bytes)") {
			t.Errorf("%q logs a name of %d bytes: %q", m["msg"], len(name), name)
		}
	}
	if seen < 2 {
		t.Fatalf("%d lines with a name, want the registration and the refusal:\n%s", seen, buf.String())
	}
}
