package global

import (
	"slices"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/node/term"
)

// ServerName is the registered name of global's process on every node.
const ServerName = "global_name_server"

// protocolVersion is the version of global's node-connect protocol this
// node speaks: the one OTP 25, 27 and 29 speak among themselves.
const protocolVersion = 8

// The protocol's atoms.
const (
	atomGenCast       = etf.Atom("$gen_cast")
	atomInitConnect   = etf.Atom("init_connect")
	atomInitAck       = etf.Atom("init_connect_ack")
	atomCancelConnect = etf.Atom("cancel_connect")
	atomLocker        = etf.Atom("locker")
	atomLockSet       = etf.Atom("lock_set")
	atomExchange      = etf.Atom("exchange")
	atomResolved      = etf.Atom("resolved")
	atomInSync        = etf.Atom("in_sync")
	atomNewNodes      = etf.Atom("new_nodes")
	atomInsert        = etf.Atom("insert")
	atomDelete        = etf.Atom("delete")
	atomGlobal        = etf.Atom("global")
	atomRemoveConn    = etf.Atom("remove_connection")
	atomLostConn      = etf.Atom("lost_connection")
	atomSetLock       = etf.Atom("set_lock")
	atomDelLock       = etf.Atom("del_lock")
	atomRegister      = etf.Atom("register")
	atomRegisterExt   = etf.Atom("register_ext")
	atomUnregister    = etf.Atom("unregister")
	atomUnused        = etf.Atom("unused")
	atomNoLongerAPid  = etf.Atom("no_longer_a_pid")
)

// Drop reasons: why a message from a peer was not applied. Each is a fixed
// string, fit for a metric label.
const (
	DropMalformed = "malformed" // not a message of the protocol, or a bad field
	DropTooMany   = "too_many"  // over a limit of Limits
	DropStale     = "stale"     // a message of a connect attempt that is over (its tag is not the current one)
	DropUnknown   = "unknown"   // a message global's process does not handle
)

// Limits bound what peers can make the name server hold.
type Limits struct {
	// MaxNames is how many global names are kept. Default 1,048,576.
	MaxNames int
	// MaxLocks is how many lock resources are held at once. Default 65,536.
	MaxLocks int
	// MaxNodes is how many nodes (known or connecting) are kept. Default 4,096.
	MaxNodes int
}

// DefaultLimits returns the defaults described on Limits.
func DefaultLimits() Limits {
	return Limits{MaxNames: 1 << 20, MaxLocks: 1 << 16, MaxNodes: 4096}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxNames <= 0 {
		l.MaxNames = d.MaxNames
	}
	if l.MaxLocks <= 0 {
		l.MaxLocks = d.MaxLocks
	}
	if l.MaxNodes <= 0 {
		l.MaxNodes = d.MaxNodes
	}
	return l
}

// key identifies a term (a name or a lock resource): its external format
// encoding.
type key string

func keyOf(t etf.Term) (key, bool) {
	b, err := term.Encode(nil, t)
	if err != nil {
		return "", false
	}
	return key(b), true
}

// entry is one registered global name.
type entry struct {
	name   etf.Term
	pid    etf.Pid
	method etf.Term
}

// lock is one lock resource held on this node (global:set_lock/2): the
// requester id and the processes holding it.
type lock struct {
	resource  etf.Term
	requester etf.Term
	holders   []etf.Pid
}

// peer is the state of the connect protocol with one node (the
// counterpart of OTP's per-node sync tags, resolver and saved ops).
type peer struct {
	myTag     int64
	hisTag    etf.Term
	hasHisTag bool
	hisLocker etf.Pid
	lockID    etf.Term
	lockSet   bool
	hisNames  etf.List // the peer's exchange, waiting for the lock
	gotNames  bool
	ops       etf.List // ours, computed from his names
	opsReady  bool
	hisOps    etf.List // his resolved ops, waiting for ours
	gotHisOps bool
	hisVsn    int
}

