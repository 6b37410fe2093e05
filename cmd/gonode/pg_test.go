package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
)

// TestRunPGScopes: the binary runs a process for each scope of
// --pg-scopes; a BEAM node's pg scope syncs with the Go one (the metrics
// count the sync) and its joins reach the Go scope (the metrics count the
// member).
func TestRunPGScopes(t *testing.T) {
	cookie := beamtest.RandomCookie()
	beam := beamtest.Start(t, beamtest.Host, beamtest.Options{Name: "beam@127.0.0.1", Cookie: cookie,
		ErlArgs: []string{"-kernel", "start_pg", "true"}})
	r := startRun(t, []string{
		"--pod-ip=127.0.0.1",
		"--metrics-addr=127.0.0.1:0",
		"--strategy=static", "--hosts=" + beam.Name,
		"--polling-interval=200ms",
		"--pg-scopes=pg,Elixir.Phoenix.PubSub",
	}, map[string]string{"RELEASE_COOKIE": cookie})
	s := r.waitStarted(t)
	for _, name := range []string{"pg", "Elixir.Phoenix.PubSub"} {
		if s.Node.Ergo().ProcessByName(name) == nil {
			t.Fatalf("no process registered as %s", name)
		}
	}
	testutil.EventuallyNamed(t, 20*time.Second, "the BEAM scope synced with the Go scope", func() (bool, string) {
		_, body, err := httpGet("http://" + s.MetricsAddr + "/metrics")
		// Each discover a scope receives makes it sync: one or two.
		return err == nil && strings.Contains(body, `gonode_pg_syncs_total{scope="pg"} `) &&
			!strings.Contains(body, `gonode_pg_syncs_total{scope="pg"} 0`), grepLines(body, "gonode_pg_")
	})
	// The BEAM scope knows the Go scope as a peer: a join there reaches Go.
	beam.Eval(t, `ok = pg:join(jobs, spawn(fun() -> receive stop -> ok end end)).`)
	testutil.EventuallyNamed(t, 20*time.Second, "the Go scope counts the BEAM member", func() (bool, string) {
		_, body, err := httpGet("http://" + s.MetricsAddr + "/metrics")
		return err == nil && strings.Contains(body, `gonode_pg_members{scope="pg"} 1`), grepLines(body, "gonode_pg_")
	})
}

func grepLines(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return fmt.Sprint(out)
}
