package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/gonode/gonode/metrics"
	"github.com/gonode/gonode/node"
)

// New registers the metrics on a registry of the caller's; the node observer
// turns the node's events into counters. Series known in advance read 0.
func Example() {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.BuildInfo{Version: "1.0.0", GoVersion: "go1.26.0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	obs := m.NodeObserver() // give it to node.New with node.WithObserver(obs)
	obs.Disconnected("app@10.0.0.7", node.DisconnectTickTimeout)

	mfs, err := reg.Gather()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, mf := range mfs {
		if mf.GetName() == "gonode_node_disconnects_total" {
			_, _ = expfmt.MetricFamilyToText(os.Stdout, mf)
		}
	}
	// Output:
	// # HELP gonode_node_disconnects_total Distribution connections that ended, by reason, in connections.
	// # TYPE gonode_node_disconnects_total counter
	// gonode_node_disconnects_total{reason="error"} 0
	// gonode_node_disconnects_total{reason="local"} 0
	// gonode_node_disconnects_total{reason="peer_closed"} 0
	// gonode_node_disconnects_total{reason="shutdown"} 0
	// gonode_node_disconnects_total{reason="tick_timeout"} 1
}

// startedNode is a NodeState for the example: a node that runs with no peer.
type startedNode struct{}

func (startedNode) Started() bool       { return true }
func (startedNode) Connected() []string { return nil }

// A Server on a free loopback port: with discovery off and MinPeers 0 the
// node is ready as soon as it runs; with MinPeers 1 it waits for a peer.
func ExampleNewServer() {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg, metrics.BuildInfo{Version: "1.0.0"}); err != nil {
		fmt.Println(err)
		return
	}
	for _, minPeers := range []int{0, 1} {
		cfg := metrics.DefaultServerConfig()
		cfg.Addr, cfg.MinPeers = "127.0.0.1:0", minPeers
		srv, err := metrics.NewServer(cfg, reg, startedNode{}, nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		if err := srv.Listen(); err != nil {
			fmt.Println(err)
			return
		}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx) }()

		resp, err := http.Get("http://" + srv.Addr().String() + "/readyz")
		if err != nil {
			fmt.Println(err)
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			fmt.Printf("MinPeers %d: %d %s", minPeers, resp.StatusCode, body)
		}
		stop()
		if err := <-done; err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// MinPeers 0: 200 ready
	// MinPeers 1: 503 0 of 1 peers connected
}
