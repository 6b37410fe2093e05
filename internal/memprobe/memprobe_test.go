package memprobe_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/memprobe"
	"github.com/gonode/gonode/node"
)

// TestMain runs the measured node when Measure started this binary for it.
func TestMain(m *testing.M) {
	if memprobe.IsChild() {
		os.Exit(memprobe.Child())
	}
	os.Exit(m.Run())
}

func measure(t testing.TB, opts memprobe.Options) memprobe.Figures {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux: the resident set is read from /proc")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fig, err := memprobe.Measure(ctx, os.Args[0], opts)
	if err != nil {
		t.Fatal(err)
	}
	return fig
}

// BenchmarkMemory reports the idle node's resident set, the bytes of an
// idle registered gen_server and of a connected peer, at the default
// mailbox size and, as a baseline from the same run, at 65,535 (the
// default before the connection overflow). GONODE_MEMPROBE_BASELINE=0
// leaves the baseline out.
//
//	go test -run '^$' -bench BenchmarkMemory -benchtime 1x ./internal/memprobe
func BenchmarkMemory(b *testing.B) {
	sizes := []int{node.DefaultMailboxSize, 65535}
	if os.Getenv("GONODE_MEMPROBE_BASELINE") == "0" {
		sizes = sizes[:1]
	}
	for _, size := range sizes {
		b.Run("mailbox="+strconv.Itoa(size), func(b *testing.B) {
			var fig memprobe.Figures
			for range b.N {
				fig = measure(b, memprobe.Options{MailboxSize: size})
			}
			b.ReportMetric(float64(fig.IdleNodeRSS)/(1<<20), "idle-node-MiB")
			b.ReportMetric(float64(fig.PerGenServer)/(1<<10), "KiB/gen_server")
			b.ReportMetric(float64(fig.PerPeer)/(1<<10), "KiB/peer")
			b.ReportMetric(float64(fig.IdleNodeHeap)/(1<<20), "idle-node-heap-MiB")
			b.ReportMetric(float64(fig.PerGenServerHeap)/(1<<10), "heap-KiB/gen_server")
			b.ReportMetric(float64(fig.PerPeerHeap)/(1<<10), "heap-KiB/peer")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// An idle node stays within 16 MiB resident and an idle registered
// gen_server within 16 KiB of Go heap and stacks, at the default mailbox
// size (65,535 entries, the default before the connection overflow, cost
// 6 MB per process). The per-peer figure is logged: it is over its 64 KiB
// goal (docs/performance-notes.md, "Mailbox size: 64").
func TestMemoryGoals(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short: starts a node in a child process and 16 peers")
	}
	fig := measure(t, memprobe.Options{})
	t.Logf("idle node %.1f MiB resident, %.1f KiB heap per gen_server (over %d), %.1f KiB heap per peer (over %d)",
		float64(fig.IdleNodeRSS)/(1<<20), float64(fig.PerGenServerHeap)/(1<<10), fig.GenServers, float64(fig.PerPeerHeap)/(1<<10), fig.Peers)
	if fig.IdleNodeRSS > 16<<20 {
		t.Errorf("idle node resident set %d bytes, want at most 16 MiB", fig.IdleNodeRSS)
	}
	if fig.PerGenServerHeap > 16<<10 {
		t.Errorf("%d bytes per idle gen_server, want at most 16 KiB", fig.PerGenServerHeap)
	}
}
