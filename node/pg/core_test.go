package pg

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/node/term"
)

// beamAccepts reports whether a BEAM scope of OTP 25, 27 or 29 has a clause
// for msg sent by the Go scope self: the messages every one of them
// matches (pg's handle_info and handle_cast; OTP 29's translation of the
// version 0 messages). Anything else crashes the BEAM scope.
func beamAccepts(self etf.Pid, msg etf.Term) error {
	t, ok := msg.(etf.Tuple)
	if !ok {
		return fmt.Errorf("not a tuple: %v", msg)
	}
	isList := func(x etf.Term, each func(etf.Term) bool) bool {
		l, ok := x.(etf.List)
		if !ok {
			return false
		}
		for _, el := range l {
			if !each(el) {
				return false
			}
		}
		return true
	}
	isPid := func(x etf.Term) bool { _, ok := x.(etf.Pid); return ok }
	any := func(etf.Term) bool { return true }
	switch {
	case len(t) == 2 && t[0] == atomDiscover:
		if t[1] != self {
			return fmt.Errorf("discover names %v, not the scope %v", t[1], self)
		}
		return nil
	case len(t) == 2 && t[0] == atomGenCast:
		s, ok := t[1].(etf.Tuple)
		if !ok || len(s) != 3 || s[0] != atomSync || s[1] != self {
			return fmt.Errorf("a cast that is not {sync, Self, Groups}: %v", t[1])
		}
		seen := map[groupKey]bool{}
		if !isList(s[2], func(el etf.Term) bool {
			g, ok := el.(etf.Tuple)
			if !ok || len(g) != 2 {
				return false
			}
			k, _ := keyOf(g[0])
			if seen[k] {
				return false
			}
			seen[k] = true
			l, ok := g[1].(etf.List)
			return ok && len(l) > 0 && isList(l, isPid)
		}) {
			return fmt.Errorf("sync groups are not [{Group, [Pid, ...]}] with distinct groups: %v", s[2])
		}
		return nil
	case len(t) == 4 && t[0] == atomJoin:
		if t[1] != self || !(isPid(t[3]) || isList(t[3], isPid)) {
			return fmt.Errorf("bad join %v", t)
		}
		return nil
	case len(t) == 4 && t[0] == atomLeave:
		if t[1] != self || !(isPid(t[2]) || isList(t[2], isPid)) || !isList(t[3], any) {
			return fmt.Errorf("bad leave %v", t)
		}
		return nil
	}
	return fmt.Errorf("not a message of the protocol: %v", msg)
}

// checkSends checks every message of e and where it goes: a peer scope
// pid the core knows, or the scope's name on a node.
func checkSends(t *testing.T, c *core, e effects, known map[etf.Pid]bool) {
	t.Helper()
	for _, o := range e.send {
		if err := beamAccepts(c.self, o.Msg); err != nil {
			t.Fatal(err)
		}
		switch to := o.To.(type) {
		case gen.ProcessID:
			if to.Name != string(c.scope) || o.Msg.(etf.Tuple)[0] != atomDiscover {
				t.Fatalf("%v sent to %v: only discover goes to a scope's name", o.Msg, to)
			}
		case etf.Pid:
			if !known[to] && c.peers[to] == nil {
				t.Fatalf("%v sent to %v, which is not a peer scope", o.Msg, to)
			}
		default:
			t.Fatalf("destination %T", o.To)
		}
	}
}

// driver turns random bytes into a sequence of API calls, process deaths
// and peer messages, valid and not.
type driver struct {
	r     *rand.Rand
	self  etf.Pid
	local []etf.Pid
	peers []etf.Pid
	other []etf.Pid
}

