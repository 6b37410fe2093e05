package dist

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/internal/beamtest"
)

// A real BEAM sends lists:duplicate(2000000, []): 2 MB on the wire (in
// fragments), 32 MB as an etf.List, over the default decode budget of
// 16 MiB. The message is dropped, counted and logged; the messages after it
// arrive on the same connection.
func TestDecodeBudgetBEAM(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		a := beamtest.Start(t, rel, beamtest.Options{Name: "budget_" + rel.Name + "@127.0.0.1", Cookie: cookie})
		goName := "gobudget_" + rel.Name + "@127.0.0.1"
		obs := &ptObserver{}
		logs := &syncBuffer{}
		n := ptGoNode(t, goName, cookie, 60*time.Second, func(c *ProtoConfig) {
			c.Observer = obs
			c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		})
		srv := newPTSrv()
		ptSpawn(t, n, "echo", srv)
		g := fmt.Sprintf("'%s'", goName)
		a.Eval(t, fmt.Sprintf("S = {echo, %s}, S ! before_budget, S ! lists:duplicate(2000000, []), S ! after_budget, ok.", g))
		for _, want := range []etf.Atom{"before_budget", "after_budget"} {
			select {
			case m := <-srv.infos:
				if m != want {
					t.Fatalf("echo received %.100v, want %s", fmt.Sprint(m), want)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("%s did not arrive within 20s; dropped %d frames; log:\n%s", want, obs.dropped.Load(), logs)
			}
		}
		if got := obs.dropped.Load(); got != 1 {
			t.Fatalf("dropped %d frames, want 1", got)
		}
		if !strings.Contains(logs.String(), "decode budget") {
			t.Fatalf("no log line about the decode budget:\n%s", logs)
		}
		// after_budget travelled right behind the big message, on the same
		// connection: had the connection closed, it would have been lost.
		if got := a.Eval(t, fmt.Sprintf("lists:member(%s, nodes(connected)).", g)); got != "true" {
			t.Fatalf("the BEAM's connection to the Go node: %s", got)
		}
		a.Eval(t, fmt.Sprintf("{echo, %s} ! still_connected, ok.", g))
		select {
		case m := <-srv.infos:
			if m != etf.Atom("still_connected") {
				t.Fatalf("echo received %v, want still_connected", m)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("still_connected did not arrive within 20s")
		}
	})
}
