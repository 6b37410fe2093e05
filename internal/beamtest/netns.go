package beamtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envNetns marks a test binary already re-executed inside its namespace.
const envNetns = "GONODE_BEAMTEST_NETNS"

// InNetns reports whether this process runs inside a namespace made by RunInNetns.
func InNetns() bool { return os.Getenv(envNetns) != "" }

// NetnsName returns the name of the namespace this process runs in, or "".
func NetnsName() string { return os.Getenv(envNetns) }

// noNetns says why the tests of this process run outside a namespace of
// their own; ReexecInNetns sets it when it cannot make one.
var noNetns = "a network namespace of its own (its package's TestMain must call beamtest.RunInNetns)"

// RunInNetns runs the tests of m inside a new network namespace and returns
// the exit code for os.Exit. Without one (the process is not root, or
// iproute2 cannot make a namespace) it runs them in this process; the tests
// that need the namespace then stop at RequireNetns, Start or ForEach.
func RunInNetns(m *testing.M) int {
	if code, ran := ReexecInNetns(); ran {
		return code
	}
	return m.Run()
}

// ReexecInNetns runs the test binary again, with the same arguments, inside
// a new network namespace with only loopback up, deletes the namespace and
// returns the binary's exit code with ran true. It returns ran false when the
// tests are to run in this process: it already runs inside its namespace, or
// no namespace can be made (not root, no iproute2, `ip netns add` refused),
// in which case RequireNetns names the reason. A TestMain that wraps m.Run
// (goleak.VerifyTestMain) calls it first; the others call RunInNetns.
func ReexecInNetns() (code int, ran bool) {
	if InNetns() {
		return 0, false
	}
	if os.Geteuid() != 0 {
		noNetns = "root, to make a network namespace of its own (make test runs as root)"
		return 0, false
	}
	if _, err := exec.LookPath("ip"); err != nil {
		noNetns = "iproute2's ip, to make a network namespace of its own (run scripts/install-deps.sh)"
		return 0, false
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	ns := "gonode-t-" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		noNetns = fmt.Sprintf("a network namespace of its own, which `ip netns add` refused: %v: %s", err, strings.TrimSpace(string(out)))
		return 0, false
	}
	defer deleteNetns(ns)
	if out, err := exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "beamtest: lo up in %s: %v: %s\n", ns, err, out)
		return 1, true
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "beamtest: %v\n", err)
		return 1, true
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, self}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envNetns+"="+ns)
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), true
		}
		fmt.Fprintf(os.Stderr, "beamtest: %v\n", err)
		return 1, true
	}
	return 0, true
}

// RequireNetns stops t (see Missing) unless it runs inside the network
// namespace RunInNetns made for its package: every test that binds a fixed
// port (EPMD's 4369), adds addresses or routes, starts a BEAM node or an
// epmd daemon, or lists the namespace's processes calls it, directly or
// through Start, ForEach and Releases. A test that only binds 127.0.0.1:0
// needs no namespace and runs anywhere.
func RequireNetns(t testing.TB) {
	t.Helper()
	if !InNetns() {
		Missing(t, "%s", noNetns)
	}
}

// deleteNetns kills what is left in the namespace (epmd daemons that erl
// started, a node a failed test did not stop) and deletes it. Every process
// in it was started by the tests: the namespace is theirs alone.
func deleteNetns(ns string) {
	for i := 0; i < 50; i++ {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			var pid int
			if _, err := fmt.Sscan(p, &pid); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "beamtest: ip netns del %s: %v: %s\n", ns, err, out)
	}
}
