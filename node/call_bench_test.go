package node_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/node"
)

// BenchmarkNodeCall measures Node.Call's own cost: a call to the node's
// built-in gonode server (ping -> pong), so no network is involved and
// what is timed is the helper (the process it runs the call from) plus one
// local gen_server round trip.
func BenchmarkNodeCall(b *testing.B) {
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = "callbench@127.0.0.1", "callbench-cookie"
	n, err := node.New(cfg, node.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Stop(ctx); err != nil {
			b.Errorf("stop: %v", err)
		}
	})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v, err := n.Call(context.Background(), node.ServerName, etf.Atom("ping"))
		if err != nil || v != etf.Atom("pong") {
			b.Fatalf("call: %v, %v", v, err)
		}
	}
}
