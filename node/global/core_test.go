package global

import (
	"testing"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

var (
	goPid   = etf.Pid{Node: "go@h", ID: 1}
	beamA   = etf.Atom("a@h")
	lockerA = etf.Pid{Node: "a@h", ID: 56}
)

func newTestCore() *core {
	return newCore(goPid, Limits{}, func(etf.Atom) bool { return true })
}

// sent returns the messages of e for node n's name server, casts unwrapped.
func sent(e effects, n etf.Atom) []etf.Tuple {
	var out []etf.Tuple
	for _, o := range e.send {
		to, ok := o.To.(gen.ProcessID)
		if !ok || to.Node != string(n) || to.Name != ServerName {
			continue
		}
		t := o.Msg.(etf.Tuple)
		if t[0] == atomGenCast {
			t = t[1].(etf.Tuple)
		}
		out = append(out, t)
	}
	return out
}

func firstOf(t *testing.T, msgs []etf.Tuple, tag etf.Atom) etf.Tuple {
	t.Helper()
	for _, m := range msgs {
		if m[0] == tag {
			return m
		}
	}
	t.Fatalf("no %s among %v", tag, msgs)
	return nil
}

// TestCoreConnect scripts a BEAM node's side of the connect: the core
// answers each step and ends in sync with the node, holding its names.
func TestCoreConnect(t *testing.T) {
	c := newTestCore()
	init := firstOf(t, sent(c.nodeUp(beamA), beamA), atomInitConnect)
	myTag := init[1].(etf.Tuple)[1]

	const hisTag = int64(-576460752303423486)
	e := c.handle(etf.Tuple{atomInitConnect, etf.Tuple{8, hisTag}, beamA,
		etf.Tuple{atomLocker, atomNoLongerAPid, etf.List{}, lockerA}}, true)
	ack := firstOf(t, sent(e, beamA), atomInitAck)
	if !equal(ack[2], hisTag) || !equal(ack[3], myTag) {
		t.Fatalf("init_connect_ack = %v", ack)
	}
	// His locker set the lock here, then asks.
	lockID := etf.Tuple{atomGlobal, etf.List{lockerA, goPid}}
	if ok, _ := c.setLock(lockID, lockerA); !ok {
		t.Fatal("set_lock refused on a free lock")
	}
	e = c.handle(etf.Tuple{atomLockSet, lockerA, true, etf.List{}, myTag}, true)
	msgs := sent(e, beamA)
	if ls := firstOf(t, msgs, atomLockSet); ls[2] != true || !equal(ls[4], hisTag) {
		t.Fatalf("lock_set answer = %v", ls)
	}
	firstOf(t, msgs, atomExchange)

	pricing := etf.Pid{Node: "a@h", ID: 99}
	e = c.handle(etf.Tuple{atomExchange, beamA, etf.List{etf.Tuple{etf.Atom("pricing"), pricing, defaultMethod}}, etf.List{}, myTag}, true)
	firstOf(t, sent(e, beamA), atomResolved)
	if len(e.synced) != 0 {
		t.Fatal("in sync before the peer's resolved")
	}
	e = c.handle(etf.Tuple{atomResolved, beamA, etf.List{}, etf.List{etf.Tuple{etf.Atom("b@h"), 8}}, atomUnused, etf.List{}, myTag}, true)
	if len(e.synced) != 1 || e.synced[0] != "a@h" {
		t.Fatalf("synced = %v, want [a@h]", e.synced)
	}
	// The node a@h knows is told this node is in sync with it.
	firstOf(t, sent(e, "b@h"), atomInSync)
	if p, ok := c.whereis(etf.Atom("pricing")); !ok || p != pricing {
		t.Fatalf("whereis(pricing) = %v, %v", p, ok)
	}
	// The node goes down: its names go.
	c.nodeDown(beamA)
	if _, ok := c.whereis(etf.Atom("pricing")); ok {
		t.Fatal("pricing survived its node's nodedown")
	}
}

// TestCoreLockHeldByAnotherConnect: while another connect holds global's
// lock here, a locker's lock_set is refused (its locker retries later).
func TestCoreLockHeldByAnotherConnect(t *testing.T) {
	c := newTestCore()
	myTag := firstOf(t, sent(c.nodeUp(beamA), beamA), atomInitConnect)[1].(etf.Tuple)[1]
	c.handle(etf.Tuple{atomInitConnect, etf.Tuple{8, 7}, beamA, etf.Tuple{atomLocker, atomNoLongerAPid, etf.List{}, lockerA}}, true)
	other := etf.Pid{Node: "b@h", ID: 3}
	if ok, _ := c.setLock(etf.Tuple{atomGlobal, etf.List{other, goPid}}, other); !ok {
		t.Fatal("set_lock refused")
	}
	e := c.handle(etf.Tuple{atomLockSet, lockerA, true, etf.List{}, myTag}, true)
	if ls := firstOf(t, sent(e, beamA), atomLockSet); ls[2] != false {
		t.Fatalf("lock_set answer = %v, want false", ls)
	}
	// A lock of another requester is refused; the holder's del_lock frees it.
	if ok, _ := c.setLock(etf.Tuple{atomGlobal, etf.List{lockerA, goPid}}, lockerA); ok {
		t.Fatal("set_lock granted over another requester's lock")
	}
	c.delLock(etf.Tuple{atomGlobal, etf.List{other, goPid}}, other)
	if ok, _ := c.setLock(etf.Tuple{atomGlobal, etf.List{lockerA, goPid}}, lockerA); !ok {
		t.Fatal("set_lock refused after the holder's del_lock")
	}
}

// TestCoreUntrusted: malformed and out-of-protocol messages are dropped
// (counted) without a panic or a change of state, and limits hold.
func TestCoreUntrusted(t *testing.T) {
	c := newTestCore()
	c.nodeUp(beamA)
	bad := []etf.Term{
		nil, etf.Atom("x"), etf.Tuple{}, etf.Tuple{atomInitConnect},
		etf.Tuple{atomInitConnect, 8, beamA, etf.Tuple{}},
		etf.Tuple{atomInitConnect, etf.Tuple{8, 1}, beamA, etf.Tuple{atomLocker, 1, 2, "notapid"}},
		etf.Tuple{atomInitConnect, etf.Tuple{"8", 1}, beamA, etf.Tuple{atomLocker, 1, 2, lockerA}},
		etf.Tuple{atomInitConnect, etf.Tuple{8, 1}, beamA, etf.Tuple{atomLocker, 1, 2, etf.Pid{Node: "other@h"}}},
		etf.Tuple{atomLockSet, "x", true, etf.List{}, 1},
		etf.Tuple{atomExchange, beamA, "notalist", etf.List{}, 1},
		etf.Tuple{atomResolved, 1, 2, 3, 4, 5, 6},
		etf.Tuple{atomInSync, 5, true},
		etf.Tuple{atomNewNodes, beamA, 1, 2, 3, 4},
	}
	for _, m := range bad {
		for _, cast := range []bool{true, false} {
			e := c.handle(m, cast)
			if len(e.dropped) == 0 {
				t.Errorf("handle(%v, cast=%v) dropped nothing", m, cast)
			}
		}
	}
	if p := c.peers[beamA]; p == nil || p.hasHisTag {
		t.Fatalf("a malformed message changed the connect: %+v", p)
	}
	// Limits: the locks peers can make this node hold.
	c.limits.MaxLocks = 2
	for i := 0; i < 3; i++ {
		ok, e := c.setLock(etf.Tuple{i, etf.Atom("r")}, lockerA)
		if want := i < 2; ok != want || (!ok && len(e.dropped) == 0) {
			t.Fatalf("lock %d: %v %v", i, ok, e.dropped)
		}
	}
	c.limits.MaxNames = 1
	var e effects
	if !c.insert(etf.Atom("one"), lockerA, defaultMethod, &e) || c.insert(etf.Atom("two"), lockerA, defaultMethod, &e) {
		t.Fatal("MaxNames not enforced")
	}
}

// TestCoreLostConnection: a node's notice that it lost node B makes this
// node ask B to disconnect from it and stop counting B as in sync, once per
// notice.
func TestCoreLostConnection(t *testing.T) {
	c := newTestCore()
	b := etf.Atom("b@h")
	c.known[b], c.synced[b] = 8, true
	notice := etf.Tuple{atomLostConn, beamA, int64(963180218626162349), int64(-576460752303423481), b}
	e := c.handle(notice, false)
	if rc := firstOf(t, sent(e, b), atomRemoveConn); rc[1] != goPid.Node {
		t.Fatalf("remove_connection = %v", rc)
	}
	if _, ok := c.known[b]; ok || c.synced[b] {
		t.Fatal("b is still in sync after the notice")
	}
	// The same notice again (another node relays it): nothing more.
	c.known[b] = 8
	if e := c.handle(notice, false); len(sent(e, b)) != 0 {
		t.Fatalf("a repeated notice sent %v", e.send)
	}
	// A notice that a@h lost this node: a@h is asked to disconnect.
	c.known[beamA] = 8
	e = c.handle(etf.Tuple{atomLostConn, beamA, int64(1), int64(2), goPid.Node}, false)
	firstOf(t, sent(e, beamA), atomRemoveConn)
}
