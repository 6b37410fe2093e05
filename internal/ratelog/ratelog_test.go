package ratelog

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// line is one written record.
type line struct {
	level      slog.Level
	msg        string
	attrs      map[string]string
	suppressed int
	pc         uintptr
}

// recorder is a slog.Handler that keeps every record at or above its level.
type recorder struct {
	mu    sync.Mutex
	min   slog.Level
	lines []line
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.min }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	ln := line{level: rec.Level, msg: rec.Message, attrs: map[string]string{}, pc: rec.PC}
	rec.Attrs(func(a slog.Attr) bool {
		ln.attrs[a.Key] = a.Value.String()
		if a.Key == "suppressed" {
			ln.suppressed = int(a.Value.Int64())
		}
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, ln)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) all() []line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]line(nil), r.lines...)
}

// count returns how many lines have message msg.
func (r *recorder) count(msg string) int {
	n := 0
	for _, l := range r.all() {
		if l.msg == msg {
			n++
		}
	}
	return n
}

// reported returns the suppressed counts the lines carried: on key lines
// and on summary lines.
func (r *recorder) reported() (onKeys, inSummaries int) {
	for _, l := range r.all() {
		if l.msg == SummaryMessage {
			inSummaries += l.suppressed
		} else {
			onKeys += l.suppressed
		}
	}
	return onKeys, inSummaries
}

func newTest(cfg Config) (*Limiter, *recorder, *fakeClock) {
	rec := &recorder{min: slog.LevelDebug}
	clk := newFakeClock()
	return New(slog.New(rec), cfg, WithClock(clk)), rec, clk
}

// pending returns the counts the Limiter holds and has not written yet.
func (l *Limiter) pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.dropped
	for _, el := range l.keys {
		n += el.Value.(*entry).suppressed
	}
	return n
}

func (l *Limiter) keyCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

func TestBurstPerKeyThenSuppressedCount(t *testing.T) {
	l, rec, clk := newTest(Config{Burst: 3, Every: time.Minute})
	for i := range 10 {
		l.Warn("10.0.0.1", "refused", "i", i)
	}
	if got := rec.count("refused"); got != 3 {
		t.Fatalf("%d lines for one key in one interval, want the burst of 3", got)
	}
	clk.Advance(time.Minute - time.Nanosecond)
	l.Warn("10.0.0.1", "refused", "i", 10)
	if got := rec.count("refused"); got != 3 {
		t.Fatalf("%d lines before the interval ended, want 3", got)
	}
	clk.Advance(time.Nanosecond)
	l.Warn("10.0.0.1", "refused", "i", 11)
	lines := rec.all()
	if len(lines) != 4 {
		t.Fatalf("%d lines after the interval, want 4: %+v", len(lines), lines)
	}
	last := lines[3]
	if last.suppressed != 8 || last.attrs["i"] != "11" || last.level != slog.LevelWarn {
		t.Fatalf("first line of the next interval %+v, want i=11 suppressed=8", last)
	}
	for _, ln := range lines[:3] {
		if _, ok := ln.attrs["suppressed"]; ok {
			t.Fatalf("a line with nothing suppressed before it carries suppressed: %+v", ln)
		}
	}
	// The count was reported: the next line carries none.
	l.Warn("10.0.0.1", "refused", "i", 12)
	if ln := rec.all()[4]; ln.suppressed != 0 {
		t.Fatalf("suppressed reported twice: %+v", ln)
	}
}

func TestKeysAreIndependent(t *testing.T) {
	l, rec, _ := newTest(Config{Burst: 2, Total: 100})
	for range 5 {
		l.Warn("a", "x")
		l.Warn("b", "x")
	}
	if got := rec.count("x"); got != 4 {
		t.Fatalf("%d lines, want 2 per key", got)
	}
}

func TestOverallLimitAndSummary(t *testing.T) {
	l, rec, clk := newTest(Config{Burst: 3, Every: time.Minute, Total: 5})
	for i := range 100 {
		l.Warn(fmt.Sprintf("10.0.%d.%d", i/250, i%250), "connect failed")
	}
	if got := len(rec.all()); got != 5 {
		t.Fatalf("%d lines from 100 keys, want the overall limit of 5", got)
	}
	clk.Advance(time.Minute)
	l.Info("other", "next")
	lines := rec.all()
	if len(lines) != 7 {
		t.Fatalf("%d lines, want 5, a summary and the next line: %+v", len(lines), lines)
	}
	if s := lines[5]; s.msg != SummaryMessage || s.suppressed != 95 || s.level != slog.LevelWarn {
		t.Fatalf("summary %+v, want suppressed=95 at the level of the lines held back", s)
	}
	if n := lines[6]; n.msg != "next" || n.suppressed != 0 {
		t.Fatalf("line after the summary %+v", n)
	}
}