func newDriver(seed uint64) *driver {
	d := &driver{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	d.self = etf.Pid{Node: "go@h", ID: 1, Creation: 1}
	for i := 0; i < 4; i++ {
		d.local = append(d.local, etf.Pid{Node: "go@h", ID: uint64(100 + i), Creation: 1})
		d.peers = append(d.peers, etf.Pid{Node: etf.Atom(fmt.Sprintf("ex%d@h", i%3)), ID: uint64(10 + i), Creation: 2})
		d.other = append(d.other, etf.Pid{Node: etf.Atom(fmt.Sprintf("ex%d@h", i%3)), ID: uint64(200 + i), Creation: 2})
	}
	return d
}

func (d *driver) pick(l []etf.Pid) etf.Pid { return l[d.r.IntN(len(l))] }

func (d *driver) group() etf.Term {
	switch d.r.IntN(4) {
	case 0:
		return etf.Atom("jobs")
	case 1:
		return []byte("orders")
	case 2:
		return etf.Tuple{etf.Atom("g"), int64(d.r.IntN(3))}
	}
	return etf.Atom("Elixir.MyApp.PubSub.Adapter")
}

func (d *driver) pids() etf.Term {
	switch d.r.IntN(4) {
	case 0:
		return d.pick(d.other)
	case 1:
		return etf.List{}
	case 2:
		return etf.List{d.pick(d.other), int64(1)}
	}
	return etf.List{d.pick(d.other), d.pick(d.other)}
}

// junk is a term a peer might send that is no message of the protocol.
func (d *driver) junk() etf.Term {
	switch d.r.IntN(8) {
	case 0:
		return etf.Atom("hello")
	case 1:
		return etf.Tuple{atomDiscover}
	case 2:
		return etf.Tuple{atomDiscover, etf.Atom("notapid")}
	case 3:
		return etf.Tuple{atomSync, d.pick(d.peers), etf.Atom("x")}
	case 4:
		return etf.Tuple{atomSync, d.pick(d.peers), etf.List{etf.Tuple{d.group()}}}
	case 5:
		return etf.Tuple{etf.Atom("update"), d.pick(d.peers), etf.List{}}
	case 6:
		return etf.Tuple{atomGenCast, etf.Tuple{etf.Atom("local_data"), d.pick(d.peers), int64(1), etf.Map{}}}
	}
	return etf.Tuple{atomDiscover, d.self} // itself
}

func (d *driver) step(t *testing.T, c *core) {
	known := map[etf.Pid]bool{}
	for p := range c.peers {
		known[p] = true
	}
	var e effects
	switch d.r.IntN(11) {
	case 0:
		e = c.join(d.group(), []etf.Pid{d.pick(d.local)})
	case 1:
		e, _ = c.leave(d.group(), []etf.Pid{d.pick(d.local), d.pick(d.local)})
	case 2:
		e = c.down(d.pick(d.local))
	case 3:
		e = c.down(d.pick(d.peers))
	case 4:
		e = c.discoverNodes([]string{"ex0@h", "ex1@h", "go@h"})
	case 5:
		e = c.handle(etf.Tuple{atomDiscover, d.pick(d.peers), int64(d.r.IntN(2))}[:2+d.r.IntN(2)])
	case 6:
		var groups etf.List
		for i := d.r.IntN(4); i > 0; i-- {
			groups = append(groups, etf.Tuple{d.group(), etf.List{d.pick(d.other)}})
		}
		e = c.handle(etf.Tuple{atomGenCast, etf.Tuple{atomSync, d.pick(d.peers), groups}})
	case 7:
		e = c.handle(etf.Tuple{atomJoin, d.pick(d.peers), d.group(), d.pids()})
	case 8:
		e = c.handle(etf.Tuple{atomLeave, d.pick(d.peers), d.pids(), etf.List{d.group(), d.group()}})
	case 9:
		e = c.handle(d.junk())
	case 10:
		b, err := term.Encode(nil, d.junk())
		if err != nil {
			t.Fatal(err)
		}
		b[d.r.IntN(len(b))] ^= byte(d.r.IntN(256))
		if v, _, err := term.Decode(b); err == nil {
			e = c.handle(v)
		}
	}
	checkSends(t, c, e, known)
	checkInvariants(t, c)
}

// checkInvariants: the per-peer counts match the lists, no empty group is
// kept, and every local member's joins match the groups listing it.
func checkInvariants(t *testing.T, c *core) {
	t.Helper()
	if len(c.peers) > c.limits.MaxPeers {
		t.Fatalf("%d peers, limit %d", len(c.peers), c.limits.MaxPeers)
	}
	for pid, p := range c.peers {
		n := 0
		for _, m := range p.groups {
			if len(m.pids) == 0 {
				t.Fatalf("peer %v keeps an empty group %v", pid, m.group)
			}
			n += len(m.pids)
		}
		if n != p.count || n > c.limits.MaxMembersPerPeer {
			t.Fatalf("peer %v: count %d, lists hold %d, limit %d", pid, p.count, n, c.limits.MaxMembersPerPeer)
		}
	}
	joins := 0
	for _, js := range c.joins {
		joins += len(js)
	}
	listed := 0
	for _, m := range c.local {
		if len(m.pids) == 0 {
			t.Fatalf("empty local group %v", m.group)
		}
		listed += len(m.pids)
	}
	if joins != listed {
		t.Fatalf("local joins %d, local lists %d", joins, listed)
	}
}

// TestEverySentMessageIsInTheProtocol drives the core with random
// sequences of joins, leaves, deaths and peer messages (valid, malformed
// and foreign) and checks each message it sends against what a BEAM scope
// of OTP 25-29 matches, and its bounds.
func TestEverySentMessageIsInTheProtocol(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		d := newDriver(seed)
		c := newCore(d.self, "pg", Limits{MaxPeers: 3, MaxMembersPerPeer: 5})
		for i := 0; i < 300; i++ {
			d.step(t, c)
		}
	}
}

