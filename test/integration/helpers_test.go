//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/testutil"
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "integration: these tests build network namespaces and need root")
		os.Exit(1)
	}
	for _, prog := range []string{"ip", "unshare", "dnsmasq", "elixir", "erl"} {
		if _, err := exec.LookPath(prog); err != nil {
			fmt.Fprintf(os.Stderr, "integration: %s is missing: run scripts/install-deps.sh\n", prog)
			os.Exit(1)
		}
	}
	code := m.Run()
	cleanupGonodeBuild()
	os.Exit(code)
}

// eventually polls cond every WaitInterval until it reports true or the
// deadline passes; then it fails the test with the last state cond described.
func eventually(t testing.TB, within time.Duration, what string, cond testutil.Cond) {
	t.Helper()
	if err := testutil.Poll(context.Background(), within, WaitInterval, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// newCluster creates a cluster torn down in t.Cleanup; on failure the DNS
// log is printed.
func newCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := NewCluster(DefaultClusterConfig())
	if err != nil {
		t.Fatalf("new cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dnsmasq log of cluster %s:\n%s", c.ID, tail(c.DNSLog(), 60))
		}
		if err := c.Close(); err != nil {
			t.Errorf("tear down cluster %s: %v", c.ID, err)
		}
	})
	return c
}

// startElixir starts an Elixir pod, listed in DNS when ready is true. Its
// output is printed if the test failed.
func startElixir(t testing.TB, c *Cluster, name string, o ElixirOptions, ready bool) *ElixirPod {
	t.Helper()
	pod, err := c.NewPod(name)
	if err != nil {
		t.Fatal(err)
	}
	return startElixirIn(t, c, pod, o, ready)
}

// startElixirIn is startElixir in an existing pod.
func startElixirIn(t testing.TB, c *Cluster, pod *Pod, o ElixirOptions, ready bool) *ElixirPod {
	t.Helper()
	p, err := c.StartElixirIn(pod, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output of elixir pod %s (%s, %s):\n%s", p.Name, p.NodeName(), p.Release.Name, tail(p.Output(), 80))
		}
		p.Stop()
	})
	if ready {
		if err := c.SetReady(p.Pod, true); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// peerLister is a pod whose node can list its connected peers.
type peerLister interface {
	NodeName() string
	Nodes() ([]string, error)
}

// meshState reports whether every node lists exactly the others, and
// describes what each one lists.
func meshState(nodes ...peerLister) (bool, string) {
	var b strings.Builder
	ok := true
	for _, n := range nodes {
		var want []string
		for _, o := range nodes {
			if o.NodeName() != n.NodeName() {
				want = append(want, o.NodeName())
			}
		}
		got, err := n.Nodes()
		if err != nil {
			ok = false
			fmt.Fprintf(&b, "  %s: error %v\n", n.NodeName(), err)
			continue
		}
		if !sameSet(got, want) {
			ok = false
		}
		fmt.Fprintf(&b, "  %s lists %v (want %v)\n", n.NodeName(), got, want)
	}
	return ok, b.String()
}

// otherNames returns the node names of members except self.
func otherNames(members []peerLister, self string) []string {
	var names []string
	for _, m := range members {
		if m.NodeName() != self {
			names = append(names, m.NodeName())
		}
	}
	return names
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		if m[x] == 0 {
			return false
		}
		m[x]--
	}
	return true
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... %d lines cut ...", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

var gonodeBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// gonodeBinary builds ./cmd/gonode once per test run.
func gonodeBinary(t testing.TB) string {
	t.Helper()
	gonodeBuild.once.Do(func() {
		gonodeBuild.dir, gonodeBuild.err = os.MkdirTemp("", "gnit-bin-")
		if gonodeBuild.err == nil {
			gonodeBuild.bin, gonodeBuild.err = BuildGonode(gonodeBuild.dir)
		}
	})
	if gonodeBuild.err != nil {
		t.Fatalf("build gonode: %v", gonodeBuild.err)
	}
	return gonodeBuild.bin
}

func cleanupGonodeBuild() {
	if gonodeBuild.dir != "" {
		_ = os.RemoveAll(gonodeBuild.dir)
	}
}

// startGonode starts a gonode pod, listed in DNS when ready is true (after
// /readyz says so). Its log is printed if the test failed.
func startGonode(t testing.TB, c *Cluster, name string, o GonodeOptions, ready bool) *GonodePod {
	t.Helper()
	pod, err := c.NewPod(name)
	if err != nil {
		t.Fatal(err)
	}
	return startGonodeIn(t, c, pod, o, ready)
}

// startGonodeIn is startGonode in an existing pod.
func startGonodeIn(t testing.TB, c *Cluster, pod *Pod, o GonodeOptions, ready bool) *GonodePod {
	t.Helper()
	if o.Binary == "" {
		o.Binary = gonodeBinary(t)
	}
	p, err := c.StartGonodeIn(pod, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of gonode pod %s (%s):\n%s", p.Name, p.NodeName(), tail(p.Output(), 80))
		}
		p.Kill()
	})
	if ready {
		eventually(t, 30*time.Second, p.Name+" /readyz", p.Ready)
		if err := c.SetReady(p.Pod, true); err != nil {
			t.Fatal(err)
		}
	}
	return p
}
