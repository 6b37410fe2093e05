package dist

import (
	"math/big"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// recvHandler routes one received control message of its operation to
// ergo's router. An error means the message did not have the shape its
// operation requires; the reader drops it.
type recvHandler func(c *conn, d *decoder) error

// recvHandlers holds the handler of every operation the connection routes,
// indexed by operation. An operation without one is logged (once per
// operation) and dropped.
var recvHandlers = [...]recvHandler{
	opSend:                (*conn).recvSend,
	opSendTT:              (*conn).recvSend,
	opSendSender:          (*conn).recvSendSender,
	opSendSenderTT:        (*conn).recvSendSender,
	opRegSend:             (*conn).recvRegSend,
	opRegSendTT:           (*conn).recvRegSend,
	opAliasSend:           (*conn).recvAliasSend,
	opAliasSendTT:         (*conn).recvAliasSend,
	opAltactSigSend:       (*conn).altactSig,
	opLink:                (*conn).recvLink,
	opUnlink:              (*conn).recvUnlink,
	opUnlinkID:            (*conn).recvUnlinkID,
	opUnlinkIDAck:         (*conn).recvUnlinkIDAck,
	opExit:                (*conn).recvExit,
	opExitTT:              (*conn).recvExit,
	opPayloadExit:         (*conn).recvExit,
	opPayloadExitTT:       (*conn).recvExit,
	opExit2:               (*conn).recvExit2,
	opExit2TT:             (*conn).recvExit2,
	opPayloadExit2:        (*conn).recvExit2,
	opPayloadExit2TT:      (*conn).recvExit2,
	opMonitorP:            (*conn).recvMonitor,
	opDemonitorP:          (*conn).recvDemonitor,
	opMonitorPExit:        (*conn).recvMonitorExit,
	opPayloadMonitorPExit: (*conn).recvMonitorExit,
	opSpawnRequest:        (*conn).spawnRequest,
	opSpawnRequestTT:      (*conn).spawnRequest,
	opSpawnReply:          (*conn).recvSpawnReply,
	opSpawnReplyTT:        (*conn).recvSpawnReply,
}

// handlerFor returns the handler of op, nil for an operation not routed.
func handlerFor(op int64) recvHandler {
	if op < 0 || op >= int64(len(recvHandlers)) {
		return nil
	}
	return recvHandlers[op]
}

// {2, Unused, ToPid} | {12, Unused, ToPid, Token}
func (c *conn) recvSend(d *decoder) error {
	to := d.pid(2)
	msg, err := d.message(3, 4)
	if err != nil {
		return err
	}
	return c.sendToPid(etf.Pid{}, to, msg)
}

// {22, FromPid, ToPid} | {23, FromPid, ToPid, Token}
func (c *conn) recvSendSender(d *decoder) error {
	from, to := d.pid(1), d.pid(2)
	msg, err := d.message(3, 4)
	if err != nil {
		return err
	}
	return c.sendToPid(from, to, msg)
}

// {6, FromPid, Unused, ToName} | {16, FromPid, Unused, ToName, Token}
func (c *conn) recvRegSend(d *decoder) error {
	from, name := d.pid(1), d.atom(3)
	msg, err := d.message(4, 5)
	if err != nil {
		return err
	}
	return c.sendToName(from, string(name), msg)
}

// {33, FromPid, Alias} | {34, FromPid, Alias, Token}
func (c *conn) recvAliasSend(d *decoder) error {
	from, alias := d.pid(1), d.ref(2)
	msg, err := d.message(3, 4)
	if err != nil {
		return err
	}
	return c.sendToAlias(from, etf.Alias(alias), msg)
}

// {1, FromPid, ToPid}
func (c *conn) recvLink(d *decoder) error {
	from, to := d.pid(1), d.pid(2)
	if err := d.check(3, 3); err != nil {
		return err
	}
	_ = c.router.RouteLink(from, to)
	return nil
}

// {4, FromPid, ToPid}: the link protocol before OTP 26.
func (c *conn) recvUnlink(d *decoder) error {
	from, to := d.pid(1), d.pid(2)
	if err := d.check(3, 3); err != nil {
		return err
	}
	c.remoteUnlink(from, to)
	return nil
}

// {35, Id, FromPid, ToPid}
func (c *conn) recvUnlinkID(d *decoder) error {
	id, from, to := d.get(1), d.pid(2), d.pid(3)
	if err := d.check(4, 4); err != nil {
		return err
	}
	// The acknowledgement must precede every other signal to the unlinking
	// process.
	if err := c.sendSignal(etf.Tuple{int64(opUnlinkIDAck), id, to, from}); err != nil {
		return nil
	}
	c.remoteUnlink(from, to)
	return nil
}

// {36, Id, FromPid, ToPid}: ergo already forgot the link.
func (c *conn) recvUnlinkIDAck(d *decoder) error {
	return d.check(4, 4)
}

// {3, From, To, Reason} | {13, From, To, Token, Reason} |
// {24, From, To} + Reason | {25, From, To, Token} + Reason
func (c *conn) recvExit(d *decoder) error {
	from, to := d.pid(1), d.pid(2)
	reason, err := d.reason()
	if err != nil {
		return err
	}
	_ = c.router.RouteExit(to, from, reasonString(reason))
	return nil
}

// {8, From, To, Reason} | {18, From, To, Token, Reason} |
// {26, From, To} + Reason | {27, From, To, Token} + Reason
func (c *conn) recvExit2(d *decoder) error {
	from, to := d.pid(1), d.pid(2)
	reason, err := d.reason()
	if err != nil {
		return err
	}
	return c.exit2(from, to, reasonString(reason))
}

// {19, FromPid, ToProc, Ref}: ToProc is a pid or a registered name.
func (c *conn) recvMonitor(d *decoder) error {
	from, ref := d.pid(1), d.ref(3)
	if err := d.check(4, 4); err != nil {
		return err
	}
	switch to := d.t[2].(type) {
	case etf.Pid:
		_ = c.router.RouteMonitor(from, to, ref)
	case etf.Atom:
		_ = c.router.RouteMonitorReg(from, gen.ProcessID{Name: string(to), Node: c.nodename}, ref)
	default:
		return malformed("MONITOR_P of %T", d.t[2])
	}
	return nil
}

// {20, FromPid, ToProc, Ref}
func (c *conn) recvDemonitor(d *decoder) error {
	from, ref := d.pid(1), d.ref(3)
	if err := d.check(4, 4); err != nil {
		return err
	}
	_ = c.router.RouteDemonitor(from, ref)
	return nil
}

// {21, FromProc, ToPid, Ref, Reason} | {28, FromProc, ToPid, Ref} + Reason.
// A monitor this connection sent is ended by the connection (see
// monitors.go); ergo's router drops an exit that comes before it recorded
// the monitor.
func (c *conn) recvMonitorExit(d *decoder) error {
	ref := d.ref(3)
	_ = d.pid(2)
	reason, err := d.reason()
	if err != nil {
		return err
	}
	why := reasonString(reason)
	switch from := d.t[1].(type) {
	case etf.Pid:
		if !c.sentMonitorExit(ref, why) {
			_ = c.router.RouteMonitorExit(from, why, ref)
		}
	case etf.Atom:
		if !c.sentMonitorExit(ref, why) {
			_ = c.router.RouteMonitorExitReg(gen.ProcessID{Name: string(from), Node: c.peer.Name}, why, ref)
		}
	default:
		return malformed("MONITOR_P_EXIT from %T", d.t[1])
	}
	return nil
}

// {31, ReqId, To, Flags, Result} | {32, ReqId, To, Flags, Result, Token}
func (c *conn) recvSpawnReply(d *decoder) error {
	ref, to, result := d.ref(1), d.pid(2), d.get(4)
	if err := d.check(5, 6); err != nil {
		return err
	}
	_ = c.router.RouteSpawnReply(to, ref, result)
	return nil
}

// decoder reads the elements of a control tuple, remembering the first
// element of the wrong type, and holds the payload that followed it.
type decoder struct {
	t          etf.Tuple
	op         int64
	payload    etf.Term
	hasPayload bool
	err        error
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

// element returns element i as a T, what in its error when it is not one.
func element[T etf.Term](d *decoder, i int, what string) T {
	v := d.get(i)
	x, ok := v.(T)
	if !ok && d.err == nil {
		d.err = malformed("operation %d element %d is %T, not %s", d.op, i+1, v, what)
	}
	return x
}

func (d *decoder) pid(i int) etf.Pid   { return element[etf.Pid](d, i, "a pid") }
func (d *decoder) ref(i int) etf.Ref   { return element[etf.Ref](d, i, "a reference") }
func (d *decoder) atom(i int) etf.Atom { return element[etf.Atom](d, i, "an atom") }

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

// message returns the message a send operation carries after its control
// tuple of min or max elements.
func (d *decoder) message(min, max int) (etf.Term, error) {
	if err := d.check(min, max); err != nil {
		return nil, err
	}
	if !d.hasPayload {
		return nil, malformed("operation %d without its message", d.op)
	}
	return d.payload, nil
}

// reason returns the exit reason of an EXIT, EXIT2 or MONITOR_P_EXIT
// operation: the last tuple element, or the payload for PAYLOAD_ variants.
func (d *decoder) reason() (etf.Term, error) {
	var inTuple int // arity when the reason is the tuple's last element
	switch d.op {
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
	switch d.op {
	case opPayloadExitTT, opPayloadExit2TT, opPayloadMonitorPExit:
		arity = 4
	}
	if err := d.check(arity, arity); err != nil {
		return nil, err
	}
	if !d.hasPayload {
		return nil, malformed("operation %d without its reason", d.op)
	}
	return d.payload, nil
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
