package dist

import (
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	"github.com/gonode/gonode/node/term"
)

// mailboxFullWait bounds how long the reader waits for a local process's
// full mailbox before it drops the message.
const mailboxFullWait = 10 * time.Second

// readSlab is the size of the reader's slabs (frameReader): the most one
// read system call takes from the socket, and the most memory a body given
// to a process can hold on to beyond its own.
const readSlab = 256 << 10

// readLoop reads frames in arrival order and routes each complete message
// before reading the next, which keeps Erlang's per-pair ordering. It
// returns the error that ended the connection.
func (c *conn) readLoop() error {
	fr := newFrameReader(c.src, readSlab, c.cfg.MaxFrameSize)
	asm := newAssembler(c.cfg.MaxFrameSize)
	asm.extend = fr.extend
	for {
		body, owned, err := fr.next()
		if err != nil {
			switch {
			case isTimeout(err):
				c.tickTimeouts.Add(1)
				if c.obs != nil {
					c.obs.TickTimeout(c.peer.Name)
				}
				c.log.Warn("peer silent for net_ticktime: disconnecting", "net_ticktime", c.cfg.NetTickTime)
				return fmt.Errorf("dist: nothing received from %s for %s: %w", c.peer.Name, c.cfg.NetTickTime, err)
			case errors.Is(err, ErrFrameTooLarge):
				c.log.Error("oversized frame: closing the connection", "err", err, "max_frame_size", c.cfg.MaxFrameSize)
			}
			return err
		}
		n := 4 + len(body)
		c.bytesIn.Add(uint64(n))
		if len(body) == 0 { // tick
			if c.obs != nil {
				c.obs.Traffic(c.peer.Name, TrafficIn, 0, n)
			}
			continue
		}
		msg, complete, err := asm.feed(body, owned)
		if err != nil {
			if errors.Is(err, ErrFrameTooLarge) {
				c.log.Error("oversized fragmented message: closing the connection", "err", err, "max_frame_size", c.cfg.MaxFrameSize)
				return err
			}
			c.drop(err)
			continue
		}
		msgs := 0
		if complete {
			msgs = 1
			c.msgsIn.Add(1)
		}
		if c.obs != nil {
			c.obs.Traffic(c.peer.Name, TrafficIn, msgs, n)
		}
		if !complete {
			continue
		}
		if err := c.dispatchSafely(msg); err != nil {
			c.drop(err)
		}
	}
}

// dispatchSafely is dispatch, with a panic inside the runtime it calls (ergo's
// router and processes) turned into a dropped frame: whatever a peer sends,
// it must not take the connection's reader, and with it the node, down.
func (c *conn) dispatchSafely(m rawMessage) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: delivering it panicked: %v", ErrMalformedFrame, r)
		}
	}()
	return c.dispatch(m)
}

// drop counts a dropped frame and logs it, at most once per dropLogEvery.
func (c *conn) drop(err error) {
	c.dropped.Add(1)
	if c.obs != nil {
		c.obs.FrameDropped(c.peer.Name, err)
	}
	c.dropsSince++
	now := time.Now()
	if now.Sub(c.lastDropLog) < dropLogEvery {
		return
	}
	msg := "dropped a frame that could not be understood"
	if errors.Is(err, term.ErrDecodeBudget) {
		msg = "dropped a message that would take more memory than its decode budget"
	}
	c.log.Warn(msg, "err", err, "dropped", c.dropsSince, "dropped_total", c.dropped.Load())
	c.lastDropLog = now
	c.dropsSince = 0
}

