package node_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/node"
)

// provideTestRPCs registers the functions the RPC tests call, as module
// Elixir.GoMath. note receives the arguments of the casts.
func provideTestRPCs(t *testing.T, gn *node.Node, note chan<- []etf.Term) {
	t.Helper()
	fns := map[string]node.RPCFunc{
		"add": func(_ context.Context, args []etf.Term) (etf.Term, error) {
			var sum int64
			for _, a := range args {
				v, ok := a.(int64)
				if !ok {
					return nil, &node.RPCException{Class: node.RPCError, Reason: etf.Atom("badarith")}
				}
				sum += v
			}
			return sum, nil
		},
		"echo": func(_ context.Context, args []etf.Term) (etf.Term, error) { return etf.List(args), nil },
		"throw": func(_ context.Context, args []etf.Term) (etf.Term, error) {
			return nil, &node.RPCException{Class: node.RPCThrow, Reason: etf.Tuple{etf.Atom("thrown"), etf.List(args)}}
		},
		"exit": func(context.Context, []etf.Term) (etf.Term, error) {
			return nil, &node.RPCException{Class: node.RPCExit, Reason: etf.Tuple{etf.Atom("shutdown"), etf.Atom("go")}}
		},
		"fail":  func(context.Context, []etf.Term) (etf.Term, error) { return nil, errors.New("boom") },
		"panic": func(context.Context, []etf.Term) (etf.Term, error) { panic("oops") },
		"note": func(_ context.Context, args []etf.Term) (etf.Term, error) {
			note <- args
			return etf.Atom("ok"), nil
		},
	}
	for name, fn := range fns {
		if err := gn.ProvideRPC("Elixir.GoMath", name, fn); err != nil {
			t.Fatal(err)
		}
	}
	slow := func(ctx context.Context, _ []etf.Term) (etf.Term, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err := gn.ProvideRPC("Elixir.GoMath", "slow", slow, node.WithRPCTimeout(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	// block waits for its context and says why it ended.
	block := func(ctx context.Context, _ []etf.Term) (etf.Term, error) {
		note <- []etf.Term{etf.Atom("block_started")}
		<-ctx.Done()
		note <- []etf.Term{etf.Atom("block_ended"), []byte(ctx.Err().Error())}
		return nil, ctx.Err()
	}
	if err := gn.ProvideRPC("Elixir.GoMath", "block", block, node.WithRPCTimeout(time.Hour)); err != nil {
		t.Fatal(err)
	}
}

func TestRPCFromElixir(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		gn, _ := startGo(t, goName, node.Cookie(cookie))
		notes := make(chan []etf.Term, 4)
		provideTestRPCs(t, gn, notes)
		ex := beamtest.Start(t, rel, beamtest.Options{Name: uniq("ex") + "@127.0.0.1", Cookie: cookie, Elixir: true})
		events, cancel := gn.Subscribe(16)
		defer cancel()
		if got := ex.Eval(t, fmt.Sprintf(`Node.connect(:"%s")`, goName)); got != "true" {
			t.Fatalf("Node.connect = %s", got)
		}
		waitEvent(t, events, node.Event{Peer: ex.Name, Up: true})

		// Each expression runs on the Elixir node with go bound to the gonode.
		eval := func(t *testing.T, expr string) string {
			t.Helper()
			return ex.Eval(t, fmt.Sprintf(`go = :"%s"; %s`, goName, expr))
		}
		calls := []struct{ name, expr, want string }{
			{"erpc call", `:erpc.call(go, GoMath, :add, [1, 2, 3])`, "6"},
			{"erpc call with a timeout", `:erpc.call(go, GoMath, :add, [40, 2], 5000)`, "42"},
			{"rpc call", `:rpc.call(go, GoMath, :add, [40, 2])`, "42"},
			{"rpc call with a timeout", `:rpc.call(go, GoMath, :add, [1], 5000)`, "1"},
			{"terms as arguments", `:erpc.call(go, GoMath, :echo, [~c"abc", "bin", %{"k" => [1.5]}, {:ok, self()}]) == [~c"abc", "bin", %{"k" => [1.5]}, {:ok, self()}]`, "true"},
			{"no arguments", `:erpc.call(go, GoMath, :echo, [])`, "[]"},
			{"erpc multicall", `:erpc.multicall([go, go], GoMath, :add, [1, 2])`, "[ok: 3, ok: 3]"},
			{"rpc multicall", `:rpc.multicall([go], GoMath, :add, [2, 2])`, "{[4], []}"},
			{"rpc block_call (rex)", `:rpc.block_call(go, GoMath, :add, [2, 3])`, "5"},
			{"erpc throw", `try do :erpc.call(go, GoMath, :throw, [1]) catch k, r -> {k, r} end`, "{:throw, {:thrown, [1]}}"},
			{"rpc throw", `:rpc.call(go, GoMath, :throw, [1])`, "{:thrown, [1]}"},
			{"erpc exit", `try do :erpc.call(go, GoMath, :exit, []) catch k, r -> {k, r} end`, "{:exit, {:exception, {:shutdown, :go}}}"},
			{"rpc exit", `:rpc.call(go, GoMath, :exit, [])`, "{:badrpc, {:EXIT, {:shutdown, :go}}}"},
			{"erpc error", `try do :erpc.call(go, GoMath, :add, [:a]) catch k, r -> {k, r} end`,
				"{:error, {:exception, :badarith, [{GoMath, :add, 1, []}]}}"},
			{"rpc error", `:rpc.call(go, GoMath, :add, [:a])`, "{:badrpc, {:EXIT, {:badarith, [{GoMath, :add, 1, []}]}}}"},
			{"go error", `try do :erpc.call(go, GoMath, :fail, []) catch k, r -> {k, r} end`,
				`{:error, {:exception, "boom", [{GoMath, :fail, 0, []}]}}`},
			{"go panic", `try do :erpc.call(go, GoMath, :panic, []) catch k, r -> {k, r} end`,
				`{:error, {:exception, "panic: oops", [{GoMath, :panic, 0, []}]}}`},
			{"go timeout", `try do :erpc.call(go, GoMath, :slow, []) catch k, r -> {k, r} end`, "{:exit, {:exception, :timeout}}"},
		}
		for _, c := range calls {
			t.Run(c.name, func(t *testing.T) {
				if got := eval(t, c.expr); got != c.want {
					t.Fatalf("%s\n = %s\nwant %s", c.expr, got, c.want)
				}
			})
		}

		// An unknown function fails as it does on a BEAM node: the same
		// exception as the Elixir node's own erpc:call of a function it lacks,
		// within the 1 s the call allows itself (else it raises {erpc, timeout}).
		undefined := []struct{ name, call string }{
			{"erpc unknown module", `:erpc.call(n, :nomod, :nofun, [1, "two"], 1000)`},
			{"erpc unknown function of a provided module", `:erpc.call(n, GoMath, :nope, [], 1000)`},
			{"rpc unknown module", `:rpc.call(n, :nomod, :nofun, [1, "two"], 1000)`},
			{"rpc unknown function of a provided module", `:rpc.call(n, GoMath, :nope, [[]], 1000)`},
		}
		for _, u := range undefined {
			t.Run(u.name, func(t *testing.T) {
				got := eval(t, fmt.Sprintf(`f = fn n -> try do %s catch k, r -> {k, r} end end
					{gr, br} = {f.(go), f.(node())}
					{gr == br, gr, br}`, u.call))
				if !strings.HasPrefix(got, "{true,") || !strings.Contains(got, "undef") {
					t.Fatalf("%s: {same as BEAM, gonode's, BEAM's} = %s", u.call, got)
				}
			})
		}

		t.Run("casts", func(t *testing.T) {
			eval(t, `:erpc.cast(go, GoMath, :note, [:erpc_cast])`)
			eval(t, `:rpc.cast(go, GoMath, :note, [:rpc_cast])`)
			seen := map[string]bool{}
			timeout := time.After(20 * time.Second)
			for len(seen) < 2 {
				select {
				case args := <-notes:
					seen[fmt.Sprint(args)] = true
				case <-timeout:
					t.Fatalf("casts received: %v", seen)
				}
			}
			if !seen["[erpc_cast]"] || !seen["[rpc_cast]"] {
				t.Fatalf("casts received: %v", seen)
			}
		})

		t.Run("caller gives up", func(t *testing.T) {
			got := eval(t, `try do :erpc.call(go, GoMath, :slow, [], 20) catch k, r -> {k, r} end`)
			if got != "{:error, {:erpc, :timeout}}" {
				t.Fatalf("erpc call with a 20 ms timeout of a 200 ms function = %s", got)
			}
		})

		t.Run("caller kills the call", func(t *testing.T) {
			// The process serving the call is a real pid: killing it ends the
			// Go function's context and the monitor reports killed.
			got := eval(t, `ref = :erlang.spawn_request(go, :erpc, :execute_call, [make_ref(), GoMath, :block, []], [:monitor])
				pid = receive do {:spawn_reply, ^ref, :ok, pid} -> pid after 10_000 -> :no_reply end
				Process.exit(pid, :kill)
				receive do {:DOWN, ^ref, :process, ^pid, reason} -> reason after 10_000 -> :no_down end`)
			if got != ":killed" {
				t.Fatalf("DOWN reason of a killed call = %s", got)
			}
			waitNote(t, notes, "block_started")
			waitBlockEnded(t, notes)
		})

		t.Run("revoked", func(t *testing.T) {
			if err := gn.RevokeRPC("Elixir.GoMath", "add"); err != nil {
				t.Fatal(err)
			}
			got := eval(t, `try do :erpc.call(go, GoMath, :add, [1], 1000) catch k, r -> {k, r} end`)
			if got != "{:error, {:exception, :undef, [{GoMath, :add, [1], []}]}}" {
				t.Fatalf("call of a revoked function = %s", got)
			}
		})

		// The connection stayed up through every failure.
		select {
		case e := <-events:
			t.Fatalf("connection event during the calls: %+v", e)
		default:
		}
		if !gn.IsConnected(ex.Name) {
			t.Fatal("the connection is gone")
		}
		if got := eval(t, `:erpc.call(go, GoMath, :echo, [:still_up])`); got != "[:still_up]" {
			t.Fatalf("call after the failures = %s", got)
		}

		// A call under way ends when its caller's node goes away.
		eval(t, `spawn(fn -> :erpc.call(go, GoMath, :block, []) end)`)
		waitNote(t, notes, "block_started")
		if err := gn.Disconnect(ex.Name); err != nil {
			t.Fatal(err)
		}
		waitBlockEnded(t, notes)
	})
}

// waitNote waits for the note [tag] of a provided function.
func waitNote(t *testing.T, notes <-chan []etf.Term, tag string) {
	t.Helper()
	select {
	case args := <-notes:
		if len(args) != 1 || args[0] != etf.Atom(tag) {
			t.Fatalf("note %v, want [%s]", args, tag)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no note %s within 10s", tag)
	}
}

// waitBlockEnded waits for block to report that its context was canceled.
func waitBlockEnded(t *testing.T, notes <-chan []etf.Term) {
	t.Helper()
	select {
	case args := <-notes:
		if len(args) != 2 || args[0] != etf.Atom("block_ended") {
			t.Fatalf("note %v, want [block_ended, Why]", args)
		}
		if why, _ := args[1].([]byte); string(why) != context.Canceled.Error() {
			t.Fatalf("block ended with %q, want its context canceled", why)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the Go function's context did not end")
	}
}

func TestProvideRPCValidates(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = "unstarted@127.0.0.1", "c"
	gn, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ok := func(context.Context, []etf.Term) (etf.Term, error) { return etf.Atom("ok"), nil }
	tests := []struct {
		name             string
		module, function string
		fn               node.RPCFunc
		want             error
	}{
		{"provided", "m", "f", ok, nil},
		{"twice", "m", "f", ok, node.ErrRPCExists},
		{"same function, other module", "m2", "f", ok, nil},
		{"empty module", "", "f", ok, node.ErrRPCName},
		{"empty function", "m", "", ok, node.ErrRPCName},
		{"atom too long", strings.Repeat("a", 256), "f", ok, node.ErrRPCName},
		{"not UTF-8", "m\xff", "f", ok, node.ErrRPCName},
		{"nil function", "m", "g", nil, node.ErrRPCName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := gn.ProvideRPC(tc.module, tc.function, tc.fn); !errors.Is(err, tc.want) {
				t.Fatalf("ProvideRPC(%q, %q) = %v, want %v", tc.module, tc.function, err, tc.want)
			}
		})
	}
	if err := gn.RevokeRPC("m", "f"); err != nil {
		t.Fatal(err)
	}
	if err := gn.RevokeRPC("m", "f"); !errors.Is(err, node.ErrRPCUnknown) {
		t.Fatalf("second revoke = %v, want ErrRPCUnknown", err)
	}
	if err := gn.ProvideRPC("m", "f", ok); err != nil {
		t.Fatalf("provide after revoke: %v", err)
	}
}
