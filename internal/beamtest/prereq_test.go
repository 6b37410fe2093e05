package beamtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// stopRecorder records how a prerequisite helper stopped a test, instead of
// stopping it (the embedded testing.TB serves every other method).
type stopRecorder struct {
	testing.TB
	skipped, failed string
}

func (r *stopRecorder) Helper() {}
func (r *stopRecorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
}
func (r *stopRecorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestPrerequisites(t *testing.T) {
	chroot := t.TempDir()
	ready := t.TempDir()
	if err := os.WriteFile(filepath.Join(ready, ".gonode-ready"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		strict  string // GONODE_TEST_STRICT
		netns   string // GONODE_BEAMTEST_NETNS
		require func(testing.TB)
		want    string // "" (the test goes on), "skip" or "fail"
		says    string // what the message names
	}{
		{name: "Missing skips", require: func(t testing.TB) { Missing(t, "otp99") }, want: "skip", says: "needs otp99"},
		{name: "Missing fails when strict", strict: "1", require: func(t testing.TB) { Missing(t, "otp99") },
			want: "fail", says: "needs otp99 (GONODE_TEST_STRICT=1"},
		{name: "strict is 1 only", strict: "yes", require: func(t testing.TB) { Missing(t, "otp99") }, want: "skip", says: "needs otp99"},
		{name: "outside the namespace", require: RequireNetns, want: "skip", says: "needs "},
		{name: "outside the namespace, strict", strict: "1", require: RequireNetns, want: "fail", says: "needs "},
		{name: "inside the namespace", netns: "gonode-t-test", strict: "1", require: RequireNetns},
		{name: "a host program that is missing", strict: "1",
			require: func(t testing.TB) { RequireRelease(t, Host, "no-such-program-gonode") },
			want:    "fail", says: "needs no-such-program-gonode of otp25"},
		{name: "a host program that is there", strict: "1", require: func(t testing.TB) { RequireRelease(t, Host, "sh") }},
		{name: "a chroot not built",
			require: func(t testing.TB) { RequireRelease(t, Release{Name: "otp99", Root: chroot}, "erl") },
			want:    "skip", says: "needs otp99, the chroot at " + chroot + " (run scripts/otp-matrix.sh)"},
		{name: "a chroot built", strict: "1",
			require: func(t testing.TB) { RequireRelease(t, Release{Name: "otp99", Root: ready}, "erl") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvStrict, tc.strict)
			t.Setenv(envNetns, tc.netns)
			r := &stopRecorder{TB: t}
			tc.require(r)
			got, msg := "", ""
			switch {
			case r.failed != "" && r.skipped != "":
				t.Fatalf("both skipped (%q) and failed (%q)", r.skipped, r.failed)
			case r.failed != "":
				got, msg = "fail", r.failed
			case r.skipped != "":
				got, msg = "skip", r.skipped
			}
			if got != tc.want || !strings.HasPrefix(msg, tc.says) {
				t.Fatalf("stopped with %q: %q; want %q with a message starting %q", got, msg, tc.want, tc.says)
			}
		})
	}
}
