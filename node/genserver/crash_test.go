package genserver_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/nodetest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
)

// crashServer answers {echo, X} with X; index panics with a runtime error
// (in HandleCall); a cast of index panics in HandleCast; {bad, Kind}
// returns a Go value the codec cannot encode.
type crashServer struct{ genserver.Server }

func (s *crashServer) HandleCall(p *genserver.Process, from gen.ServerFrom, m etf.Term) (etf.Term, gen.ServerStatus) {
	if m == etf.Atom("index") {
		return crashIndex(), gen.ServerStatusOK
	}
	t, _ := m.(etf.Tuple)
	if len(t) == 2 && t[0] == etf.Atom("echo") {
		return t[1], gen.ServerStatusOK
	}
	if len(t) == 2 && t[0] == etf.Atom("bad") {
		switch t[1] {
		case etf.Atom("map"):
			return map[string]int{"a": 1}, gen.ServerStatusOK
		case etf.Atom("chan"):
			return make(chan int), gen.ServerStatusOK
		case etf.Atom("nested"):
			return etf.Tuple{etf.Atom("ok"), struct{ A int }{1}}, gen.ServerStatusOK
		}
	}
	return etf.Atom("unknown"), gen.ServerStatusOK
}

func (s *crashServer) HandleCast(p *genserver.Process, m etf.Term) gen.ServerStatus {
	if m == etf.Atom("index") {
		crashIndex()
	}
	return gen.ServerStatusOK
}

// crashIndex indexes out of range: a runtime panic.
func crashIndex() etf.Term {
	s := []int{1}
	i := 3
	return s[i]
}

// countLines counts the log lines that contain every one of parts.
func countLines(log string, parts ...string) int {
	n := 0
next:
	for _, l := range strings.Split(log, "\n") {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		n++
	}
	return n
}

// A panic in a callback reaches an Elixir caller and an Elixir monitor as
// {:panic, "runtime error: ..."} (not the bare :panic), is logged once with
// its stack, the server's name and pid, and the server is restarted: the
// next call works.
func TestPanicReasonLogAndRestart(t *testing.T) {
	rel := beamtest.Host
	beamtest.RequireNetns(t)
	beamtest.RequireRelease(t, rel, "elixir")
	cookie := beamtest.RandomCookie()
	goName := uniq("go") + "@127.0.0.1"
	logs := &testutil.SyncBuffer{}
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = goName, node.Cookie(cookie)
	gn := nodetest.Start(t, cfg, logs)
	if _, err := gn.RegisterServer("crashy", &crashServer{}); err != nil {
		t.Fatal(err)
	}
	ex := beamtest.Start(t, rel, beamtest.Options{Name: uniq("ex") + "@127.0.0.1", Cookie: cookie, Elixir: true})
	srv := fmt.Sprintf(`{:crashy, :"%s"}`, goName)
	const want = `{:panic, "runtime error: index out of range [3] with length 1"}`

	t.Run("a GenServer.call exits with the panic's value", func(t *testing.T) {
		got := ex.Eval(t, fmt.Sprintf(`try do GenServer.call(%s, :index) catch :exit, {r, {GenServer, :call, _}} -> r end`, srv))
		if got != want {
			t.Fatalf("exit reason %s, want %s", got, want)
		}
		testutil.EventuallyNamed(t, 10*time.Second, "one log line with the stack", func() (bool, string) {
			n := countLines(logs.String(), "callback panicked", "process=crashy", "pid=", "callback=HandleCall", "index out of range", "stack=", "crash_test.go")
			return n == 1, fmt.Sprintf("%d lines", n)
		})
	})
	t.Run("the server is restarted", func(t *testing.T) {
		testutil.EventuallyNamed(t, 10*time.Second, "a call after the restart", func() (bool, string) {
			got := ex.Eval(t, fmt.Sprintf(`try do GenServer.call(%s, {:echo, 7}) catch :exit, r -> r end`, srv))
			return got == "7", got
		})
	})
	t.Run("a monitor sees the panic's value", func(t *testing.T) {
		got := ex.Eval(t, fmt.Sprintf(`ref = Process.monitor(%s); GenServer.cast(%s, :index)
			receive do {:DOWN, ^ref, :process, _, r} -> r after 10000 -> :no_down end`, srv, srv))
		if got != want {
			t.Fatalf("DOWN reason %s, want %s", got, want)
		}
		testutil.EventuallyNamed(t, 10*time.Second, "a second log line, from HandleCast", func() (bool, string) {
			n := countLines(logs.String(), "callback panicked", "process=crashy", "callback=HandleCast")
			return n == 1, fmt.Sprintf("%d lines", n)
		})
	})
}

