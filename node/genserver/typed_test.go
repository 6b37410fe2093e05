package genserver_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/nodetest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
	"github.com/gonode/gonode/node/term"
)

// item is a struct argument and reply: an Elixir map with atom or string
// keys in, a map with atom keys out.
type item struct {
	SKU  string `erl:"sku"`
	Tags []int  `erl:"tags"`
}

// codedError is an error whose reply is a term.
type codedError struct{ code etf.Atom }

func (e codedError) Error() string   { return "coded " + string(e.code) }
func (e codedError) Term() node.Term { return e.code }

// localNode starts a node without EPMD on 127.0.0.1 (a port the system
// has free), so that tests of Go-only calls run for any user, outside the
// network namespace too.
func localNode(t *testing.T, logs *testutil.SyncBuffer) *node.Node {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = uniq("typed")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie())
	cfg.ListenAddr, cfg.DistPort, cfg.EPMD = "127.0.0.1", port, node.EPMDNone
	return nodetest.Start(t, cfg, logs)
}

// typedFixture is a TypedServer with one handler per rule, registered as
// "typed" on a Go node; events receives what casts and infos did.
func typedFixture(t *testing.T) (*node.Node, chan string, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	n := localNode(t, nil)
	events := make(chan string, 16)
	s := genserver.NewServer().SetLogger(slog.New(slog.NewTextHandler(logs, nil)))
	s.Call("get", func(sku string) int { return len(sku) })
	s.Call("put", func(sku string) string { return "put/1 " + sku })
	s.Call("put", func(sku string, qty int) string { return fmt.Sprintf("put/2 %s %d", sku, qty) })
	s.Call("noop", func() {})
	s.Call("check", func(ok bool) error {
		if ok {
			return nil
		}
		return errors.New("not ok")
	})
	s.Call("coded", func() error { return fmt.Errorf("wrapped: %w", codedError{"out_of_stock"}) })
	s.Call("find", func(sku string) (item, error) {
		if sku == "" {
			return item{}, errors.New("empty sku")
		}
		return item{SKU: sku, Tags: []int{1, 2, 3}}, nil
	})
	s.Call("echo_item", func(it item) item { return it })
	s.Call("self", func(p *genserver.Process, x int) etf.Tuple { return etf.Tuple{p.Self(), int64(x)} })
	s.Call("nested", func() etf.Tuple { return etf.Tuple{etf.Atom("ok"), "go string", etf.List{"in a list"}} })
	s.Call("ping_builtin", func(p *genserver.Process, greeting string) (string, error) {
		var pong etf.Atom
		err := p.CallInto(node.ServerName, etf.Atom("ping"), &pong)
		return greeting + " " + string(pong), err
	})
	s.Cast("reset", func() { events <- "reset" })
	s.Cast("add", func(n int) error {
		if n < 0 {
			return errors.New("negative")
		}
		events <- fmt.Sprint("add ", n)
		return nil
	})
	s.Info("event", func(it item) { events <- fmt.Sprintf("event %s %v", it.SKU, it.Tags) })
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.RegisterServer("typed", s); err != nil {
		t.Fatal(err)
	}
	return n, events, logs
}

