//go:build integration

package integration

import (
	"fmt"
	"time"
)

// eventuallyE polls cond every 250 ms until it reports true, or returns an
// error with the last state cond described once within has passed.
func eventuallyE(within time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		ok, state := cond()
		if ok {
			return nil
		}
		last = state
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s; last state:\n%s", within, last)
		}
		<-tick.C
	}
}
