package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestHealth: `gonode health` exits 0 only when the HTTP listener named by
// GONODE_METRICS_ADDR (or --metrics-addr) answers 200 on /healthz, or on
// /readyz with --ready; a refused connection or another status exits 1 and
// says why.
func TestHealth(t *testing.T) {
	var readyStatus atomic.Int32
	readyStatus.Store(http.StatusServiceUnavailable)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(int(readyStatus.Load()))
		_, _ = w.Write([]byte("not ready: 0 of 1 peers\n"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	// A port nothing listens on: one that was just released.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	l.Close()

	for _, tc := range []struct {
		name     string
		vars     map[string]string
		args     []string
		code     int
		out, err string
	}{
		{"unspecified host means loopback", map[string]string{"GONODE_METRICS_ADDR": ":" + port}, nil, exitOK, "/healthz: ok", ""},
		{"flag over variable", map[string]string{"GONODE_METRICS_ADDR": closedAddr}, []string{"--metrics-addr=0.0.0.0:" + port}, exitOK, "ok", ""},
		{"not ready", map[string]string{"GONODE_METRICS_ADDR": ":" + port}, []string{"--ready"}, exitFailure, "", "503 Service Unavailable"},
		{"nothing listening", map[string]string{"GONODE_METRICS_ADDR": closedAddr}, nil, exitFailure, "", "connection refused"},
		{"bad address", map[string]string{"GONODE_METRICS_ADDR": "nowhere"}, nil, exitUsage, "", "not host:port"},
		{"stray argument", nil, []string{"now"}, exitUsage, "", "usage: gonode health"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), append([]string{"health"}, tc.args...), testEnv(tc.vars), &out, &errOut)
			if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.err) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
					code, out.String(), errOut.String(), tc.code, tc.out, tc.err)
			}
		})
	}
	readyStatus.Store(http.StatusOK)
	var out bytes.Buffer
	if code := run(context.Background(), []string{"health", "--ready", "--metrics-addr=127.0.0.1:" + port}, testEnv(nil), &out, &out); code != exitOK {
		t.Errorf("--ready on a ready node: exit %d, %q", code, out.String())
	}
}