// outbound is a message to send: To is an etf.Pid or a gen.ProcessID.
type outbound struct {
	To  any
	Msg etf.Term
}

// effects is what one step of the core asks its shell to do.
type effects struct {
	send       []outbound
	monitor    []etf.Pid
	demonitor  []etf.Pid
	disconnect []string
	// exit lists local processes that lost a name clash (exit kill, as
	// global:random_exit_name/3 does).
	exit      []etf.Pid
	synced    []string
	dropped   []string
	conflicts int
}

func (e *effects) drop(reason string) { e.dropped = append(e.dropped, reason) }

func (e *effects) cast(nodeName etf.Atom, msg etf.Term) {
	e.send = append(e.send, outbound{gen.ProcessID{Name: ServerName, Node: string(nodeName)}, etf.Tuple{atomGenCast, msg}})
}

func (e *effects) info(nodeName etf.Atom, msg etf.Term) {
	e.send = append(e.send, outbound{gen.ProcessID{Name: ServerName, Node: string(nodeName)}, msg})
}

// core is global's state and protocol rules: no goroutines, no I/O. The
// shell (Server) feeds it node events and messages and runs its effects.
//
// In the connect protocol this node answers the peer's locker and never
// starts a lock itself: a BEAM node's locker asks for the lock, this node
// grants it when no other connect holds global's lock here, and both sides
// then exchange their names. The node reports no other known nodes in its
// answer: each BEAM node of a full mesh syncs with it directly, and nodes a
// peer knows are told this node is in sync with them (in_sync), as a BEAM
// node does.
type core struct {
	self    etf.Pid
	node    etf.Atom
	limits  Limits
	nextTag int64

	peers  map[etf.Atom]*peer
	pre    map[etf.Atom]etf.Tuple // init_connect received before the node's nodeup
	known  map[etf.Atom]int       // nodes known to be in sync with this one's partition, and their protocol version
	synced map[etf.Atom]bool      // nodes that synced with this one (resolved or in_sync)
	names  map[key]*entry
	byPid  map[etf.Pid][]key // names, per pid
	locks  map[key]*lock
	holdOf map[etf.Pid]int // locks held, per pid (monitor while > 0)
	lost   map[lostKey]lostSeen
	// connected reports whether a node is connected now (the shell's view).
	connected func(etf.Atom) bool
}

func newCore(self etf.Pid, limits Limits, connected func(etf.Atom) bool) *core {
	return &core{
		self: self, node: self.Node, limits: limits.withDefaults(), connected: connected,
		peers: map[etf.Atom]*peer{}, pre: map[etf.Atom]etf.Tuple{}, known: map[etf.Atom]int{}, synced: map[etf.Atom]bool{},
		names: map[key]*entry{}, byPid: map[etf.Pid][]key{},
		locks: map[key]*lock{}, holdOf: map[etf.Pid]int{}, lost: map[lostKey]lostSeen{},
	}
}

// nodeUp starts the connect protocol with a node that came up.
func (c *core) nodeUp(n etf.Atom) effects {
	var e effects
	c.startConnect(n, &e)
	return e
}

func (c *core) startConnect(n etf.Atom, e *effects) {
	if n == c.node {
		return
	}
	if _, ok := c.known[n]; ok {
		return
	}
	if _, ok := c.peers[n]; ok {
		return
	}
	if len(c.peers)+len(c.known) >= c.limits.MaxNodes {
		e.drop(DropTooMany)
		return
	}
	c.nextTag++
	p := &peer{myTag: c.nextTag}
	c.peers[n] = p
	// The locker field names this process: peers' lockers answer through
	// global_name_server of its node, and the pid takes the locker's place
	// in the lock id.
	e.cast(n, etf.Tuple{atomInitConnect, etf.Tuple{protocolVersion, p.myTag}, c.node,
		etf.Tuple{atomLocker, atomNoLongerAPid, etf.Map{}, c.self}})
	if pre, ok := c.pre[n]; ok {
		delete(c.pre, n)
		c.initConnect(n, pre, e)
	}
}

