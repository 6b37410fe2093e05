// Package metrics turns gonode's events into Prometheus metrics and serves
// them, with health, readiness and per-peer debug endpoints, over HTTP.
//
// # Metrics
//
// New registers every gonode_* metric on a prometheus.Registerer the caller
// owns (never the global registry; no promauto), together with the Go and
// process collectors. Every label combination known in advance is created at
// zero, so a counter reads 0 rather than being absent. Labels take small
// fixed sets of values (directions, results, reasons, strategies); node names
// and addresses never become label values, and a value outside its set is
// counted under the set's catch-all ("error", "unknown", ...). Per-peer detail
// belongs on /debug/peers.
//
// Events reach the metrics through adapters for the observer interfaces the
// domain packages declare: NodeObserver (node.Observer), DiscoveryObserver
// (discovery.Observer) and EPMDObserver (epmd.Observer). State that lives
// elsewhere is read at scrape time rather than copied: gonode_node_peers
// from a PeerSource (*node.Node), and gonode_dist_messages_total and
// gonode_dist_bytes_total from a TrafficSource. docs/metrics.md lists every
// metric.
//
// # HTTP server
//
// NewServer builds a Server (default address :9568, the port of Elixir's
// TelemetryMetricsPrometheus) serving:
//
//	/metrics      the registry, through promhttp
//	/healthz      200 "ok" while the process serves HTTP (liveness)
//	/readyz       200 "ready" once the node runs, discovery's first poll
//	              succeeded (or discovery is off) and MinPeers peers are
//	              connected; otherwise 503 with a one-line reason
//	/debug/peers  JSON: discovery's per-peer state merged with the node's
//	              connected list (MergePeers)
//
// The server reads the node and discovery through the small interfaces
// NodeState and DiscoveryState, so tests use fakes and cmd/gonode wires the
// real ones.
//
// # Imports
//
// metrics imports discovery, node and epmd for their event and observer
// types only; none of them imports metrics. Only cmd/gonode (and tests) import
// this package.
package metrics
