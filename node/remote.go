package node

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/node/genserver"
	"github.com/gonode/gonode/node/term"
)

// Process-level signals for code outside any process: Send, Monitor, Link.
// Each Monitor and Link is a small process of its own (a genserver.Server)
// that holds the monitor or the link and hands what arrives to a channel of
// one: the channel is closed when the monitor or link ends (Demonitor,
// Unlink, after the one DOWN or exit, or when the node stops), so a
// receiver never waits for something that cannot come, and nothing is left
// running.

// ErrLinkTarget: Link was given something it cannot link to (a pid or a
// local name is needed; as erlang:link/1, no remote name).
var ErrLinkTarget = errors.New("cannot link to this target")

// Down is a monitor's DOWN: the monitored process ended or could not be
// reached. Reason is the reason as a term (the atom noproc, noconnection,
// normal, the tuple {shutdown, #{at => 1}} an Elixir process exited with,
// ...).
type Down struct {
	// Ref is the monitor's reference.
	Ref etf.Ref
	// To is what was monitored, as given to Monitor.
	To any
	// Pid is the process that ended, when known (zero for a name nobody
	// registered).
	Pid etf.Pid
	// Reason is the exit reason as a term.
	Reason etf.Term
	text   string
}

// ReasonText is Reason in Erlang syntax: "noproc", "{shutdown,#{at => 1}}".
func (d Down) ReasonText() string { return reasonText(d.text, d.Reason) }

// Exit is the exit signal of a linked process: it ended with Reason.
type Exit struct {
	// From is the linked process that ended.
	From etf.Pid
	// Reason is the exit reason as a term (as Down's).
	Reason etf.Term
	text   string
}

// ReasonText is Reason in Erlang syntax.
func (e Exit) ReasonText() string { return reasonText(e.text, e.Reason) }

func reasonText(text string, reason etf.Term) string {
	if text != "" {
		return text
	}
	return term.Format(reason)
}

// Send sends message to `to`: a pid, a local registered name (string or
// Atom) or a ProcessID {Name, Node} on this node or a connected one. As
// Erlang's send, it does not wait for delivery; it fails for a local name
// nobody registered and for a node this one is not connected to.
func (n *Node) Send(to any, message etf.Term) error {
	p, err := n.helperProcess()
	if err != nil {
		return fmt.Errorf("send %v: %w", to, err)
	}
	if err := p.Send(to, message); err != nil {
		return fmt.Errorf("send %v: %w", to, err)
	}
	return nil
}

// Monitor is a monitor made with Node.Monitor.
type Monitor struct {
	ref  etf.Ref
	down chan Down
	proc gen.Process
	mp   *monitorProc
}

// Ref is the monitor's reference (Down.Ref).
func (m *Monitor) Ref() etf.Ref { return m.ref }

// Down delivers the DOWN, once; it is closed after it, and closed without
// one after Demonitor or when the node stops.
func (m *Monitor) Down() <-chan Down { return m.down }

// Demonitor removes the monitor, as erlang:demonitor(Ref, [flush]): no Down
// is delivered after it returns (one already delivered stays readable), and
// the channel is closed. It may be called more than once.
func (m *Monitor) Demonitor() {
	m.mp.end.stop(m.proc, nil)
}

// Monitor monitors `to` (a pid, a local name, or a ProcessID on this node
// or another) from outside any process, as erlang:monitor(process, To): the
// Down channel delivers the DOWN when it ends, at once with reason noproc
// when it does not exist, with noconnection when its node is not or no
// longer connected.
func (n *Node) Monitor(to any) (*Monitor, error) {
	en, err := n.running()
	if err != nil {
		return nil, err
	}
	switch to.(type) {
	case etf.Pid, gen.ProcessID, string, etf.Atom:
	default:
		return nil, fmt.Errorf("monitor %v: a pid, a name or a ProcessID is needed, not %T", to, to)
	}
	mp := &monitorProc{to: to, down: make(chan Down, 1), end: newEnding()}
	p, err := en.Spawn("", gen.ProcessOptions{MailboxSize: 16}, mp)
	if err != nil {
		return nil, fmt.Errorf("monitor %v: %w", to, err)
	}
	return &Monitor{ref: mp.ref, down: mp.down, proc: p, mp: mp}, nil
}

// monitorProc holds one monitor.
type monitorProc struct {
	genserver.Server
	to   any
	ref  etf.Ref
	down chan Down
	end  *ending
}

func (m *monitorProc) Init(p *genserver.Process, _ ...etf.Term) error {
	m.ref = p.MonitorProcess(m.to)
	return nil
}

