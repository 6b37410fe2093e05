package dist

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"
	"go.uber.org/goleak"

	"github.com/gonode/gonode/node/term"
)

const (
	ptLocal  = "go@127.0.0.1"
	ptRemote = "erl@127.0.0.1"
)

var (
	ptLocalPid  = etf.Pid{Node: ptLocal, ID: 1001, Creation: 3}
	ptRemotePid = etf.Pid{Node: ptRemote, ID: 77, Creation: 9}
	ptRef       = etf.Ref{Node: ptRemote, Creation: 9, ID: [5]uint32{1, 2, 3, 4, 5}}
)

// ptCall is one call the fake router received.
type ptCall struct {
	op   string
	args []any
}

func (c ptCall) String() string { return fmt.Sprintf("%s%v", c.op, c.args) }

// ptRouter is an in-memory node.CoreRouter recording every call. Like
// ergo's, RouteUnlink calls the connection's Unlink for a remote pidB.
type ptRouter struct {
	calls   chan ptCall
	conn    atomic.Pointer[conn]
	procsMu sync.Mutex
	procs   map[etf.Pid]gen.Process
}

func newPTRouter() *ptRouter { return &ptRouter{calls: make(chan ptCall, 1<<17)} }

func (r *ptRouter) rec(op string, args ...any) error {
	r.calls <- ptCall{op, args}
	return nil
}

func (r *ptRouter) RouteSend(from etf.Pid, to etf.Pid, message etf.Term) error {
	return r.rec("Send", from, to, message)
}
func (r *ptRouter) RouteSendReg(from etf.Pid, to gen.ProcessID, message etf.Term) error {
	return r.rec("SendReg", from, to, message)
}
func (r *ptRouter) RouteSendAlias(from etf.Pid, to etf.Alias, message etf.Term) error {
	return r.rec("SendAlias", from, to, message)
}
func (r *ptRouter) RouteSpawnRequest(node string, behaviorName string, request gen.RemoteSpawnRequest, args ...etf.Term) error {
	r.rec("SpawnRequest", node, behaviorName, request, args)
	return lib.ErrBehaviorUnknown
}
func (r *ptRouter) RouteSpawnReply(to etf.Pid, ref etf.Ref, result etf.Term) error {
	return r.rec("SpawnReply", to, ref, result)
}
func (r *ptRouter) RouteLink(a, b etf.Pid) error { return r.rec("Link", a, b) }
func (r *ptRouter) RouteUnlink(a, b etf.Pid) error {
	r.rec("Unlink", a, b)
	if c := r.conn.Load(); c != nil && string(b.Node) != ptLocal {
		return c.Unlink(a, b)
	}
	return nil
}
func (r *ptRouter) RouteExit(to, terminated etf.Pid, reason string) error {
	return r.rec("Exit", to, terminated, reason)
}
func (r *ptRouter) RouteMonitorReg(by etf.Pid, process gen.ProcessID, ref etf.Ref) error {
	return r.rec("MonitorReg", by, process, ref)
}
func (r *ptRouter) RouteMonitor(by, process etf.Pid, ref etf.Ref) error {
	return r.rec("Monitor", by, process, ref)
}
func (r *ptRouter) RouteDemonitor(by etf.Pid, ref etf.Ref) error { return r.rec("Demonitor", by, ref) }
func (r *ptRouter) RouteMonitorExitReg(terminated gen.ProcessID, reason string, ref etf.Ref) error {
	return r.rec("MonitorExitReg", terminated, reason, ref)
}
func (r *ptRouter) RouteMonitorExit(terminated etf.Pid, reason string, ref etf.Ref) error {
	return r.rec("MonitorExit", terminated, reason, ref)
}
func (r *ptRouter) RouteNodeDown(name string, disconnect *node.ProxyDisconnect) {
	r.rec("NodeDown", name)
}
func (r *ptRouter) RouteProxyConnectRequest(node.ConnectionInterface, node.ProxyConnectRequest) error {
	return lib.ErrUnsupported
}
func (r *ptRouter) RouteProxyConnectReply(node.ConnectionInterface, node.ProxyConnectReply) error {
	return lib.ErrUnsupported
}
func (r *ptRouter) RouteProxyConnectCancel(node.ConnectionInterface, node.ProxyConnectCancel) error {
	return lib.ErrUnsupported
}
func (r *ptRouter) RouteProxyDisconnect(node.ConnectionInterface, node.ProxyDisconnect) error {
	return lib.ErrUnsupported
}
func (r *ptRouter) RouteProxy(node.ConnectionInterface, string, *lib.Buffer) error {
	return lib.ErrUnsupported
}

