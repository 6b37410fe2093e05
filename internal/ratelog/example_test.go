package ratelog_test

import (
	"log/slog"
	"os"
	"time"

	"github.com/gonode/gonode/internal/ratelog"
)

// clock is a fixed time, so the example's output is stable.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func ExampleLimiter() {
	// A text logger without the time, for a stable output.
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	lim := ratelog.New(log, ratelog.Config{Burst: 2, Every: time.Minute}, ratelog.WithClock(clk))
	for range 5 {
		lim.Warn("10.0.0.9", "connection refused", "peer", "10.0.0.9")
	}
	clk.t = clk.t.Add(time.Minute)
	lim.Warn("10.0.0.9", "connection refused", "peer", "10.0.0.9")
	lim.Warn("x", "bad name", "name", ratelog.Truncate("a-very-long-name@host", 8))
	// Output:
	// level=WARN msg="connection refused" peer=10.0.0.9
	// level=WARN msg="connection refused" peer=10.0.0.9
	// level=WARN msg="connection refused" peer=10.0.0.9 suppressed=3
	// level=WARN msg="bad name" name="a-very-l...(21 bytes)"
}
