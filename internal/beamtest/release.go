package beamtest

import (
	"os"
	"path/filepath"
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

// Releases returns the whole matrix: OTP 25 on the host, OTP 27.3 (trixie) and
// OTP 29.1 (sid) in chroots. A chroot that scripts/otp-matrix.sh has not built
// fails the test: the matrix is the claim, so a missing release is an error.
func Releases(t testing.TB) []Release {
	t.Helper()
	rels := []Release{Host,
		{Name: "otp27", Root: filepath.Join(CacheDir(), "trixie")},
		{Name: "otp29", Root: filepath.Join(CacheDir(), "sid")},
	}
	for _, r := range rels[1:] {
		if _, err := os.Stat(filepath.Join(r.Root, ".gonode-ready")); err != nil {
			t.Fatalf("OTP release %s is missing at %s: run scripts/otp-matrix.sh first", r.Name, r.Root)
		}
	}
	return rels
}

// ForEach runs f as a subtest for every release of the matrix.
func ForEach(t *testing.T, f func(t *testing.T, rel Release)) {
	t.Helper()
	for _, rel := range Releases(t) {
		t.Run(rel.Name, func(t *testing.T) { f(t, rel) })
	}
}

// command returns argv that runs prog of the release.
func (r Release) command(prog string, args ...string) []string {
	if r.Root == "" || r.Root == "/" {
		return append([]string{prog}, args...)
	}
	return append([]string{"chroot", r.Root, prog}, args...)
}
