package testutil_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gonode/gonode/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSyncBufferConcurrentWrites(t *testing.T) {
	var b testutil.SyncBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				fmt.Fprintf(&b, "%d\n", i)
				_, _ = b.WriteString("-\n")
			}
		}()
	}
	wg.Wait()
	if got := strings.Count(b.String(), "\n"); got != 1600 {
		t.Fatalf("buffer holds %d lines, want 1600", got)
	}
}

func TestPoll(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	// look returns a condition holding from its call number holdsAt on (never
	// if holdsAt is 0) that describes itself as "look <n>".
	look := func(n *int, holdsAt int) testutil.Cond {
		return func() (bool, string) {
			*n++
			return holdsAt != 0 && *n >= holdsAt, fmt.Sprintf("look %d", *n)
		}
	}
	tests := []struct {
		name     string
		ctx      context.Context
		holdsAt  int    // the look on which cond first holds; 0: never
		state    string // if set, cond describes itself so instead
		wantErr  error
		wantText []string
	}{
		{name: "holds at once", ctx: context.Background(), holdsAt: 1},
		{name: "holds on the fifth look", ctx: context.Background(), holdsAt: 5},
		{name: "never holds: the last state is reported", ctx: context.Background(),
			wantText: []string{"not met within 100ms", "last state: look "}},
		{name: "a state of several lines starts on its own line", ctx: context.Background(),
			state: "first\nsecond", wantText: []string{"last state:\nfirst\nsecond"}},
		{name: "context ended", ctx: canceled, wantErr: context.Canceled, wantText: []string{"last state: look 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			cond := look(&n, tc.holdsAt)
			if tc.state != "" {
				cond = func() (bool, string) { n++; return false, tc.state }
			}
			err := testutil.Poll(tc.ctx, 100*time.Millisecond, time.Millisecond, cond)
			if tc.holdsAt != 0 {
				if err != nil || n != tc.holdsAt {
					t.Fatalf("Poll = %v after %d looks, want nil after %d", err, n, tc.holdsAt)
				}
				return
			}
			if err == nil {
				t.Fatal("Poll = nil for a condition that never holds")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Poll = %v, want it to wrap %v", err, tc.wantErr)
			}
			for _, w := range tc.wantText {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Poll = %q, want it to contain %q", err, w)
				}
			}
			// The error names the state of the last look, not of an earlier one.
			if tc.state == "" && !strings.HasSuffix(err.Error(), fmt.Sprintf("look %d", n)) {
				t.Errorf("Poll = %q after %d looks, want the state of look %d", err, n, n)
			}
		})
	}
}

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	n := 0
	testutil.Eventually(t, 10*time.Second, func() (bool, string) { n++; return n == 3, "" })
	testutil.EventuallyNamed(t, 10*time.Second, "third look", func() (bool, string) { n++; return n == 6, "" })
	if n != 6 {
		t.Fatalf("cond ran %d times, want 6", n)
	}
}

func TestBackgroundEndsWithTheTest(t *testing.T) {
	stopped := make(chan error, 1)
	t.Run("inner", func(t *testing.T) {
		testutil.Background(t, "run", func(ctx context.Context) error {
			<-ctx.Done()
			stopped <- ctx.Err()
			return nil
		})
	})
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("run's context ended with %v, want context.Canceled", err)
		}
	default:
		t.Fatal("run had not returned when the test's cleanup ended")
	}
}

func TestReceive(t *testing.T) {
	ch := make(chan string, 1)
	ch <- "x"
	if got := testutil.Receive(t, ch, 10*time.Second); got != "x" {
		t.Fatalf("Receive = %q, want x", got)
	}
}

func TestSilentListenerAcceptsAndNeverAnswers(t *testing.T) {
	l := testutil.SilentListener(t)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var buf [1]byte
	n, err := c.Read(buf[:])
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read = %d, %v; want a timeout: the listener never answers", n, err)
	}
}
