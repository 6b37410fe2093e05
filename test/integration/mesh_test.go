//go:build integration

package integration

import (
	"fmt"
	"testing"
	"time"
)

// mixedCluster starts nEx Elixir pods of rel and nGo gonode pods, all Ready,
// and returns them with the mesh members (gonode pods read through the first
// Elixir pod).
func mixedCluster(t *testing.T, c *Cluster, rel Release, nEx, nGo int, tick time.Duration) ([]*ElixirPod, []*GonodePod, []peerLister) {
	t.Helper()
	var exs []*ElixirPod
	var gos []*GonodePod
	var members []peerLister
	for i := 0; i < nEx; i++ {
		ex := startElixir(t, c, fmt.Sprintf("ex%d", i+1), ElixirOptions{Release: rel, NetTickTime: tick}, true)
		exs = append(exs, ex)
		members = append(members, ex)
	}
	for i := 0; i < nGo; i++ {
		g := startGonode(t, c, fmt.Sprintf("go%d", i+1), GonodeOptions{NetTickTime: tick}, true)
		gos = append(gos, g)
		members = append(members, g)
	}
	return exs, gos, members
}

// TestMesh: 3 Elixir and 2 gonode pods reach a full mesh through DNS, on every
// release of the OTP matrix; Elixir calls the Go node's built-in gen_server
// and the Go node calls Elixir's :echo.
func TestMesh(t *testing.T) {
	rels, err := MatrixReleases()
	if err != nil {
		t.Fatal(err)
	}
	gonodeBinary(t)
	for _, rel := range rels {
		t.Run(rel.Name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			exs, gos, members := mixedCluster(t, c, rel, 3, 2, 0)
			eventually(t, 90*time.Second, "full mesh", func() (bool, string) { return meshState(members...) })

			checkMeshCalls(t, exs, gos, members, "hello_from_go")
		})
	}
}

// checkMeshCalls checks a formed mesh of Elixir pods exs and gonode pods gos
// from the application's side: each gonode's built-in gen_server lists every
// other member, each Elixir pod calls each gonode's :ping, and each gonode
// calls :echo on the last Elixir pod (asked by the first), which records the
// message tagged with tag.
func checkMeshCalls(t *testing.T, exs []*ElixirPod, gos []*GonodePod, members []peerLister, tag string) {
	t.Helper()
	for _, g := range gos {
		peers, err := g.PeersVia(exs[0])
		if want := otherNames(members, g.NodeName()); err != nil || !sameSet(peers, want) {
			t.Errorf("GenServer.call({:gonode, %s}, :info) peers = %v, %v; want %v", g.NodeName(), peers, err, want)
		}
	}
	for _, ex := range exs {
		for _, g := range gos {
			got, err := ex.EvalE(`GenServer.call({:gonode, :"`+g.NodeName()+`"}, :ping, 10_000)`, 20*time.Second)
			if err != nil || got != ":pong" {
				t.Errorf("%s: GenServer.call({:gonode, %s}, :ping) = %q, %v; want :pong", ex.NodeName(), g.NodeName(), got, err)
			}
		}
	}
	target := exs[len(exs)-1]
	for i, g := range gos {
		msg := fmt.Sprintf("{:%s, %d, \"%s\"}", tag, i, g.Name)
		got, err := exs[0].EvalE(`GenServer.call({:gonode, :"`+g.NodeName()+`"}, {:call, {:echo, :"`+target.NodeName()+`"}, `+msg+`}, 15_000)`, 20*time.Second)
		if want := "{:ok, " + msg + "}"; err != nil || got != want {
			t.Errorf("%s calls {:echo, %s}: %q, %v; want %s", g.NodeName(), target.NodeName(), got, err, want)
		}
		recv, err := target.EvalE(`{:call, `+msg+`} in GonodeIT.Echo.received()`, 10*time.Second)
		if err != nil || recv != "true" {
			t.Errorf(":echo on %s received %s (%v); want the call from %s", target.NodeName(), recv, err, g.NodeName())
		}
	}
}
