//go:build integration

package integration

import (
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
)

//go:embed elixir/gonode_it.ex
var elixirModule []byte

// elixirModuleFile is the module's file name in the cluster directory.
const elixirModuleFile = "gonode_it.ex"

func writeElixirModule(dir string) error {
	return os.WriteFile(filepath.Join(dir, elixirModuleFile), elixirModule, 0o644)
}

// Release is an Erlang/OTP + Elixir installation: the host's, or a chroot of
// scripts/otp-matrix.sh (the same matrix as internal/beamtest.Releases).
type Release struct {
	// Name is the matrix label: otp25, otp27 or otp29.
	Name string
	// Root is "/" for the host's installation, else the chroot directory.
	Root string
}

// HostRelease is the host's OTP 25 + Elixir 1.14.
var HostRelease = Release{Name: "otp25", Root: "/"}

// MatrixReleases returns the whole OTP matrix. A chroot that is not built is an
// error: the matrix is the claim.
func MatrixReleases() ([]Release, error) {
	cache := os.Getenv("GONODE_OTP_CACHE")
	if cache == "" {
		cache = "/var/cache/gonode/otp"
	}
	rels := []Release{HostRelease,
		{Name: "otp27", Root: filepath.Join(cache, "trixie")},
		{Name: "otp29", Root: filepath.Join(cache, "sid")},
	}
	var errs []error
	for _, r := range rels[1:] {
		if _, err := os.Stat(filepath.Join(r.Root, ".gonode-ready")); err != nil {
			errs = append(errs, fmt.Errorf("OTP release %s is missing at %s: run scripts/otp-matrix.sh", r.Name, r.Root))
		}
	}
	return rels, errors.Join(errs...)
}

func (r Release) chroot() bool { return r.Root != "" && r.Root != "/" }

// ElixirOptions describe an Elixir pod.
type ElixirOptions struct {
	// Release runs the node; the zero value means HostRelease.
	Release Release
	// Cookie overrides the cluster's cookie.
	Cookie string
	// PollInterval is the DNS polling interval. Default 1s.
	PollInterval time.Duration
	// NetTickTime is the node's net_ticktime. Zero keeps OTP's 60 s.
	NetTickTime time.Duration
	// TLS, when set, runs the node's distribution over TLS
	// (-proto_dist inet_tls) with an ssl_dist_optfile written next to the
	// certificate. Nil: plain TCP.
	TLS *TLSFiles
}

// ElixirPod is a pod running an Elixir node with the harness's module.
type ElixirPod struct {
	*Pod
	Release Release

	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}

	mu      sync.Mutex
	next    int
	waiting map[string]chan evalResult
	log     testutil.SyncBuffer
	exitErr error
}

type evalResult struct {
	ok  bool
	out string
}

// StartElixir creates a pod and starts an Elixir node in it, named
// <app>@<pod ip>, and waits until the node evaluates code. The pod is not
// Ready (not in DNS) until SetReady.
func (c *Cluster) StartElixir(name string, o ElixirOptions) (*ElixirPod, error) {
	pod, err := c.NewPod(name)
	if err != nil {
		return nil, err
	}
	return c.StartElixirIn(pod, o)
}

