package global

import (
	"math/rand/v2"
	"testing"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// understood lists, per destination process name, the messages a BEAM
// node's process of that name handles (global's name server: casts and
// plain messages; rex: the rpc:cast form).
var understood = map[string]map[etf.Atom]bool{
	ServerName: {
		atomInitConnect: true, atomInitAck: true, atomCancelConnect: true, atomLockSet: true,
		atomExchange: true, atomResolved: true, atomInSync: true, atomRemoveConn: true,
	},
	"rex": {"cast": true},
}

// fuzzDriver sends a core protocol-shaped messages with random fields from
// a few nodes.
type fuzzDriver struct {
	r     *rand.Rand
	nodes []etf.Atom
}

func (d *fuzzDriver) node() etf.Atom { return d.nodes[d.r.IntN(len(d.nodes))] }
func (d *fuzzDriver) pid() etf.Pid {
	return etf.Pid{Node: d.node(), ID: uint64(d.r.IntN(4))}
}
func (d *fuzzDriver) tag() etf.Term {
	switch d.r.IntN(3) {
	case 0:
		return d.r.IntN(5)
	case 1:
		return int64(-576460752303423486)
	}
	return etf.Atom("junk")
}
func (d *fuzzDriver) names() etf.List {
	var l etf.List
	for i := d.r.IntN(4); i > 0; i-- {
		l = append(l, etf.Tuple{etf.Atom([]string{"a", "b", "c"}[d.r.IntN(3)]), d.pid(), defaultMethod})
	}
	if d.r.IntN(8) == 0 {
		l = append(l, "bad")
	}
	return l
}

func (d *fuzzDriver) step(t *testing.T, c *core) {
	var e effects
	switch d.r.IntN(14) {
	case 0:
		e = c.nodeUp(d.node())
	case 1:
		e = c.nodeDown(d.node())
	case 2:
		n := d.node()
		e = c.handle(etf.Tuple{atomInitConnect, etf.Tuple{8, d.tag()}, n, etf.Tuple{atomLocker, atomNoLongerAPid, etf.Map{}, etf.Pid{Node: n, ID: 9}}}, true)
	case 3:
		e = c.handle(etf.Tuple{atomInitAck, d.node(), d.tag(), d.tag()}, false)
	case 4:
		e = c.handle(etf.Tuple{atomCancelConnect, d.node(), d.tag()}, false)
	case 5:
		e = c.handle(etf.Tuple{atomLockSet, etf.Pid{Node: d.node(), ID: 9}, d.r.IntN(2) == 0, etf.List{}, d.tag()}, true)
	case 6:
		e = c.handle(etf.Tuple{atomExchange, d.node(), d.names(), etf.List{}, d.tag()}, true)
	case 7:
		var ops etf.List
		for _, n := range d.names() {
			ops = append(ops, etf.Tuple{atomInsert, n})
		}
		e = c.handle(etf.Tuple{atomResolved, d.node(), ops, etf.List{etf.Tuple{d.node(), 8}}, atomUnused, etf.List{}, d.tag()}, true)
	case 8:
		e = c.handle(etf.Tuple{atomInSync, d.node(), true}, true)
	case 9:
		e = c.handle(etf.Tuple{atomNewNodes, d.node(), etf.List{etf.Tuple{atomDelete, etf.Atom("a")}}, etf.List{}, etf.List{d.node()}, etf.List{}}, true)
	case 10:
		e = c.handle(etf.Tuple{atomLostConn, d.node(), d.tag(), d.tag(), d.node()}, false)
	case 11:
		_, e = c.setLock(etf.Tuple{etf.Atom([]string{"global", "x"}[d.r.IntN(2)]), d.tag()}, d.pid())
	case 12:
		e = c.delLock(etf.Tuple{atomGlobal, d.tag()}, d.pid())
	case 13:
		e = c.down(d.pid())
	}
	for _, o := range e.send {
		to, ok := o.To.(gen.ProcessID)
		if !ok {
			// The plain refusal to a locker.
			if m := o.Msg.(etf.Tuple); m[0] != atomLockSet || len(m) != 4 {
				t.Fatalf("sent %v to %v", o.Msg, o.To)
			}
			continue
		}
		m := o.Msg.(etf.Tuple)
		if m[0] == atomGenCast {
			m = m[1].(etf.Tuple)
		}
		tag, _ := m[0].(etf.Atom)
		if !understood[to.Name][tag] {
			t.Fatalf("sent %v to %v: not a message it understands", o.Msg, to)
		}
		if etf.Atom(to.Node) == c.node {
			t.Fatalf("sent %v to this node", o.Msg)
		}
	}
	if len(c.names) > c.limits.MaxNames || len(c.locks) > c.limits.MaxLocks ||
		len(c.known) > c.limits.MaxNodes || len(c.synced) > c.limits.MaxNodes || len(c.lost) > c.limits.MaxNodes {
		t.Fatalf("over the limits: %d names, %d locks, %d known", len(c.names), len(c.locks), len(c.known))
	}
}

// FuzzCore: any sequence of protocol-shaped messages with random fields
// leaves the core within its limits, never panics, and makes it send only
// messages a BEAM node's global (or rex) handles.
func FuzzCore(f *testing.F) {
	f.Add(uint64(1), uint16(100))
	f.Add(uint64(42), uint16(2000))
	f.Fuzz(func(t *testing.T, seed uint64, steps uint16) {
		d := &fuzzDriver{r: rand.New(rand.NewPCG(seed, 0)), nodes: []etf.Atom{"a@h", "b@h", "z@h", "go@h"}}
		c := newCore(goPid, Limits{MaxNames: 2, MaxLocks: 1, MaxNodes: 3}, func(etf.Atom) bool { return true })
		for i := 0; i < int(steps%3000); i++ {
			d.step(t, c)
		}
	})
}
