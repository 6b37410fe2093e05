//go:build integration

// Command demo shows Go and Elixir pods forming one mesh on the integration
// harness's Kubernetes-like cluster: 3 Elixir pods and 1 gonode pod (by
// default) behind a headless Service served by dnsmasq, each pod in its own
// network namespace. It prints the mesh as every node sees it and one call
// each way (Elixir -> the Go node's `gonode` gen_server, the Go node ->
// Elixir's :echo), then prints the mesh again every --every until Ctrl-C or
// SIGTERM, and tears everything down.
//
// It needs root, iproute2, dnsmasq, Erlang and Elixir (scripts/install-deps.sh)
// and installs nothing. Run it with scripts/demo.sh (make demo).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/test/integration"
)

func main() {
	os.Exit(run())
}

type lister interface {
	NodeName() string
	Nodes() ([]string, error)
}

func run() int {
	nEx := flag.Int("elixir", 3, "Elixir pods")
	nGo := flag.Int("gonode", 1, "gonode pods")
	rel := flag.String("release", "otp25", "OTP release of the Elixir pods: otp25 (host), otp27 or otp29 (scripts/otp-matrix.sh chroots)")
	every := flag.Duration("every", 10*time.Second, "how often to print the mesh again")
	flag.Parse()
	if *nEx < 1 || *nGo < 1 || *every <= 0 {
		fmt.Fprintln(os.Stderr, "demo: --elixir and --gonode must be at least 1 and --every positive")
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "demo: needs root to create network namespaces")
		return 1
	}
	release, err := findRelease(*rel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	binDir, err := os.MkdirTemp("", "gnit-demo-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	defer os.RemoveAll(binDir)
	say("building cmd/gonode")
	bin, err := integration.BuildGonode(binDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}

	c, err := integration.NewCluster(integration.DefaultClusterConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	defer func() {
		say("tearing down cluster %s", c.ID)
		if err := c.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "demo: teardown:", err)
		}
	}()
	say("cluster %s: bridge %s, DNS %s, Service %s", c.ID, integration.Subnet, integration.DNSIP, c.FQDN())

	var exs []*integration.ElixirPod
	var gos []*integration.GonodePod
	var all []lister
	for i := 1; i <= *nEx && ctx.Err() == nil; i++ {
		ex, err := c.StartElixir(fmt.Sprintf("ex%d", i), integration.ElixirOptions{Release: release})
		if err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			return 1
		}
		defer ex.Stop()
		if err := c.SetReady(ex.Pod, true); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			return 1
		}
		say("pod %-4s %-18s Elixir (%s), Ready", ex.Name, ex.NodeName(), release.Name)
		exs = append(exs, ex)
		all = append(all, ex)
	}
	for i := 1; i <= *nGo && ctx.Err() == nil; i++ {
		g, err := c.StartGonode(fmt.Sprintf("go%d", i), integration.GonodeOptions{Binary: bin})
		if err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			return 1
		}
		defer g.Kill()
		if err := testutil.Poll(ctx, 30*time.Second, integration.WaitInterval, g.Ready); err != nil {
			fmt.Fprintf(os.Stderr, "demo: %s not ready: %v\n", g.Name, err)
			return 1
		}
		if err := c.SetReady(g.Pod, true); err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			return 1
		}
		say("pod %-4s %-18s gonode, Ready (metrics on %s)", g.Name, g.NodeName(), g.URL("/metrics"))
		gos = append(gos, g)
		all = append(all, g)
	}
	if ctx.Err() != nil {
		return 0
	}

	say("waiting for the full mesh")
	if err := testutil.Poll(ctx, 90*time.Second, integration.WaitInterval, func() (bool, string) { return meshDone(all) }); err != nil && ctx.Err() == nil {
		say("no full mesh yet: %v", err)
	}
	printMesh(all)
	calls(exs, gos)

	tick := time.NewTicker(*every)
	defer tick.Stop()
	say("running; Ctrl-C to stop")
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-tick.C:
			printMesh(all)
		}
	}
}

func say(format string, args ...any) {
	fmt.Printf("%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func findRelease(name string) (integration.Release, error) {
	rels, err := integration.MatrixReleases()
	for _, r := range rels {
		if r.Name == name {
			if r.Name != integration.HostRelease.Name && err != nil {
				return r, err
			}
			return r, nil
		}
	}
	return integration.Release{}, fmt.Errorf("unknown release %q (otp25, otp27, otp29)", name)
}

func meshDone(all []lister) (bool, string) {
	var b strings.Builder
	ok := true
	for _, n := range all {
		got, err := n.Nodes()
		if err != nil || len(got) != len(all)-1 {
			ok = false
		}
		fmt.Fprintf(&b, "%s: %v %v; ", n.NodeName(), got, err)
	}
	return ok, b.String()
}

func printMesh(all []lister) {
	say("the mesh, as each node sees it:")
	for _, n := range all {
		kind := "Elixir"
		if _, ok := n.(*integration.GonodePod); ok {
			kind = "gonode"
		}
		got, err := n.Nodes()
		if err != nil {
			fmt.Printf("    %-6s %-18s error: %v\n", kind, n.NodeName(), err)
			continue
		}
		fmt.Printf("    %-6s %-18s -> %s\n", kind, n.NodeName(), strings.Join(got, " "))
	}
}

func calls(exs []*integration.ElixirPod, gos []*integration.GonodePod) {
	ex, g, target := exs[0], gos[0], exs[len(exs)-1]
	code := `GenServer.call({:gonode, :"` + g.NodeName() + `"}, :ping, 5_000)`
	out, err := ex.EvalE(code, 15*time.Second)
	say("Elixir -> Go   on %s: %s\n             => %s", ex.NodeName(), code, result(out, err))
	code = `GenServer.call({:gonode, :"` + g.NodeName() + `"}, {:call, {:echo, :"` + target.NodeName() + `"}, {:hello, "from Go"}}, 10_000)`
	out, err = ex.EvalE(code, 15*time.Second)
	say("Go -> Elixir   %s calls :echo on %s (asked from %s): %s\n             => %s", g.NodeName(), target.NodeName(), ex.NodeName(), code, result(out, err))
}

func result(out string, err error) string {
	if err != nil {
		lines := strings.SplitN(err.Error(), "\n", 3)
		return "error: " + strings.Join(lines[:min(2, len(lines))], " ")
	}
	return out
}
