package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
)

// A Call monitors its callee as gen_server:call does: calling a name nobody
// registered, or a node that goes down before it answers, ends the call with
// the monitor's reason instead of at the deadline.
func TestCallEndsWhenTheCalleeIsDown(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		gn, _ := startGo(t, uniq("go")+"@127.0.0.1", node.Cookie(cookie))
		erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := gn.Connect(ctx, erl.Name); err != nil {
			t.Fatal(err)
		}
		downReason := func(t *testing.T, err error) string {
			t.Helper()
			var down *genserver.DownError
			if !errors.Is(err, genserver.ErrServerDown) || !errors.As(err, &down) {
				t.Fatalf("call error = %v, want a genserver.DownError", err)
			}
			return down.Reason
		}

		t.Run("a name nobody registered", func(t *testing.T) {
			_, err := gn.Call(ctx, gen.ProcessID{Name: "nobody", Node: erl.Name}, etf.Atom("hello"))
			if r := downReason(t, err); r != "noproc" {
				t.Fatalf("reason = %q, want noproc", r)
			}
		})
		t.Run("a local name nobody registered", func(t *testing.T) {
			_, err := gn.Call(ctx, "nobody_here", etf.Atom("hello"))
			if r := downReason(t, err); r != "noproc" {
				t.Fatalf("reason = %q, want noproc", r)
			}
		})
		t.Run("the callee's node goes down during the call", func(t *testing.T) {
			erl.Eval(t, `register(halter, spawn(fun() -> receive {'$gen_call', _, _} -> erlang:halt() end end)), ok.`)
			_, err := gn.Call(ctx, gen.ProcessID{Name: "halter", Node: erl.Name}, etf.Atom("halt"))
			if r := downReason(t, err); r != "noconnection" {
				t.Fatalf("reason = %q, want noconnection", r)
			}
		})
	})
}