// A reply the codec cannot encode (a Go map, a struct in a tuple, a chan)
// does not leave the caller waiting for its timeout: the server ends with
// {bad_reply, <<"name: cannot encode reply of Go type ...">>}, which the
// caller exits with at once, and one log line names the server and the type.
func TestBadReply(t *testing.T) {
	rel := beamtest.Host
	beamtest.RequireNetns(t)
	beamtest.RequireRelease(t, rel, "erl")
	cookie := beamtest.RandomCookie()
	goName := uniq("go") + "@127.0.0.1"
	logs := &testutil.SyncBuffer{}
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = goName, node.Cookie(cookie)
	gn := nodetest.Start(t, cfg, logs)
	erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
	cases := []struct{ kind, goType string }{
		{"map", "map[string]int"},
		{"chan", "chan int"},
		{"nested", "etf.Tuple"},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			name := uniq("bad")
			if _, err := gn.RegisterServerWith(name, node.ServerOptions{Restart: node.Temporary}, &crashServer{}); err != nil {
				t.Fatal(err)
			}
			// The call's own timeout (60 s) is far beyond the eval's: an
			// answer means the caller did not wait for it.
			got := erl.Eval(t, fmt.Sprintf(`case catch gen_server:call({%s, '%s'}, {bad, %s}, 60000) of
				{'EXIT', {{bad_reply, Text}, {gen_server, call, _}}} -> binary_to_list(Text); Other -> {returned, Other} end.`, name, goName, c.kind))
			want := fmt.Sprintf(`"%s: cannot encode reply of Go type %s: `, name, c.goType)
			if !strings.HasPrefix(got, want) {
				t.Fatalf("call = %s\nwant an exit {bad_reply, <<%s...>>}", got, want)
			}
			testutil.EventuallyNamed(t, 10*time.Second, "one log line", func() (bool, string) {
				n := countLines(logs.String(), "reply cannot be encoded", "process="+name, "type=")
				return n == 1, fmt.Sprintf("%d lines", n)
			})
		})
	}
}

// ergoShaped has HandleCall with ergo's gen.Server signature: it compiles
// (the method hides the one genserver.Server provides), and registering it
// fails with an error that names the method and the signature expected.
type ergoShaped struct{ genserver.Server }

func (s *ergoShaped) HandleCall(p *gen.ServerProcess, from gen.ServerFrom, m etf.Term) (etf.Term, gen.ServerStatus) {
	return m, gen.ServerStatusOK
}

// ergoInit has Init with ergo's gen.Server signature.
type ergoInit struct{ genserver.Server }

func (s *ergoInit) Init(p *gen.ServerProcess, args ...etf.Term) error { return nil }

type valueShaped struct{ genserver.Server }