// nodeDown forgets a node: its connect, its names and its locks.
func (c *core) nodeDown(n etf.Atom) effects {
	var e effects
	delete(c.peers, n)
	delete(c.pre, n)
	delete(c.known, n)
	delete(c.synced, n)
	for pid := range c.byPid {
		if pid.Node == n {
			c.dropPid(pid, &e)
		}
	}
	for pid := range c.holdOf {
		if pid.Node == n {
			c.releasePid(pid, &e)
		}
	}
	return e
}

// down handles the DOWN of a monitored process: its names and locks go.
func (c *core) down(pid etf.Pid) effects {
	var e effects
	c.dropPid(pid, &e)
	c.releasePid(pid, &e)
	return e
}

func (c *core) dropPid(pid etf.Pid, e *effects) {
	for _, k := range c.byPid[pid] {
		if en, ok := c.names[k]; ok && en.pid == pid {
			delete(c.names, k)
		}
	}
	if _, ok := c.byPid[pid]; ok {
		delete(c.byPid, pid)
		if c.holdOf[pid] == 0 {
			e.demonitor = append(e.demonitor, pid)
		}
	}
}

func (c *core) releasePid(pid etf.Pid, e *effects) {
	if c.holdOf[pid] == 0 {
		return
	}
	for k, l := range c.locks {
		if i := slices.Index(l.holders, pid); i >= 0 {
			l.holders = slices.Delete(l.holders, i, i+1)
			if len(l.holders) == 0 {
				delete(c.locks, k)
			}
		}
	}
	delete(c.holdOf, pid)
	if len(c.byPid[pid]) == 0 {
		e.demonitor = append(e.demonitor, pid)
	}
}

// handle runs one message sent to global_name_server: a cast's payload
// when cast is true, a plain message otherwise.
func (c *core) handle(msg etf.Term, cast bool) effects {
	var e effects
	t, ok := msg.(etf.Tuple)
	if !ok || len(t) == 0 {
		e.drop(DropUnknown)
		return e
	}
	tag, _ := t[0].(etf.Atom)
	switch {
	case cast && tag == atomInitConnect && len(t) == 4:
		n, ok := t[2].(etf.Atom)
		if !ok {
			e.drop(DropMalformed)
			return e
		}
		if _, connecting := c.peers[n]; !connecting {
			// Before this node saw the nodeup: kept for it (OTP keeps it
			// too), one per node.
			if _, had := c.pre[n]; !had && len(c.pre) >= c.limits.MaxNodes {
				e.drop(DropTooMany)
				return e
			}
			c.pre[n] = t
			return e
		}
		c.initConnect(n, t, &e)
	case !cast && tag == atomInitAck && len(t) == 4:
		c.initAck(t, &e)
	case !cast && tag == atomCancelConnect && len(t) == 3:
		c.cancelConnect(t, &e)
	case cast && tag == atomLockSet && len(t) == 5:
		c.lockSet(t, &e)
	case cast && tag == atomLockSet && len(t) == 4:
		// The lock_set of a protocol older than 8: no release this node
		// talks to sends it.
		e.drop(DropStale)
	case cast && tag == atomExchange && len(t) == 5:
		c.exchange(t, &e)
	case cast && tag == atomResolved && len(t) == 7:
		c.resolved(t, &e)
	case cast && tag == atomInSync && len(t) == 3:
		c.inSync(t, &e)
	case cast && tag == atomNewNodes && len(t) == 6:
		c.newNodes(t, &e)
	case !cast && tag == atomRemoveConn && len(t) == 2:
		c.removeConnection(t, &e)
	case !cast && tag == atomLostConn && len(t) == 5:
		c.lostConnection(t, &e)
	default:
		e.drop(DropUnknown)
	}
	return e
}

