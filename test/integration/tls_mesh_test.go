//go:build integration

package integration

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/tlstest"
)

// tlsPod creates a pod and writes its TLS files: a certificate of ca for the
// pod's IP, which names the IP as a DNS name too (a BEAM verifying its peer
// checks the host part of the peer's node name, here <app>@<ip>, against the
// certificate's DNS names; docs/tls.md), its key and the CA bundle.
func tlsPod(t *testing.T, c *Cluster, ca *tlstest.CA, name string) (*Pod, *TLSFiles) {
	t.Helper()
	pod, err := c.NewPod(name)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := c.TLSDir(name)
	if err != nil {
		t.Fatal(err)
	}
	f := &TLSFiles{CA: filepath.Join(dir, "ca.crt")}
	f.Cert, f.Key = ca.ValidFor(t, name, pod.IP.String()).Write(t, dir, "tls")
	tlstest.WriteCA(t, f.CA, ca)
	return pod, f
}

// distProtocols reports, for every node ex is connected to, the protocol of
// the connection as the BEAM records it (the #net_address{} of
// :net_kernel.node_info/1: tcp or tls), as "name=protocol", sorted.
func distProtocols(ex *ElixirPod) ([]string, error) {
	out, err := ex.EvalE(`Node.list()
|> Enum.map(fn n ->
  {:ok, info} = :net_kernel.node_info(n)
  "#{n}=#{elem(Keyword.fetch!(info, :address), 3)}"
end)
|> Enum.join(" ")`, 20*time.Second)
	if err != nil {
		return nil, err
	}
	got := strings.Fields(out)
	sort.Strings(got)
	return got, nil
}

// TestTLSMesh: every pod runs its distribution over TLS, with certificates of
// one CA and mutual verification: 2 Elixir pods with -proto_dist inet_tls and
// an ssl_dist_optfile (verify_peer, fail_if_no_peer_cert) and 2 gonode pods
// with GONODE_TLS_CERT, GONODE_TLS_KEY and GONODE_TLS_CA form a full mesh
// through DNS, on every release of the OTP matrix. Each BEAM records every one
// of its connections as tls, no gonode pod counts a failed TLS handshake, and
// calls go both ways.
func TestTLSMesh(t *testing.T) {
	rels, err := MatrixReleases()
	if err != nil {
		t.Fatal(err)
	}
	gonodeBinary(t)
	for _, rel := range rels {
		t.Run(rel.Name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			ca := tlstest.NewCA(t, "dist CA "+c.ID)
			var exs []*ElixirPod
			var gos []*GonodePod
			var members []peerLister
			for i := range 2 {
				pod, files := tlsPod(t, c, ca, fmt.Sprintf("ex%d", i+1))
				ex := startElixirIn(t, c, pod, ElixirOptions{Release: rel, TLS: files}, true)
				exs = append(exs, ex)
				members = append(members, ex)
			}
			for i := range 2 {
				pod, files := tlsPod(t, c, ca, fmt.Sprintf("go%d", i+1))
				g := startGonodeIn(t, c, pod, GonodeOptions{TLS: files}, true)
				gos = append(gos, g)
				members = append(members, g)
			}
			eventually(t, 90*time.Second, "full mesh over TLS", func() (bool, string) { return meshState(members...) })

			// The BEAM's own record of each connection says tls.
			for _, ex := range exs {
				var want []string
				for _, n := range otherNames(members, ex.NodeName()) {
					want = append(want, n+"=tls")
				}
				sort.Strings(want)
				got, err := distProtocols(ex)
				if err != nil || !sameSet(got, want) {
					t.Errorf("%s: connections' protocols %v, %v; want %v", ex.NodeName(), got, err, want)
				}
			}
			for _, g := range gos {
				if n := metric(t, g, mConnects, `result="tls"`); n != 0 {
					t.Errorf("%s: %s{result=tls} = %v, want 0", g.Name, mConnects, n)
				}
			}
			checkMeshCalls(t, exs, gos, members, "hello_over_tls")
		})
	}
}