// dispatch routes one decoded message to ergo's router. An error means the
// message did not have the shape its operation requires; it is dropped.
func (c *conn) dispatch(m rawMessage) error {
	budget := c.cfg.decodeBudget(len(m.data))
	c.budget = *term.NewDecodeBudget(budget)
	control, payload, hasPayload, err := decodeMessage(m, &c.budget)
	if err != nil {
		if errors.Is(err, term.ErrDecodeBudget) {
			return fmt.Errorf("message of %d bytes over its decode budget of %d bytes: %w", len(m.data), budget, err)
		}
		return err
	}
	t, ok := control.(etf.Tuple)
	if !ok || len(t) == 0 {
		return malformed("control message is %T, not a tuple", control)
	}
	op, ok := asInt(t[0])
	if !ok {
		return malformed("control message operation %v", t[0])
	}
	if hasPayload {
		payload = term.AdaptGenCall(payload)
	}
	d := decoder{t: t, op: op}
	r := c.router
	needPayload := func() error {
		if !hasPayload {
			return malformed("operation %d without its message", op)
		}
		return nil
	}

	switch op {
	case opSend, opSendTT: // {2, Unused, ToPid} | {12, Unused, ToPid, Token}
		to := d.pid(2)
		if err := d.check(3, 4); err != nil {
			return err
		}
		if err := needPayload(); err != nil {
			return err
		}
		c.deliver(func() error { return r.RouteSend(etf.Pid{}, to, payload) })

	case opSendSender, opSendSenderTT: // {22, FromPid, ToPid} | {23, FromPid, ToPid, Token}
		from, to := d.pid(1), d.pid(2)
		if err := d.check(3, 4); err != nil {
			return err
		}
		if err := needPayload(); err != nil {
			return err
		}
		c.deliver(func() error { return r.RouteSend(from, to, payload) })

	case opRegSend, opRegSendTT: // {6, FromPid, Unused, ToName} | {16, ..., Token}
		from, name := d.pid(1), d.atom(3)
		if err := d.check(4, 5); err != nil {
			return err
		}
		if err := needPayload(); err != nil {
			return err
		}
		to := gen.ProcessID{Name: string(name), Node: c.nodename}
		c.deliver(func() error { return r.RouteSendReg(from, to, payload) })

	case opAliasSend, opAliasSendTT: // {33, FromPid, Alias} | {34, FromPid, Alias, Token}
		from, alias := d.pid(1), d.ref(2)
		if err := d.check(3, 4); err != nil {
			return err
		}
		if err := needPayload(); err != nil {
			return err
		}
		c.deliver(func() error { return r.RouteSendAlias(from, etf.Alias(alias), payload) })

	case opAltactSigSend: // {37, Flags, SenderPid, To} | {37, Flags, SenderPid, To, Token}
		return c.altactSig(&d, payload, hasPayload)

	case opLink: // {1, FromPid, ToPid}
		from, to := d.pid(1), d.pid(2)
		if err := d.check(3, 3); err != nil {
			return err
		}
		_ = r.RouteLink(from, to)

	case opUnlink: // {4, FromPid, ToPid}: the link protocol before OTP 26
		from, to := d.pid(1), d.pid(2)
		if err := d.check(3, 3); err != nil {
			return err
		}
		c.remoteUnlink(from, to)

	case opUnlinkID: // {35, Id, FromPid, ToPid}
		id, from, to := d.get(1), d.pid(2), d.pid(3)
		if err := d.check(4, 4); err != nil {
			return err
		}
		// The acknowledgement must precede every other signal to the
		// unlinking process.
		if err := c.send(etf.Tuple{int64(opUnlinkIDAck), id, to, from}, nil, false, false); err != nil {
			return nil
		}
		c.remoteUnlink(from, to)

	case opUnlinkIDAck: // {36, Id, FromPid, ToPid}: ergo already forgot the link
		if err := d.check(4, 4); err != nil {
			return err
		}

	case opExit, opExitTT, opPayloadExit, opPayloadExitTT:
		// {3, From, To, Reason} | {13, From, To, Token, Reason} |
		// {24, From, To} + Reason | {25, From, To, Token} + Reason
		from, to := d.pid(1), d.pid(2)
		reason, err := d.reason(op, payload, hasPayload)
		if err != nil {
			return err
		}
		_ = r.RouteExit(to, from, reasonString(reason))

	case opExit2, opExit2TT, opPayloadExit2, opPayloadExit2TT:
		from, to := d.pid(1), d.pid(2)
		reason, err := d.reason(op, payload, hasPayload)
		if err != nil {
			return err
		}
		c.exit2(from, to, reasonString(reason))

	case opMonitorP: // {19, FromPid, ToProc, Ref}
		from, ref := d.pid(1), d.ref(3)
		if err := d.check(4, 4); err != nil {
			return err
		}
		switch to := t[2].(type) {
		case etf.Pid:
			_ = r.RouteMonitor(from, to, ref)
		case etf.Atom:
			_ = r.RouteMonitorReg(from, gen.ProcessID{Name: string(to), Node: c.nodename}, ref)
		default:
			return malformed("MONITOR_P of %T", t[2])
		}

	case opDemonitorP: // {20, FromPid, ToProc, Ref}
		from, ref := d.pid(1), d.ref(3)
		if err := d.check(4, 4); err != nil {
			return err
		}
		_ = r.RouteDemonitor(from, ref)

	case opMonitorPExit, opPayloadMonitorPExit:
		// {21, FromProc, ToPid, Ref, Reason} | {28, FromProc, ToPid, Ref} + Reason
		ref := d.ref(3)
		_ = d.pid(2)
		reason, err := d.reason(op, payload, hasPayload)
		if err != nil {
			return err
		}
		// A monitor this connection sent is ended by the connection (see
		// monitors.go); ergo's router drops an exit that comes before it
		// recorded the monitor.
		switch from := t[1].(type) {
		case etf.Pid:
			if !c.sentMonitorExit(ref, reasonString(reason)) {
				_ = r.RouteMonitorExit(from, reasonString(reason), ref)
			}
		case etf.Atom:
			if !c.sentMonitorExit(ref, reasonString(reason)) {
				_ = r.RouteMonitorExitReg(gen.ProcessID{Name: string(from), Node: c.peer.Name}, reasonString(reason), ref)
			}
		default:
			return malformed("MONITOR_P_EXIT from %T", t[1])
		}

	case opSpawnRequest, opSpawnRequestTT:
		return c.spawnRequest(&d, payload, hasPayload)

	case opSpawnReply, opSpawnReplyTT: // {31, ReqId, To, Flags, Result} | {32, ..., Token}
		ref, to, result := d.ref(1), d.pid(2), d.get(4)
		if err := d.check(5, 6); err != nil {
			return err
		}
		_ = r.RouteSpawnReply(to, ref, result)

	default:
		if !c.unknownOps[op] {
			c.unknownOps[op] = true
			c.log.Warn("unsupported control message: dropped (logged once per operation)", "op", op, "arity", len(t))
		}
	}
	return nil
}

