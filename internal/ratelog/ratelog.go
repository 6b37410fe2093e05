package ratelog

import (
	"container/list"
	"context"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Defaults of Config's zero fields.
const (
	// DefaultBurst lets a few lines of one key through per interval: enough
	// to see a problem and its variants, few enough that one noisy source
	// writes a handful of lines a minute.
	DefaultBurst = 3
	// DefaultEvery is a minute: a summary at most once a minute is readable,
	// and a problem that lasts shows up again within a minute.
	DefaultEvery = time.Minute
	// DefaultMaxKeys bounds the key table: about 1,024 small entries, a few
	// hundred KiB at most, while keeping the keys of a busy cluster.
	DefaultMaxKeys = 1024
	// DefaultTotalPerBurst is the overall limit in bursts: with the defaults,
	// 30 lines a minute of all keys together.
	DefaultTotalPerBurst = 10
)

// MaxString is how many bytes of an untrusted string Truncate keeps by
// default, and the longest key a Limiter remembers: a node name is at most
// 255 characters (up to 1,020 bytes of UTF-8); the first 256 bytes identify
// it in a log line.
const MaxString = 256

// SummaryMessage is the message of the summary line.
const SummaryMessage = "log lines suppressed by the rate limit"

// Config is a Limiter's plain-data configuration. Zero (or negative) fields
// take the defaults.
type Config struct {
	// Burst is how many lines one key may write per Every. Default
	// DefaultBurst.
	Burst int
	// Every is the length of one interval. Default DefaultEvery.
	Every time.Duration
	// MaxKeys bounds the keys remembered; beyond it the least recently used
	// key is forgotten (its pending count goes to the summary). Default
	// DefaultMaxKeys.
	MaxKeys int
	// Total is how many lines all keys together may write per Every; the
	// lines over it are counted in the summary. Default DefaultTotalPerBurst
	// times Burst.
	Total int
}

func (c Config) burst() int {
	if c.Burst <= 0 {
		return DefaultBurst
	}
	return c.Burst
}

func (c Config) every() time.Duration {
	if c.Every <= 0 {
		return DefaultEvery
	}
	return c.Every
}

func (c Config) maxKeys() int {
	if c.MaxKeys <= 0 {
		return DefaultMaxKeys
	}
	return c.MaxKeys
}

func (c Config) total() int {
	if c.Total <= 0 {
		return DefaultTotalPerBurst * c.burst()
	}
	return c.Total
}

// Clock is the Limiter's time source. discovery.Clock satisfies it.
type Clock interface {
	Now() time.Time
}

// Option sets an optional dependency of New.
type Option func(*Limiter)

// WithClock sets the clock (default: the time package's).
func WithClock(c Clock) Option {
	return func(l *Limiter) {
		if c != nil {
			l.clock = c
		}
	}
}

// Limiter writes rate-limited log lines. Safe for concurrent use. The zero
// value writes to slog.Default() with the default Config; a nil *Limiter
// discards every line.
type Limiter struct {
	log   *slog.Logger
	cfg   Config
	clock Clock

	mu      sync.Mutex
	keys    map[string]*list.Element // of *entry
	lru     list.List                // front: most recently used
	started bool                     // window is set
	window  time.Time                // start of the overall interval
	written int                      // lines written in the overall interval
	dropped int                      // lines for the summary
	level   slog.Level               // highest level among the dropped lines
}

type entry struct {
	key        string
	start      time.Time  // start of the key's interval
	written    int        // lines written in it
	suppressed int        // held back since the key's last written line
	level      slog.Level // highest level among them
}

// New returns a Limiter writing to log (nil: slog.Default()).
func New(log *slog.Logger, cfg Config, opts ...Option) *Limiter {
	l := &Limiter{log: log, cfg: cfg}
	for _, o := range opts {
		o(l)
	}
	return l
}

func (l *Limiter) logger() *slog.Logger {
	if l.log == nil {
		return slog.Default()
	}
	return l.log
}

func (l *Limiter) now() time.Time {
	if l.clock == nil {
		return time.Now()
	}
	return l.clock.Now()
}

// Debug writes a debug line for key, unless rate-limited.
func (l *Limiter) Debug(key, msg string, args ...any) {
	l.emit(context.Background(), slog.LevelDebug, key, msg, args)
}

// Info writes an info line for key, unless rate-limited.
func (l *Limiter) Info(key, msg string, args ...any) {
	l.emit(context.Background(), slog.LevelInfo, key, msg, args)
}

// Warn writes a warning for key, unless rate-limited.
func (l *Limiter) Warn(key, msg string, args ...any) {
	l.emit(context.Background(), slog.LevelWarn, key, msg, args)
}

// Error writes an error line for key, unless rate-limited.
func (l *Limiter) Error(key, msg string, args ...any) {
	l.emit(context.Background(), slog.LevelError, key, msg, args)
}

// Log writes a line at level for key, unless rate-limited. args are the
// line's attributes, as for slog.Logger.Log. A line whose level the logger
// does not write is neither written nor counted.
func (l *Limiter) Log(ctx context.Context, level slog.Level, key, msg string, args ...any) {
	l.emit(ctx, level, key, msg, args)
}

// Flush writes one summary line now for every line held back and not
// reported yet, the keys' pending counts included (which it resets). Call it
// when the source of lines stops (at shutdown), so the last counts are not
// lost.
func (l *Limiter) Flush() {
	if l == nil {
		return
	}
	l.mu.Lock()
	for _, el := range l.keys {
		if e := el.Value.(*entry); e.suppressed > 0 {
			l.dropN(e.suppressed, e.level)
			e.suppressed = 0
		}
	}
	n, lvl := l.takeSummary()
	l.mu.Unlock()
	l.summary(context.Background(), n, lvl)
}

// emit is the body of every logging method; it is called directly by them,
// so the caller's frame is at a fixed depth for the record's source.
func (l *Limiter) emit(ctx context.Context, level slog.Level, key, msg string, args []any) {
	if l == nil {
		return
	}
	if ctx == nil {
		ctx = context.Background()
	}
	log := l.logger()
	if !log.Enabled(ctx, level) {
		return
	}
	if len(key) > MaxString {
		key = key[:MaxString]
	}
	now := l.now()
	every := l.cfg.every()

	l.mu.Lock()
	var sumN int
	var sumLvl slog.Level
	if !l.started || !now.Before(l.window.Add(every)) {
		sumN, sumLvl = l.takeSummary()
		l.started, l.window, l.written = true, now, 0
	}
	e := l.entry(key)
	if !now.Before(e.start.Add(every)) {
		e.start, e.written = now, 0
	}
	write, suppressed := false, 0
	switch {
	case e.written >= l.cfg.burst():
		if e.suppressed == 0 || level > e.level {
			e.level = level
		}
		e.suppressed++
	case l.written >= l.cfg.total():
		l.drop(level)
	default:
		e.written++
		l.written++
		write, suppressed = true, e.suppressed
		e.suppressed = 0
	}
	l.mu.Unlock()

	l.summary(ctx, sumN, sumLvl)
	if !write {
		return
	}
	var pcs [1]uintptr
	runtime.Callers(3, pcs[:]) // runtime.Callers, emit, the exported method
	r := slog.NewRecord(now, level, msg, pcs[0])
	r.Add(args...)
	if suppressed > 0 {
		r.AddAttrs(slog.Int("suppressed", suppressed))
	}
	_ = log.Handler().Handle(ctx, r)
}

// entry returns key's entry, most recently used, making it (and forgetting
// the least recently used key) when needed. l.mu must be held.
func (l *Limiter) entry(key string) *entry {
	if el, ok := l.keys[key]; ok {
		l.lru.MoveToFront(el)
		return el.Value.(*entry)
	}
	if l.keys == nil {
		l.keys = make(map[string]*list.Element)
	}
	for len(l.keys) >= l.cfg.maxKeys() {
		old := l.lru.Back()
		oe := old.Value.(*entry)
		if oe.suppressed > 0 {
			l.dropN(oe.suppressed, oe.level)
		}
		delete(l.keys, oe.key)
		l.lru.Remove(old)
	}
	e := &entry{key: key}
	l.keys[key] = l.lru.PushFront(e)
	return e
}

// drop counts one line for the summary. l.mu must be held.
func (l *Limiter) drop(level slog.Level) { l.dropN(1, level) }

func (l *Limiter) dropN(n int, level slog.Level) {
	if l.dropped == 0 || level > l.level {
		l.level = level
	}
	l.dropped += n
}

// takeSummary returns and resets the summary's count and level. l.mu must
// be held.
func (l *Limiter) takeSummary() (int, slog.Level) {
	n, lvl := l.dropped, l.level
	l.dropped, l.level = 0, 0
	return n, lvl
}

// summary writes the summary line for n lines (none when n is 0), at the
// highest level among them.
func (l *Limiter) summary(ctx context.Context, n int, level slog.Level) {
	if n == 0 {
		return
	}
	l.logger().Log(ctx, level, SummaryMessage, "suppressed", n)
}

// Truncate returns s cut to at most n bytes, at a UTF-8 boundary, followed by
// a marker that gives s's length, such as "abc...(1020 bytes)"; s itself when
// it fits. Use it (with MaxString) for names and other untrusted strings that
// go into log lines.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	// Back up to the start of the rune cut through (at most UTFMax-1 bytes:
	// invalid UTF-8 is cut where it is).
	for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	return s[:cut] + "...(" + strconv.Itoa(len(s)) + " bytes)"
}