func (r *ptRouter) next(t *testing.T) ptCall {
	t.Helper()
	select {
	case c := <-r.calls:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no router call within 10s")
		return ptCall{}
	}
}

// ptObserver counts the Observer events.
type ptObserver struct {
	msgsIn, msgsOut, bytesIn, bytesOut, dropped atomic.Int64

	mu       sync.Mutex
	dropErrs []error            // FrameDropped's errors
	reasons  []DisconnectReason // Disconnected's reasons
}

func (o *ptObserver) Traffic(_ string, dir Direction, messages, bytes int) {
	if dir == DirectionIn {
		o.msgsIn.Add(int64(messages))
		o.bytesIn.Add(int64(bytes))
		return
	}
	o.msgsOut.Add(int64(messages))
	o.bytesOut.Add(int64(bytes))
}
func (o *ptObserver) FrameDropped(_ string, err error) {
	o.dropped.Add(1)
	o.mu.Lock()
	o.dropErrs = append(o.dropErrs, err)
	o.mu.Unlock()
}
func (o *ptObserver) MessageDropped(string) {}
func (o *ptObserver) Disconnected(_ string, reason DisconnectReason) {
	o.mu.Lock()
	o.reasons = append(o.reasons, reason)
	o.mu.Unlock()
}

// disconnects returns the reasons Disconnected was called with, in order.
func (o *ptObserver) disconnects() []DisconnectReason {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.reasons)
}

// ptHarness is a connection served over net.Pipe; the test plays the peer
// on the other end.
type ptHarness struct {
	c      *conn
	peer   net.Conn
	router *ptRouter
	obs    *ptObserver
	frames chan []byte // frames the connection wrote (ticks included)
	served chan struct{}
	asm    *assembler
}

func ptStart(t *testing.T, cfg ProtoConfig, flags Flags) *ptHarness {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	local, remote := net.Pipe()
	h := &ptHarness{peer: remote, router: newPTRouter(), obs: &ptObserver{}, frames: make(chan []byte, 1<<17),
		served: make(chan struct{}), asm: newAssembler(1 << 30)}
	cfg.Observer = h.obs
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := NewProto(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := p.Init(context.Background(), local, ptLocal, node.HandshakeDetails{Name: ptRemote,
		Custom: Peer{Name: ptRemote, Ours: flags, Theirs: flags, Creation: 9}})
	if err != nil {
		t.Fatal(err)
	}
	h.c = ci.(*conn)
	h.router.conn.Store(h.c)
	go func() {
		defer close(h.served)
		p.Serve(ci, h.router)
		p.Terminate(ci)
	}()
	h.collectFrames(t, remote, 1<<30, ignore)
	return h
}

// write sends a frame to the connection as the peer.
// collectFrames puts every frame the connection writes to remote (up to
// maxFrame bytes) on h.frames; at the test's end it closes remote, waits
// for Serve and the reader, and checks that no goroutine is left but those
// in ignore.
func (h *ptHarness) collectFrames(t *testing.T, remote net.Conn, maxFrame int, ignore goleak.Option) {
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		fr := newFrameReader(remote, 4096, maxFrame)
		for {
			b, _, err := fr.next()
			if err != nil {
				return
			}
			h.frames <- bytes.Clone(b)
		}
	}()
	t.Cleanup(func() {
		remote.Close()
		<-h.served
		<-readDone
		goleak.VerifyNone(t, ignore)
	})
}

func (h *ptHarness) write(t *testing.T, body []byte) {
	t.Helper()
	if _, err := h.peer.Write(ptFrame(body...)); err != nil {
		t.Fatalf("peer write: %v", err)
	}
}

