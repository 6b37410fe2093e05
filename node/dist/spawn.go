package dist

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/node/term"
)

// SpawnRequest is a peer's SPAWN_REQUEST (erlang:spawn_request/5 with a
// node, which erpc:call and rpc:call use), parsed.
type SpawnRequest struct {
	// Peer is the requesting node.
	Peer string
	// Ref is the request identifier. When Monitor is set it is also the
	// reference of the requester's monitor of the new process.
	Ref etf.Ref
	// From is the requesting process; GroupLeader its group leader.
	From        etf.Pid
	GroupLeader etf.Pid
	// Module, Function and Args are the entry point, apply(Module, Function, Args).
	Module   etf.Atom
	Function etf.Atom
	Args     []etf.Term
	// Link and Monitor say whether the requester asked for a link to or a
	// monitor of the new process; Name is the requested registered name ("" for none).
	Link    bool
	Monitor bool
	Name    etf.Atom
	// Options is the option list as the peer sent it.
	Options etf.List
}

// ErrSpawnNotHandled is returned by a Spawner that leaves a request to
// ergo's router (which spawns a behavior registered under the module's name,
// or answers notsup).
var ErrSpawnNotHandled = errors.New("dist: spawn request not handled")

// SpawnError refuses a spawn request: the requester's spawn_request gets
// {spawn_reply, Ref, error, Reason}, and erpc:call raises {erpc, Reason}.
// OTP's reasons are badarg, badopt, notsup and system_limit.
type SpawnError struct {
	Reason etf.Atom
}

func (e *SpawnError) Error() string { return fmt.Sprintf("dist: spawn refused: %s", e.Reason) }

// Spawned is a process a Spawner created for a request.
type Spawned struct {
	// Pid is the new process, sent to the requester in SPAWN_REPLY.
	Pid etf.Pid
	// Start, if not nil, is called once SPAWN_REPLY is queued, with the
	// function that ends the process as the requester sees it. It is called
	// on the connection's reader goroutine: it must not block (start a
	// goroutine for the work).
	Start func(exit SpawnExit)
}

// SpawnExit reports the end of a spawned process to its requester, with an
// exit reason of any term: a DOWN (MONITOR_P_EXIT) when the request asked
// for a monitor, an exit signal (EXIT) when it asked for a link, nothing
// otherwise. Only the first call sends; later calls return
// ErrSpawnExitSent. It returns ErrClosed when the connection is gone and
// the encoding error (wrapping term.ErrUnsupportedType or
// term.ErrInvalidTerm) when reason cannot be encoded, in which case nothing
// was sent and it may be called again. It is safe for concurrent use.
type SpawnExit func(reason etf.Term) error

// ErrSpawnExitSent is returned by a SpawnExit called after it has sent.
var ErrSpawnExitSent = errors.New("dist: spawned process already exited")

// Spawner takes over the SPAWN_REQUESTs of peers (ProtoConfig.Spawner).
// Spawn is called on the connection's reader goroutine, for every request,
// in arrival order: it must not block. It returns the new process, a
// *SpawnError to refuse, or ErrSpawnNotHandled to leave the request to
// ergo's router; any other error is answered as system_limit.
type Spawner interface {
	Spawn(req SpawnRequest) (Spawned, error)
}

// SPAWN_REPLY flags (erl_dist_protocol): the link and the monitor the
// requester asked for were set up.
const (
	spawnFlagLink    = 1
	spawnFlagMonitor = 2
)

