package beamtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// EnvStrict names the environment variable under which a missing
// prerequisite fails a test instead of skipping it. scripts/test.sh (make
// test, and so CI) sets GONODE_TEST_STRICT=1: there every test must run.
const EnvStrict = "GONODE_TEST_STRICT"

// Strict reports whether EnvStrict is set to 1.
func Strict() bool { return os.Getenv(EnvStrict) == "1" }

// Missing stops t because a prerequisite it needs is missing, named by
// format and args (what is missing and how to get it): it skips the test
// ("needs ..."), or fails it when Strict. Every test that cannot run
// everywhere stops through Missing (or RequireNetns and RequireRelease, which
// call it), so a plain `go test ./...` passes for any user and names what it
// could not run.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	what := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("needs %s (%s=1: a missing prerequisite is a failure)", what, EnvStrict)
	} else {
		t.Skipf("needs %s", what)
	}
}

// RequireRelease stops t (see Missing) unless prog ("erl", "elixir",
// "epmd") of rel can run: on the host, installed in PATH; in a chroot of the
// matrix, the chroot built by scripts/otp-matrix.sh.
func RequireRelease(t testing.TB, rel Release, prog string) {
	t.Helper()
	if rel.Root == "" || rel.Root == "/" {
		if _, err := exec.LookPath(prog); err != nil {
			Missing(t, "%s of %s, the host's Erlang/OTP and Elixir (run scripts/install-deps.sh)", prog, rel.Name)
		}
		return
	}
	if _, err := os.Stat(filepath.Join(rel.Root, ".gonode-ready")); err != nil {
		Missing(t, "%s, the chroot at %s (run scripts/otp-matrix.sh)", rel.Name, rel.Root)
	}
}