// passThrough encodes a pass-through frame body of control and payload.
func ptPassThrough(t *testing.T, control etf.Term, payload ...etf.Term) []byte {
	t.Helper()
	b := []byte{tagPassThrough, tagVersion}
	b, err := term.Encode(b, control)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range payload {
		b = append(b, tagVersion)
		if b, err = term.Encode(b, p); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// nextMessage returns the next distribution message the connection wrote,
// skipping ticks and reassembling fragments.
func (h *ptHarness) nextMessage(t *testing.T) (etf.Tuple, etf.Term) {
	t.Helper()
	for {
		var b []byte
		select {
		case b = <-h.frames:
		case <-time.After(10 * time.Second):
			t.Fatal("the connection wrote nothing within 10s")
		}
		if len(b) == 0 {
			continue
		}
		msg, ok, err := h.asm.feed(b, false)
		if err != nil {
			t.Fatalf("connection wrote a bad frame: %v", err)
		}
		if !ok {
			continue
		}
		ctrl, payload, _, err := decodeMessage(msg, nil)
		if err != nil {
			t.Fatalf("connection wrote a bad message: %v", err)
		}
		return ctrl.(etf.Tuple), payload
	}
}

func ptFlags() Flags { return DefaultHandshakeFlags }

func TestProtoConfigValidate(t *testing.T) {
	if err := DefaultProtoConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := ProtoConfig{NetTickTime: time.Millisecond, MaxFrameSize: 10, FragmentSize: 1, MaxQueueBytes: 0,
		DecodeBudgetFactor: 0, DecodeBudgetFloor: -1}
	err := bad.Validate()
	for _, field := range []string{"NetTickTime", "MaxFrameSize", "FragmentSize", "MaxQueueBytes", "DecodeBudgetFactor", "DecodeBudgetFloor"} {
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(field)) {
			t.Errorf("Validate() = %v, want a problem with %s", err, field)
		}
	}
	if _, err := NewProto(bad); err == nil {
		t.Fatal("NewProto accepted an invalid config")
	}
}

func TestConnRoutesIncoming(t *testing.T) {
	shutdownFoo := etf.Tuple{etf.Atom("shutdown"), etf.Atom("foo")}
	tests := []struct {
		name    string
		control etf.Tuple
		payload []etf.Term
		want    string
	}{
		{"SEND", etf.Tuple{int64(opSend), etf.Atom(""), ptLocalPid}, []etf.Term{etf.Atom("hi")},
			fmt.Sprint(ptCall{"Send", []any{etf.Pid{}, ptLocalPid, etf.Atom("hi")}})},
		{"SEND_TT", etf.Tuple{int64(opSendTT), etf.Atom(""), ptLocalPid, etf.Atom("token")}, []etf.Term{int64(1)},
			fmt.Sprint(ptCall{"Send", []any{etf.Pid{}, ptLocalPid, int64(1)}})},
		{"SEND_SENDER", etf.Tuple{int64(opSendSender), ptRemotePid, ptLocalPid}, []etf.Term{[]byte("bin")},
			fmt.Sprint(ptCall{"Send", []any{ptRemotePid, ptLocalPid, []byte("bin")}})},
		{"REG_SEND", etf.Tuple{int64(opRegSend), ptRemotePid, etf.Atom(""), etf.Atom("net_kernel")}, []etf.Term{etf.Atom("x")},
			fmt.Sprint(ptCall{"SendReg", []any{ptRemotePid, gen.ProcessID{Name: "net_kernel", Node: ptLocal}, etf.Atom("x")}})},
		{"ALIAS_SEND", etf.Tuple{int64(opAliasSend), ptRemotePid, ptRef}, []etf.Term{etf.Atom("r")},
			fmt.Sprint(ptCall{"SendAlias", []any{ptRemotePid, etf.Alias(ptRef), etf.Atom("r")}})},
		{"LINK", etf.Tuple{int64(opLink), ptRemotePid, ptLocalPid}, nil,
			fmt.Sprint(ptCall{"Link", []any{ptRemotePid, ptLocalPid}})},
		{"EXIT with a structured reason", etf.Tuple{int64(opExit), ptRemotePid, ptLocalPid, shutdownFoo}, nil,
			fmt.Sprint(ptCall{"Exit", []any{ptLocalPid, ptRemotePid, "{shutdown,foo}"}})},
		{"PAYLOAD_EXIT", etf.Tuple{int64(opPayloadExit), ptRemotePid, ptLocalPid}, []etf.Term{etf.Atom("normal")},
			fmt.Sprint(ptCall{"Exit", []any{ptLocalPid, ptRemotePid, "normal"}})},
		{"EXIT_TT", etf.Tuple{int64(opExitTT), ptRemotePid, ptLocalPid, etf.Atom("tok"), etf.Atom("boom")}, nil,
			fmt.Sprint(ptCall{"Exit", []any{ptLocalPid, ptRemotePid, "boom"}})},
		{"MONITOR_P by pid", etf.Tuple{int64(opMonitorP), ptRemotePid, ptLocalPid, ptRef}, nil,
			fmt.Sprint(ptCall{"Monitor", []any{ptRemotePid, ptLocalPid, ptRef}})},
		{"MONITOR_P by name", etf.Tuple{int64(opMonitorP), ptRemotePid, etf.Atom("srv"), ptRef}, nil,
			fmt.Sprint(ptCall{"MonitorReg", []any{ptRemotePid, gen.ProcessID{Name: "srv", Node: ptLocal}, ptRef}})},
		{"DEMONITOR_P", etf.Tuple{int64(opDemonitorP), ptRemotePid, ptLocalPid, ptRef}, nil,
			fmt.Sprint(ptCall{"Demonitor", []any{ptRemotePid, ptRef}})},
		{"MONITOR_P_EXIT", etf.Tuple{int64(opMonitorPExit), ptRemotePid, ptLocalPid, ptRef, shutdownFoo}, nil,
			fmt.Sprint(ptCall{"MonitorExit", []any{ptRemotePid, "{shutdown,foo}", ptRef}})},
		{"PAYLOAD_MONITOR_P_EXIT by name", etf.Tuple{int64(opPayloadMonitorPExit), etf.Atom("srv"), ptLocalPid, ptRef}, []etf.Term{etf.Atom("noproc")},
			fmt.Sprint(ptCall{"MonitorExitReg", []any{gen.ProcessID{Name: "srv", Node: ptRemote}, "noproc", ptRef}})},
		{"SPAWN_REPLY", etf.Tuple{int64(opSpawnReply), ptRef, ptLocalPid, int64(0), ptRemotePid}, nil,
			fmt.Sprint(ptCall{"SpawnReply", []any{ptLocalPid, ptRef, ptRemotePid}})},
	}
	h := ptStart(t, DefaultProtoConfig(), ptFlags())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.write(t, ptPassThrough(t, tt.control, tt.payload...))
			if got := h.router.next(t).String(); got != tt.want {
				t.Fatalf("router got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestConnSpawnRequestRefusedGetsErrorReply(t *testing.T) {
	h := ptStart(t, DefaultProtoConfig(), ptFlags())
	mfa := etf.Tuple{etf.Atom("mod"), etf.Atom("fun"), int64(1)}
	h.write(t, ptPassThrough(t, etf.Tuple{int64(opSpawnRequest), ptRef, ptRemotePid, ptRemotePid, mfa,
		etf.List{etf.Atom("monitor"), etf.Tuple{etf.Atom("name"), etf.Atom("n")}}}, etf.List{int64(5)}))
	call := h.router.next(t)
	req := call.args[2].(gen.RemoteSpawnRequest)
	if call.op != "SpawnRequest" || call.args[1] != "mod" || req.Options.Function != "fun" || req.Options.Name != "n" || req.Options.Monitor != ptRef {
		t.Fatalf("router got %v", call)
	}
	ctrl, _ := h.nextMessage(t)
	want := fmt.Sprint(etf.Tuple{int64(opSpawnReply), ptRef, ptRemotePid, int64(0), etf.Atom("notsup")})
	if fmt.Sprint(ctrl) != want {
		t.Fatalf("reply %v, want %s", ctrl, want)
	}
}

// An UNLINK_ID from the peer is acknowledged before anything else, and the
// link is removed from the local side, so ergo drops both of its entries;
// the Unlink ergo then calls must not send anything back.
func TestConnUnlinkIDFromPeer(t *testing.T) {
	h := ptStart(t, DefaultProtoConfig(), ptFlags())
	h.write(t, ptPassThrough(t, etf.Tuple{int64(opUnlinkID), int64(12345), ptRemotePid, ptLocalPid}))
	if got, want := h.router.next(t).String(), fmt.Sprint(ptCall{"Unlink", []any{ptLocalPid, ptRemotePid}}); got != want {
		t.Fatalf("router got %s, want %s", got, want)
	}
	ctrl, _ := h.nextMessage(t)
	if want := fmt.Sprint(etf.Tuple{int64(opUnlinkIDAck), int64(12345), ptLocalPid, ptRemotePid}); fmt.Sprint(ctrl) != want {
		t.Fatalf("first message %v, want the ack %s", ctrl, want)
	}
	// Nothing else was sent for the unlink: the next message is this one.
	if err := h.c.Link(ptLocalPid, ptRemotePid); err != nil {
		t.Fatal(err)
	}
	ctrl, _ = h.nextMessage(t)
	if ctrl[0] != int64(opLink) {
		t.Fatalf("after the ack the connection sent %v, want only the LINK", ctrl)
	}
	// A local unlink sends UNLINK_ID, never the old UNLINK.
	if err := h.c.Unlink(ptLocalPid, ptRemotePid); err != nil {
		t.Fatal(err)
	}
	ctrl, _ = h.nextMessage(t)
	if len(ctrl) != 4 || ctrl[0] != int64(opUnlinkID) || ctrl[2] != ptLocalPid || ctrl[3] != ptRemotePid {
		t.Fatalf("Unlink sent %v, want UNLINK_ID", ctrl)
	}
}

func TestConnUnlinkWithoutUnlinkID(t *testing.T) {
	h := ptStart(t, DefaultProtoConfig(), ptFlags()&^FlagUnlinkID)
	if err := h.c.Unlink(ptLocalPid, ptRemotePid); err != nil {
		t.Fatal(err)
	}
	ctrl, _ := h.nextMessage(t)
	if want := fmt.Sprint(etf.Tuple{int64(opUnlink), ptLocalPid, ptRemotePid}); fmt.Sprint(ctrl) != want {
		t.Fatalf("Unlink sent %v, want %s", ctrl, want)
	}
}

func TestConnOutgoing(t *testing.T) {
	h := ptStart(t, DefaultProtoConfig(), ptFlags())
	shutdownFoo := etf.Tuple{etf.Atom("shutdown"), etf.Atom("foo")}
	proc := ptProcess{self: ptLocalPid}
	tests := []struct {
		name        string
		do          func() error
		wantCtrl    etf.Tuple
		wantPayload etf.Term
	}{
		{"Send uses SEND_SENDER", func() error { return h.c.Send(proc, ptRemotePid, etf.Atom("m")) },
			etf.Tuple{int64(opSendSender), ptLocalPid, ptRemotePid}, etf.Atom("m")},
		{"SendReg", func() error { return h.c.SendReg(proc, gen.ProcessID{Name: "srv", Node: ptRemote}, int64(7)) },
			etf.Tuple{int64(opRegSend), ptLocalPid, etf.Atom(""), etf.Atom("srv")}, int64(7)},
		{"SendAlias keeps a 5-word reference", func() error { return h.c.SendAlias(proc, etf.Alias(ptRef), etf.Atom("reply")) },
			etf.Tuple{int64(opAltactSigSend), int64(altactAlias), ptLocalPid, ptRef}, etf.Atom("reply")},
		{"LinkExit carries the structured reason", func() error { return h.c.LinkExit(ptRemotePid, ptLocalPid, "{shutdown,foo}") },
			etf.Tuple{int64(opPayloadExit), ptLocalPid, ptRemotePid}, shutdownFoo},
		{"MonitorExit", func() error { return h.c.MonitorExit(ptRemotePid, ptLocalPid, "killed", ptRef) },
			etf.Tuple{int64(opPayloadMonitorPExit), ptLocalPid, ptRemotePid, ptRef}, etf.Atom("killed")},
		{"MonitorExitReg", func() error {
			return h.c.MonitorExitReg(ptRemotePid, gen.ProcessID{Name: "srv", Node: ptLocal}, "some text", ptRef)
		}, etf.Tuple{int64(opPayloadMonitorPExit), etf.Atom("srv"), ptRemotePid, ptRef}, etf.Atom("some text")},
		{"Monitor", func() error { return h.c.Monitor(ptLocalPid, ptRemotePid, ptRef) },
			etf.Tuple{int64(opMonitorP), ptLocalPid, ptRemotePid, ptRef}, nil},
		{"MonitorReg", func() error { return h.c.MonitorReg(ptLocalPid, gen.ProcessID{Name: "srv", Node: ptRemote}, ptRef) },
			etf.Tuple{int64(opMonitorP), ptLocalPid, etf.Atom("srv"), ptRef}, nil},
		{"Demonitor", func() error { return h.c.Demonitor(ptLocalPid, ptRemotePid, ptRef) },
			etf.Tuple{int64(opDemonitorP), ptLocalPid, ptRemotePid, ptRef}, nil},
		{"SpawnReply", func() error { return h.c.SpawnReply(ptRemotePid, ptRef, ptLocalPid) },
			etf.Tuple{int64(opSpawnReply), ptRef, ptRemotePid, int64(0), ptLocalPid}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); err != nil {
				t.Fatal(err)
			}
			ctrl, payload := h.nextMessage(t)
			if fmt.Sprint(ctrl) != fmt.Sprint(tt.wantCtrl) || fmt.Sprint(payload) != fmt.Sprint(tt.wantPayload) {
				t.Fatalf("sent %v + %v\nwant %v + %v", ctrl, payload, tt.wantCtrl, tt.wantPayload)
			}
		})
	}
	if err := h.c.ProxyConnectRequest(node.ProxyConnectRequest{}); !errors.Is(err, lib.ErrUnsupported) {
		t.Fatalf("ProxyConnectRequest = %v, want lib.ErrUnsupported", err)
	}
}

func TestConnOutgoingWithoutPayloadFlags(t *testing.T) {
	h := ptStart(t, DefaultProtoConfig(), ptFlags()&^(FlagExitPayload|FlagSendSender))
	proc := ptProcess{self: ptLocalPid}
	if err := h.c.Send(proc, ptRemotePid, etf.Atom("m")); err != nil {
		t.Fatal(err)
	}
	if ctrl, _ := h.nextMessage(t); fmt.Sprint(ctrl) != fmt.Sprint(etf.Tuple{int64(opSend), etf.Atom(""), ptRemotePid}) {
		t.Fatalf("Send sent %v", ctrl)
	}
	if err := h.c.LinkExit(ptRemotePid, ptLocalPid, "{shutdown,foo}"); err != nil {
		t.Fatal(err)
	}
	want := etf.Tuple{int64(opExit), ptLocalPid, ptRemotePid, etf.Tuple{etf.Atom("shutdown"), etf.Atom("foo")}}
	if ctrl, _ := h.nextMessage(t); fmt.Sprint(ctrl) != fmt.Sprint(want) {
		t.Fatalf("LinkExit sent %v, want %v", ctrl, want)
	}
}

// Messages are delivered in order both ways; large ones are fragmented
// out and reassembled in; the counters see all of them.
func TestConnOrderAndFragments(t *testing.T) {
	cfg := DefaultProtoConfig()
	cfg.FragmentSize = 1000
	h := ptStart(t, cfg, ptFlags())
	proc := ptProcess{self: ptLocalPid}
	const n = 5000
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	go func() {
		for i := 0; i < n; i++ {
			var msg etf.Term = int64(i)
			if i%1000 == 0 {
				msg = big
			}
			if err := h.c.Send(proc, ptRemotePid, msg); err != nil {
				return
			}
		}
	}()
	fragments := 0
	for i := 0; i < n; i++ {
		_, payload := h.nextMessage(t)
		if i%1000 == 0 {
			if !bytes.Equal(payload.([]byte), big) {
				t.Fatalf("message %d: %d bytes, want the 1 MiB binary", i, len(payload.([]byte)))
			}
			fragments++
			continue
		}
		if payload != int64(i) {
			t.Fatalf("message %d arrived as %v", i, payload)
		}
	}
	// Incoming: the same stream from the peer, the big ones fragmented.
	var seq uint64
	go func() {
		for i := 0; i < n; i++ {
			var msg etf.Term = int64(i)
			if i%1000 == 0 {
				msg = big
			}
			body := ptPassThrough(t, etf.Tuple{int64(opSendSender), ptRemotePid, ptLocalPid}, msg)
			if i%1000 == 0 {
				seq++
				ctrl, _ := term.Encode(nil, etf.Tuple{int64(opSendSender), ptRemotePid, ptLocalPid})
				pay, _ := term.Encode(nil, msg)
				if _, err := h.peer.Write(fragmentFrames(nil, seq, 4000, ctrl, pay)); err != nil {
					return
				}
				continue
			}
			if _, err := h.peer.Write(ptFrame(body...)); err != nil {
				return
			}
		}
	}()
	for i := 0; i < n; i++ {
		call := h.router.next(t)
		got := call.args[2]
		if i%1000 == 0 {
			if b, ok := got.([]byte); !ok || !bytes.Equal(b, big) {
				t.Fatalf("incoming message %d is not the 1 MiB binary", i)
			}
			continue
		}
		if got != int64(i) {
			t.Fatalf("incoming message %d arrived as %v", i, got)
		}
	}
	st := h.c.Stats()
	if st.MessagesIn != n || st.MessagesOut != n || st.BytesIn < 5<<20 || st.BytesOut < 5<<20 {
		t.Fatalf("stats %+v", st)
	}
	if h.obs.msgsIn.Load() != n || h.obs.msgsOut.Load() != n || uint64(h.obs.bytesIn.Load()) != st.BytesIn {
		t.Fatalf("observer in=%d out=%d bytesIn=%d, stats %+v", h.obs.msgsIn.Load(), h.obs.msgsOut.Load(), h.obs.bytesIn.Load(), st)
	}
}

// A frame that cannot be understood is dropped and counted; the connection
// goes on, as it does after an unknown operation.
func TestConnMalformedFrameDropped(t *testing.T) {
	h := ptStart(t, DefaultProtoConfig(), ptFlags())
	send := ptPassThrough(t, etf.Tuple{int64(opSend), etf.Atom(""), ptLocalPid}, etf.Atom("after"))
	bad := [][]byte{
		{tagPassThrough, tagVersion, 200, 1, 2},                     // unknown term tag
		send[:len(send)-3],                                          // truncated payload
		append(bytes.Clone(send), 1, 2, 3),                          // trailing bytes
		ptPassThrough(t, etf.Atom("not a tuple")),                   // control not a tuple
		ptPassThrough(t, etf.Tuple{int64(opLink), ptRemotePid}),     // wrong arity
		ptPassThrough(t, etf.Tuple{int64(opSend), etf.Atom(""), 1}), // not a pid
		{131, 70, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1},   // fragment of nothing
	}
	for _, b := range bad {
		h.write(t, b)
	}
	h.write(t, ptPassThrough(t, etf.Tuple{int64(99), etf.Atom("future op")}))
	h.write(t, send)
	call := h.router.next(t)
	if call.op != "Send" || call.args[2] != etf.Atom("after") {
		t.Fatalf("router got %v, want the message sent after the bad frames", call)
	}
	if got := h.obs.dropped.Load(); got != int64(len(bad)) {
		t.Fatalf("dropped %d frames, want %d", got, len(bad))
	}
}

// A peer that sends unknown operations, each a new number, gets a bounded
// number of log lines and table entries, and the connection goes on.
func TestConnUnknownOperationsBounded(t *testing.T) {
	h := ptStart(t, DefaultProtoConfig(), ptFlags())
	for op := range 5000 {
		h.write(t, ptPassThrough(t, etf.Tuple{int64(1000 + op)}))
	}
	h.write(t, ptPassThrough(t, etf.Tuple{int64(opSend), etf.Atom(""), ptLocalPid}, etf.Atom("after")))
	if call := h.router.next(t); call.op != "Send" || call.args[2] != etf.Atom("after") {
		t.Fatalf("router got %v, want the message sent after the unknown operations", call)
	}
	if n := len(h.c.unknownOps); n > maxWarnedOps {
		t.Errorf("%d operations remembered, want at most %d", n, maxWarnedOps)
	}
}

func TestConnOversizedFrameCloses(t *testing.T) {
	cfg := DefaultProtoConfig()
	cfg.MaxFrameSize = 4096
	cfg.FragmentSize = 1024
	h := ptStart(t, cfg, ptFlags())
	hdr := binary.BigEndian.AppendUint32(nil, 4097)
	if _, err := h.peer.Write(hdr); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.served:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection survived an oversized frame")
	}
	if err := h.c.Send(ptProcess{self: ptLocalPid}, ptRemotePid, etf.Atom("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after close = %v, want ErrClosed", err)
	}
	// A protocol error ended it.
	if got := h.obs.disconnects(); !slices.Equal(got, []DisconnectReason{DisconnectError}) {
		t.Fatalf("disconnect reasons = %v, want [error]", got)
	}
}

