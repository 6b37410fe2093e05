package dist

import (
	"fmt"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
)

// BenchmarkStreamSmallMailbox: a BEAM streams messages to a Go counter
// (ptCountSink) whose mailbox is 64 entries (node.DefaultMailboxSize), so a
// counter that falls behind takes its messages through the connection's
// overflow, and, in the same run, to one of 4,096 entries (the
// benchmark rig's servers). x_4096 is the first rate over the second;
// runs alternate between the two.
//
//	go test -run '^$' -bench BenchmarkStreamSmallMailbox -benchtime 3x ./node/dist
func BenchmarkStreamSmallMailbox(b *testing.B) {
	counts := map[string]int{"small": 200000, "1KiB": 100000, "64KiB": 4000}
	cookie := beamtest.RandomCookie()
	a := beamtest.Start(b, beamtest.Host, beamtest.Options{Name: "ssm_a@127.0.0.1", Cookie: cookie})
	goName := "ssm_go@127.0.0.1"
	n := ptGoNode(b, goName, cookie, 60*time.Second)
	srv := newPTSrv()
	ptSpawn(b, n, "pt_echo", srv)
	sinks := map[int]gen.Process{}
	for _, size := range []int{64, 4096} {
		p, err := n.Spawn(fmt.Sprintf("pt_cnt%d", size), gen.ProcessOptions{MailboxSize: uint16(size)}, &ptCountSink{})
		if err != nil {
			b.Fatal(err)
		}
		sinks[size] = p
	}
	// Every Eval on a runs in the same process: learn its pid.
	a.Eval(b, fmt.Sprintf("{pt_echo, '%s'} ! {pt_whoami, self()}, ok.", goName))
	evalPid := ptWhoami(b, srv)
	for _, kind := range []string{"small", "1KiB", "64KiB"} {
		cnt := counts[kind]
		b.Run(kind, func(b *testing.B) {
			rate := map[int]float64{}
			for range b.N {
				for _, size := range []int{64, 4096} {
					ptDirect(b, sinks[size], ptArm{max: cnt, notify: evalPid})
					r := ptBeamSendRate(b, a, fmt.Sprintf("{pt_cnt%d, '%s'}", size, goName), "ok", cnt, kind)
					rate[size] += r / float64(b.N)
				}
			}
			b.ReportMetric(rate[64], "mbox64_msg/s")
			b.ReportMetric(rate[4096], "mbox4096_msg/s")
			b.ReportMetric(rate[64]/rate[4096], "x_4096")
		})
	}
}

// ptWhoami returns the pid in the {pt_whoami, Pid} message srv received.
func ptWhoami(b *testing.B, srv *ptSrv) etf.Pid {
	b.Helper()
	select {
	case m := <-srv.infos:
		t, ok := m.(etf.Tuple)
		if !ok || len(t) != 2 {
			b.Fatalf("whoami: %v", m)
		}
		pid, ok := t[1].(etf.Pid)
		if !ok {
			b.Fatalf("whoami: %v", m)
		}
		return pid
	case <-time.After(20 * time.Second):
		b.Fatal("no whoami")
	}
	return etf.Pid{}
}