func TestFlush(t *testing.T) {
	l, rec, _ := newTest(Config{Burst: 1, Total: 1})
	l.Flush()
	if n := len(rec.all()); n != 0 {
		t.Fatalf("Flush with nothing pending wrote %d lines", n)
	}
	l.Error("a", "x")
	l.Error("b", "x")
	l.Error("c", "x")
	l.Flush()
	lines := rec.all()
	if len(lines) != 2 || lines[1].msg != SummaryMessage || lines[1].suppressed != 2 || lines[1].level != slog.LevelError {
		t.Fatalf("lines %+v, want one line and a summary of 2 at error level", lines)
	}
	l.Flush()
	if n := len(rec.all()); n != 2 {
		t.Fatalf("a second Flush wrote the summary again")
	}
	// Counts pending on keys are flushed too, and only once.
	l, rec, clk := newTest(Config{Burst: 1, Total: 100})
	l.Warn("a", "x")
	l.Info("a", "x")
	l.Info("a", "x")
	l.Flush()
	clk.Advance(DefaultEvery)
	l.Warn("a", "x")
	lines = rec.all()
	if len(lines) != 3 || lines[1].msg != SummaryMessage || lines[1].suppressed != 2 || lines[1].level != slog.LevelInfo || lines[2].suppressed != 0 {
		t.Fatalf("lines %+v, want a line, a summary of the key's 2 at info level, and a line with nothing suppressed", lines)
	}
}

func TestKeyTableIsBounded(t *testing.T) {
	l, rec, _ := newTest(Config{Burst: 1, MaxKeys: 4, Total: 1000})
	l.Warn("first", "x")
	l.Warn("first", "x") // held back: first has 1 pending
	for i := range 10_000 {
		l.Warn(fmt.Sprint(i), "x")
		if n := l.keyCount(); n > 4 {
			t.Fatalf("%d keys remembered, want at most 4", n)
		}
	}
	// "first" was forgotten with its pending count, which goes to the
	// summary; the flood was cut by the overall limit of 1000.
	l.Flush()
	onKeys, inSummaries := rec.reported()
	written := rec.count("x")
	if written != 1000 || onKeys != 0 || inSummaries != 1+9_001 {
		t.Fatalf("written %d, on keys %d, in summaries %d; want 1000, 0, 9002", written, onKeys, inSummaries)
	}
}

func TestLongKeysAreCut(t *testing.T) {
	l, rec, _ := newTest(Config{Burst: 1})
	base := strings.Repeat("n", MaxString)
	l.Warn(base+"1", "x")
	l.Warn(base+"2", "x")
	if got := rec.count("x"); got != 1 {
		t.Fatalf("%d lines: keys are remembered by their first %d bytes, want 1", got, MaxString)
	}
}

// TestEveryLineAccountedFor: whatever the mix of keys, levels and time,
// every call is written, reported in a later line's suppressed count, or
// still pending.
func TestEveryLineAccountedFor(t *testing.T) {
	l, rec, clk := newTest(Config{Burst: 2, Every: 10 * time.Second, MaxKeys: 8, Total: 12})
	const calls = 5000
	seed := uint32(1)
	for i := range calls {
		seed = seed*1664525 + 1013904223
		// Ten keys over a table of eight: four hot ones take 7/8 of the
		// calls, six cold ones are pushed out of the table now and then.
		k := seed >> 24
		key := fmt.Sprint(k % 4)
		if k%8 == 0 {
			key = fmt.Sprint(4 + k%6)
		}
		lvl := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn}[seed>>8%3]
		l.Log(context.Background(), lvl, key, "x", "i", i)
		clk.Advance(time.Duration(seed>>20%100) * time.Millisecond)
	}
	onKeys, inSummaries := rec.reported()
	written := rec.count("x")
	if got := written + onKeys + inSummaries + l.pending(); got != calls {
		t.Fatalf("written %d + reported %d + %d + pending %d = %d, want %d",
			written, onKeys, inSummaries, l.pending(), got, calls)
	}
	if written == calls || inSummaries == 0 || onKeys == 0 {
		t.Fatalf("written %d, on keys %d, in summaries %d: the mix did not exercise every limit", written, onKeys, inSummaries)
	}
}

func TestConcurrentUse(t *testing.T) {
	l, rec, _ := newTest(Config{Burst: 5, Total: 50, MaxKeys: 16})
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				l.Warn(fmt.Sprint(w*each+i%32), "x")
			}
		}()
	}
	wg.Wait()
	l.Flush()
	onKeys, inSummaries := rec.reported()
	written := rec.count("x")
	if written != 50 || written+onKeys+inSummaries+l.pending() != workers*each {
		t.Fatalf("written %d, reported %d+%d, pending %d; want 50 written and %d in all",
			written, onKeys, inSummaries, l.pending(), workers*each)
	}
}

