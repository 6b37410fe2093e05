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

// RunInNetns runs the tests of m inside a new network namespace and returns
// the exit code for os.Exit. It needs root (CI runs as root) and iproute2.
func RunInNetns(m *testing.M) int {
	if InNetns() {
		return m.Run()
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "beamtest: these tests start BEAM nodes in a network namespace of their own and need root (run .ci/run as root)")
		return 1
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	ns := "gonode-t-" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "beamtest: ip netns add %s: %v: %s\n", ns, err, out)
		return 1
	}
	defer deleteNetns(ns)
	if out, err := exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "beamtest: lo up in %s: %v: %s\n", ns, err, out)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "beamtest: %v\n", err)
		return 1
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, self}, os.Args[1:]...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envNetns+"="+ns)
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "beamtest: %v\n", err)
		return 1
	}
	return 0
}

// deleteNetns kills what is left in the namespace (epmd daemons that erl
// started, a node a failed test did not stop) and deletes it.
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