// deliver runs one delivery to a local process. While the receiver's
// mailbox is full it waits and retries, which stops reading from the peer:
// the peer's sender is then held back by TCP, as a BEAM process is suspended
// on a busy distribution port, instead of the message being dropped. After
// mailboxFullWait it gives up on the message and logs it.
func (c *conn) deliver(route func() error) {
	err := route()
	if !errors.Is(err, lib.ErrProcessMailboxFull) {
		return
	}
	start := time.Now()
	pause := 20 * time.Microsecond
	for errors.Is(err, lib.ErrProcessMailboxFull) {
		if time.Since(start) > mailboxFullWait {
			c.log.Warn("message dropped: the receiver's mailbox stayed full", "waited", mailboxFullWait)
			if c.obs != nil {
				c.obs.MessageDropped(c.peer.Name)
			}
			return
		}
		select {
		case <-c.done:
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Millisecond)
		err = route()
	}
}

// remoteUnlink removes the link the peer's process remote asked to remove.
// It asks ergo's router for the unlink from the local side, which clears
// both of ergo's link entries (unlinking from the remote side would leave a
// stale entry that later kills the local process with noconnection), and
// keeps the router's resulting Unlink call from signalling back.
func (c *conn) remoteUnlink(remote, local etf.Pid) {
	key := linkPair{local, remote}
	c.suppressMu.Lock()
	c.suppress[key]++
	c.suppressMu.Unlock()
	_ = c.router.RouteUnlink(local, remote)
	c.suppressMu.Lock()
	if n := c.suppress[key]; n > 1 {
		c.suppress[key] = n - 1
	} else if n == 1 {
		delete(c.suppress, key)
	}
	c.suppressMu.Unlock()
}

// processFinder is the part of ergo's core router that finds a local
// process (the router ergo passes to Serve implements it).
type processFinder interface {
	ProcessByPid(etf.Pid) gen.Process
}

// exit2 delivers an exit signal sent with erlang:exit/2 to the local process
// to, with Erlang's semantics: kill is untrappable; a process trapping exits
// receives gen.MessageExit; normal is ignored by a process not trapping.
func (c *conn) exit2(from, to etf.Pid, reason string) {
	if string(to.Node) != c.nodename {
		return
	}
	pf, ok := c.router.(processFinder)
	if !ok {
		if !c.unknownOps[opExit2] {
			c.unknownOps[opExit2] = true
			c.log.Warn("exit signal dropped: the router cannot look up processes", "router", fmt.Sprintf("%T", c.router))
		}
		return
	}
	p := pf.ProcessByPid(to)
	if p == nil {
		return
	}
	// ergo's Exit and Kill dereference the process's kill function, which the
	// process clears when it terminates: an exit signal that races with the
	// process's own end (two EXIT2 in a row, say) panics inside ergo. The
	// process is gone either way; a peer's signal must not take the reader,
	// and with it the node, down.
	defer func() {
		if r := recover(); r != nil {
			c.log.Debug("exit signal met a process that was already terminating", "to", to.String(), "panic", fmt.Sprint(r))
		}
	}()
	switch {
	case reason == "kill":
		p.Kill()
	case p.TrapExit():
		_ = c.router.RouteSend(from, to, gen.MessageExit{Pid: from, Reason: reason})
	case reason == "normal":
	default:
		_ = p.Exit(reason)
	}
}