func TestDisabledLevelsAreNotCounted(t *testing.T) {
	rec := &recorder{min: slog.LevelInfo}
	l := New(slog.New(rec), Config{Burst: 1}, WithClock(newFakeClock()))
	for range 10 {
		l.Debug("a", "hidden")
	}
	l.Warn("a", "shown")
	lines := rec.all()
	if len(lines) != 1 || lines[0].msg != "shown" || lines[0].suppressed != 0 {
		t.Fatalf("lines %+v: debug lines the logger drops must not use the burst", lines)
	}
}

func TestSourceIsTheCaller(t *testing.T) {
	l, rec, _ := newTest(Config{})
	l.Warn("k", "x")
	l.Log(context.Background(), slog.LevelInfo, "k", "y")
	for _, ln := range rec.all() {
		f, _ := runtime.CallersFrames([]uintptr{ln.pc}).Next()
		if !strings.HasSuffix(f.File, "ratelog_test.go") || f.Function != "github.com/gonode/gonode/internal/ratelog.TestSourceIsTheCaller" {
			t.Errorf("line %q has source %s (%s:%d), want this test", ln.msg, f.Function, f.File, f.Line)
		}
	}
}

func TestNilAndZeroLimiter(t *testing.T) {
	var nl *Limiter
	nl.Warn("k", "x") // discards, no panic
	nl.Flush()

	rec := &recorder{min: slog.LevelDebug}
	prev := slog.Default()
	slog.SetDefault(slog.New(rec))
	t.Cleanup(func() { slog.SetDefault(prev) })
	var z Limiter // the default logger, Config and clock
	for range DefaultBurst + 5 {
		z.Warn("k", "x")
	}
	if got := rec.count("x"); got != DefaultBurst {
		t.Fatalf("the zero Limiter wrote %d lines of one key, want DefaultBurst (%d)", got, DefaultBurst)
	}
}

func TestDefaults(t *testing.T) {
	c := Config{}
	if c.burst() != DefaultBurst || c.every() != DefaultEvery || c.maxKeys() != DefaultMaxKeys || c.total() != DefaultTotalPerBurst*DefaultBurst {
		t.Fatalf("zero Config: %d %v %d %d", c.burst(), c.every(), c.maxKeys(), c.total())
	}
	c = Config{Burst: -1, Every: -1, MaxKeys: -1, Total: -1}
	if c.burst() != DefaultBurst || c.every() != DefaultEvery || c.maxKeys() != DefaultMaxKeys || c.total() != DefaultTotalPerBurst*DefaultBurst {
		t.Fatalf("negative Config: %d %v %d %d", c.burst(), c.every(), c.maxKeys(), c.total())
	}
	if (Config{Burst: 4}).total() != 4*DefaultTotalPerBurst {
		t.Fatal("Total does not follow Burst")
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		s    string
		n    int
		want string
	}{
		{"fits", "node@host", 9, "node@host"},
		{"empty", "", 4, ""},
		{"cut", "abcdefgh", 3, "abc...(8 bytes)"},
		{"cut at a rune start", "ab\u00e9\u00e9", 3, "ab...(6 bytes)"},
		{"four-byte rune", "\U0001F600\U0001F600", 6, "\U0001F600...(8 bytes)"},
		{"zero", "abc", 0, "...(3 bytes)"},
		{"negative", "abc", -5, "...(3 bytes)"},
		{"invalid UTF-8 is cut where it is", "a\x80\x80\x80\x80\x80", 5, "a\x80...(6 bytes)"},
		{"1,020-byte name", strings.Repeat("\u00e9", 510), MaxString, strings.Repeat("\u00e9", 128) + "...(1020 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Truncate(tt.s, tt.n); got != tt.want {
				t.Fatalf("Truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
			}
		})
	}
}

func FuzzTruncate(f *testing.F) {
	f.Add("abc\u00e9", 3)
	f.Add("\x80\x80\x80\x80", 2)
	f.Fuzz(func(t *testing.T, s string, n int) {
		n %= 64
		got := Truncate(s, n)
		if len(s) <= n {
			if got != s {
				t.Fatalf("a string that fits changed: %q", got)
			}
			return
		}
		i := strings.LastIndex(got, "...(")
		if i < 0 {
			t.Fatalf("Truncate(%q, %d) = %q: no marker", s, n, got)
		}
		prefix := got[:i]
		if len(prefix) > max(n, 0) || !strings.HasPrefix(s, prefix) || len(prefix) < max(n, 0)-3 {
			t.Fatalf("Truncate(%q, %d) = %q", s, n, got)
		}
	})
}
