package node_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
)

// observed is one Observer call: the method, the name it was given (a peer's,
// or for MailboxOverflow a process's) and its other argument.
type observed struct {
	method, name, arg string
}

// eventRecorder records every Observer call.
type eventRecorder struct {
	mu     sync.Mutex
	events []observed
}

func (r *eventRecorder) add(method, name, arg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, observed{method, name, arg})
}

func (r *eventRecorder) all() []observed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]observed(nil), r.events...)
}

// has reports whether e was observed, with all events for a failure message.
func (r *eventRecorder) has(e observed) (bool, string) {
	all := r.all()
	for _, got := range all {
		if got == e {
			return true, ""
		}
	}
	return false, fmt.Sprintf("no %+v among %+v", e, all)
}

func (r *eventRecorder) Connected(peer string, dir node.Direction) {
	r.add("Connected", peer, string(dir))
}
func (r *eventRecorder) ConnectFailed(peer string, dir node.Direction, result node.ConnectResult) {
	r.add("ConnectFailed", peer, string(dir)+" "+string(result))
}
func (r *eventRecorder) Disconnected(peer string, reason node.DisconnectReason) {
	r.add("Disconnected", peer, string(reason))
}
func (r *eventRecorder) MailboxOverflow(process string) { r.add("MailboxOverflow", process, "") }
func (r *eventRecorder) MessageDropped(peer string)     { r.add("MessageDropped", peer, "") }
func (r *eventRecorder) MalformedFrame(peer string)     { r.add("MalformedFrame", peer, "") }
func (r *eventRecorder) ServerRestarted(server string)  { r.add("ServerRestarted", server, "") }

// Every event the node reports names the peer it is about once the peer said
// its name: connections both ways, handshakes that fail on the cookie after
// the name, disconnects (for each reason a test can provoke quickly) and
// malformed frames. Metrics ignore the names;
// logs and debugging need them.
func TestObserverEventsNameThePeer(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		rec := &eventRecorder{}
		gn, _ := startGoObserved(t, goName, node.Cookie(cookie), rec)
		erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
		wait := func(e observed) {
			t.Helper()
			testutil.EventuallyNamed(t, 15*time.Second, fmt.Sprintf("%+v", e), func() (bool, string) { return rec.has(e) })
		}

		// Incoming: the BEAM connects, then closes the connection.
		if got := erl.Eval(t, fmt.Sprintf("net_adm:ping('%s').", goName)); got != "pong" {
			t.Fatalf("net_adm:ping = %s, want pong", got)
		}
		wait(observed{"Connected", erl.Name, "in"})
		erl.Eval(t, fmt.Sprintf("erlang:disconnect_node('%s').", goName))
		wait(observed{"Disconnected", erl.Name, "peer_closed"})

		// Outgoing, then a local disconnect.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := gn.Connect(ctx, erl.Name); err != nil {
			t.Fatal(err)
		}
		wait(observed{"Connected", erl.Name, "out"})
		if err := gn.Disconnect(erl.Name); err != nil {
			t.Fatal(err)
		}
		wait(observed{"Disconnected", erl.Name, "local"})

		// A BEAM with another cookie: both directions fail after the names
		// were exchanged.
		stranger := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: beamtest.RandomCookie()})
		if got := stranger.Eval(t, fmt.Sprintf("net_adm:ping('%s').", goName)); got != "pang" {
			t.Fatalf("net_adm:ping with another cookie = %s, want pang", got)
		}
		wait(observed{"ConnectFailed", stranger.Name, "in bad_cookie"})
		if err := gn.Connect(ctx, stranger.Name); err == nil {
			t.Fatal("Connect with another cookie succeeded")
		}
		wait(observed{"ConnectFailed", stranger.Name, "out bad_cookie"})

		// A malformed frame from a peer (one written in the test: no BEAM
		// sends one).
		raw := dialRawPeer(t, uniq("raw")+"@127.0.0.1", "127.0.0.1:"+strconv.Itoa(gn.ListenPort()), cookie)
		raw.send(t, encoded(t, etf.Tuple{int64(6), etf.Pid{Node: etf.Atom(raw.name), ID: 1, Creation: 7}, etf.Atom(""), etf.Atom("nobody")}), []byte{131, 200})
		wait(observed{"MalformedFrame", raw.name, ""})
		// A frame over MaxFrameSize is a protocol error: it ends the connection.
		if _, err := raw.nc.Write([]byte{0xff, 0xff, 0xff, 0xff}); err != nil {
			t.Fatal(err)
		}
		wait(observed{"Disconnected", raw.name, "error"})

		for _, e := range rec.all() {
			if e.name == "" {
				t.Errorf("%s called without a name: %+v (all: %+v)", e.method, e, rec.all())
			}
		}
	})
}
