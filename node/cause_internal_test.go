package node

import (
	"errors"
	"fmt"
	"testing"
)

// peerCauses keeps the last failure of at most maxPeerCauses peers,
// forgetting the one that changed least recently, reports to since only
// what failed after its mark, and forgets a peer that connected.
func TestPeerCausesBoundedAndOrdered(t *testing.T) {
	c := newPeerCauses()
	errA := errors.New("a failed")
	c.failed("a@h", errA)
	mark := c.mark()
	if err := c.since("a@h", mark); err != nil {
		t.Errorf("since(mark after the failure) = %v, want nil", err)
	}
	c.failed("a@h", errA)
	if err := c.since("a@h", mark); err != errA {
		t.Errorf("since(mark before the failure) = %v, want %v", err, errA)
	}
	for i := range maxPeerCauses {
		c.failed(fmt.Sprintf("p%d@h", i), errA)
	}
	if n := len(c.failures()); n != maxPeerCauses {
		t.Errorf("%d failures kept, want the bound %d", n, maxPeerCauses)
	}
	if err := c.since("a@h", 0); err != nil {
		t.Errorf("the stalest peer was kept past the bound: %v", err)
	}
	c.succeeded("p0@h")
	if err := c.since("p0@h", 0); err != nil {
		t.Errorf("a connected peer keeps its failure: %v", err)
	}
}