func TestWrongSignatureNamed(t *testing.T) {
	beamtest.RequireNetns(t)
	gn := startGo(t, uniq("go")+"@127.0.0.1", beamtest.RandomCookie())
	cases := []struct {
		name string
		srv  gen.ProcessBehavior
		want []string
	}{
		{"ergo's HandleCall", &ergoShaped{}, []string{
			"*genserver_test.ergoShaped",
			"method HandleCall has signature HandleCall(*gen.ServerProcess, gen.ServerFrom, etf.Term) (etf.Term, gen.ServerStatus)",
			"want HandleCall(*genserver.Process, gen.ServerFrom, etf.Term) (etf.Term, gen.ServerStatus)",
		}},
		{"ergo's Init", &ergoInit{}, []string{
			"method Init has signature Init(*gen.ServerProcess, ...etf.Term) error",
			"want Init(*genserver.Process, ...etf.Term) error",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := gn.RegisterServer("", c.srv)
			if !errors.Is(err, genserver.ErrNotBehavior) {
				t.Fatalf("RegisterServer = %v, want ErrNotBehavior", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not say %q", err, w)
				}
			}
		})
	}
	t.Run("CheckBehavior of a value whose methods need a pointer", func(t *testing.T) {
		err := genserver.CheckBehavior(valueShaped{})
		if err == nil || !strings.Contains(err.Error(), "pointer receiver: pass a *genserver_test.valueShaped") {
			t.Fatalf("CheckBehavior = %v", err)
		}
		if err := genserver.CheckBehavior(&valueShaped{}); err != nil {
			t.Fatalf("CheckBehavior(pointer) = %v", err)
		}
	})
}

// The loop path (a local caller's message goes through ergo's mailbox to
// the process goroutine) ends a panicking callback the same way: the
// caller's DownError carries {panic, <<"...">>}.
func TestPanicReasonLocalCaller(t *testing.T) {
	beamtest.RequireNetns(t)
	logs := &testutil.SyncBuffer{}
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = uniq("go")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie())
	gn := nodetest.Start(t, cfg, logs)
	if _, err := gn.RegisterServerWith("local_crashy", node.ServerOptions{Restart: node.Temporary}, &crashServer{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := gn.Call(ctx, "local_crashy", etf.Atom("index"))
	var down *genserver.DownError
	if !errors.As(err, &down) {
		t.Fatalf("Call = %v, want a *genserver.DownError", err)
	}
	want := etf.Tuple{etf.Atom("panic"), []byte("runtime error: index out of range [3] with length 1")}
	if !reflect.DeepEqual(down.Term(), want) {
		t.Fatalf("reason %#v, want %#v", down.Term(), want)
	}
	testutil.EventuallyNamed(t, 10*time.Second, "one log line", func() (bool, string) {
		n := countLines(logs.String(), "callback panicked", "process=local_crashy", "stack=")
		return n == 1, fmt.Sprintf("%d lines", n)
	})
}

// terminatePanics panics in Terminate.
type terminatePanics struct{ crashServer }

func (s *terminatePanics) Terminate(*genserver.Process, string) { panic("in terminate") }

// A panic in Terminate is logged like a callback's, and the process's exit
// reason stays the one it was ending with.
func TestPanicInTerminate(t *testing.T) {
	beamtest.RequireNetns(t)
	logs := &testutil.SyncBuffer{}
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = uniq("go")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie())
	gn := nodetest.Start(t, cfg, logs)
	if _, err := gn.RegisterServerWith("term_crashy", node.ServerOptions{Restart: node.Temporary}, &terminatePanics{}); err != nil {
		t.Fatal(err)
	}
	mon, err := gn.Monitor("term_crashy")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := gn.Call(ctx, "term_crashy", etf.Atom("index")); !errors.Is(err, genserver.ErrServerDown) {
		t.Fatalf("Call = %v, want the server down", err)
	}
	d := testutil.Receive(t, mon.Down(), 10*time.Second)
	if tu, ok := d.Reason.(etf.Tuple); !ok || len(tu) != 2 || tu[0] != etf.Atom("panic") {
		t.Fatalf("DOWN reason %s, want the HandleCall panic's", d.ReasonText())
	}
	testutil.EventuallyNamed(t, 10*time.Second, "a log line for each panic", func() (bool, string) {
		n1 := countLines(logs.String(), "callback panicked", "process=term_crashy", "callback=HandleCall")
		n2 := countLines(logs.String(), "callback panicked", "process=term_crashy", "callback=Terminate", "in terminate")
		return n1 == 1 && n2 == 1, fmt.Sprintf("%d HandleCall, %d Terminate lines", n1, n2)
	})
}
