package dist

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"
	"go.uber.org/goleak"
)

// mtRouter models ergo's router for the monitors local processes set on
// the peer's processes, in ergo's order (node/monitor.go of ergo): monitor
// sends MONITOR_P through the connection and only then records the monitor
// (once hold, when not nil, is closed); an exit or a node-down finding no
// recorded monitor is dropped; RouteDemonitor of a monitor not recorded
// fails with lib.ErrMonitorUnknown. DOWN messages delivered to local
// processes go to downs; reached says which of its monitor calls the
// connection made.
type mtRouter struct {
	*ptRouter
	c       *conn
	mu      sync.Mutex
	table   map[etf.Ref]any // recorded monitors: the etf.Pid or gen.ProcessID monitored
	downs   chan gen.MessageDown
	reached chan string
}

func (r *mtRouter) reach(what string) {
	select {
	case r.reached <- what:
	default:
	}
}

// monitor is what ergo's RouteMonitor and RouteMonitorReg do for a remote
// target.
func (r *mtRouter) monitor(by etf.Pid, target any, ref etf.Ref, hold <-chan struct{}) error {
	var err error
	switch to := target.(type) {
	case etf.Pid:
		err = r.c.Monitor(by, to, ref)
	case gen.ProcessID:
		err = r.c.MonitorReg(by, to, ref)
	}
	if err != nil {
		return err
	}
	if hold != nil {
		<-hold
	}
	r.mu.Lock()
	r.table[ref] = target
	r.mu.Unlock()
	return nil
}

func (r *mtRouter) take(ref etf.Ref) (any, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	target, ok := r.table[ref]
	delete(r.table, ref)
	return target, ok
}

func (r *mtRouter) recorded() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.table)
}

func (r *mtRouter) RouteMonitorExit(terminated etf.Pid, reason string, ref etf.Ref) error {
	r.reach("exit")
	if _, ok := r.take(ref); ok {
		r.downs <- gen.MessageDown{Ref: ref, Pid: terminated, Reason: reason}
	}
	return nil
}

func (r *mtRouter) RouteMonitorExitReg(terminated gen.ProcessID, reason string, ref etf.Ref) error {
	r.reach("exit")
	if _, ok := r.take(ref); ok {
		r.downs <- gen.MessageDown{Ref: ref, ProcessID: terminated, Reason: reason}
	}
	return nil
}

func (r *mtRouter) RouteDemonitor(by etf.Pid, ref etf.Ref) error {
	r.reach("demonitor")
	target, ok := r.take(ref)
	if !ok {
		return lib.ErrMonitorUnknown
	}
	if pid, isPid := target.(etf.Pid); isPid {
		return r.c.Demonitor(by, pid, ref)
	}
	return r.c.DemonitorReg(by, target.(gen.ProcessID), ref)
}

func (r *mtRouter) RouteNodeDown(name string, _ *node.ProxyDisconnect) {
	r.reach("nodedown")
	r.mu.Lock()
	defer r.mu.Unlock()
	for ref, target := range r.table {
		down := gen.MessageDown{Ref: ref, Reason: "noconnection"}
		if pid, isPid := target.(etf.Pid); isPid {
			down.Pid = pid
		} else {
			down.ProcessID = target.(gen.ProcessID)
		}
		r.downs <- down
		delete(r.table, ref)
	}
}

func (r *mtRouter) RouteSend(from, to etf.Pid, message etf.Term) error {
	if down, ok := message.(gen.MessageDown); ok {
		r.downs <- down
		return nil
	}
	return r.ptRouter.RouteSend(from, to, message)
}

