package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/node"
)

// httpServer serves, on --metrics-addr:
//
//	/metrics      Prometheus metrics (a registry of this process's own)
//	/healthz      200 while the process runs (liveness)
//	/readyz       200 once the node runs, discovery's first poll is done and
//	              at least --min-peers peers are connected; 503 before
//	/debug/peers  discovery's per-peer state, as JSON
type httpServer struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// peerCounter is the part of node.Node that /readyz reads.
type peerCounter interface {
	Connected() []string
}

// readiness is what /readyz reports.
type readiness struct {
	peers     peerCounter
	discReady func() bool
	minPeers  int
}

func (r readiness) check() (bool, string) {
	if !r.discReady() {
		return false, "discovery has not completed its first poll"
	}
	if n := len(r.peers.Connected()); n < r.minPeers {
		return false, fmt.Sprintf("%d connected peers, want at least %d", n, r.minPeers)
	}
	return true, "ready"
}

func newMux(reg *prometheus.Registry, ready readiness, debugPeers http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := ready.check()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	if debugPeers != nil {
		mux.Handle("GET /debug/peers", debugPeers)
	}
	return mux
}

// listenHTTP binds addr and serves in a goroutine until shutdown.
func listenHTTP(addr string, n *node.Node, d *discovery.Discoverer, minPeers int, log *slog.Logger) (*httpServer, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &httpServer{
		ln: ln,
		srv: &http.Server{
			Handler:           newMux(reg, readiness{peers: n, discReady: d.Ready, minPeers: minPeers}, d),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "err", err)
		}
	}()
	log.Info("listening", "addr", ln.Addr().String())
	return s, nil
}

func (s *httpServer) addr() string { return s.ln.Addr().String() }

// shutdown stops accepting, lets running requests finish until ctx ends,
// and waits for the serving goroutine.
func (s *httpServer) shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	return err
}
