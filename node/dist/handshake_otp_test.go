package dist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"
	ergodist "github.com/ergo-services/ergo/proto/dist"

	"github.com/gonode/gonode/internal/beamtest"
)

// Handshakes with real BEAM nodes of the OTP matrix (25, 27, 29). The Go side
// is an ergo node with our Handshake and, until our own proto lands, ergo's
// stock proto with one handler: these tests prove the handshake, not what
// ergo's proto does after it (it loses OTP 26+ replies: docs/interop-notes.md).

// netKernel answers net_adm:ping's {is_auth, Node} call as OTP's net_kernel does.
type netKernel struct{ gen.Server }

func (netKernel) HandleCall(_ *gen.ServerProcess, _ gen.ServerFrom, msg etf.Term) (etf.Term, gen.ServerStatus) {
	if t, ok := msg.(etf.Tuple); ok && len(t) == 2 && t[0] == etf.Atom("is_auth") {
		return etf.Atom("yes"), gen.ServerStatusOK
	}
	return etf.Atom("error"), gen.ServerStatusOK
}

// ensureEPMD starts the host's epmd in the test's network namespace unless
// one (perhaps started by an erl node) already serves 127.0.0.1:4369.
func ensureEPMD(t *testing.T) {
	t.Helper()
	beamtest.RequireNetns(t)
	beamtest.RequireRelease(t, beamtest.Host, "epmd")
	up := func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:4369", time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	if up() {
		return
	}
	if out, err := exec.Command("epmd", "-daemon").CombinedOutput(); err != nil {
		t.Fatalf("epmd -daemon: %v: %s", err, out)
	}
	eventually(t, "epmd listens on 127.0.0.1:4369", func() (bool, string) { return up(), "not listening" })
}

// eventually polls cond every 20 ms for up to 20 s and fails the test with
// the last state cond reported if it never holds.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within 20s; last state: %s", what, state)
		}
		<-tick.C
	}
}

type goNode struct {
	node.Node
	hs   *Handshake
	logs *syncBuffer
	obs  *recordingObserver
}

// ergoConns is the handshake's Connections for a bare ergo node: the node
// is bound once it has started (the handshake is configured before). The
// node package has its own, over its Node.
type ergoConns struct{ n atomic.Pointer[node.Node] }

func (c *ergoConns) Bind(n node.Node) { c.n.Store(&n) }

func (c *ergoConns) Connected(peer string) bool {
	n := c.n.Load()
	return n != nil && slices.Contains((*n).Nodes(), peer)
}

