// Package memprobe measures what a gonode node costs in memory: the
// resident set (RSS) of an idle node, the bytes an idle registered
// genserver.Server adds, and the bytes a connected peer adds.
//
// The measured node runs alone in a child process, so that nothing else
// (the test framework, the peers) shares its resident set: Measure starts
// exe with an environment that makes it run Child, and exe must check
// IsChild first thing (in main, or in a test binary's TestMain) and then
// exit with Child's code. The peers are gonode nodes in the calling
// process, and so is the EPMD they all register with.
//
// RSS is read from /proc/self/status (Linux) after two garbage
// collections and debug.FreeOSMemory, so it counts what the node holds,
// not garbage waiting for the collector. Per-process and per-peer figures
// are the RSS growth divided by the count.
//
// `go test -run '^$' -bench BenchmarkMemory -benchtime 1x ./internal/memprobe`
// reports the three figures (BenchmarkMemory, in memprobe_test.go).
package memprobe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gonode/gonode/epmd"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
)

// Options says what Measure measures. The zero value means the defaults.
type Options struct {
	// GenServers is how many idle registered gen_servers the per-process
	// figure is measured over. Default 1000.
	GenServers int
	// Peers is how many connected peers the per-peer figure is measured
	// over. Default 16.
	Peers int
	// MailboxSize is the measured node's Config.MailboxSize; zero means
	// node.DefaultMailboxSize.
	MailboxSize int
}

// Figures are Measure's results, in bytes.
type Figures struct {
	// IdleNodeRSS is the resident set of a started node with its built-in
	// processes and no peer.
	IdleNodeRSS int64
	// PerGenServer is the resident set an idle registered genserver.Server
	// adds.
	PerGenServer int64
	// PerPeer is the resident set a connected, idle peer adds.
	PerPeer int64
	// IdleNodeHeap, PerGenServerHeap and PerPeerHeap are the same in Go
	// memory in use (heap objects and goroutine stacks), which is what the
	// node comes to hold once the pages it allocated have been used: a
	// large buffer allocated and never written (a mailbox channel) is not
	// resident until the garbage collector recycles its pages.
	IdleNodeHeap, PerGenServerHeap, PerPeerHeap int64
	// The counts the figures were measured over.
	GenServers, Peers int
}

// Environment of the child.
const (
	envChild    = "GONODE_MEMPROBE_CHILD"
	envEPMDPort = "GONODE_MEMPROBE_EPMD_PORT"
	envCookie   = "GONODE_MEMPROBE_COOKIE"
	envServers  = "GONODE_MEMPROBE_SERVERS"
	envMailbox  = "GONODE_MEMPROBE_MAILBOX"
)

// childName is the measured node's name.
const childName = "memprobe@127.0.0.1"

// IsChild reports whether this process was started by Measure to be the
// measured node; it should then exit with Child's code.
func IsChild() bool { return os.Getenv(envChild) == "1" }

