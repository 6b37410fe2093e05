//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/testutil"
)

// namespace is where the tests deploy the example overlay.
const namespace = "gonode-e2e"

// basename is the part before '@' of every node's name in the example
// (GONODE_APPLICATION_NAME and the Elixir pods' RELEASE_NODE).
const basename = "myapp"

var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}()

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: the cluster needs root (namespaces, cgroups, containerd)")
		os.Exit(1)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	reuse := os.Getenv("GONODE_K8S_REUSE") == "1" && clusterIsUp()
	var before hostState
	if !reuse {
		before = snapshotHost()
		start := time.Now()
		if out, err := script(30*time.Minute, "k8s-up.sh"); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: scripts/k8s-up.sh: %v\n%s", err, out)
			stopCluster(before)
			return 1
		}
		fmt.Fprintf(os.Stderr, "e2e: cluster up in %s\n", time.Since(start).Round(time.Second))
	}
	start := time.Now()
	if out, err := script(20*time.Minute, "k8s-images.sh", "gonode", "elixir-otp27", "elixir-otp25"); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: scripts/k8s-images.sh: %v\n%s", err, out)
		if !reuse {
			stopCluster(before)
		}
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: images built and imported in %s\n", time.Since(start).Round(time.Second))
	code := m.Run()
	if !reuse && !stopCluster(before) {
		code = 1
	}
	return code
}

// stopCluster runs scripts/k8s-down.sh and reports whether the machine is
// as it was in before.
func stopCluster(before hostState) bool {
	if out, err := script(5*time.Minute, "k8s-down.sh"); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: scripts/k8s-down.sh: %v\n%s", err, out)
		return false
	}
	if d := before.diff(snapshotHost()); d != "" {
		fmt.Fprintf(os.Stderr, "e2e: the machine is not as it was before the cluster:\n%s", d)
		return false
	}
	fmt.Fprintln(os.Stderr, "e2e: cluster stopped; network namespaces, sysctls, nftables, mounts, cgroups and processes as before")
	return true
}

func clusterIsUp() bool {
	_, err := os.Stat("/run/gonode-k8s/bin")
	return err == nil
}

// script runs scripts/NAME with args and returns its combined output.
func script(within time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot, "scripts", name), args...)
	cmd.Dir = repoRoot
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// kubectl runs kubectl against the cluster (scripts/k8s-kubectl.sh).
func kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot, "scripts", "k8s-kubectl.sh"), args...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// mustKubectl is kubectl that fails the test on an error.
func mustKubectl(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := kubectl(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// hostState is what of the machine the cluster may change.
type hostState map[string]string

var watchedSysctls = []string{"vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic",
	"kernel.panic_on_oops", "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes", "net.ipv4.ip_forward"}

// Paths the cluster creates or mounts over (scripts/k8s-env.sh).
var watchedPaths = []string{"/var/lib/cni", "/var/log/pods", "/var/log/containers", "/run/containerd",
	"/run/gonode-k8s", "/var/lib/gonode-k8s"}

func snapshotHost() hostState {
	s := hostState{}
	out, _ := exec.Command("ip", "netns", "list").Output()
	var ns []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		// Other suites (internal/beamtest's gonode-t-*, test/integration's
		// gnit-*) may make and delete namespaces of their own meanwhile.
		if len(f) == 0 || strings.HasPrefix(f[0], "gonode-t-") || strings.HasPrefix(f[0], "gnit-") {
			continue
		}
		ns = append(ns, f[0])
	}
	sort.Strings(ns)
	s["ip netns list"] = strings.Join(ns, " ")
	for _, k := range watchedSysctls {
		v, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(k, ".", "/"))
		s["sysctl "+k] = strings.TrimSpace(string(v)) + errText(err)
	}
	out, err := exec.Command("nft", "list", "ruleset").CombinedOutput()
	s["nft list ruleset"] = string(out) + errText(err)
	for _, p := range watchedPaths {
		_, err := os.Stat(p)
		s["path "+p] = fmt.Sprint(err == nil)
	}
	cg, _ := filepath.Glob("/sys/fs/cgroup/*/gonode-k8s")
	cg2, _ := filepath.Glob("/sys/fs/cgroup/gonode-k8s")
	s["cgroups"] = strings.Join(append(cg, cg2...), " ")
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	var mounts []string
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 && (strings.Contains(f[4], "gonode-k8s") || isWatched(f[4])) {
			mounts = append(mounts, f[4])
		}
	}
	s["mounts"] = strings.Join(mounts, " ")
	s["processes"] = strings.Join(clusterProcesses(), " ")
	return s
}

func isWatched(p string) bool {
	for _, w := range watchedPaths {
		if p == w || strings.HasPrefix(p, w+"/") {
			return true
		}
	}
	return false
}

// clusterProcesses lists the processes whose command line names the
// cluster's directories or binaries.
func clusterProcesses() []string {
	var ps []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err != nil {
			continue
		}
		c := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(c, "/gonode-k8s") || strings.Contains(c, "/var/cache/gonode/k8s/") {
			ps = append(ps, filepath.Base(d)+":"+strings.TrimSpace(c))
		}
	}
	return ps
}

func errText(err error) string {
	if err != nil {
		return " (" + err.Error() + ")"
	}
	return ""
}

func (h hostState) diff(after hostState) string {
	var keys []string
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if h[k] != after[k] {
			fmt.Fprintf(&b, "%s:\n  before: %q\n  after:  %q\n", k, h[k], after[k])
		}
	}
	return b.String()
}

// eventually polls cond every second until it holds, for at most within.
func eventually(t testing.TB, within time.Duration, what string, cond testutil.Cond) {
	t.Helper()
	if err := testutil.Poll(context.Background(), within, time.Second, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