// Disconnect closes the connection to peer and waits until ergo no longer
// lists it.
func (c *ergoConns) Disconnect(ctx context.Context, peer string) error {
	n := c.n.Load()
	if n == nil {
		return nil
	}
	if err := (*n).Disconnect(peer); err != nil && !errors.Is(err, lib.ErrNoRoute) {
		return fmt.Errorf("disconnect %s: %w", peer, err)
	}
	for c.Connected(peer) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the connection to %s is still up: %w", peer, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// startGoNode starts an ergo node with our handshake; wrap, if given, wraps
// the handshake ergo uses.
func startGoNode(t *testing.T, name, cookie string, mutate func(*HandshakeConfig), wrap ...func(*Handshake) node.HandshakeInterface) *goNode {
	t.Helper()
	ensureEPMD(t)
	logs := &syncBuffer{}
	obs := &recordingObserver{}
	conns := &ergoConns{}
	cfg := DefaultHandshakeConfig()
	cfg.Logger = newTestLogger(logs)
	cfg.Observer = obs
	cfg.Connections = conns
	if mutate != nil {
		mutate(&cfg)
	}
	hs, err := NewHandshake(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ergoHS node.HandshakeInterface = hs
	for _, w := range wrap {
		ergoHS = w(hs)
	}
	protoOpts := node.DefaultProtoOptions()
	protoOpts.NumHandlers = 1
	n, err := node.StartWithContext(context.Background(), name, cookie, node.Options{
		Handshake: ergoHS,
		Proto:     ergodist.CreateProto(protoOpts),
		Registrar: ergodist.CreateRegistrarWithLocalEPMD("127.0.0.1", 4369),
		Listeners: []node.Listener{{ListenBegin: 21000, ListenEnd: 29000}},
		Flags:     node.DefaultFlags(),
		System:    node.System{DisableAnonMetrics: true},
	})
	if err != nil {
		t.Fatalf("start ergo node %s: %v", name, err)
	}
	conns.Bind(n)
	t.Cleanup(func() {
		n.Stop()
		if err := n.WaitWithTimeout(10 * time.Second); err != nil {
			t.Errorf("ergo node %s did not stop: %v", name, err)
		}
		if t.Failed() {
			t.Logf("handshake log of %s:\n%s", name, logs.String())
		}
	})
	if _, err := n.Spawn("net_kernel", gen.ProcessOptions{}, &netKernel{}); err != nil {
		t.Fatalf("spawn net_kernel: %v", err)
	}
	return &goNode{Node: n, hs: hs, logs: logs, obs: obs}
}

func (g *goNode) connectedTo(peer string) (bool, string) {
	nodes := g.Nodes()
	return slices.Contains(nodes, peer), fmt.Sprintf("%s lists %v", g.Name(), nodes)
}

func (g *goNode) notConnectedTo(peer string) (bool, string) {
	ok, state := g.connectedTo(peer)
	return !ok, state
}

func erlHas(t *testing.T, e *beamtest.Node, list, peer string) (bool, string) {
	out := e.Eval(t, list+".")
	return strings.Contains(out, "'"+peer+"'"), fmt.Sprintf("%s: %s = %s", e.Name, list, out)
}

func startErl(t *testing.T, rel beamtest.Release, name, cookie string) *beamtest.Node {
	t.Helper()
	ensureEPMD(t)
	return beamtest.Start(t, rel, beamtest.Options{Name: name, Cookie: cookie})
}

// erlPing runs net_adm:ping on e with a bound, so a reply that ergo's stock
// proto drops cannot hang the test: pong, pang or timeout.
func erlPing(t *testing.T, e *beamtest.Node, peer string) string {
	return e.Eval(t, fmt.Sprintf(`Self = self(),
		spawn(fun() -> Self ! {ping_result, net_adm:ping('%s')} end),
		receive {ping_result, R} -> R after 10000 -> timeout end.`, peer))
}

func nodeName(base string, rel beamtest.Release) string {
	return base + "_" + rel.Name + "@127.0.0.1"
}

func TestHandshakeOTPConnect(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName, erlName := nodeName("go_conn", rel), nodeName("erl_conn", rel)
		g := startGoNode(t, goName, cookie, nil)
		e := startErl(t, rel, erlName, cookie)

		// Erlang -> Go.
		ping := erlPing(t, e, goName)
		if !g.obs.has(observation{DirectionIn, ResultOK}) {
			t.Fatalf("no successful incoming handshake; ping answered %s; observations %v", ping, g.obs.all())
		}
		eventually(t, "erl lists the Go node", func() (bool, string) { return erlHas(t, e, "nodes()", goName) })
		eventually(t, "Go lists the erl node", func() (bool, string) { return g.connectedTo(erlName) })
		if ping != "pong" {
			// With OTP 26+ ergo's stock proto encodes the reply reference
			// with 3 words (OTP 26+ uses 5) and the reply is lost: not the handshake's part.
			t.Logf("%s: net_adm:ping answered %s after a successful handshake", rel.Name, ping)
			if rel.Name == "otp25" {
				t.Errorf("net_adm:ping from OTP 25 answered %s, want pong", ping)
			}
		}

		// Erlang drops the connection and reconnects at once: the Go side may
		// still hold the old one (alive), and must take the new one.
		for i := range 3 {
			got := e.Eval(t, fmt.Sprintf("erlang:disconnect_node('%s'), net_kernel:connect_node('%s').", goName, goName))
			if got != "true" {
				t.Fatalf("round %d: reconnect from erl answered %s", i, got)
			}
			eventually(t, "erl lists the Go node after reconnecting", func() (bool, string) { return erlHas(t, e, "nodes()", goName) })
			eventually(t, "Go lists the erl node after erl reconnected", func() (bool, string) { return g.connectedTo(erlName) })
		}

		// Go drops the connection; Erlang reconnects.
		if err := g.Disconnect(erlName); err != nil {
			t.Fatalf("Go Disconnect: %v", err)
		}
		eventually(t, "erl notices the Go side closed", func() (bool, string) {
			ok, s := erlHas(t, e, "nodes()", goName)
			return !ok, s
		})
		if got := e.Eval(t, fmt.Sprintf("net_kernel:connect_node('%s').", goName)); got != "true" {
			t.Fatalf("reconnect from erl after the Go side closed answered %s", got)
		}
		eventually(t, "Go lists the erl node again", func() (bool, string) { return g.connectedTo(erlName) })

		// Erlang drops the connection; Go reconnects.
		e.Eval(t, fmt.Sprintf("erlang:disconnect_node('%s').", goName))
		eventually(t, "Go notices erl closed", func() (bool, string) { return g.notConnectedTo(erlName) })
		if err := g.Connect(erlName); err != nil {
			t.Fatalf("Go -> erl reconnect: %v\n%s", err, g.logs.String())
		}
		eventually(t, "erl lists the Go node after Go reconnected", func() (bool, string) { return erlHas(t, e, "nodes()", goName) })
		if !g.obs.has(observation{DirectionOut, ResultOK}) {
			t.Errorf("no successful outgoing handshake: %v", g.obs.all())
		}
		t.Logf("%s: %d incoming attempts found the old connection still up (alive)", rel.Name, strings.Count(g.logs.String(), "status=alive"))
	})
}

