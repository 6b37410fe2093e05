package discoverytest

import (
	"sort"
	"sync"
	"time"

	"github.com/gonode/gonode/discovery"
)

// Clock is a discovery.Clock that moves only when Advance is called.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*timer
}

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

type timer struct {
	c    *Clock
	id   int
	when time.Time
	ch   chan time.Time
	f    func()
}

// Now implements discovery.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer implements discovery.Clock. A timer of d <= 0 fires at once.
func (c *Clock) NewTimer(d time.Duration) discovery.Timer {
	return c.add(d, make(chan time.Time, 1), nil)
}

// AfterFunc implements discovery.Clock.
func (c *Clock) AfterFunc(d time.Duration, f func()) discovery.Timer {
	return c.add(d, nil, f)
}

func (c *Clock) add(d time.Duration, ch chan time.Time, f func()) *timer {
	c.mu.Lock()
	c.seq++
	t := &timer{c: c, id: c.seq, when: c.now.Add(d), ch: ch, f: f}
	if d <= 0 {
		c.mu.Unlock()
		t.fire(t.when)
		return t
	}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	return t
}

func (t *timer) fire(now time.Time) {
	if t.ch != nil {
		t.ch <- now
		return
	}
	go t.f()
}

// C implements discovery.Timer.
func (t *timer) C() <-chan time.Time { return t.ch }

// Stop implements discovery.Timer.
func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, o := range t.c.timers {
		if o == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			return true
		}
	}
	return false
}

// Advance moves the clock by d and fires, in time order, every timer due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	var due, keep []*timer
	for _, t := range c.timers {
		if !t.when.After(now) {
			due = append(due, t)
		} else {
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool {
		if due[i].when.Equal(due[j].when) {
			return due[i].id < due[j].id
		}
		return due[i].when.Before(due[j].when)
	})
	for _, t := range due {
		t.fire(now)
	}
}

// Pending returns how many timers are waiting to fire.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Next returns the time until the earliest pending timer fires, and false
// when none is pending.
func (c *Clock) Next() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return 0, false
	}
	first := c.timers[0].when
	for _, t := range c.timers[1:] {
		if t.when.Before(first) {
			first = t.when
		}
	}
	return first.Sub(c.now), true
}
