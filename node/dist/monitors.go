package dist

import (
	"errors"
	"runtime"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
)

// Monitors that local processes set on the peer's processes.
//
// Ergo's router sets such a monitor in two steps: it calls the connection's
// Monitor or MonitorReg, which sends MONITOR_P, and only then records the
// monitor in its table. Its RouteMonitorExit and RouteMonitorExitReg look
// the monitor up in that table and silently drop an exit they find no
// monitor for; its RouteNodeDown likewise ends only the monitors recorded
// when it runs. A peer answers MONITOR_P of a name nobody registered, or of
// a pid that already exited, with MONITOR_P_EXIT at once; when the reader
// routed it before the monitoring goroutine recorded the monitor (that
// goroutine preempted, or waiting for the table's lock), the DOWN was lost
// and a gen_server call waited for its timeout. A connection that ended in
// the same gap lost the noconnection DOWN the same way.
//
// The connection therefore keeps the monitors it sent until their exit, a
// demonitor or its own end, and ends them itself: it takes the monitor out
// of ergo's table with RouteDemonitor (which fails with
// lib.ErrMonitorUnknown while the monitor is not recorded yet), suppresses
// the DEMONITOR_P that call would send, and delivers the DOWN ergo would
// have delivered. A monitor not recorded yet is retried until it is, for at
// most monitorRecordWait, on a goroutine of its own so that the reader goes
// on; Serve returns (and ergo routes the node-down) only once every monitor
// is ended.

// monitorRecordWait bounds the wait for ergo to record a monitor whose
// MONITOR_P went out: the monitoring goroutine records it right after
// sending, so only a goroutine starved of CPU takes more than microseconds.
const monitorRecordWait = 5 * time.Second

// sentMonitor is a monitor a local process set on a process of the peer.
type sentMonitor struct {
	by   etf.Pid // the monitoring local process
	pid  etf.Pid // the monitored process, when monitored by pid
	name string  // the monitored registered name, when monitored by name
	// set once the MONITOR_P_EXIT came or the connection ended:
	reason string
	// gone: ergo will never hold this monitor again (its owner demonitored
	// it, or sending MONITOR_P failed and ergo delivered the DOWN itself).
	gone bool
}

// down is the DOWN message ergo delivers for the monitor.
func (m *sentMonitor) down(ref etf.Ref, peer string) gen.MessageDown {
	if m.name != "" {
		return gen.MessageDown{Ref: ref, ProcessID: gen.ProcessID{Name: m.name, Node: peer}, Reason: m.reason}
	}
	return gen.MessageDown{Ref: ref, Pid: m.pid, Reason: m.reason}
}

// monitorSent records a monitor before its MONITOR_P is sent; it fails
// when the connection has ended.
func (c *conn) monitorSent(ref etf.Ref, m *sentMonitor) error {
	c.monMu.Lock()
	defer c.monMu.Unlock()
	if c.monEnded {
		return ErrClosed
	}
	if c.monitors == nil {
		c.monitors = map[etf.Ref]*sentMonitor{}
	}
	c.monitors[ref] = m
	return nil
}

// monitorGone forgets a monitor ergo no longer holds: its owner demonitored
// it, or its MONITOR_P could not be sent. It reports whether the connection
// is ending the monitor, in which case no DEMONITOR_P is to be sent (the
// peer dropped the monitor already, or the connection is gone).
func (c *conn) monitorGone(ref etf.Ref) (ending bool) {
	c.monMu.Lock()
	defer c.monMu.Unlock()
	if m, ok := c.ending[ref]; ok {
		m.gone = true
		return true
	}
	delete(c.monitors, ref)
	return false
}

// sendMonitor sends MONITOR_P for a monitor recorded with monitorSent.
func (c *conn) sendMonitor(ref etf.Ref, m *sentMonitor, to etf.Term) error {
	if err := c.monitorSent(ref, m); err != nil {
		return err
	}
	if err := c.sendSignal(etf.Tuple{int64(opMonitorP), m.by, to, ref}); err != nil {
		c.monitorGone(ref)
		return err
	}
	return nil
}

// sentMonitorExit ends the monitor ref that MONITOR_P_EXIT reports with
// reason. It returns false when the monitor is not one this connection sent
// (or one already ended): ergo's router is then left to route the exit.
func (c *conn) sentMonitorExit(ref etf.Ref, reason string) bool {
	c.monMu.Lock()
	m, ok := c.monitors[ref]
	if ok {
		delete(c.monitors, ref)
		m.reason = reason
		c.startEnding(ref, m)
	}
	c.monMu.Unlock()
	if ok {
		c.endMonitor(ref, m)
	}
	return ok
}

// startEnding moves a monitor to c.ending. c.monMu must be held.
func (c *conn) startEnding(ref etf.Ref, m *sentMonitor) {
	if c.ending == nil {
		c.ending = map[etf.Ref]*sentMonitor{}
	}
	c.ending[ref] = m
}

// endMonitors ends every monitor still open when the connection has ended,
// with reason noconnection, and waits until they are all ended.
func (c *conn) endMonitors() {
	c.monMu.Lock()
	c.monEnded = true
	open := c.monitors
	c.monitors = nil
	for ref, m := range open {
		m.reason = "noconnection"
		c.startEnding(ref, m)
	}
	c.monMu.Unlock()
	for ref, m := range open {
		c.endMonitor(ref, m)
	}
	c.monWait.Wait()
}

// endMonitor takes the monitor out of ergo's table and delivers its DOWN;
// while ergo has not recorded the monitor yet, it retries on a goroutine
// of its own.
func (c *conn) endMonitor(ref etf.Ref, m *sentMonitor) {
	if c.tryEndMonitor(ref, m) {
		return
	}
	c.monWait.Add(1)
	go func() {
		defer c.monWait.Done()
		deadline := time.Now().Add(monitorRecordWait)
		pause := time.Duration(0)
		for !c.tryEndMonitor(ref, m) {
			if time.Now().After(deadline) {
				c.monMu.Lock()
				delete(c.ending, ref)
				c.monMu.Unlock()
				// Never recorded, or ended meanwhile by the node-down of
				// an earlier connection to the peer.
				c.log.Warn("monitor not found in the runtime's table: its DOWN is not delivered",
					"monitor", ref.String(), "reason", m.reason, "waited", monitorRecordWait)
				return
			}
			if pause == 0 {
				runtime.Gosched()
				pause = 10 * time.Microsecond
				continue
			}
			time.Sleep(pause)
			pause = min(2*pause, time.Millisecond)
		}
	}()
}

// tryEndMonitor reports whether the monitor is ended: taken out of ergo's
// table with its DOWN delivered, or gone.
func (c *conn) tryEndMonitor(ref etf.Ref, m *sentMonitor) bool {
	err := c.router.RouteDemonitor(m.by, ref)
	if errors.Is(err, lib.ErrMonitorUnknown) {
		c.monMu.Lock()
		gone := m.gone
		if gone {
			delete(c.ending, ref)
		}
		c.monMu.Unlock()
		return gone
	}
	// Ergo held the monitor and has dropped it (RouteDemonitor's other
	// errors come after that): the DOWN is ours to deliver.
	c.monMu.Lock()
	delete(c.ending, ref)
	c.monMu.Unlock()
	down := m.down(ref, c.peer.Name)
	c.deliver(toPid(m.by), down, func() error { return c.router.RouteSend(m.by, m.by, down) })
	return true
}