// initConnect handles {init_connect, {Vsn, HisTag}, Node, {locker, _, _, HisLocker}}.
func (c *core) initConnect(n etf.Atom, t etf.Tuple, e *effects) {
	vt, ok := t[1].(etf.Tuple)
	if !ok || len(vt) < 2 {
		e.drop(DropMalformed)
		return
	}
	hisVsn, ok := intOf(vt[0])
	if !ok {
		e.drop(DropMalformed)
		return
	}
	hisTag := vt[1]
	lt, ok := t[3].(etf.Tuple)
	if !ok || len(lt) != 4 || lt[0] != atomLocker {
		e.drop(DropMalformed)
		return
	}
	hisLocker, ok := lt[3].(etf.Pid)
	if !ok || hisLocker.Node != n {
		e.drop(DropMalformed)
		return
	}
	if hisVsn < protocolVersion {
		// Releases before OTP 25 (protocol 7 and older) are not spoken.
		e.drop(DropMalformed)
		return
	}
	p := c.peers[n]
	if p.hasHisTag {
		// A second connect attempt while one is under way: cancel his
		// and start ours again, as OTP does.
		e.info(n, etf.Tuple{atomCancelConnect, c.node, hisTag})
		c.restart(n, e)
		return
	}
	p.hisTag, p.hasHisTag, p.hisLocker, p.hisVsn = hisTag, true, hisLocker, protocolVersion
	e.info(n, etf.Tuple{atomInitAck, c.node, hisTag, p.myTag})
}

// restart forgets the connect with n and starts another if n is connected.
func (c *core) restart(n etf.Atom, e *effects) {
	delete(c.peers, n)
	if c.connected(n) {
		c.startConnect(n, e)
	}
}

func (c *core) initAck(t etf.Tuple, e *effects) {
	n, ok := t[1].(etf.Atom)
	if !ok {
		e.drop(DropMalformed)
		return
	}
	p, ok := c.peers[n]
	if !ok {
		e.drop(DropStale)
		return
	}
	mine, ok := intOf(t[2])
	if ok && mine == p.myTag && p.hasHisTag && equal(t[3], p.hisTag) {
		return
	}
	e.info(n, etf.Tuple{atomCancelConnect, c.node, t[3]})
	c.restart(n, e)
}

func (c *core) cancelConnect(t etf.Tuple, e *effects) {
	n, ok := t[1].(etf.Atom)
	if !ok {
		e.drop(DropMalformed)
		return
	}
	p, ok := c.peers[n]
	mine, isInt := intOf(t[2])
	if !ok || !isInt || mine != p.myTag {
		e.drop(DropStale)
		return
	}
	c.restart(n, e)
}

// current returns the connect with node n when tag is this node's tag of
// it.
// currentOf is current for a message whose element 1 is the sending node
// and element tagIdx the connection's tag: a message that is malformed or
// of an earlier connection is counted as dropped, and ok is false.
func (c *core) currentOf(t etf.Tuple, tagIdx int, e *effects) (n etf.Atom, p *peer, ok bool) {
	n, ok = t[1].(etf.Atom)
	if !ok {
		e.drop(DropMalformed)
		return "", nil, false
	}
	p, ok = c.current(n, t[tagIdx])
	if !ok {
		e.drop(DropStale)
		return "", nil, false
	}
	return n, p, true
}

func (c *core) current(n etf.Atom, tag etf.Term) (*peer, bool) {
	p, ok := c.peers[n]
	if !ok {
		return nil, false
	}
	mine, isInt := intOf(tag)
	return p, isInt && mine == p.myTag && p.hasHisTag
}