// A connection the peer closes is reported once, as closed by the peer.
func TestConnPeerClosedReported(t *testing.T) {
	h := ptStart(t, DefaultProtoConfig(), ptFlags())
	h.peer.Close()
	select {
	case <-h.served:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection outlived its peer")
	}
	if got := h.obs.disconnects(); !slices.Equal(got, []DisconnectReason{DisconnectPeerClosed}) {
		t.Fatalf("disconnect reasons = %v, want [peer_closed]", got)
	}
}

// An idle connection sends ticks, and one from which nothing arrives for
// NetTickTime is closed and reported.
func TestConnTicks(t *testing.T) {
	cfg := DefaultProtoConfig()
	cfg.NetTickTime = 400 * time.Millisecond
	h := ptStart(t, cfg, ptFlags())
	select {
	case b := <-h.frames:
		if len(b) != 0 {
			t.Fatalf("idle connection wrote a %d-byte frame, want a tick", len(b))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no tick within 10s")
	}
	select {
	case <-h.served:
	case <-time.After(10 * time.Second):
		t.Fatal("a silent peer was not disconnected")
	}
	if got := h.obs.disconnects(); !slices.Equal(got, []DisconnectReason{DisconnectTickTimeout}) {
		t.Fatalf("disconnect reasons = %v, want [tick_timeout]", got)
	}
}

// Bytes the handshake read past its last message are the first frames.
func TestConnHandshakeLeftover(t *testing.T) {
	local, remote := net.Pipe()
	defer remote.Close()
	p, err := NewProto(DefaultProtoConfig())
	if err != nil {
		t.Fatal(err)
	}
	buf := &lib.Buffer{B: ptFrame(ptPassThrough(t, etf.Tuple{int64(opLink), ptRemotePid, ptLocalPid})...)}
	ci, err := p.Init(context.Background(), local, ptLocal, node.HandshakeDetails{Name: ptRemote, Buffer: buf,
		Custom: &Peer{Name: ptRemote, Ours: ptFlags(), Theirs: ptFlags()}})
	if err != nil {
		t.Fatal(err)
	}
	r := newPTRouter()
	done := make(chan struct{})
	go func() { defer close(done); p.Serve(ci, r); p.Terminate(ci) }()
	go io.Copy(io.Discard, remote)
	if c := r.next(t); c.op != "Link" {
		t.Fatalf("router got %v", c)
	}
	remote.Close()
	<-done
	if _, err := p.Init(context.Background(), local, ptLocal, node.HandshakeDetails{Name: ptRemote}); err == nil {
		t.Fatal("Init accepted details without a Peer")
	}
}

// Senders block while the queue is over MaxQueueBytes and are released,
// with an error, when the connection closes.
func TestConnBackpressure(t *testing.T) {
	cfg := DefaultProtoConfig()
	cfg.MaxQueueBytes = 1
	local, remote := net.Pipe()
	p, err := NewProto(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ci, _ := p.Init(context.Background(), local, ptLocal, node.HandshakeDetails{Name: ptRemote,
		Custom: Peer{Name: ptRemote, Ours: ptFlags(), Theirs: ptFlags()}})
	c := ci.(*conn)
	// No Serve yet: nothing drains the queue. The first send fits, the
	// second must wait.
	proc := ptProcess{self: ptLocalPid}
	if err := c.Send(proc, ptRemotePid, int64(1)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Add(1)
	go func() { defer wg.Done(); errc <- c.Send(proc, ptRemotePid, int64(2)) }()
	// Signals are never held back.
	if err := c.Link(ptLocalPid, ptRemotePid); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		t.Fatalf("second Send returned %v while the queue was full", err)
	default:
	}
	remote.Close()
	p.Terminate(ci)
	wg.Wait()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Send returned %v, want ErrClosed", err)
	}
}

func TestReasonTerm(t *testing.T) {
	tests := []struct {
		in   string
		want etf.Term
	}{
		{"normal", etf.Atom("normal")},
		{"{shutdown,foo}", etf.Tuple{etf.Atom("shutdown"), etf.Atom("foo")}},
		{"Already linked", etf.Atom("Already linked")},
		{"'EXIT'", etf.Atom("EXIT")},
		{string(bytes.Repeat([]byte{'x'}, 300)) + " y", []byte(string(bytes.Repeat([]byte{'x'}, 300)) + " y")},
	}
	for _, tt := range tests {
		t.Run(tt.in[:min(len(tt.in), 20)], func(t *testing.T) {
			got := reasonTerm(tt.in)
			if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tt.want) {
				t.Fatalf("reasonTerm(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			if back := reasonString(tt.want); reasonTerm(back) == nil {
				t.Fatalf("reasonString(%v) = %q does not read back", tt.want, back)
			}
		})
	}
	if s := reasonString(etf.Tuple{etf.Atom("shutdown"), etf.Atom("foo")}); s != "{shutdown,foo}" {
		t.Fatalf("reasonString = %q", s)
	}
}

// FuzzConnRead runs the reader over arbitrary bytes: frames are dropped or
// the connection ends, never a panic.
func FuzzConnRead(f *testing.F) {
	f.Add(ptFrame(112, 131, 104, 3, 97, 1, 100, 0, 0, 100, 0, 0))
	f.Add(append(ptFrame(), ptFrame(131, 68, 1, 8, 0, 1, 'a', 104, 1, 82, 0)...))
	f.Add(append(ptFrame(append(fragHeader(69, 1, 2), 0, 104, 2)...), ptFrame(append(fragHeader(70, 1, 1), 97, 5, 97, 6)...)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := NewProto(ProtoConfig{NetTickTime: time.Minute, MaxFrameSize: 1 << 16, FragmentSize: 1000,
			MaxQueueBytes: 1 << 20, DecodeBudgetFactor: 4, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		c := newConn(context.Background(), p, nil, bytes.NewReader(in), ptLocal, Peer{Name: ptRemote, Ours: ptFlags(), Theirs: ptFlags()})
		c.router = newPTRouter()
		_ = c.readLoop()
	})
}

// ptProcess is the part of gen.Process the connection uses: Self.
type ptProcess struct {
	gen.Process
	self etf.Pid
}

func (p ptProcess) Self() etf.Pid { return p.self }
