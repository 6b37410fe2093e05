// Package epmdtest holds reusable helpers for tests that need an EPMD: a
// Server started on 127.0.0.1:0 and torn down by t.Cleanup, and a Recorder
// Observer that counts requests. It is imported by tests only.
package epmdtest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gonode/gonode/epmd"
)

// StartServer starts an epmd.Server on 127.0.0.1 with an OS-chosen port,
// using cfg (zero fields other than Addrs must be set; start from
// epmd.DefaultConfig) with Addrs replaced, and closes it in t.Cleanup. It
// returns the server and its address, host:port.
func StartServer(t testing.TB, cfg epmd.Config, opts ...epmd.Option) (*epmd.Server, string) {
	t.Helper()
	cfg.Addrs = []string{"127.0.0.1:0"}
	s, err := epmd.New(cfg, opts...)
	if err != nil {
		t.Fatalf("epmd.New: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("epmd Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	addrs := s.Addrs()
	if len(addrs) != 1 {
		t.Fatalf("epmd server bound %d addresses, want 1", len(addrs))
	}
	return s, addrs[0].String()
}

// Recorder is an epmd.Observer that counts requests by kind and result.
// Safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	counts map[key]int
}

type key struct {
	kind   epmd.RequestKind
	result epmd.Result
}

// ObserveRequest implements epmd.Observer.
func (r *Recorder) ObserveRequest(kind epmd.RequestKind, result epmd.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts = make(map[key]int)
	}
	r.counts[key{kind, result}]++
}

// Count returns how many requests of kind ended with result.
func (r *Recorder) Count(kind epmd.RequestKind, result epmd.Result) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[key{kind, result}]
}

// WaitFor waits up to 5 s until at least want requests of kind ended with
// result and returns the count then. The server reports a request after it
// wrote the reply, so a client may read the reply before the count moves:
// tests read counts through WaitFor, never right after the reply.
func (r *Recorder) WaitFor(kind epmd.RequestKind, result epmd.Result, want int) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := r.Count(kind, result)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// String lists the non-zero counts, for failure messages.
func (r *Recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := ""
	for _, k := range epmd.RequestKinds {
		for _, res := range epmd.Results {
			if n := r.counts[key{k, res}]; n > 0 {
				s += fmt.Sprintf("%s/%s=%d ", k, res, n)
			}
		}
	}
	return s
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago, for
// programs (such as OTP's epmd binary) that cannot report the port they bound.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