// lockSet handles {lock_set, HisLocker, true, HisKnown, MyTag}: the peer's
// locker holds global's lock on its nodes and asks for it here.
func (c *core) lockSet(t etf.Tuple, e *effects) {
	locker, ok := t[1].(etf.Pid)
	if !ok {
		e.drop(DropMalformed)
		return
	}
	n := locker.Node
	if t[2] != true {
		return // his locker gave up; it asks again later
	}
	p, cur := c.current(n, t[4])
	refuse := func() {
		// A locker waiting for this node's answer takes this plain reply
		// (the form a locker sends a peer whose tag it does not know).
		e.send = append(e.send, outbound{locker, etf.Tuple{atomLockSet, c.self, false, etf.List{}}})
	}
	if !cur || p.lockSet || locker != p.hisLocker {
		e.drop(DropStale)
		refuse()
		return
	}
	if l, held := c.locks[globalKey]; held && !c.sameConnectLock(l.requester, locker) {
		e.cast(n, etf.Tuple{atomLockSet, c.self, false, etf.List{}, p.hisTag})
		return
	}
	p.lockSet = true
	p.lockID = etf.Tuple{atomGlobal, etf.List{locker, c.self}}
	if l, held := c.locks[globalKey]; held {
		p.lockID = etf.Tuple{atomGlobal, l.requester}
	}
	e.cast(n, etf.Tuple{atomLockSet, c.self, true, etf.List{}, p.hisTag})
	e.cast(n, etf.Tuple{atomExchange, c.node, c.nameList(), etf.List{}, p.hisTag})
	c.maybeResolve(n, p, e)
}

// globalKey is the key of the resource global's connect lock takes.
var globalKey, _ = keyOf(atomGlobal)

// sameConnectLock reports whether requester is the id of the connect lock
// between locker and this node: the list of both pids.
func (c *core) sameConnectLock(requester etf.Term, locker etf.Pid) bool {
	l, ok := requester.(etf.List)
	if !ok || len(l) != 2 {
		return false
	}
	return (l[0] == locker && l[1] == c.self) || (l[1] == locker && l[0] == c.self)
}

func (c *core) exchange(t etf.Tuple, e *effects) {
	n, p, ok := c.currentOf(t, 4, e)
	if !ok {
		return
	}
	names, ok := t[2].(etf.List)
	if !ok || len(names) > c.limits.MaxNames {
		e.drop(DropMalformed)
		c.restart(n, e)
		return
	}
	p.hisNames, p.gotNames = names, true
	c.maybeResolve(n, p, e)
}

// maybeResolve compares the peer's names with ours once both the lock and
// his names are there, and sends him the result.
func (c *core) maybeResolve(n etf.Atom, p *peer, e *effects) {
	if !p.lockSet || !p.gotNames || p.opsReady {
		return
	}
	var ops, res etf.List
	for _, it := range p.hisNames {
		nt, ok := it.(etf.Tuple)
		if !ok || len(nt) != 3 {
			e.drop(DropMalformed)
			continue
		}
		pid, ok := nt[1].(etf.Pid)
		if !ok {
			e.drop(DropMalformed)
			continue
		}
		k, ok := keyOf(nt[0])
		if !ok {
			e.drop(DropMalformed)
			continue
		}
		mine, have := c.names[k]
		switch {
		case !have:
			ops = append(ops, etf.Tuple{atomInsert, nt})
		case mine.pid == pid:
		case c.node < n:
			// A clash this node resolves (the node of lower name does):
			// the default rule keeps the process of the lower node and
			// exits the other.
			e.conflicts++
			keep, lose := mine.pid, pid
			if pid.Node < mine.pid.Node {
				keep, lose = pid, mine.pid
			}
			if lose.Node == c.node {
				e.exit = append(e.exit, lose)
			} else {
				// As global:random_exit_name/3 run on the loser's node:
				// rex there runs erlang:exit(Loser, kill) (an rpc:cast).
				e.send = append(e.send, outbound{gen.ProcessID{Name: "rex", Node: string(lose.Node)},
					etf.Tuple{atomGenCast, etf.Tuple{etf.Atom("cast"), etf.Atom("erlang"), etf.Atom("exit"),
						etf.List{lose, etf.Atom("kill")}, c.self}}})
			}
			if keep == pid {
				ops = append(ops, etf.Tuple{atomInsert, nt})
			} else {
				res = append(res, etf.Tuple{atomInsert, etf.Tuple{mine.name, mine.pid, mine.method}})
			}
		}
	}
	p.ops, p.opsReady = ops, true
	if res == nil {
		res = etf.List{}
	}
	e.cast(n, etf.Tuple{atomResolved, c.node, res, etf.List{}, atomUnused, etf.List{}, p.hisTag})
	c.maybeFinish(n, p, e)
}