// spawnRequest routes {29, ReqId, From, GroupLeader, {M, F, A}, Opts} +
// Args (30 adds a trace token) to ProtoConfig.Spawner when it takes the
// request, else to ergo's router, which spawns the behavior registered as M
// and replies. When the router cannot, the requester gets an
// error reply instead of silence.
func (c *conn) spawnRequest(d *decoder, payload etf.Term, hasPayload bool) error {
	ref, from := d.ref(1), d.pid(2)
	mfa, _ := d.get(4).(etf.Tuple)
	opts, _ := d.get(5).(etf.List)
	if err := d.check(6, 7); err != nil {
		return err
	}
	if len(mfa) != 3 {
		return malformed("SPAWN_REQUEST entry point %v", d.get(4))
	}
	module, ok1 := mfa[0].(etf.Atom)
	function, ok2 := mfa[1].(etf.Atom)
	if !ok1 || !ok2 {
		return malformed("SPAWN_REQUEST entry point %v", mfa)
	}
	args, ok := term.ListElements(payload) // nil without a payload: no arguments
	if !ok {
		return malformed("SPAWN_REQUEST arguments %T", payload)
	}
	req := gen.RemoteSpawnRequest{From: from, Ref: ref, Options: gen.RemoteSpawnOptions{Function: string(function)}}
	for _, o := range opts {
		switch v := o.(type) {
		case etf.Atom:
			switch v {
			case "link":
				req.Options.Link = true
			case "monitor":
				req.Options.Monitor = ref
			}
		case etf.Tuple:
			if len(v) == 2 && v[0] == etf.Atom("name") {
				if name, ok := v[1].(etf.Atom); ok {
					req.Options.Name = string(name)
				}
			}
			if len(v) == 2 && v[0] == etf.Atom("monitor") {
				req.Options.Monitor = ref
			}
		}
	}
	if c.spawnHook(req, module, d.get(3), args, opts) {
		return nil
	}
	if err := c.router.RouteSpawnRequest(c.nodename, string(module), req, args...); err != nil {
		_ = c.SpawnReplyError(from, ref, err)
	}
	return nil
}

// decoder reads the elements of a control tuple, remembering the first
// element of the wrong type.
type decoder struct {
	t   etf.Tuple
	op  int64
	err error
}

func (d *decoder) get(i int) etf.Term {
	if i >= len(d.t) {
		if d.err == nil {
			d.err = malformed("operation %d has %d elements, element %d missing", d.op, len(d.t), i+1)
		}
		return nil
	}
	return d.t[i]
}

func (d *decoder) pid(i int) etf.Pid {
	v := d.get(i)
	p, ok := v.(etf.Pid)
	if !ok && d.err == nil {
		d.err = malformed("operation %d element %d is %T, not a pid", d.op, i+1, v)
	}
	return p
}

func (d *decoder) ref(i int) etf.Ref {
	v := d.get(i)
	r, ok := v.(etf.Ref)
	if !ok && d.err == nil {
		d.err = malformed("operation %d element %d is %T, not a reference", d.op, i+1, v)
	}
	return r
}

func (d *decoder) atom(i int) etf.Atom {
	v := d.get(i)
	a, ok := v.(etf.Atom)
	if !ok && d.err == nil {
		d.err = malformed("operation %d element %d is %T, not an atom", d.op, i+1, v)
	}
	return a
}

// check returns the first element error, or an arity error when the tuple
// has neither min nor max elements.
func (d *decoder) check(min, max int) error {
	if d.err != nil {
		return d.err
	}
	if len(d.t) != min && len(d.t) != max {
		return malformed("operation %d with %d elements", d.op, len(d.t))
	}
	return nil
}

// reason returns the exit reason of an EXIT, EXIT2 or MONITOR_P_EXIT
// operation: the last tuple element, or the payload for PAYLOAD_ variants.
func (d *decoder) reason(op int64, payload etf.Term, hasPayload bool) (etf.Term, error) {
	var inTuple int // arity when the reason is the tuple's last element
	switch op {
	case opExit, opExit2:
		inTuple = 4
	case opExitTT, opExit2TT, opMonitorPExit:
		inTuple = 5
	}
	if inTuple > 0 {
		if err := d.check(inTuple, inTuple); err != nil {
			return nil, err
		}
		return d.t[inTuple-1], nil
	}
	arity := 3
	switch op {
	case opPayloadExitTT, opPayloadExit2TT, opPayloadMonitorPExit:
		arity = 4
	}
	if err := d.check(arity, arity); err != nil {
		return nil, err
	}
	if !hasPayload {
		return nil, malformed("operation %d without its reason", op)
	}
	return payload, nil
}

func asInt(t etf.Term) (int64, bool) {
	switch v := t.(type) {
	case int64:
		return v, true
	case int:
		return int64(v), true
	case int32:
		return int64(v), true
	case uint8:
		return int64(v), true
	case *big.Int:
		if v.IsInt64() {
			return v.Int64(), true
		}
	}
	return 0, false
}