// FuzzScopeCore is the same property with sequences chosen by the fuzzer.
func FuzzScopeCore(f *testing.F) {
	f.Add(uint64(1), uint16(50))
	f.Add(uint64(42), uint16(1000))
	f.Fuzz(func(t *testing.T, seed uint64, steps uint16) {
		d := newDriver(seed)
		c := newCore(d.self, "pg", Limits{MaxPeers: 3, MaxMembersPerPeer: 5})
		for i := 0; i < int(steps%2000); i++ {
			d.step(t, c)
		}
	})
}

// TestSyncMirrorsPeer: a sync replaces what the peer announced before,
// reporting the difference; a DOWN of the peer scope drops its members.
func TestSyncMirrorsPeer(t *testing.T) {
	self := etf.Pid{Node: "go@h", ID: 1}
	peer := etf.Pid{Node: "ex@h", ID: 2}
	a, b := etf.Pid{Node: "ex@h", ID: 3}, etf.Pid{Node: "ex@h", ID: 4}
	c := newCore(self, "pg", Limits{})
	e := c.handle(etf.Tuple{atomGenCast, etf.Tuple{atomSync, peer, etf.List{etf.Tuple{etf.Atom("jobs"), etf.List{a, b}}}}})
	if len(e.monitor) != 1 || e.monitor[0] != peer || !e.synced {
		t.Fatalf("first sync: %+v", e)
	}
	if got := c.members(etf.Atom("jobs"), false); len(got) != 2 {
		t.Fatalf("members %v", got)
	}
	e = c.handle(etf.Tuple{atomGenCast, etf.Tuple{atomSync, peer, etf.List{etf.Tuple{etf.Atom("jobs"), etf.List{b}}}}})
	if len(e.changes) != 1 || len(e.changes[0].Left) != 1 || e.changes[0].Left[0] != a {
		t.Fatalf("second sync changes %+v", e.changes)
	}
	c.down(peer)
	if got := c.members(etf.Atom("jobs"), false); len(got) != 0 {
		t.Fatalf("members after the peer's DOWN %v", got)
	}
}