func (c *core) resolved(t etf.Tuple, e *effects) {
	n, p, ok := c.currentOf(t, 6, e)
	if !ok {
		return
	}
	hisOps, ok1 := t[2].(etf.List)
	hisKnown, ok2 := t[3].(etf.List)
	if !ok1 || !ok2 || len(hisOps) > c.limits.MaxNames || len(hisKnown) > c.limits.MaxNodes {
		e.drop(DropMalformed)
		c.restart(n, e)
		return
	}
	p.hisOps, p.gotHisOps = hisOps, true
	// His known nodes are in sync with this one from now on: tell them,
	// as OTP's sync_others does.
	for _, k := range hisKnown {
		kn, ok := nodeOf(k)
		if !ok || kn == c.node || kn == n {
			continue
		}
		c.addKnown(kn, e)
	}
	c.maybeFinish(n, p, e)
}

// addKnown makes a connected node known and tells it this node is in sync
// with it.
func (c *core) addKnown(n etf.Atom, e *effects) {
	if _, ok := c.known[n]; ok || !c.connected(n) {
		return
	}
	if len(c.known) >= c.limits.MaxNodes {
		e.drop(DropTooMany)
		return
	}
	c.known[n] = protocolVersion
	e.cast(n, etf.Tuple{atomInSync, c.node, true})
}

func (c *core) maybeFinish(n etf.Atom, p *peer, e *effects) {
	if !p.opsReady || !p.gotHisOps {
		return
	}
	c.doOps(p.ops, e)
	c.doOps(p.hisOps, e)
	delete(c.peers, n)
	c.known[n] = p.hisVsn
	c.markSynced(n, e)
}

// doOps applies {insert, {Name, Pid, Method}} and {delete, Name} ops.
func (c *core) doOps(ops etf.List, e *effects) {
	for _, o := range ops {
		ot, ok := o.(etf.Tuple)
		if !ok || len(ot) != 2 {
			e.drop(DropMalformed)
			continue
		}
		switch ot[0] {
		case atomInsert:
			nt, ok := ot[1].(etf.Tuple)
			if !ok || len(nt) != 3 {
				e.drop(DropMalformed)
				continue
			}
			pid, ok := nt[1].(etf.Pid)
			if !ok {
				e.drop(DropMalformed)
				continue
			}
			c.insert(nt[0], pid, nt[2], e)
		case atomDelete:
			c.remove(ot[1], e)
		default:
			e.drop(DropMalformed)
		}
	}
}

// insert registers name for pid, replacing the name's old holder.
func (c *core) insert(name etf.Term, pid etf.Pid, method etf.Term, e *effects) bool {
	k, ok := keyOf(name)
	if !ok {
		e.drop(DropMalformed)
		return false
	}
	if _, ok := keyOf(method); !ok {
		e.drop(DropMalformed)
		return false
	}
	if _, had := c.names[k]; !had && len(c.names) >= c.limits.MaxNames {
		e.drop(DropTooMany)
		return false
	}
	c.remove(name, e)
	c.names[k] = &entry{name: name, pid: pid, method: method}
	if _, watched := c.byPid[pid]; !watched && c.holdOf[pid] == 0 {
		e.monitor = append(e.monitor, pid)
	}
	c.byPid[pid] = append(c.byPid[pid], k)
	return true
}

func (c *core) remove(name etf.Term, e *effects) {
	k, ok := keyOf(name)
	if !ok {
		return
	}
	en, ok := c.names[k]
	if !ok {
		return
	}
	delete(c.names, k)
	ks := slices.DeleteFunc(c.byPid[en.pid], func(x key) bool { return x == k })
	if len(ks) == 0 {
		delete(c.byPid, en.pid)
		if c.holdOf[en.pid] == 0 {
			e.demonitor = append(e.demonitor, en.pid)
		}
	} else {
		c.byPid[en.pid] = ks
	}
}

