package beamtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Release is one Erlang/OTP + Elixir installation of the test matrix.
type Release struct {
	// Name is the matrix label: otp25, otp27 or otp29.
	Name string
	// Root is "/" for the host's installation, else a chroot directory.
	Root string
}

// Host is the host's Debian OTP 25 + Elixir 1.14.
var Host = Release{Name: "otp25", Root: "/"}

// CacheDir is where scripts/otp-matrix.sh keeps the chroots: $GONODE_OTP_CACHE,
// default /var/cache/gonode/otp.
func CacheDir() string {
	if d := os.Getenv("GONODE_OTP_CACHE"); d != "" {
		return d
	}
	return "/var/cache/gonode/otp"
}

// Matrix returns the whole matrix: OTP 25 on the host, OTP 27.3 (trixie) and
// OTP 29.1 (sid) in chroots under CacheDir, built or not (RequireRelease
// tells).
func Matrix() []Release {
	return []Release{Host,
		{Name: "otp27", Root: filepath.Join(CacheDir(), "trixie")},
		{Name: "otp29", Root: filepath.Join(CacheDir(), "sid")},
	}
}

// Releases returns Matrix for a test or benchmark that starts nodes of every
// release, after RequireNetns(t). Start checks each release before it starts
// a node of it.
func Releases(t testing.TB) []Release {
	t.Helper()
	RequireNetns(t)
	return Matrix()
}

// ForEach runs f as a subtest for every release of the matrix. It needs the
// namespace (RequireNetns); each subtest needs its release (RequireRelease):
// a chroot that scripts/otp-matrix.sh has not built skips that release's
// subtest, or fails it under GONODE_TEST_STRICT=1, since the matrix is the
// claim.
func ForEach(t *testing.T, f func(t *testing.T, rel Release)) {
	t.Helper()
	for _, rel := range Releases(t) {
		t.Run(rel.Name, func(t *testing.T) {
			RequireRelease(t, rel, "erl")
			f(t, rel)
		})
	}
}

// command returns argv that runs prog of the release.
func (r Release) command(prog string, args ...string) []string {
	if r.Root == "" || r.Root == "/" {
		return append([]string{prog}, args...)
	}
	return append([]string{"chroot", r.Root, prog}, args...)
}

// TempDir makes a directory that both the test and a node of the release
// can read: t.TempDir() for the host, a directory under the chroot's /tmp
// otherwise (removed in t.Cleanup). host is its path for the test, beam its
// path for the node.
func (r Release) TempDir(t testing.TB) (host, beam string) {
	t.Helper()
	if r.Root == "" || r.Root == "/" {
		d := t.TempDir()
		return d, d
	}
	d, err := os.MkdirTemp(filepath.Join(r.Root, "tmp"), "beamtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d, "/" + strings.TrimPrefix(strings.TrimPrefix(d, r.Root), "/")
}