func TestHandshakeOTPGoFirst(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName, erlName := nodeName("go_first", rel), nodeName("erl_first", rel)
		e := startErl(t, rel, erlName, cookie)
		g := startGoNode(t, goName, cookie, nil)
		if err := g.Connect(erlName); err != nil {
			t.Fatalf("Go -> erl: %v\n%s", err, g.logs.String())
		}
		eventually(t, "erl lists the Go node", func() (bool, string) { return erlHas(t, e, "nodes()", goName) })
		if got := g.obs.all(); len(got) != 1 || got[0] != (observation{DirectionOut, ResultOK}) {
			t.Errorf("observations = %v, want one successful outgoing handshake", got)
		}
	})
}

func TestHandshakeOTPHidden(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName, erlName := nodeName("go_hidden", rel), nodeName("erl_hidden", rel)
		g := startGoNode(t, goName, cookie, func(c *HandshakeConfig) { c.Hidden = true })
		e := startErl(t, rel, erlName, cookie)
		if err := g.Connect(erlName); err != nil {
			t.Fatalf("Go -> erl: %v", err)
		}
		eventually(t, "erl lists the hidden Go node in nodes(hidden)", func() (bool, string) { return erlHas(t, e, "nodes(hidden)", goName) })
		if ok, state := erlHas(t, e, "nodes()", goName); ok {
			t.Errorf("a hidden node is listed in nodes(): %s", state)
		}
	})
}

func TestHandshakeOTPWrongCookie(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		goCookie, erlCookie := beamtest.RandomCookie(), beamtest.RandomCookie()
		goName, erlName := nodeName("go_cookie", rel), nodeName("erl_cookie", rel)
		g := startGoNode(t, goName, goCookie, nil)
		e := startErl(t, rel, erlName, erlCookie)

		// Erlang -> Go.
		if got := erlPing(t, e, goName); got != "pang" {
			t.Errorf("ping with a wrong cookie answered %s, want pang", got)
		}
		eventually(t, "the Go side reports a bad cookie", func() (bool, string) {
			return g.obs.has(observation{DirectionIn, ResultBadCookie}), fmt.Sprint(g.obs.all())
		})
		if l := g.logs.String(); !strings.Contains(l, "cookie mismatch") || !strings.Contains(l, "peer="+erlName) {
			t.Errorf("log lacks the cookie mismatch with %s:\n%s", erlName, l)
		}

		// Go -> Erlang, through the handshake directly to see its error.
		route, err := g.Resolve(erlName)
		if err != nil {
			t.Fatalf("resolve %s: %v", erlName, err)
		}
		conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(route.Port)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = g.hs.Start(conn.RemoteAddr(), conn, false, goCookie)
		conn.Close()
		if !errors.Is(err, ErrWrongCookie) {
			t.Fatalf("Start with a wrong cookie: %v, want ErrWrongCookie", err)
		}
		if !strings.Contains(err.Error(), erlName) {
			t.Errorf("error %q does not name the peer", err)
		}
		if err := g.Connect(erlName); err == nil {
			t.Errorf("ergo connected with a wrong cookie")
		}
		for _, c := range []string{goCookie, erlCookie} {
			mustNotContain(t, "error", err.Error(), c)
			mustNotContain(t, "log", g.logs.String(), c)
		}
		if ok, state := g.connectedTo(erlName); ok {
			t.Errorf("connected despite the wrong cookie: %s", state)
		}
	})
}