// TestTypedDispatchAndResults: a message chooses its handler by tag and
// argument count, its arguments are unmarshalled into the parameters, and
// the results become the reply by the results rule.
func TestTypedDispatchAndResults(t *testing.T) {
	n, _, _ := typedFixture(t)
	b := func(s string) []byte { return []byte(s) }
	a := func(s string) etf.Atom { return etf.Atom(s) }
	cases := []struct {
		name string
		msg  etf.Term
		want string // term.Format of the reply
	}{
		{"T result", etf.Tuple{a("get"), b("abc")}, `3`},
		{"charlist argument for a string", etf.Tuple{a("get"), etf.List{int64('a'), int64('b')}}, `2`},
		{"arity 1 of two", etf.Tuple{a("put"), b("x")}, `<<"put/1 x">>`},
		{"arity 2 of two", etf.Tuple{a("put"), b("x"), int64(4)}, `<<"put/2 x 4">>`},
		{"no results: ok, as a bare atom", a("noop"), `ok`},
		{"no results: ok, as a 1-tuple", etf.Tuple{a("noop")}, `ok`},
		{"nil error: ok", etf.Tuple{a("check"), true}, `ok`},
		{"error: {error, Text}", etf.Tuple{a("check"), false}, `{error,<<"not ok">>}`},
		{"error with a Term method: {error, Term}", a("coded"), `{error,out_of_stock}`},
		{"(T, nil): {ok, T}", etf.Tuple{a("find"), b("s1")}, `{ok,#{sku => <<"s1">>,tags => [1,2,3]}}`},
		{"(T, error): {error, Text}", etf.Tuple{a("find"), b("")}, `{error,<<"empty sku">>}`},
		{"struct argument from a map with string keys", etf.Tuple{a("echo_item"),
			term.Map{{Key: b("sku"), Value: b("k")}, {Key: b("tags"), Value: etf.List{int64(9)}}}},
			`#{sku => <<"k">>,tags => [9]}`},
		{"Go strings inside a returned tuple are binaries", a("nested"), `{ok,<<"go string">>,[<<"in a list">>]}`},
		{"a nested CallInto from a handler", etf.Tuple{a("ping_builtin"), b("hi")}, `{ok,<<"hi pong">>}`},
		{"unknown tag", etf.Tuple{a("nope"), int64(1)}, `{error,{unknown_call,{nope,1}}}`},
		{"known tag, no handler of that arity", etf.Tuple{a("get")}, `{error,{unknown_call,{get}}}`},
		{"tag is not an atom", etf.Tuple{b("get"), b("x")}, `{error,{unknown_call,{<<"get">>,<<"x">>}}}`},
		{"not a tuple or atom", int64(5), `{error,{unknown_call,5}}`},
		{"argument that does not unmarshal", etf.Tuple{a("get"), int64(42)},
			`{error,{badarg,<<"argument 1: term: value: want string, got integer 42">>}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := n.Call(ctx, "typed", c.msg)
			if err != nil {
				t.Fatal(err)
			}
			if term.Format(got) != c.want {
				t.Fatalf("call %s: reply %s, want %s", term.Format(c.msg), term.Format(got), c.want)
			}
		})
	}
	t.Run("a *Process first parameter is the server's process", func(t *testing.T) {
		got, err := n.Call(context.Background(), "typed", etf.Tuple{a("self"), int64(1)})
		if err != nil {
			t.Fatal(err)
		}
		tu, ok := got.(etf.Tuple)
		if !ok || len(tu) != 2 || tu[1] != int64(1) {
			t.Fatalf("reply %v, want {Pid, 1}", got)
		}
		if _, ok := tu[0].(etf.Pid); !ok {
			t.Fatalf("reply %v: first element is not a pid", got)
		}
	})
}

// TestTypedCastsAndInfos: casts and infos reach their handlers by tag; one
// that matches none, or whose arguments do not unmarshal, or whose handler
// fails, is dropped with a log line naming the server, and the server goes
// on.
func TestTypedCastsAndInfos(t *testing.T) {
	n, events, logs := typedFixture(t)
	p, err := n.RegisterServer("", genserver.NewServer())
	if err != nil {
		t.Fatal(err)
	}
	send := func(msg etf.Term) {
		t.Helper()
		if err := p.Send("typed", msg); err != nil {
			t.Fatal(err)
		}
	}
	cast := func(msg etf.Term) { send(etf.Tuple{etf.Atom("$gen_cast"), msg}) }
	cast(etf.Atom("reset"))
	cast(etf.Tuple{etf.Atom("reset")})
	cast(etf.Tuple{etf.Atom("add"), int64(2)})
	cast(etf.Tuple{etf.Atom("add"), int64(-1)})         // handler error: logged
	cast(etf.Tuple{etf.Atom("add"), []byte("two")})     // bad argument: logged
	cast(etf.Tuple{etf.Atom("unknown_cast"), int64(1)}) // no handler: logged
	send(etf.Tuple{etf.Atom("event"), etf.Map{etf.Atom("sku"): []byte("e1"), etf.Atom("tags"): etf.List{int64(1), int64(2), int64(3)}}})
	send(etf.Tuple{etf.Atom("unknown_info")})
	cast(etf.Tuple{etf.Atom("add"), int64(3)})
	want := []string{"reset", "reset", "add 2", "event e1 [1 2 3]", "add 3"}
	for _, w := range want {
		if got := testutil.Receive(t, events, 20*time.Second); got != w {
			t.Fatalf("event %q, want %q", got, w)
		}
	}
	log := logs.String()
	for _, w := range []string{
		`"typed server: cast handler failed" component=genserver server=typed handler="cast handler \"add\"" err=negative`,
		`"typed server: cast arguments do not unmarshal; dropped" component=genserver server=typed handler="cast handler \"add\""`,
		`"typed server: no cast handler for the message; dropped" component=genserver server=typed msg={unknown_cast,1}`,
		`"typed server: no info handler for the message; dropped" component=genserver server=typed msg={unknown_info}`,
	} {
		if !strings.Contains(log, w) {
			t.Errorf("log has no line with %s; log:\n%s", w, log)
		}
	}
}

// TestTypedSignatureErrors: every bad handler is reported at registration,
// each naming the handler and the expected signature.
func TestTypedSignatureErrors(t *testing.T) {
	s := genserver.NewServer()
	s.Call("ok", func(string) int { return 0 })
	s.Call("put", func(sku string, c chan int) error { return nil })
	s.Call("fn_result", func() func() { return nil })
	s.Call("three", func() (int, int, error) { return 0, 0, nil })
	s.Call("not_a_func", 42)
	s.Call("", func() {})
	s.Call("proc_second", func(x int, p *genserver.Process) {})
	s.Call("variadic", func(xs ...int) {})
	s.Call("ok", func(string) string { return "" }) // same arity as the first
	s.Cast("reset", func() int { return 0 })
	s.Info("iface", func(e error) {})
	s.OnInit(func(int) {})
	wants := []string{
		`call handler "put": func(string, chan int) error: parameter 2: type chan int cannot hold an Erlang term; want func([*genserver.Process,] args...) [T | error | (T, error)]`,
		`call handler "fn_result": func() func(): result: type func() has no Erlang term; want func(`,
		`call handler "three": func() (int, int, error): results (int, int, error): want none, T, error or (T, error)`,
		`call handler "not_a_func": int: not a function`,
		`call handler "": func(): tag "" is not an atom`,
		`call handler "proc_second": func(int, *genserver.Process): parameter 2: *genserver.Process must be the first parameter`,
		`call handler "variadic": func(...int): variadic functions are not handlers`,
		`call handler "ok": a handler for 1 argument(s) is already added`,
		`cast handler "reset": func() int: a cast handler returns nothing or an error, not (int); want func([*genserver.Process,] args...) [error]`,
		`info handler "iface": func(error): parameter 1: type error is an interface with methods`,
		`init function: func(int); want func([*genserver.Process]) [error]`,
	}
	check := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("no error")
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error lacks %q; error:\n%v", w, err)
			}
		}
		if strings.Contains(err.Error(), `"ok": func(string) int`) {
			t.Errorf("the good handler is reported: %v", err)
		}
	}
	t.Run("Err", func(t *testing.T) { check(t, s.Err()) })
	t.Run("RegisterServer", func(t *testing.T) {
		n := localNode(t, nil)
		_, err := n.RegisterServer("bad", s)
		check(t, err)
		// The name is free again, for the corrected server.
		good := genserver.NewServer().Call("ok", func(string) int { return 1 })
		if _, err := n.RegisterServer("bad", good); err != nil {
			t.Fatalf("registering a good server under the name of the failed one: %v", err)
		}
		if r, err := n.Call(context.Background(), "bad", etf.Tuple{etf.Atom("ok"), []byte("x")}); err != nil || r != int64(1) {
			t.Fatalf("call the good server: %v, %v", r, err)
		}
	})
}

// TestTypedBadReplyFromBEAM: a reply that cannot be marshalled ends the
// server with {bad_reply, Text}; a BEAM caller exits with that reason at
// once (not after its timeout), and one log line names the server and the
// Go type.
func TestTypedBadReplyFromBEAM(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		logs := &testutil.SyncBuffer{}
		cfg := node.DefaultConfig()
		cfg.Name, cfg.Cookie = goName, node.Cookie(cookie)
		n := nodetest.Start(t, cfg, nil)
		s := genserver.NewServer().SetLogger(slog.New(slog.NewTextHandler(logs, nil)))
		s.Call("good", func() string { return "fine" })
		s.Call("bad", func() any { return make(chan int) })
		s.Call("bad_in_ok", func() (any, error) { return []any{1, func() {}}, nil })
		ex := beamtest.Start(t, rel, beamtest.Options{Name: uniq("ex") + "@127.0.0.1", Cookie: cookie, Elixir: true})
		for _, c := range []struct{ call, goType string }{{"bad", "chan int"}, {"bad_in_ok", "[]interface {}"}} {
			// Temporary: the crash must leave the name free for the next
			// case, not restart the server under it.
			if _, err := n.RegisterServerWith("typed", node.ServerOptions{Restart: node.Temporary}, s); err != nil {
				t.Fatal(err)
			}
			got := ex.Eval(t, fmt.Sprintf(`s = {:typed, :"%s"}
				"fine" = GenServer.call(s, :good)
				try do
				  GenServer.call(s, :%s, 30_000)
				catch
				  :exit, {reason, {GenServer, :call, _}} -> reason
				end`, goName, c.call))
			want := fmt.Sprintf(`{:bad_reply, "typed: cannot encode reply of Go type %s: `, c.goType)
			if !strings.HasPrefix(got, want) {
				t.Fatalf("%s: the caller exited with %s, want %s...", c.call, got, want)
			}
			line := fmt.Sprintf(`server=typed handler="call handler \"%s\"" go_type="%s"`, c.call, c.goType)
			testutil.Eventually(t, 10*time.Second, func() (bool, string) {
				return strings.Count(logs.String(), line) == 1, logs.String()
			})
		}
	})
}