// StartElixirIn starts an Elixir node in an existing pod.
func (c *Cluster) StartElixirIn(pod *Pod, o ElixirOptions) (*ElixirPod, error) {
	if o.Release.Name == "" {
		o.Release = HostRelease
	}
	if o.Cookie == "" {
		o.Cookie = c.Config.Cookie
	}
	if o.PollInterval == 0 {
		o.PollInterval = time.Second
	}
	args := []string{"--name", pod.NodeName(), "--cookie", o.Cookie}
	if o.NetTickTime > 0 {
		args = append(args, "--erl", fmt.Sprintf("-kernel net_ticktime %d", int(o.NetTickTime/time.Second)))
	}
	moduleDir := c.Dir
	if o.Release.chroot() {
		moduleDir = "/mnt" // where the script below binds the cluster's directory
	}
	if o.TLS != nil {
		erl, err := elixirTLSArgs(*o.TLS, func(p string) (string, error) { return underDir(c.Dir, moduleDir, p) })
		if err != nil {
			return nil, fmt.Errorf("TLS files of %s: %w", pod.Name, err)
		}
		args = append(args, "--erl", erl)
	}
	var argv []string
	if o.Release.chroot() {
		// A private mount namespace shows the pod's resolv.conf and the
		// module inside the chroot; nothing of it is visible outside.
		resolv := filepath.Join(etcNetnsDir, pod.NS, "resolv.conf")
		script := `set -e
mount --bind "$1" "$3/etc/resolv.conf"
mount --bind "$2" "$3/mnt"
root=$3
shift 3
exec chroot "$root" "$@"`
		args = append(args, "-r", filepath.Join(moduleDir, elixirModuleFile), "-e", "GonodeIT.Pod.main()")
		argv = append([]string{"ip", "netns", "exec", pod.NS, "unshare", "--mount", "--propagation", "private", "--fork", "--kill-child",
			"sh", "-c", script, "sh", resolv, c.Dir, o.Release.Root, "elixir"}, args...)
	} else {
		args = append(args, "-r", filepath.Join(moduleDir, elixirModuleFile), "-e", "GonodeIT.Pod.main()")
		argv = append([]string{"ip", "netns", "exec", pod.NS, "elixir"}, args...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = []string{
		"HOME=/tmp", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "LC_ALL=C.UTF-8",
		"GONODE_IT_SERVICE=" + c.FQDN(),
		"GONODE_IT_POLL_MS=" + strconv.FormatInt(o.PollInterval.Milliseconds(), 10),
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &ElixirPod{Pod: pod, Release: o.Release, cmd: cmd, stdin: stdin, done: make(chan struct{}), waiting: map[string]chan evalResult{}}
	cmd.Stderr = &p.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start elixir in %s: %w", pod.Name, err)
	}
	go p.read(stdout)
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(p.done)
	}()
	if _, err := p.EvalE(":ok", 90*time.Second); err != nil {
		p.Stop()
		return nil, fmt.Errorf("elixir node %s (%s) did not come up: %w\n%s", pod.NodeName(), o.Release.Name, err, p.Output())
	}
	return p, nil
}

// read hands the answers of GonodeIT.Control ("@@IT <id> ok|error <size>"
// frames) to the waiting EvalE calls and keeps every other line as output.
func (p *ElixirPod) read(r io.Reader) {
	beamtest.ReadReplies(r, "@@IT", func(id string, fields []string, payload string) {
		if len(fields) != 1 {
			_, _ = p.log.WriteString(fmt.Sprintf("unexpected answer header for %s: %v\n", id, fields))
			return
		}
		p.mu.Lock()
		ch := p.waiting[id]
		delete(p.waiting, id)
		p.mu.Unlock()
		if ch != nil {
			ch <- evalResult{ok: fields[0] == "ok", out: payload}
		}
	}, func(line string) { _, _ = p.log.WriteString(line) })
}

// ErrEval is returned by EvalE when the code raised.
var ErrEval = errors.New("evaluation raised")

// EvalE evaluates Elixir code on the node. A binary result comes back as is,
// anything else as its inspect.
func (p *ElixirPod) EvalE(code string, timeout time.Duration) (string, error) {
	p.mu.Lock()
	p.next++
	id := strconv.Itoa(p.next)
	ch := make(chan evalResult, 1)
	p.waiting[id] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.waiting, id)
		p.mu.Unlock()
	}()
	if _, err := io.WriteString(p.stdin, id+" "+base64.StdEncoding.EncodeToString([]byte(code))+"\n"); err != nil {
		return "", fmt.Errorf("write to %s: %w", p.NodeName(), err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if !r.ok {
			return "", fmt.Errorf("%w on %s: %s", ErrEval, p.NodeName(), r.out)
		}
		return r.out, nil
	case <-p.done:
		return "", fmt.Errorf("node %s exited: %v", p.NodeName(), p.exitError())
	case <-timer.C:
		return "", fmt.Errorf("no answer from %s within %s", p.NodeName(), timeout)
	}
}

func (p *ElixirPod) exitError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// Nodes returns the node's Node.list(), sorted.
func (p *ElixirPod) Nodes() ([]string, error) {
	out, err := p.EvalE("GonodeIT.Pod.nodes()", 20*time.Second)
	if err != nil {
		return nil, err
	}
	return strings.Fields(out), nil
}

// Output returns what the node printed besides evaluation answers.
func (p *ElixirPod) Output() string { return p.log.String() }

// Done is closed when the node's process has exited.
func (p *ElixirPod) Done() <-chan struct{} { return p.done }

// Stop halts the node by closing its standard input, and kills the pod's
// processes if it has not exited within 10 s.
func (p *ElixirPod) Stop() {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
	_ = p.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}
