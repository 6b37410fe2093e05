package discoverytest_test

import (
	"testing"
	"time"

	"github.com/gonode/gonode/discovery/discoverytest"
)

func TestClockFiresInOrder(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := discoverytest.NewClock(start)
	late := c.NewTimer(2 * time.Second)
	early := c.NewTimer(time.Second)
	fn := make(chan struct{})
	c.AfterFunc(1500*time.Millisecond, func() { close(fn) })
	stopped := c.NewTimer(time.Second)
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop: want true then false")
	}
	if d, ok := c.Next(); !ok || d != time.Second || c.Pending() != 3 {
		t.Fatalf("Next %v %v, pending %d", d, ok, c.Pending())
	}
	c.Advance(time.Second)
	select {
	case got := <-early.C():
		if !got.Equal(start.Add(time.Second)) {
			t.Fatalf("fired at %v", got)
		}
	default:
		t.Fatal("1 s timer did not fire")
	}
	select {
	case <-late.C():
		t.Fatal("2 s timer fired at 1 s")
	default:
	}
	c.Advance(time.Second)
	<-fn
	<-late.C()
	if c.Pending() != 0 || !c.Now().Equal(start.Add(2*time.Second)) {
		t.Fatalf("pending %d, now %v", c.Pending(), c.Now())
	}
	if _, ok := c.Next(); ok {
		t.Fatal("Next with nothing pending")
	}
	select {
	case <-c.NewTimer(0).C():
	default:
		t.Fatal("a zero timer did not fire at once")
	}
}
