package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gonode/gonode/metrics"
)

// healthTimeout bounds `gonode health`: a container runtime's health check
// has its own timeout (Docker's default is 30 s), and a hung check must not
// pile up processes.
const healthTimeout = 3 * time.Second

// healthBodyLimit is how much of the answer `gonode health` reads and prints:
// /healthz and /readyz answer a line.
const healthBodyLimit = 512

// health is `gonode health [--ready] [--metrics-addr=host:port]`: it asks the
// gonode of this container (or host) for /healthz, or /readyz with --ready,
// on the address of its HTTP listener (GONODE_METRICS_ADDR, an unspecified
// host meaning the loopback address), and exits 0 on 200, 1 otherwise. A
// minimal image has no curl or wget: the Dockerfile's HEALTHCHECK runs this.
func health(ctx context.Context, args []string, env environment, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gonode health", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := metrics.DefaultAddr
	if v, ok := env.LookupEnv("GONODE_METRICS_ADDR"); ok && v != "" {
		addr = v
	}
	fs.StringVar(&addr, "metrics-addr", addr, "")
	ready := fs.Bool("ready", false, "")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: gonode health [--ready] [--metrics-addr=host:port] (default: GONODE_METRICS_ADDR, else "+metrics.DefaultAddr+")")
		return exitUsage
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || checkHostPort(addr, 1) != nil {
		fmt.Fprintf(stderr, "gonode health: --metrics-addr %q is not host:port\n", addr)
		return exitUsage
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	path := "/healthz"
	if *ready {
		path = "/readyz"
	}
	url := "http://" + net.JoinHostPort(host, port) + path
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "gonode health: %v\n", err)
		return exitUsage
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "gonode health: %v\n", err)
		return exitFailure
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, healthBodyLimit))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "gonode health: %s: %s: %q\n", url, resp.Status, body)
		return exitFailure
	}
	fmt.Fprintf(stdout, "%s: %s", url, body)
	if len(body) == 0 || body[len(body)-1] != '\n' {
		fmt.Fprintln(stdout)
	}
	return exitOK
}
