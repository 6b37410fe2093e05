//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"
)

// globalSync runs :global.sync() on an Elixir pod, waiting at most 30 s, and
// :global.trans/4 over every visible node; it returns both results and the
// sync's time in ms.
const globalSync = `t0 = System.monotonic_time(:millisecond)
s = Task.async(fn -> :global.sync() end)
sync = Task.yield(s, 30_000) || Task.shutdown(s, :brutal_kill)
ms = System.monotonic_time(:millisecond) - t0
tr = Task.async(fn -> :global.trans({:it_lock, self()}, fn -> :done end, Node.list([:this, :visible]), 0) end)
{sync, Task.yield(tr, 30_000) || Task.shutdown(tr, :brutal_kill), ms}`

// TestGlobal: with two visible gonode pods in the mesh, :global.sync() and
// :global.trans/4 return on every Elixir pod; after one gonode pod's link is
// cut and healed they return again, and the Elixir pods never saw each
// other go down.
func TestGlobal(t *testing.T) {
	t.Parallel()
	const tick = 8 * time.Second
	c := newCluster(t)
	exs, gos, members := mixedCluster(t, c, HostRelease, 2, 2, tick)
	eventually(t, 60*time.Second, "initial mesh", func() (bool, string) { return meshState(members...) })
	check := func(when string) {
		t.Helper()
		for _, ex := range exs {
			out, err := ex.EvalE(globalSync, 70*time.Second)
			t.Logf("%s %s: {sync, trans, ms} = %s", ex.Name, when, out)
			if err != nil || !strings.HasPrefix(out, "{{:ok, :ok}, {:ok, :done}, ") {
				t.Fatalf("%s %s: {global.sync, global.trans, ms} = %q, %v", ex.Name, when, out, err)
			}
		}
	}
	check("with the gonode pods connected")
	for _, g := range gos {
		if n := metric(t, g, "gonode_global_syncs_total"); n < 1 {
			t.Errorf("%s: gonode_global_syncs_total = %v", g.Name, n)
		}
	}
	downsBefore := elixirDowns(t, exs[0], exs[1].NodeName())
	cut := gos[1]
	if err := cut.LinkDown(); err != nil {
		t.Fatal(err)
	}
	others := []peerLister{exs[0], exs[1], gos[0]}
	eventually(t, 3*tick, "the others drop the cut-off node", func() (bool, string) { return meshState(others...) })
	if err := cut.LinkUp(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "full mesh after the link returned", func() (bool, string) { return meshState(members...) })
	check("after the heal")
	if got := elixirDowns(t, exs[0], exs[1].NodeName()); got != downsBefore {
		t.Errorf("%s saw %d nodedowns of %s, %d before the cut: gonode's partition disconnected Elixir pods", exs[0].Name, got, exs[1].NodeName(), downsBefore)
	}
}