// mtStart serves a connection over net.Pipe with an mtRouter, and routes
// the node-down once Serve returns, as ergo does; the test plays the peer.
func mtStart(t *testing.T) (*ptHarness, *mtRouter) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	local, remote := net.Pipe()
	r := &mtRouter{ptRouter: newPTRouter(), table: map[etf.Ref]any{},
		downs: make(chan gen.MessageDown, 16), reached: make(chan string, 64)}
	h := &ptHarness{peer: remote, router: r.ptRouter, obs: &ptObserver{}, frames: make(chan []byte, 1024),
		served: make(chan struct{}), asm: newAssembler(1 << 20)}
	cfg := DefaultProtoConfig()
	cfg.Observer = h.obs
	cfg.Logger = slog.New(slog.DiscardHandler)
	p, err := NewProto(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := p.Init(context.Background(), local, ptLocal, node.HandshakeDetails{Name: ptRemote,
		Custom: Peer{Name: ptRemote, Ours: ptFlags(), Theirs: ptFlags(), Creation: 9}})
	if err != nil {
		t.Fatal(err)
	}
	h.c = ci.(*conn)
	r.c = h.c
	go func() {
		defer close(h.served)
		p.Serve(ci, r)
		r.RouteNodeDown(ptRemote, nil)
		p.Terminate(ci)
	}()
	h.collectFrames(t, remote, 1<<20, ignore)
	return h, r
}

// mtReceive waits for the next value of ch, at most 10 s.
func mtReceive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
		var zero T
		return zero
	}
}

var (
	mtBy  = etf.Pid{Node: ptLocal, ID: 2002, Creation: 3}
	mtRef = etf.Ref{Node: ptLocal, Creation: 3, ID: [5]uint32{7, 8, 9}}
)

// mtTargets are the two ways to monitor a process of the peer.
var mtTargets = []struct {
	name   string
	target any
	from   etf.Term // FromProc of MONITOR_P_EXIT
}{
	{"by name", gen.ProcessID{Name: "nobody", Node: ptRemote}, etf.Atom("nobody")},
	{"by pid", ptRemotePid, ptRemotePid},
}

// checkDown checks a DOWN of mtRef for target with reason.
func checkDown(t *testing.T, down gen.MessageDown, target any, reason string) {
	t.Helper()
	want := gen.MessageDown{Ref: mtRef, Reason: reason}
	if pid, ok := target.(etf.Pid); ok {
		want.Pid = pid
	} else {
		want.ProcessID = target.(gen.ProcessID)
	}
	if fmt.Sprint(down) != fmt.Sprint(want) {
		t.Fatalf("DOWN = %+v, want %+v", down, want)
	}
}

// The peer answers MONITOR_P at once when the process does not exist; the
// answer can reach the router before ergo has recorded the monitor, and
// ergo drops an exit it finds no monitor for. The connection delivers the
// DOWN once the monitor is recorded, and leaves no monitor behind.
func TestConnMonitorExitBeforeTheMonitorIsRecorded(t *testing.T) {
	for _, tt := range mtTargets {
		t.Run(tt.name, func(t *testing.T) {
			h, r := mtStart(t)
			hold := make(chan struct{})
			monitored := make(chan error, 1)
			go func() { monitored <- r.monitor(mtBy, tt.target, mtRef, hold) }()
			if ctrl, _ := h.nextMessage(t); ctrl[0] != int64(opMonitorP) {
				t.Fatalf("sent %v, want MONITOR_P", ctrl)
			}
			h.write(t, ptPassThrough(t, etf.Tuple{int64(opMonitorPExit), tt.from, mtBy, mtRef, etf.Atom("noproc")}))
			// The exit has reached the router (ergo's, which drops it, or
			// the connection's RouteDemonitor, which does not find it yet).
			mtReceive(t, r.reached, "monitor call from the connection")
			close(hold)
			if err := mtReceive(t, monitored, "recorded monitor"); err != nil {
				t.Fatal(err)
			}
			checkDown(t, mtReceive(t, r.downs, "DOWN"), tt.target, "noproc")
			if n := r.recorded(); n != 0 {
				t.Fatalf("%d monitors left in the router's table", n)
			}
		})
	}
}

