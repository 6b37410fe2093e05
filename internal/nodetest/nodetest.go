// Package nodetest starts gonode nodes for tests of the packages built on
// package node (node's own external tests, node/genserver, metrics). It is
// for tests only.
package nodetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
)

// Start creates and starts a node from cfg with opts, and stops it in
// t.Cleanup. The node logs at debug level to logs (nil discards the log);
// when the test failed, the log is printed with the test's output. A node
// that serves or registers with EPMD on port 4369 (the default) needs the
// test's network namespace (beamtest.RequireNetns).
func Start(t testing.TB, cfg node.Config, logs *testutil.SyncBuffer, opts ...node.Option) *node.Node {
	t.Helper()
	if usesPort4369(cfg) {
		beamtest.RequireNetns(t)
	}
	var w io.Writer = io.Discard
	if logs != nil {
		w = logs
	}
	opts = append(opts, node.WithLogger(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	n, err := node.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Stop(ctx); err != nil {
			t.Errorf("stop node %s: %v", cfg.Name, err)
		}
		if t.Failed() && logs != nil {
			t.Logf("log of %s:\n%s", cfg.Name, logs.String())
		}
	})
	return n
}

// usesPort4369 reports whether a node of cfg serves EPMD's port 4369
// (embedded mode) or registers with an EPMD on it (external mode).
func usesPort4369(cfg node.Config) bool {
	switch cfg.EPMD {
	case node.EPMDEmbedded:
		return cfg.EPMDPort == node.DefaultEPMDPort
	case node.EPMDExternal:
		_, port, err := net.SplitHostPort(cfg.EPMDAddr)
		return err != nil || port == strconv.Itoa(node.DefaultEPMDPort)
	}
	return false
}

var seq struct {
	sync.Mutex
	n int
}

// Uniq returns prefix followed by a number unique within the test binary, for
// node basenames that must not collide across tests.
func Uniq(prefix string) string {
	seq.Lock()
	defer seq.Unlock()
	seq.n++
	return fmt.Sprintf("%s%d", prefix, seq.n)
}
