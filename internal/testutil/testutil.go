package testutil

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gonode/gonode/internal/beamtest"
)

// SyncBuffer is a bytes.Buffer that many goroutines may write to at once,
// such as the loggers of a node under test. The zero value is empty and ready
// to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// WriteString appends str to the buffer.
func (s *SyncBuffer) WriteString(str string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.WriteString(str)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Cond is a condition a test waits for: it reports whether the condition
// holds and describes the state it saw, for the failure message.
type Cond = func() (ok bool, state string)

// DefaultInterval is how often Eventually and EventuallyNamed check their
// condition.
const DefaultInterval = 20 * time.Millisecond

// Poll checks cond at once and then every interval until it holds, within
// has passed or ctx ends. It returns nil once cond holds; otherwise an error
// that carries the last state cond described (wrapping ctx's error if ctx
// ended). A non-positive interval means DefaultInterval.
func Poll(ctx context.Context, within, interval time.Duration, cond Cond) error {
	if interval <= 0 {
		interval = DefaultInterval
	}
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; last state:%s", ctx.Err(), lead(state))
		case <-deadline.C:
			return fmt.Errorf("not met within %s; last state:%s", within, lead(state))
		case <-tick.C:
		}
	}
}

// lead puts a state of several lines on lines of its own, a short one after
// a space.
func lead(state string) string {
	if strings.Contains(state, "\n") {
		return "\n" + state
	}
	return " " + state
}

// Eventually waits, for at most within, until cond holds, checking it every
// DefaultInterval; then it fails the test with the last state cond described.
func Eventually(t testing.TB, within time.Duration, cond Cond) {
	t.Helper()
	if err := Poll(context.Background(), within, DefaultInterval, cond); err != nil {
		t.Fatalf("condition %v", err)
	}
}

// EventuallyNamed is Eventually for a condition described by what, which
// leads the failure message.
func EventuallyNamed(t testing.TB, within time.Duration, what string, cond Cond) {
	t.Helper()
	if err := Poll(context.Background(), within, DefaultInterval, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Background runs run in a goroutine with a context that ends when the test
// is cleaned up; the cleanup then waits for run to return and fails the test
// if it returned an error. what names run in that failure. Cleanups run last
// registered first: one registered after Background runs before run stops.
func Background(t testing.TB, what string, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s returned %v after its context ended", what, err)
		}
	})
}

// Receive returns the next value from ch, or fails the test if none comes
// within the given time.
func Receive[T any](t testing.TB, ch <-chan T, within time.Duration) T {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("nothing received within %s", within)
		var zero T
		return zero
	}
}

// SilentListener returns a TCP listener on 127.0.0.1 that accepts every
// connection and never answers nor closes it: a peer that hangs. The
// listener and the connections it holds are closed in t.Cleanup.
func SilentListener(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		held []net.Conn
	)
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-acceptDone
		for _, c := range held {
			c.Close()
		}
	})
	return l
}

// MainInNetns is the TestMain of a package whose tests need a network
// namespace of their own (port 4369, addresses they add) and must leave no
// goroutine behind: outside the namespace it re-runs the test binary inside
// a new one (beamtest.ReexecInNetns); inside, or where no namespace can be
// made (not root), it runs the tests here under goleak.VerifyTestMain with
// opts, and those that need the namespace stop at beamtest.RequireNetns. It
// does not return.
func MainInNetns(m *testing.M, opts ...goleak.Option) {
	if code, ran := beamtest.ReexecInNetns(); ran {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m, opts...)
}
