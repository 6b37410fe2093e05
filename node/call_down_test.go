package node_test

import (
	"context"
	"errors"
	"strings"
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
// the monitor's reason instead of at the deadline. Its errors name the
// callee once, and a call that times out at ctx's deadline says so both
// ways (ErrCallTimeout, context.DeadlineExceeded).
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
			if n := strings.Count(err.Error(), "nobody"); n != 1 {
				t.Errorf("the error names the callee %d times, want once: %v", n, err)
			}
		})
		t.Run("a node that cannot be reached", func(t *testing.T) {
			// As gen_server:call to a node that does not answer: the
			// monitor's noconnection, not the failed send's error.
			_, err := gn.Call(ctx, gen.ProcessID{Name: "nobody", Node: uniq("absent") + "@127.0.0.1"}, etf.Atom("hello"))
			if r := downReason(t, err); r != "noconnection" {
				t.Fatalf("reason = %q, want noconnection", r)
			}
		})
		t.Run("a local name nobody registered", func(t *testing.T) {
			_, err := gn.Call(ctx, "nobody_here", etf.Atom("hello"))
			if r := downReason(t, err); r != "noproc" {
				t.Fatalf("reason = %q, want noproc", r)
			}
		})
		t.Run("a callee that never answers", func(t *testing.T) {
			erl.Eval(t, `register(mute, spawn(fun M() -> receive _ -> M() end end)), ok.`)
			for range 3 {
				short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				_, err := gn.Call(short, gen.ProcessID{Name: "mute", Node: erl.Name}, etf.Atom("hello"))
				cancel()
				if !errors.Is(err, node.ErrCallTimeout) || !errors.Is(err, genserver.ErrCallTimeout) || !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("call error = %v, want ErrCallTimeout and context.DeadlineExceeded", err)
				}
				if n := strings.Count(err.Error(), "mute"); n != 1 {
					t.Errorf("the error names the callee %d times, want once: %v", n, err)
				}
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