// TestHandshakeOTPSimultaneous connects both ways at the same moment, with
// the Go node's name greater than the erl node's and smaller, several rounds
// each: one connection must survive and both sides must list it.
func TestHandshakeOTPSimultaneous(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		erlName := nodeName("m_sim", rel)
		e := startErl(t, rel, erlName, cookie)
		for _, base := range []string{"z_go", "a_go"} { // greater, smaller than "m_sim"
			t.Run(base, func(t *testing.T) {
				goName := nodeName(base, rel)
				g := startGoNode(t, goName, cookie, nil)
				for round := range 3 {
					var wg sync.WaitGroup
					var erlGot string
					wg.Add(1)
					go func() {
						defer wg.Done()
						erlGot, _ = e.EvalE(fmt.Sprintf("net_kernel:connect_node('%s').", goName), 30*time.Second)
					}()
					done := g.hs.Dialing(erlName)
					goErr := g.Connect(erlName)
					done()
					wg.Wait()
					t.Logf("round %d: Go Connect: %v; erl connect_node: %s; we answered nok %d times, ok_simultaneous %d times so far", round, goErr, erlGot,
						strings.Count(g.logs.String(), "status=nok"), strings.Count(g.logs.String(), "status=ok_simultaneous"))
					eventually(t, "Go lists the erl node", func() (bool, string) { return g.connectedTo(erlName) })
					eventually(t, "erl lists the Go node", func() (bool, string) { return erlHas(t, e, "nodes()", goName) })
					// Tear down and wait until both sides agree before the next round.
					e.Eval(t, fmt.Sprintf("erlang:disconnect_node('%s').", goName))
					eventually(t, "Go drops the connection", func() (bool, string) { return g.notConnectedTo(erlName) })
					eventually(t, "erl drops the connection", func() (bool, string) {
						ok, s := erlHas(t, e, "nodes()", goName)
						return !ok, s
					})
				}
			})
		}
	})
}

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// gatedHandshake holds every Start until gate is closed: the outgoing TCP
// connection is open but our name is not sent yet.
type gatedHandshake struct {
	*Handshake
	gate chan struct{}
}

func (g gatedHandshake) Start(remote net.Addr, conn lib.NetReadWriter, tls bool, cookie string) (node.HandshakeDetails, error) {
	<-g.gate
	return g.Handshake.Start(remote, conn, tls, cookie)
}

// TestHandshakeOTPSimultaneousGated makes the two attempts overlap for sure:
// our outgoing connection is open (and marked with Dialing) while erl's
// attempt arrives; only then is our name sent. With our name greater we
// answer nok and our attempt wins; with it smaller we answer
// ok_simultaneous, erl's attempt wins and ours gives way.
func TestHandshakeOTPSimultaneousGated(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		erlName := nodeName("m_gate", rel)
		e := startErl(t, rel, erlName, cookie)
		tests := []struct {
			base         string
			in, out      ConnectResult
			goConnectErr bool
		}{
			{base: "z_gate", in: ResultRefused, out: ResultOK},
			{base: "a_gate", in: ResultOK, out: ResultRefused, goConnectErr: true},
		}
		for _, tt := range tests {
			t.Run(tt.base, func(t *testing.T) {
				goName := nodeName(tt.base, rel)
				gate := make(chan struct{})
				g := startGoNode(t, goName, cookie, nil, func(h *Handshake) node.HandshakeInterface { return gatedHandshake{h, gate} })
				done := g.hs.Dialing(erlName)
				defer done()
				goErr := make(chan error, 1)
				go func() { goErr <- g.Connect(erlName) }()
				erlGot := make(chan string, 1)
				go func() {
					r, err := e.EvalE(fmt.Sprintf("net_kernel:connect_node('%s').", goName), 30*time.Second)
					if err != nil {
						r = err.Error()
					}
					erlGot <- r
				}()
				eventually(t, "erl's attempt is answered", func() (bool, string) {
					return g.obs.has(observation{DirectionIn, tt.in}), fmt.Sprint(g.obs.all())
				})
				close(gate)
				gerr := <-goErr
				if got := <-erlGot; got != "true" {
					t.Errorf("erl connect_node answered %s, want true", got)
				}
				if tt.goConnectErr != (gerr != nil) {
					t.Errorf("Go Connect: %v", gerr)
				}
				eventually(t, "the Go attempt ends", func() (bool, string) {
					return g.obs.has(observation{DirectionOut, tt.out}), fmt.Sprint(g.obs.all())
				})
				eventually(t, "Go lists the erl node", func() (bool, string) { return g.connectedTo(erlName) })
				eventually(t, "erl lists the Go node", func() (bool, string) { return erlHas(t, e, "nodes()", goName) })
				// The surviving connection carries traffic: erl reaches our net_kernel.
				if got := e.Eval(t, fmt.Sprintf("net_kernel:connect_node('%s').", goName)); got != "true" {
					t.Errorf("erl connect_node after the race answered %s", got)
				}
				if got := g.obs.all(); len(got) != 2 {
					t.Errorf("observations = %v, want exactly one handshake each way", got)
				}
				e.Eval(t, fmt.Sprintf("erlang:disconnect_node('%s').", goName))
				eventually(t, "Go drops the connection", func() (bool, string) { return g.notConnectedTo(erlName) })
			})
		}
	})
}