// spawnHook offers a parsed SPAWN_REQUEST to the configured Spawner. It
// reports whether the request was answered (a reply or an error reply went
// out); false leaves it to ergo's router.
func (c *conn) spawnHook(req gen.RemoteSpawnRequest, module etf.Atom, groupLeader etf.Term, args []etf.Term, opts etf.List) bool {
	if c.cfg.Spawner == nil {
		return false
	}
	gl, _ := groupLeader.(etf.Pid)
	sr := SpawnRequest{
		Peer:        c.peer.Name,
		Ref:         req.Ref,
		From:        req.From,
		GroupLeader: gl,
		Module:      module,
		Function:    etf.Atom(req.Options.Function),
		Args:        args,
		Link:        req.Options.Link,
		Monitor:     req.Options.Monitor != (etf.Ref{}),
		Name:        etf.Atom(req.Options.Name),
		Options:     opts,
	}
	if sr.Args == nil {
		sr.Args = []etf.Term{}
	}
	spawned, err := c.cfg.Spawner.Spawn(sr)
	if errors.Is(err, ErrSpawnNotHandled) {
		return false
	}
	if err != nil {
		reason := spawnErrorAtom(err)
		var se *SpawnError
		if errors.As(err, &se) && se.Reason != "" {
			reason = se.Reason
		}
		_ = c.sendSignal(etf.Tuple{int64(opSpawnReply), sr.Ref, sr.From, int64(0), reason})
		return true
	}
	var flags int64
	if sr.Link {
		flags |= spawnFlagLink
	}
	if sr.Monitor {
		flags |= spawnFlagMonitor
	}
	if err := c.sendSignal(etf.Tuple{int64(opSpawnReply), sr.Ref, sr.From, flags, spawned.Pid}); err != nil {
		c.log.Debug("spawn reply not sent", "err", err)
	}
	if spawned.Start != nil {
		spawned.Start(c.spawnExit(sr, spawned.Pid))
	}
	return true
}

// spawnExit returns the SpawnExit of the process pid spawned for sr.
func (c *conn) spawnExit(sr SpawnRequest, pid etf.Pid) SpawnExit {
	var mu sync.Mutex
	sent := false
	return func(reason etf.Term) error {
		mu.Lock()
		defer mu.Unlock()
		if sent {
			return ErrSpawnExitSent
		}
		var frames []frameBuf
		if sr.Monitor {
			fb, err := c.encodeExit(opMonitorPExit, opPayloadMonitorPExit, reason, pid, sr.From, sr.Ref)
			if err != nil {
				return err
			}
			frames = append(frames, fb)
		}
		if sr.Link {
			fb, err := c.encodeExit(opExit, opPayloadExit, reason, pid, sr.From)
			if err != nil {
				for _, f := range frames {
					releaseBuf(f)
				}
				return err
			}
			frames = append(frames, fb)
		}
		sent = true
		var firstErr error
		for _, fb := range frames {
			if err := c.enqueue(fb, false); err != nil && firstErr == nil {
				firstErr = err
			}
		}
		return firstErr
	}
}

// spawnRequest routes {29, ReqId, From, GroupLeader, {M, F, A}, Opts} +
// Args (30 adds a trace token) to ProtoConfig.Spawner when it takes the
// request, else to ergo's router, which spawns the behavior registered as M
// and replies. When the router cannot, the requester gets an
// error reply instead of silence.
func (c *conn) spawnRequest(d *decoder) error {
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
	args, ok := term.ListElements(d.payload) // nil without a payload: no arguments
	if !ok {
		return malformed("SPAWN_REQUEST arguments %T", d.payload)
	}
	req := gen.RemoteSpawnRequest{From: from, Ref: ref, Options: spawnOptions(opts, ref)}
	req.Options.Function = string(function)
	if c.spawnHook(req, module, d.get(3), args, opts) {
		return nil
	}
	if err := c.router.RouteSpawnRequest(c.nodename, string(module), req, args...); err != nil {
		_ = c.SpawnReplyError(from, ref, err)
	}
	return nil
}

// spawnOptions reads the options of a SPAWN_REQUEST that ergo's router
// knows: link, monitor (with any options) and {name, Name}. A monitor's
// reference is the request's, ref.
func spawnOptions(opts etf.List, ref etf.Ref) gen.RemoteSpawnOptions {
	var o gen.RemoteSpawnOptions
	for _, opt := range opts {
		switch v := opt.(type) {
		case etf.Atom:
			switch v {
			case "link":
				o.Link = true
			case "monitor":
				o.Monitor = ref
			}
		case etf.Tuple:
			if len(v) == 2 && v[0] == etf.Atom("name") {
				if name, ok := v[1].(etf.Atom); ok {
					o.Name = string(name)
				}
			}
			if len(v) == 2 && v[0] == etf.Atom("monitor") {
				o.Monitor = ref
			}
		}
	}
	return o
}