// Measure starts exe as the measured node and reports its figures. ctx
// bounds the whole measurement.
func Measure(ctx context.Context, exe string, opts Options) (Figures, error) {
	if opts.GenServers <= 0 {
		opts.GenServers = 1000
	}
	if opts.Peers <= 0 {
		opts.Peers = 16
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// The EPMD every node registers with, here and not in the child, so
	// that the peers' registrations do not count as the child's memory.
	ecfg := epmd.DefaultConfig()
	ecfg.Addrs = []string{"127.0.0.1:0"}
	bound := make(chan []net.Addr, 1)
	srv, err := epmd.New(ecfg, epmd.WithLogger(quiet), epmd.WithNotifyStarted(func(a []net.Addr) { bound <- a }))
	if err != nil {
		return Figures{}, err
	}
	if err := srv.Start(ctx); err != nil {
		return Figures{}, fmt.Errorf("memprobe: start EPMD: %w", err)
	}
	port := (<-bound)[0].(*net.TCPAddr).Port
	cookie := fmt.Sprintf("memprobe%d", time.Now().UnixNano())

	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), envChild+"=1", envEPMDPort+"="+strconv.Itoa(port), envCookie+"="+cookie,
		envServers+"="+strconv.Itoa(opts.GenServers), envMailbox+"="+strconv.Itoa(opts.MailboxSize))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return Figures{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Figures{}, err
	}
	if err := cmd.Start(); err != nil {
		return Figures{}, fmt.Errorf("memprobe: start %s: %w", exe, err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()
	lines := bufio.NewScanner(stdout)
	read := func(phase string) (sample, error) {
		for lines.Scan() {
			f := strings.Fields(lines.Text())
			if len(f) == 3 && f[0] == phase {
				rss, err1 := strconv.ParseInt(f[1], 10, 64)
				heap, err2 := strconv.ParseInt(f[2], 10, 64)
				return sample{rss, heap}, errors.Join(err1, err2)
			}
		}
		return sample{}, fmt.Errorf("memprobe: the child ended before reporting %q: %v", phase, lines.Err())
	}
	var fig Figures
	fig.GenServers, fig.Peers = opts.GenServers, opts.Peers
	idle, err := read("idle")
	if err != nil {
		return fig, err
	}
	fig.IdleNodeRSS, fig.IdleNodeHeap = idle.rss, idle.heap
	servers, err := read("servers")
	if err != nil {
		return fig, err
	}
	fig.PerGenServer = (servers.rss - idle.rss) / int64(opts.GenServers)
	fig.PerGenServerHeap = (servers.heap - idle.heap) / int64(opts.GenServers)

	for i := range opts.Peers {
		cfg := node.DefaultConfig()
		cfg.Name, cfg.Cookie = fmt.Sprintf("memprobe_peer%d@127.0.0.1", i), node.Cookie(cookie)
		cfg.EPMD, cfg.EPMDPort, cfg.EPMDAddr = node.EPMDExternal, port, fmt.Sprintf("127.0.0.1:%d", port)
		n, err := node.New(cfg, node.WithLogger(quiet))
		if err != nil {
			return fig, err
		}
		if err := n.Start(ctx); err != nil {
			return fig, fmt.Errorf("memprobe: start peer %d: %w", i, err)
		}
		defer func() {
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer scancel()
			_ = n.Stop(sctx)
		}()
		if err := n.Connect(ctx, childName); err != nil {
			return fig, fmt.Errorf("memprobe: peer %d: %w", i, err)
		}
	}
	if _, err := fmt.Fprintf(stdin, "peers %d\n", opts.Peers); err != nil {
		return fig, err
	}
	peers, err := read("peers")
	if err != nil {
		return fig, err
	}
	fig.PerPeer = (peers.rss - servers.rss) / int64(opts.Peers)
	fig.PerPeerHeap = (peers.heap - servers.heap) / int64(opts.Peers)
	return fig, nil
}

// sample is one measurement of the child, in bytes.
type sample struct{ rss, heap int64 }

// idle is a registered gen_server that does nothing.
type idle struct{ genserver.Server }

// Child runs the measured node, reporting its resident set on stdout at
// each step Measure asks for, until stdin ends. It returns the process's
// exit code.
func Child() int {
	if err := child(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "memprobe child:", err)
		return 1
	}
	return 0
}

func child(in io.Reader, out io.Writer) error {
	port, err := strconv.Atoi(os.Getenv(envEPMDPort))
	if err != nil {
		return fmt.Errorf("%s: %w", envEPMDPort, err)
	}
	servers, _ := strconv.Atoi(os.Getenv(envServers))
	mailbox, _ := strconv.Atoi(os.Getenv(envMailbox))
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = childName, node.Cookie(os.Getenv(envCookie))
	cfg.EPMD, cfg.EPMDPort, cfg.EPMDAddr = node.EPMDExternal, port, fmt.Sprintf("127.0.0.1:%d", port)
	if mailbox > 0 {
		cfg.MailboxSize = mailbox
	}
	n, err := node.New(cfg, node.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		_ = n.Stop(sctx)
	}()
	report := func(phase string) error {
		rss, heap, err := settled()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s %d %d\n", phase, rss, heap)
		return err
	}
	if err := report("idle"); err != nil {
		return err
	}
	for i := range servers {
		if _, err := n.RegisterServer(fmt.Sprintf("idle%d", i), &idle{}); err != nil {
			return err
		}
	}
	if err := report("servers"); err != nil {
		return err
	}
	cmds := bufio.NewScanner(in)
	for cmds.Scan() {
		f := strings.Fields(cmds.Text())
		if len(f) != 2 || f[0] != "peers" {
			continue
		}
		want, _ := strconv.Atoi(f[1])
		deadline := time.Now().Add(30 * time.Second)
		for len(n.Connected()) < want {
			if time.Now().After(deadline) {
				return fmt.Errorf("%d peers connected after 30s, want %d", len(n.Connected()), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := report("peers"); err != nil {
			return err
		}
	}
	return cmds.Err()
}

// settled returns the resident set and the Go memory in use (heap objects
// and goroutine stacks), in bytes, once the garbage is collected and
// returned to the system.
func settled() (rss, heap int64, err error) {
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap = int64(ms.HeapAlloc + ms.StackInuse)
	rss, err = readRSS()
	return rss, heap, err
}

// readRSS returns the process's resident set, in bytes.
func readRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}