func (m *monitorProc) HandleInfo(p *genserver.Process, msg etf.Term) gen.ServerStatus {
	d, ok := msg.(gen.MessageDown)
	if !ok || d.Ref != m.ref {
		return gen.ServerStatusOK
	}
	m.down <- Down{Ref: d.Ref, To: m.to, Pid: d.Pid, Reason: genserver.ReasonTerm(d.Reason), text: d.Reason}
	return gen.ServerStatusStop
}

func (m *monitorProc) Terminate(p *genserver.Process, _ string) {
	p.DemonitorProcess(m.ref)
	m.end.ended(func() { close(m.down) })
}

// ending is how a helper process of Monitor or Link ends, from its own
// Terminate or from the user's Demonitor/Unlink, whichever comes first: the
// stop kills the process only while it has not ended (ergo's Kill must not
// meet the process's cleanup), and waits for its Terminate.
type ending struct {
	mu   sync.Mutex
	over bool
	done chan struct{}
}

func newEnding() *ending { return &ending{done: make(chan struct{})} }

// ended runs last (closing the channel) once, from Terminate.
func (e *ending) ended(last func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.over {
		e.over = true
		last()
		close(e.done)
	}
}

// stop runs before (under the lock, while the process still runs) and
// kills the process, then waits for its Terminate.
func (e *ending) stop(p gen.Process, before func()) {
	e.mu.Lock()
	if !e.over {
		if before != nil {
			before()
		}
		p.Kill()
	}
	e.mu.Unlock()
	<-e.done
}

// Link is a link made with Node.Link.
type Link struct {
	to    etf.Pid
	exits chan Exit
	proc  gen.Process
	end   *ending
}

// Pid is the linked process.
func (l *Link) Pid() etf.Pid { return l.to }

// Exits delivers the linked process's exit signal, once (it ended, or its
// node went down: noconnection); it is closed after it, and closed without
// one after Unlink or when the node stops.
func (l *Link) Exits() <-chan Exit { return l.exits }

// Unlink removes the link: the linked process is not told of anything, and
// no Exit is delivered after it returns. It may be called more than once.
func (l *Link) Unlink() {
	l.end.stop(l.proc, func() { _ = l.proc.Unlink(l.to) })
}

// Link links `to` (a pid, or a registered name on this node) with a process
// of this node that traps exits and delivers the exit signal on Exits, as
// erlang:link/1 from a process with trap_exit set: when the linked process
// ends (any reason, normal included), or its node disconnects
// (noconnection), Exits delivers it. When the node stops, the linked
// process gets the exit signal of a node going away, as from any linked
// process of a node that stops.
func (n *Node) Link(to any) (*Link, error) {
	en, err := n.running()
	if err != nil {
		return nil, err
	}
	var pid etf.Pid
	switch v := to.(type) {
	case etf.Pid:
		pid = v
	case string, etf.Atom, gen.ProcessID:
		name := fmt.Sprint(v)
		if id, ok := v.(gen.ProcessID); ok {
			if id.Node != n.Name() {
				return nil, fmt.Errorf("link %v: %w: a name on another node (give its pid)", to, ErrLinkTarget)
			}
			name = id.Name
		}
		p := en.ProcessByName(name)
		if p == nil {
			return nil, fmt.Errorf("link %v: %w: no process is registered as %q", to, ErrLinkTarget, name)
		}
		pid = p.Self()
	default:
		return nil, fmt.Errorf("link %v: %w: %T", to, ErrLinkTarget, to)
	}
	lp := &linkProc{to: pid, exits: make(chan Exit, 1), end: newEnding()}
	p, err := en.Spawn("", gen.ProcessOptions{MailboxSize: 16}, lp)
	if err != nil {
		return nil, fmt.Errorf("link %v: %w", to, err)
	}
	return &Link{to: pid, exits: lp.exits, proc: p, end: lp.end}, nil
}

// linkProc holds one link, trapping exits.
type linkProc struct {
	genserver.Server
	to    etf.Pid
	exits chan Exit
	end   *ending
}

func (l *linkProc) Init(p *genserver.Process, _ ...etf.Term) error {
	p.SetTrapExit(true)
	return p.Link(l.to)
}

func (l *linkProc) HandleInfo(p *genserver.Process, msg etf.Term) gen.ServerStatus {
	e, ok := msg.(gen.MessageExit)
	if !ok || e.Pid != l.to {
		return gen.ServerStatusOK
	}
	l.exits <- Exit{From: e.Pid, Reason: genserver.ReasonTerm(e.Reason), text: e.Reason}
	return gen.ServerStatusStop
}

func (l *linkProc) Terminate(*genserver.Process, string) {
	l.end.ended(func() { close(l.exits) })
}