// inSync handles {in_sync, Node, IsKnown}: a node that synced with a node
// this one is in sync with counts this one as in sync too. As in OTP, the
// node is marked in sync and a connect under way with it ends; it becomes
// known through the new_nodes that follows.
func (c *core) inSync(t etf.Tuple, e *effects) {
	n, ok := t[1].(etf.Atom)
	if !ok {
		e.drop(DropMalformed)
		return
	}
	if p, ok := c.peers[n]; ok && p.hasHisTag {
		e.info(n, etf.Tuple{atomCancelConnect, c.node, p.hisTag})
	}
	delete(c.peers, n)
	delete(c.pre, n)
	c.markSynced(n, e)
}

func (c *core) markSynced(n etf.Atom, e *effects) {
	if !c.synced[n] {
		if len(c.synced) >= c.limits.MaxNodes {
			e.drop(DropTooMany)
			return
		}
		c.synced[n] = true
	}
	e.synced = append(e.synced, string(n))
}

// newNodes handles {new_nodes, Node, Ops, NamesExt, Nodes, ExtraInfo}: a
// node this one is in sync with synced with other nodes.
func (c *core) newNodes(t etf.Tuple, e *effects) {
	n, ok := t[1].(etf.Atom)
	if !ok {
		e.drop(DropMalformed)
		return
	}
	if _, ok := c.known[n]; !ok {
		e.drop(DropStale)
		return
	}
	ops, ok1 := t[2].(etf.List)
	nodes, ok2 := t[4].(etf.List)
	if !ok1 || !ok2 || len(ops) > c.limits.MaxNames || len(nodes) > c.limits.MaxNodes {
		e.drop(DropMalformed)
		return
	}
	for _, x := range nodes {
		if kn, ok := nodeOf(x); ok && kn != c.node {
			c.addKnown(kn, e)
		}
	}
	c.doOps(ops, e)
}

// lostKey identifies a lost-connection notice: the node that lost the
// connection and the node it lost.
type lostKey struct{ a, b etf.Atom }

// lostConnection handles {lost_connection, NodeA, XCreationA, OpIdA,
// NodeB} (prevent_overlapping_partitions): NodeA lost its connection to
// NodeB. As a BEAM node does, this node asks NodeB (NodeA when NodeB is
// this node) to disconnect from it and stops counting it as in sync, so that no node
// stays connected to both sides of a partition; a notice seen already (same
// creation, no newer operation id) is ignored. This node never sends the
// notice itself: a link of gonode that flaps makes no BEAM node ask another
// to disconnect.
func (c *core) lostConnection(t etf.Tuple, e *effects) {
	a, ok1 := t[1].(etf.Atom)
	b, ok2 := t[4].(etf.Atom)
	op, ok3 := intOf(t[3])
	if !ok1 || !ok2 || !ok3 {
		e.drop(DropMalformed)
		return
	}
	k := lostKey{a, b}
	if seen, ok := c.lost[k]; ok && equal(seen.creation, t[2]) && op <= seen.op {
		return
	}
	if _, ok := c.lost[k]; !ok && len(c.lost) >= c.limits.MaxNodes {
		e.drop(DropTooMany)
		return
	}
	c.lost[k] = lostSeen{creation: t[2], op: op}
	rm := b
	if b == c.node {
		rm = a
	}
	_, isKnown := c.known[rm]
	_, connecting := c.peers[rm]
	if rm == c.node || (!isKnown && !connecting) {
		return
	}
	e.info(rm, etf.Tuple{atomRemoveConn, c.node})
	delete(c.peers, rm)
	delete(c.known, rm)
	delete(c.synced, rm)
}

// lostSeen is the last lost-connection notice seen for a pair of nodes.
type lostSeen struct {
	creation etf.Term
	op       int64
}

