package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
)

// TestRunGlobal: the binary runs global's name server on a visible node: a
// BEAM node's global:sync() returns while gonode is connected, and the
// metrics count the sync.
func TestRunGlobal(t *testing.T) {
	cookie := beamtest.RandomCookie()
	beam := beamtest.Start(t, beamtest.Host, beamtest.Options{Name: "beam@127.0.0.1", Cookie: cookie})
	r := startRun(t, []string{
		"--pod-ip=127.0.0.1",
		"--metrics-addr=127.0.0.1:0",
		"--strategy=static", "--hosts=" + beam.Name,
		"--polling-interval=200ms",
	}, map[string]string{"RELEASE_COOKIE": cookie})
	s := r.waitStarted(t)
	goName := s.Node.Name()
	testutil.EventuallyNamed(t, 20*time.Second, "the BEAM node lists gonode", func() (bool, string) {
		out := beam.Eval(t, `nodes().`)
		return strings.Contains(out, goName), out
	})
	out := beam.Eval(t, `Self = self(),
		spawn(fun() -> Self ! {synced, global:sync()} end),
		receive {synced, R} -> R after 15000 -> still_blocked end.`)
	if out != "ok" {
		t.Fatalf("global:sync() with gonode connected = %s, want ok", out)
	}
	if got := beam.Eval(t, fmt.Sprintf(`lists:member('%s', gen_server:call(global_name_server, get_synced)).`, goName)); got != "true" {
		t.Fatalf("gonode is not in global's synced list: %s", got)
	}
	// /debug/global lists the BEAM node as in sync and its global name.
	beam.Eval(t, `yes = global:register_name(fid_debug, spawn(fun() -> receive stop -> ok end end)), ok.`)
	testutil.EventuallyNamed(t, 20*time.Second, "/debug/global lists the sync and the name", func() (bool, string) {
		code, body, err := httpGet("http://" + s.MetricsAddr + "/debug/global")
		return err == nil && code == 200 && strings.Contains(body, `"synced": [`+"\n"+`    "`+beam.Name+`"`) &&
			strings.Contains(body, `"name": "fid_debug"`), body
	})
	testutil.EventuallyNamed(t, 20*time.Second, "the metrics count the sync", func() (bool, string) {
		_, body, err := httpGet("http://" + s.MetricsAddr + "/metrics")
		return err == nil && strings.Contains(body, "gonode_global_syncs_total 1") &&
			strings.Contains(body, "gonode_global_sync_seconds_count 1") &&
			strings.Contains(body, "gonode_global_names 1"), grepLines(body, "gonode_global_")
	})
}
