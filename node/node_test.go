package node_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/nodetest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
)

// The tests start BEAM nodes and EPMD: they run in a network namespace of their own.
func TestMain(m *testing.M) { os.Exit(beamtest.RunInNetns(m)) }

// startGo starts a gonode node named name with cookie; logs go to the returned buffer.
func startGo(t testing.TB, name string, cookie node.Cookie, edit ...func(*node.Config)) (*node.Node, *testutil.SyncBuffer) {
	t.Helper()
	return startGoObserved(t, name, cookie, node.NopObserver{}, edit...)
}

// startGoObserved is startGo with an Observer.
func startGoObserved(t testing.TB, name string, cookie node.Cookie, obs node.Observer, edit ...func(*node.Config)) (*node.Node, *testutil.SyncBuffer) {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = name, cookie
	for _, e := range edit {
		e(&cfg)
	}
	logs := &testutil.SyncBuffer{}
	n := nodetest.Start(t, cfg, logs, node.WithObserver(obs))
	return n, logs
}

// erlEcho registers an Erlang process named echo answering gen_server calls with {echo, Msg}.
const erlEcho = `register(echo, spawn(fun Loop() ->
	receive {'$gen_call', From, Msg} -> gen:reply(From, {echo, Msg}), Loop() end end)), ok.`

// uniq returns a node basename unique within this test binary.
var uniq = nodetest.Uniq

func TestErlangAndGoTalk(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		gn, _ := startGo(t, goName, node.Cookie(cookie))
		erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})

		t.Run("erlang pings go", func(t *testing.T) {
			if got := erl.Eval(t, fmt.Sprintf("net_adm:ping('%s').", goName)); got != "pong" {
				t.Fatalf("net_adm:ping = %s, want pong", got)
			}
		})
		t.Run("erlang calls gonode ping", func(t *testing.T) {
			if got := erl.Eval(t, fmt.Sprintf("gen_server:call({gonode, '%s'}, ping).", goName)); got != "pong" {
				t.Fatalf("call ping = %s, want pong", got)
			}
		})
		t.Run("erlang calls gonode info", func(t *testing.T) {
			got := erl.Eval(t, fmt.Sprintf(`I = gen_server:call({gonode, '%s'}, info),
				{maps:get(node, I), is_binary(maps:get(version, I)), is_integer(maps:get(uptime, I)), lists:member(node(), maps:get(peers, I))}.`, goName))
			want := fmt.Sprintf("{'%s',true,true,true}", goName)
			if got != want {
				t.Fatalf("info = %s, want %s", got, want)
			}
		})
		t.Run("go calls erlang", func(t *testing.T) {
			erl.Eval(t, erlEcho)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := gn.Connect(ctx, erl.Name); err != nil {
				t.Fatal(err)
			}
			reply, err := gn.Call(ctx, gen.ProcessID{Name: "echo", Node: erl.Name}, etf.Atom("hello"))
			if err != nil {
				t.Fatal(err)
			}
			want := etf.Tuple{etf.Atom("echo"), etf.Atom("hello")}
			if fmt.Sprint(reply) != fmt.Sprint(want) {
				t.Fatalf("reply = %#v, want %#v", reply, want)
			}
		})
		t.Run("erlang asks gonode to call erlang", func(t *testing.T) {
			got := erl.Eval(t, fmt.Sprintf("gen_server:call({gonode, '%s'}, {call, {echo, node()}, hi}).", goName))
			if got != "{ok,{echo,hi}}" {
				t.Fatalf("forwarded call = %s", got)
			}
			// Failures answer with the reason gen_server:call exits with.
			got = erl.Eval(t, fmt.Sprintf(`register(mute, spawn(fun M() -> receive _ -> M() end end)),
				G = {gonode, '%s'},
				{gen_server:call(G, {call, {nobody, node()}, hi}), gen_server:call(G, {call, {mute, node()}, hi, 100})}.`, goName))
			if got != "{{error,noproc},{error,timeout}}" {
				t.Fatalf("forwarded calls to nobody and to a mute process = %s", got)
			}
		})
	})
}

func TestNodeDownEventWhenErlangDies(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		gn, _ := startGo(t, uniq("go")+"@127.0.0.1", node.Cookie(cookie))
		events, cancel := gn.Subscribe(16)
		defer cancel()
		erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
		ctx, cancelCtx := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancelCtx()
		if err := gn.Connect(ctx, erl.Name); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, events, node.Event{Peer: erl.Name, Up: true})
		erl.Kill()
		waitEvent(t, events, node.Event{Peer: erl.Name, Up: false})
		if gn.IsConnected(erl.Name) {
			t.Fatalf("%s still listed as connected after it died", erl.Name)
		}
	})
}

func waitEvent(t *testing.T, events <-chan node.Event, want node.Event) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	var seen []string
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("event channel closed; saw %v", seen)
			}
			if e.Peer == want.Peer && e.Up == want.Up {
				return
			}
			seen = append(seen, fmt.Sprintf("%s up=%v", e.Peer, e.Up))
		case <-timeout:
			t.Fatalf("no event %s up=%v; saw %v", want.Peer, want.Up, seen)
		}
	}
}

func TestWrongCookieRefusedBothWays(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		secret := "gonode-secret-" + beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		gn, logs := startGo(t, goName, node.Cookie(secret))
		erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: beamtest.RandomCookie()})

		if got := erl.Eval(t, fmt.Sprintf("net_adm:ping('%s').", goName)); got != "pang" {
			t.Fatalf("erlang -> go with a wrong cookie: ping = %s, want pang", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := gn.Connect(ctx, erl.Name); err == nil {
			t.Fatalf("go -> erlang with a wrong cookie connected")
		}
		if gn.IsConnected(erl.Name) {
			t.Fatal("connected despite the wrong cookie")
		}
		testutil.Eventually(t, 10*time.Second, func() (bool, string) {
			l := strings.ToLower(logs.String())
			return strings.Contains(l, "cookie") || strings.Contains(l, "digest"), logs.String()
		})
		if strings.Contains(logs.String(), secret) {
			t.Fatal("the cookie appears in the log")
		}
	})
}