// removeConnection handles {remove_connection, Node}: a node asks this one
// to disconnect from it (prevent_overlapping_partitions), as a BEAM node
// does.
func (c *core) removeConnection(t etf.Tuple, e *effects) {
	n, ok := t[1].(etf.Atom)
	if !ok {
		e.drop(DropMalformed)
		return
	}
	_, isKnown := c.known[n]
	_, connecting := c.peers[n]
	if !isKnown && !connecting {
		return
	}
	delete(c.peers, n)
	delete(c.known, n)
	delete(c.synced, n)
	e.disconnect = append(e.disconnect, string(n))
}

// setLock handles the call {set_lock, {ResourceId, RequesterId}} from pid.
func (c *core) setLock(id etf.Term, pid etf.Pid) (bool, effects) {
	var e effects
	it, ok := id.(etf.Tuple)
	if !ok || len(it) != 2 {
		e.drop(DropMalformed)
		return false, e
	}
	k, ok := keyOf(it[0])
	if !ok {
		e.drop(DropMalformed)
		return false, e
	}
	l, held := c.locks[k]
	switch {
	case !held:
		if len(c.locks) >= c.limits.MaxLocks {
			e.drop(DropTooMany)
			return false, e
		}
		l = &lock{resource: it[0], requester: it[1]}
		c.locks[k] = l
	case !equal(l.requester, it[1]):
		return false, e
	}
	if !slices.Contains(l.holders, pid) {
		l.holders = append(l.holders, pid)
		if c.holdOf[pid] == 0 && len(c.byPid[pid]) == 0 {
			e.monitor = append(e.monitor, pid)
		}
		c.holdOf[pid]++
	}
	return true, e
}

// delLock handles the call {del_lock, {ResourceId, RequesterId}} from pid.
func (c *core) delLock(id etf.Term, pid etf.Pid) effects {
	var e effects
	it, ok := id.(etf.Tuple)
	if !ok || len(it) != 2 {
		e.drop(DropMalformed)
		return e
	}
	k, ok := keyOf(it[0])
	if !ok {
		return e
	}
	l, held := c.locks[k]
	if !held || !equal(l.requester, it[1]) {
		return e
	}
	i := slices.Index(l.holders, pid)
	if i < 0 {
		return e
	}
	l.holders = slices.Delete(l.holders, i, i+1)
	if len(l.holders) == 0 {
		delete(c.locks, k)
	}
	c.holdOf[pid]--
	if c.holdOf[pid] <= 0 {
		delete(c.holdOf, pid)
		if len(c.byPid[pid]) == 0 {
			e.demonitor = append(e.demonitor, pid)
		}
	}
	return e
}

// nameList is the names for an exchange: [{Name, Pid, Method}].
func (c *core) nameList() etf.List {
	l := make(etf.List, 0, len(c.names))
	for _, en := range c.names {
		l = append(l, etf.Tuple{en.name, en.pid, en.method})
	}
	return l
}

// whereis returns the pid registered under name.
func (c *core) whereis(name etf.Term) (etf.Pid, bool) {
	k, ok := keyOf(name)
	if !ok {
		return etf.Pid{}, false
	}
	en, ok := c.names[k]
	if !ok {
		return etf.Pid{}, false
	}
	return en.pid, true
}

func nodeOf(t etf.Term) (etf.Atom, bool) {
	switch v := t.(type) {
	case etf.Atom:
		return v, true
	case etf.Tuple:
		if len(v) == 2 {
			a, ok := v[0].(etf.Atom)
			return a, ok
		}
	}
	return "", false
}

func intOf(t etf.Term) (int64, bool) {
	switch v := t.(type) {
	case int:
		return int64(v), true
	case int64:
		return v, true
	case int32:
		return int64(v), true
	case int16:
		return int64(v), true
	case int8:
		return int64(v), true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	}
	return 0, false
}

// equal compares two terms by their encoding.
func equal(a, b etf.Term) bool {
	ka, ok1 := keyOf(a)
	kb, ok2 := keyOf(b)
	return ok1 && ok2 && ka == kb
}
