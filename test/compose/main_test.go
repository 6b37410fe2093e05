//go:build compose

package compose

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"

	"testing"
)

// project is the compose project name (scripts/compose-env.sh), the prefix
// of every container and network name.
const project = "gonode"

var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}()

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "compose: podman in namespaces of its own needs root")
		os.Exit(1)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	before := snapshotHost()
	code := runStack(m)
	if !stop(before) {
		code = 1
	}
	return code
}

// runStack brings the stack up, runs the tests and brings it down.
func runStack(m *testing.M) int {
	step := func(what string, within time.Duration, name string, args ...string) bool {
		start := time.Now()
		out, err := inEnv(within, name, args...)
		if err != nil {
			fmt.Fprintf(os.Stderr, "compose: %s: %v\n%s", what, err, out)
			return false
		}
		fmt.Fprintf(os.Stderr, "compose: %s in %s\n", what, time.Since(start).Round(100*time.Millisecond))
		return true
	}
	if !step("podman service up", time.Minute, "scripts/compose-up.sh") ||
		!step("base images built and loaded", 20*time.Minute, "scripts/compose-images.sh") ||
		!step("gonode image built (docker-compose build)", 15*time.Minute, "docker-compose", "build", "gonode") ||
		!step("stack up (docker-compose up)", 5*time.Minute, "docker-compose", "up", "-d", "--no-build",
			"--scale", "elixir=3", "--scale", "gonode=2") {
		return 1
	}
	code := m.Run()
	if !down() {
		code = 1
	}
	return code
}

