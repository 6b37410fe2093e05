package dist

import (
	"testing"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// ProcessByPid makes ptRouter a processFinder over the processes a test put
// in procs, so EXIT2 reaches them.
func (r *ptRouter) ProcessByPid(pid etf.Pid) gen.Process {
	r.procsMu.Lock()
	defer r.procsMu.Unlock()
	return r.procs[pid]
}

// dyingProcess is a process that terminates under the caller of Exit, the way
// ergo panics when an exit signal races with a process's own end.
type dyingProcess struct {
	gen.Process // nil: any other method would panic too
	exits       chan string
}

func (p *dyingProcess) TrapExit() bool { return false }

// Self and Behavior are what the reader asks a process it delivers a
// message to (inline.go): not a behaviour it may run inline.
func (p *dyingProcess) Self() etf.Pid                 { return ptLocalPid }
func (p *dyingProcess) Behavior() gen.ProcessBehavior { return nil }
func (p *dyingProcess) Exit(reason string) error {
	p.exits <- reason
	panic("runtime error: invalid memory address or nil pointer dereference")
}

// An EXIT2 that meets a process ergo is already tearing down must not take
// the connection down: later messages still arrive.
func TestConnExit2SurvivesErgoPanic(t *testing.T) {
	h := ptStart(t, DefaultProtoConfig(), ptFlags())
	p := &dyingProcess{exits: make(chan string, 2)}
	h.router.procsMu.Lock()
	h.router.procs = map[etf.Pid]gen.Process{ptLocalPid: p}
	h.router.procsMu.Unlock()

	for i := 0; i < 2; i++ {
		h.write(t, ptPassThrough(t, etf.Tuple{int64(opExit2), ptRemotePid, ptLocalPid, etf.Atom("boom")}))
	}
	h.write(t, ptPassThrough(t, etf.Tuple{int64(opSend), etf.Atom(""), ptLocalPid}, etf.Atom("after")))
	if got := h.router.next(t).String(); got != (ptCall{"Send", []any{etf.Pid{}, ptLocalPid, etf.Atom("after")}}).String() {
		t.Fatalf("after two exit signals the router got %s", got)
	}
	for i := 0; i < 2; i++ {
		if r := <-p.exits; r != "boom" {
			t.Fatalf("exit reason = %q, want boom", r)
		}
	}
}
