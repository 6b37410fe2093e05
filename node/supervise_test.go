package node_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
)

// flaky counts its Inits and, called with {exit, Reason}, ends with Reason:
// the atom normal as gen.ServerStatusStop, any other as an error status;
// ping answers pong.
type flaky struct {
	genserver.Server
	inits atomic.Int64
}

func (f *flaky) Init(*genserver.Process, ...etf.Term) error {
	f.inits.Add(1)
	return nil
}

func (f *flaky) HandleCall(_ *genserver.Process, _ gen.ServerFrom, m etf.Term) (etf.Term, gen.ServerStatus) {
	if t, ok := m.(etf.Tuple); ok && len(t) == 2 && t[0] == etf.Atom("exit") {
		if t[1] == "normal" {
			return nil, gen.ServerStatusStop
		}
		return nil, gen.ServerStatus(errors.New(t[1].(string)))
	}
	return etf.Atom("pong"), gen.ServerStatusOK
}

// crash makes the server registered as name exit with reason and waits for
// the call's end (the server does not reply).
func crash(t *testing.T, n *node.Node, name, reason string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := n.Call(ctx, name, etf.Tuple{etf.Atom("exit"), reason})
	if !errors.Is(err, genserver.ErrServerDown) {
		t.Fatalf("call {exit, %s}: %v, want the server down", reason, err)
	}
}

func ping(n *node.Node, name string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := n.Call(ctx, name, etf.Atom("ping"))
	return err == nil && v == etf.Atom("pong"), fmt.Sprintf("%v %v", v, err)
}

func TestRestartPolicies(t *testing.T) {
	beamtest.RequireNetns(t)
	rec := &eventRecorder{}
	gn, logs := startGoObserved(t, uniq("go")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie()), rec)
	cases := []struct {
		policy    node.Restart
		reason    string
		restarted bool
	}{
		{node.Permanent, "normal", true},
		{node.Permanent, "boom", true},
		{node.Transient, "boom", true},
		{node.Transient, "normal", false},
		{node.Transient, "shutdown", false},
		{node.Transient, "{shutdown,#{at => 1}}", false},
		{node.Temporary, "boom", false},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%v %s", c.policy, c.reason), func(t *testing.T) {
			name := fmt.Sprintf("flaky%d", i)
			f := &flaky{}
			if _, err := gn.RegisterServerWith(name, node.ServerOptions{Restart: c.policy}, f); err != nil {
				t.Fatal(err)
			}
			crash(t, gn, name, c.reason)
			if c.restarted {
				testutil.EventuallyNamed(t, 10*time.Second, "the server answers again", func() (bool, string) { return ping(gn, name) })
				if got := f.inits.Load(); got != 2 {
					t.Fatalf("Init ran %d times, want 2", got)
				}
				// The observer hears of it after the new process runs.
				testutil.EventuallyNamed(t, 10*time.Second, "the observer heard of it", func() (bool, string) {
					return rec.has(observed{"ServerRestarted", name, ""})
				})
				return
			}
			testutil.EventuallyNamed(t, 10*time.Second, "the log says it was not restarted", func() (bool, string) {
				n := countLines(logs.String(), "server exited; not restarted", "server="+name)
				return n == 1, fmt.Sprintf("%d lines", n)
			})
			if p := gn.Ergo().ProcessByName(name); p != nil {
				t.Fatalf("%s is registered again", name)
			}
			if got := f.inits.Load(); got != 1 {
				t.Fatalf("Init ran %d times, want 1", got)
			}
		})
	}
}

// Past MaxRestarts within Within the server is given up with one log line.
// Within is an hour so that the test does not depend on how fast it runs.
func TestRestartIntensity(t *testing.T) {
	beamtest.RequireNetns(t)
	rec := &eventRecorder{}
	gn, logs := startGoObserved(t, uniq("go")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie()), rec)
	f := &flaky{}
	opts := node.ServerOptions{MaxRestarts: 2, Within: time.Hour}
	if _, err := gn.RegisterServerWith("often", opts, f); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		crash(t, gn, "often", "boom")
		testutil.EventuallyNamed(t, 10*time.Second, fmt.Sprintf("restart %d", i+1), func() (bool, string) { return ping(gn, "often") })
	}
	crash(t, gn, "often", "boom")
	testutil.EventuallyNamed(t, 10*time.Second, "one log line: given up", func() (bool, string) {
		n := countLines(logs.String(), "given up", "server=often", "max_restarts=2")
		return n == 1, fmt.Sprintf("%d lines", n)
	})
	if p := gn.Ergo().ProcessByName("often"); p != nil {
		t.Fatal("often is registered again")
	}
	if got := f.inits.Load(); got != 3 {
		t.Fatalf("Init ran %d times, want 3", got)
	}
	restarts := 0
	for _, e := range rec.all() {
		if e == (observed{"ServerRestarted", "often", ""}) {
			restarts++
		}
	}
	// The give-up line follows both restarts' events.
	if restarts != 2 {
		t.Fatalf("%d ServerRestarted events, want 2", restarts)
	}
}

func TestServerOptionsRestartValidated(t *testing.T) {
	beamtest.RequireNetns(t)
	gn, _ := startGo(t, uniq("go")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie()))
	for _, o := range []node.ServerOptions{{Restart: 7}, {MaxRestarts: -1}, {Within: -time.Second}} {
		_, err := gn.RegisterServerWith("", o, &flaky{})
		if !errors.Is(err, node.ErrInvalidServerOptions) {
			t.Errorf("%+v: %v, want ErrInvalidServerOptions", o, err)
		}
	}
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