// The connection ends while a monitor it sent is not recorded yet: ergo's
// node-down, routed once Serve returns, would miss it. The connection
// delivers the noconnection DOWN itself, once, before Serve returns.
func TestConnEndsMonitorsNotRecordedYet(t *testing.T) {
	for _, tt := range mtTargets {
		t.Run(tt.name, func(t *testing.T) {
			h, r := mtStart(t)
			hold := make(chan struct{})
			monitored := make(chan error, 1)
			go func() { monitored <- r.monitor(mtBy, tt.target, mtRef, hold) }()
			if ctrl, _ := h.nextMessage(t); ctrl[0] != int64(opMonitorP) {
				t.Fatalf("sent %v, want MONITOR_P", ctrl)
			}
			h.peer.Close()
			mtReceive(t, r.reached, "monitor call from the connection or node-down")
			close(hold)
			if err := mtReceive(t, monitored, "recorded monitor"); err != nil {
				t.Fatal(err)
			}
			checkDown(t, mtReceive(t, r.downs, "DOWN"), tt.target, "noconnection")
			<-h.served
			if len(r.downs) != 0 || r.recorded() != 0 {
				t.Fatalf("after the node-down: %d more DOWN messages, %d monitors left", len(r.downs), r.recorded())
			}
		})
	}
}

// A monitor recorded before its exit or the end of the connection gets one
// DOWN, and the connection sends no DEMONITOR_P for it.
func TestConnEndsRecordedMonitorsOnce(t *testing.T) {
	for _, tt := range mtTargets {
		t.Run(tt.name+", exit", func(t *testing.T) {
			h, r := mtStart(t)
			if err := r.monitor(mtBy, tt.target, mtRef, nil); err != nil {
				t.Fatal(err)
			}
			h.nextMessage(t) // MONITOR_P
			h.write(t, ptPassThrough(t, etf.Tuple{int64(opPayloadMonitorPExit), tt.from, mtBy, mtRef}, etf.Atom("killed")))
			checkDown(t, mtReceive(t, r.downs, "DOWN"), tt.target, "killed")
			// The next frame the connection writes is the next one sent.
			if err := h.c.Send(ptProcess{self: mtBy}, ptRemotePid, etf.Atom("next")); err != nil {
				t.Fatal(err)
			}
			if ctrl, _ := h.nextMessage(t); ctrl[0] != int64(opSendSender) {
				t.Fatalf("sent %v, want the SEND that followed (no DEMONITOR_P)", ctrl)
			}
			if r.recorded() != 0 {
				t.Fatalf("%d monitors left in the router's table", r.recorded())
			}
		})
		t.Run(tt.name+", connection ends", func(t *testing.T) {
			h, r := mtStart(t)
			if err := r.monitor(mtBy, tt.target, mtRef, nil); err != nil {
				t.Fatal(err)
			}
			h.nextMessage(t) // MONITOR_P
			h.peer.Close()
			checkDown(t, mtReceive(t, r.downs, "DOWN"), tt.target, "noconnection")
			<-h.served
			if len(r.downs) != 0 || r.recorded() != 0 {
				t.Fatalf("after the node-down: %d more DOWN messages, %d monitors left", len(r.downs), r.recorded())
			}
		})
	}
}

// A monitor its owner removed before the peer's exit crossed the
// DEMONITOR_P gets no DOWN: the exit is dropped like any exit of an
// unknown monitor.
func TestConnMonitorExitAfterDemonitor(t *testing.T) {
	for _, tt := range mtTargets {
		t.Run(tt.name, func(t *testing.T) {
			h, r := mtStart(t)
			if err := r.monitor(mtBy, tt.target, mtRef, nil); err != nil {
				t.Fatal(err)
			}
			h.nextMessage(t) // MONITOR_P
			if err := r.RouteDemonitor(mtBy, mtRef); err != nil {
				t.Fatal(err)
			}
			if ctrl, _ := h.nextMessage(t); ctrl[0] != int64(opDemonitorP) {
				t.Fatalf("sent %v, want DEMONITOR_P", ctrl)
			}
			h.write(t, ptPassThrough(t, etf.Tuple{int64(opMonitorPExit), tt.from, mtBy, mtRef, etf.Atom("noproc")}))
			// Routed after the exit, in order.
			h.write(t, ptPassThrough(t, etf.Tuple{int64(opSendSender), ptRemotePid, mtBy}, etf.Atom("after")))
			for {
				c := h.router.next(t)
				if c.op == "Send" {
					break
				}
			}
			if len(r.downs) != 0 {
				t.Fatalf("a DOWN after the demonitor: %+v", <-r.downs)
			}
		})
	}
}