// inEnv runs name (a path relative to the repository, or a command) with
// scripts/compose-env.sh sourced, in the repository, and returns its
// combined output. podman in the command line is the service's.
func inEnv(within time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{"-c", `. scripts/compose-env.sh && "$@"`, "_", name}, args...)...)
	cmd.Dir = repoRoot
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// podman runs podman through the service and returns its standard output.
func podman(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", append([]string{"-c", `. scripts/compose-env.sh && podman "$@"`, "_"}, args...)...)
	cmd.Dir = repoRoot
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("podman %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func mustPodman(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := podman(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// down runs `docker-compose down` and checks, inside the service's
// namespaces, that it removed every container and network of the project,
// the network's bridge and every iptables rule naming the network's subnet
// or a published port.
func down() bool {
	if out, err := inEnv(3*time.Minute, "docker-compose", "down", "--volumes", "--timeout", "10"); err != nil {
		fmt.Fprintf(os.Stderr, "compose: docker-compose down: %v\n%s", err, out)
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var left []string
	if out, err := podman(ctx, "ps", "--all", "--format", "{{.Names}}"); err != nil || strings.TrimSpace(out) != "" {
		left = append(left, fmt.Sprintf("containers: %q %v", out, err))
	}
	if out, err := podman(ctx, "network", "ls", "--format", "{{.Name}}"); err != nil || strings.Contains(out, project+"_") {
		left = append(left, fmt.Sprintf("networks: %q %v", out, err))
	}
	subnet := os.Getenv("GONODE_COMPOSE_SUBNET")
	if subnet == "" {
		subnet = "198.18.42.0/24"
	}
	links, _ := inEnv(time.Minute, "compose_in", "ip", "-o", "link")
	for _, l := range strings.Split(links, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] != "lo:" {
			left = append(left, "interface "+f[1])
		}
	}
	rules, err := inEnv(time.Minute, "compose_in", "iptables-save")
	if err != nil {
		left = append(left, "iptables-save: "+err.Error())
	}
	for _, l := range strings.Split(rules, "\n") {
		if strings.HasPrefix(l, "-A") && (strings.Contains(l, subnet) || strings.Contains(l, "9090")) {
			left = append(left, "iptables rule: "+l)
		}
	}
	if len(left) > 0 {
		fmt.Fprintf(os.Stderr, "compose: docker-compose down left:\n  %s\n", strings.Join(left, "\n  "))
		return false
	}
	fmt.Fprintln(os.Stderr, "compose: docker-compose down left no container, network, interface or iptables rule of the project")
	return true
}

// stop runs scripts/compose-down.sh and reports whether the machine is as
// it was in before.
func stop(before hostState) bool {
	if out, err := inEnv(3*time.Minute, "scripts/compose-down.sh"); err != nil {
		fmt.Fprintf(os.Stderr, "compose: scripts/compose-down.sh: %v\n%s", err, out)
		return false
	}
	if d := before.diff(snapshotHost()); d != "" {
		fmt.Fprintf(os.Stderr, "compose: the machine is not as it was before:\n%s", d)
		return false
	}
	fmt.Fprintln(os.Stderr, "compose: service stopped; iptables, nftables, ip_forward, network namespaces, mounts, paths and processes as before")
	return true
}

// hostState is what of the machine podman, netavark and the scripts may
// change.
type hostState map[string]string

var nftCounters = regexp.MustCompile(`counter packets [0-9]+ bytes [0-9]+`)

// Paths podman uses whatever it is configured with, and the scripts' state.
var watchedPaths = []string{"/run/containers", "/run/libpod", "/run/gonode-compose", "/var/lib/containers",
	"/etc/containers/networks", "/etc/cni/net.d"}

func snapshotHost() hostState {
	s := hostState{}
	cmd := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return fmt.Sprintf("%s: %v", name, err)
		}
		var keep []string
		for _, l := range strings.Split(string(out), "\n") {
			// iptables-save's dates.
			if strings.HasPrefix(l, "#") {
				continue
			}
			keep = append(keep, l)
		}
		return strings.Join(keep, "\n")
	}
	s["iptables-save"] = cmd("iptables-save")
	s["nft list ruleset"] = nftCounters.ReplaceAllString(cmd("nft", "list", "ruleset"), "counter")
	s["net.ipv4.ip_forward"] = cmd("sysctl", "-n", "net.ipv4.ip_forward")
	var links []string
	for _, l := range strings.Split(cmd("ip", "-o", "link"), "\n") {
		if f := strings.Fields(l); len(f) > 1 && (strings.HasPrefix(f[1], "podman") || strings.HasPrefix(f[1], "veth")) {
			links = append(links, f[1])
		}
	}
	s["podman and veth interfaces"] = strings.Join(links, " ")
	var ns []string
	for _, l := range strings.Split(cmd("ip", "netns", "list"), "\n") {
		if strings.HasPrefix(l, "gonode-compose") || strings.HasPrefix(l, "netns-") {
			ns = append(ns, l)
		}
	}
	s["network namespaces"] = strings.Join(ns, " ")
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	var mounts []string
	for _, l := range strings.Split(string(mi), "\n") {
		for _, p := range append(watchedPaths, "/run/netns/netns-", "/var/cache/gonode/compose") {
			if strings.Contains(l, p) {
				f := strings.Fields(l)
				mounts = append(mounts, f[4])
			}
		}
	}
	sort.Strings(mounts)
	s["mounts"] = strings.Join(mounts, " ")
	for _, p := range watchedPaths {
		_, err := os.Stat(p)
		s["exists "+p] = fmt.Sprint(err == nil)
	}
	var procs []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		// A zombie has exited; its parent (PID 1 for the service's
		// daemonized conmons) reaps it in its own time.
		if st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if _, rest, ok := strings.Cut(string(st), ") "); ok && strings.HasPrefix(rest, "Z") {
				continue
			}
		}
		// Other tests run BEAM and gonode nodes at the same time: only
		// the programs of podman's stack are counted.
		switch c := strings.TrimSpace(string(comm)); c {
		case "podman", "conmon", "aardvark-dns", "netavark", "prometheus":
			procs = append(procs, c)
		}
	}
	sort.Strings(procs)
	s["processes"] = strings.Join(procs, " ")
	return s
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
