package node

import (
	"testing"
	"time"
)

func TestRestartWanted(t *testing.T) {
	cases := []struct {
		policy Restart
		reason string
		want   bool
	}{
		{Permanent, "normal", true},
		{Permanent, "shutdown", true},
		{Permanent, "boom", true},
		{Transient, "normal", false},
		{Transient, "shutdown", false},
		{Transient, "{shutdown,#{at => 1}}", false},
		{Transient, "{shutdown,restart}", false},
		{Transient, "{panic,<<\"x\">>}", true},
		{Transient, "kill", true},
		{Transient, "genserver: some Go error text", true},
		{Temporary, "boom", false},
		{Temporary, "normal", false},
	}
	for _, c := range cases {
		t.Run(c.policy.String()+" "+c.reason, func(t *testing.T) {
			if got := restartWanted(c.policy, c.reason); got != c.want {
				t.Fatalf("restartWanted(%v, %q) = %v, want %v", c.policy, c.reason, got, c.want)
			}
		})
	}
}

// The window slides: restarts older than Within no longer count.
func TestIntensity(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := intensity{max: 3, within: 5 * time.Second}
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, true}, {time.Second, true}, {2 * time.Second, true},
		{3 * time.Second, false}, // a fourth within 5 s
		{5 * time.Second, true},  // the first has left the window
		{5500 * time.Millisecond, false},
		{12 * time.Second, true}, // all have left
	}
	for i, s := range steps {
		if got := in.allow(t0.Add(s.at)); got != s.want {
			t.Fatalf("step %d at %v: allow = %v, want %v", i, s.at, got, s.want)
		}
	}
}
