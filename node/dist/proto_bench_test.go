package dist

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/node/genserver"
)

// ptCountSink counts messages and, once armed, tells a process when the
// expected number has arrived. It is a genserver.Server, gonode's server
// behaviour: its callbacks run in the process loop, as the BEAM counter's
// receive loop does.
type ptCountSink struct {
	genserver.Server
	n, max int
	notify etf.Pid
}

type ptArm struct {
	max    int
	notify etf.Pid
}

func (s *ptCountSink) HandleDirect(p *genserver.Process, ref etf.Ref, m any) (any, gen.DirectStatus) {
	if a, ok := m.(ptArm); ok {
		s.n, s.max, s.notify = 0, a.max, a.notify
	}
	return nil, nil
}

func (s *ptCountSink) HandleInfo(p *genserver.Process, m etf.Term) gen.ServerStatus {
	s.n++
	if s.n == s.max {
		_ = p.Send(s.notify, etf.Atom("pt_done"))
	}
	return gen.ServerStatusOK
}

// ptBenchEcho is the Go side's echo server, a genserver.Server like the
// counter: it answers a call with the request itself, as the BEAM echo
// (ptBenchSetup) does. Through Process.Direct it also sends a batch of
// messages, and makes timed calls from inside the process, where the BEAM
// side's timing is taken too (around gen_server:call in the calling
// process).
type ptBenchEcho struct {
	genserver.Server
	infos chan etf.Term
}

// ptCallTimes asks ptBenchEcho for n sequential calls of msg to `to`, each
// timed; the answer is a []time.Duration.
type ptCallTimes struct {
	to  any
	msg etf.Term
	n   int
}

func (s *ptBenchEcho) HandleCall(p *genserver.Process, from gen.ServerFrom, m etf.Term) (etf.Term, gen.ServerStatus) {
	if m == etf.Atom("pid") {
		return p.Self(), gen.ServerStatusOK
	}
	return m, gen.ServerStatusOK
}

func (s *ptBenchEcho) HandleInfo(p *genserver.Process, m etf.Term) gen.ServerStatus {
	select {
	case s.infos <- m:
	default:
	}
	return gen.ServerStatusOK
}

func (s *ptBenchEcho) HandleDirect(p *genserver.Process, ref etf.Ref, m any) (any, gen.DirectStatus) {
	switch r := m.(type) {
	case ptSendReq:
		return nil, r.run(p)
	case ptCallTimes:
		lat := make([]time.Duration, 0, r.n)
		for range r.n {
			t0 := time.Now()
			if _, err := p.Call(r.to, r.msg); err != nil {
				return nil, err
			}
			lat = append(lat, time.Since(t0))
		}
		return lat, nil
	}
	return nil, fmt.Errorf("ptBenchEcho: unexpected %T", m)
}

// Erlang side of the benchmark: a counter like ptCountSink, a gen_server
// style echo, and functions timing sends and calls in microseconds.
const ptBenchSetup = `
Cnt = fun L(N, Max, Notify) -> receive
    {pt_arm, M, P} -> L(0, M, P);
    _ when N + 1 =:= Max -> Notify ! pt_done, L(N + 1, Max, Notify);
    _ -> L(N + 1, Max, Notify)
  end end,
Echo = fun L() -> receive {'$gen_call', From, Req} -> gen_server:reply(From, Req), L() end end,
register(pt_cnt, spawn(fun() -> Cnt(0, 0, none) end)),
register(pt_echo, spawn(Echo)),
ok.`

// ptMsgExpr is the Erlang expression of the benchmark message of a kind.
func ptMsgExpr(kind string) string {
	switch kind {
	case "small":
		return "{seq, 12345, ok}"
	case "1KiB":
		return "binary:copy(<<\"x\">>, 1024)"
	default:
		return "binary:copy(<<\"x\">>, 65536)"
	}
}

func ptMsgGo(kind string) etf.Term {
	switch kind {
	case "small":
		return etf.Tuple{etf.Atom("seq"), int64(12345), etf.Atom("ok")}
	case "1KiB":
		return make([]byte, 1024)
	default:
		return make([]byte, 65536)
	}
}

// ptBeamSendRate has the BEAM node from send n messages of kind to Target
// (an Erlang expression naming the receiver, armed to notify the sender) and
// returns messages per second measured on the sender.
func ptBeamSendRate(b *testing.B, from *beamtest.Node, target, arm string, n int, kind string) float64 {
	b.Helper()
	expr := fmt.Sprintf(`T = %s, %s, M = %s, T0 = erlang:monotonic_time(microsecond),
lists:foreach(fun(_) -> T ! M end, lists:seq(1, %d)),
receive pt_done -> erlang:monotonic_time(microsecond) - T0 after 120000 -> timeout end.`, target, arm, ptMsgExpr(kind), n)
	out := from.Eval(b, expr)
	us, err := strconv.ParseFloat(out, 64)
	if err != nil {
		b.Fatalf("send run: %s", out)
	}
	return float64(n) / (us / 1e6)
}

// Call latency cells: ptCallRounds rounds of ptCallRound calls per side.
const (
	ptCallRounds = 10
	ptCallRound  = 500
)

// ptBeamCallTimes times n sequential gen_server:calls from the BEAM node
// and returns each round trip in microseconds.
func ptBeamCallTimes(b *testing.B, from *beamtest.Node, target string, n int, kind string) []float64 {
	b.Helper()
	out := from.Eval(b, fmt.Sprintf(`T = %s, M = %s, [begin T0 = erlang:monotonic_time(nanosecond), _ = gen_server:call(T, M), erlang:monotonic_time(nanosecond) - T0 end || _ <- lists:seq(1, %d)].`, target, ptMsgExpr(kind), n))
	fields := strings.Split(strings.Trim(out, "[]"), ",")
	lat := make([]float64, 0, len(fields))
	for _, f := range fields {
		ns, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			b.Fatalf("call run: %q in %.200s", f, out)
		}
		lat = append(lat, ns/1e3)
	}
	if len(lat) != n {
		b.Fatalf("call run: %d times, want %d", len(lat), n)
	}
	return lat
}

// ptBeamCallLatency times n sequential gen_server:calls from the BEAM node
// and returns the median and p99 in microseconds.
func ptBeamCallLatency(b *testing.B, from *beamtest.Node, target string, n int, kind string) (p50, p99 float64) {
	b.Helper()
	return ptPercentiles(ptBeamCallTimes(b, from, target, n, kind))
}

// ptCallRoundsOf runs ptCallRounds rounds of a Go block and a BEAM->BEAM
// block of calls, swapping their order every round so that a change in
// machine load hits both, and returns the round trips of each side.
func ptCallRoundsOf(goBlock, beamBlock func() []float64) (goLat, beamLat []float64) {
	for r := range ptCallRounds {
		if r%2 == 0 {
			beamLat = append(beamLat, beamBlock()...)
		}
		goLat = append(goLat, goBlock()...)
		if r%2 == 1 {
			beamLat = append(beamLat, beamBlock()...)
		}
	}
	return goLat, beamLat
}

// ptPercentiles returns the median and p99 of lat (sorted in place).
func ptPercentiles(lat []float64) (p50, p99 float64) {
	sort.Float64s(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

// ptReportLatency reports the Go and BEAM->BEAM round trips and their ratios.
func ptReportLatency(b *testing.B, goLat, beamLat []float64) {
	g50, g99 := ptPercentiles(goLat)
	b50, b99 := ptPercentiles(beamLat)
	b.ReportMetric(g50, "go_p50_us")
	b.ReportMetric(g99, "go_p99_us")
	b.ReportMetric(b50, "beam_p50_us")
	b.ReportMetric(b99, "beam_p99_us")
	b.ReportMetric(g50/b50, "x_beam_p50")
	b.ReportMetric(g99/b99, "x_beam_p99")
}

// BenchmarkDistVsBEAM measures Go<->BEAM message throughput and call round
// trips against BEAM<->BEAM in the same run, on every release of the matrix.
// Run it with -benchtime=1x: each iteration is a full measurement round.
func BenchmarkDistVsBEAM(b *testing.B) {
	counts := map[string]int{"small": 200000, "1KiB": 100000, "64KiB": 4000}
	for _, rel := range beamtest.Releases(b) {
		b.Run(rel.Name, func(b *testing.B) {
			r := ptStartRig(b, rel, "b", nil)
			a, c, goName := r.a, r.c, r.goName
			sinkP, goProc, evalPid, cPid := r.sinkP, r.goProc, r.evalPid, r.cPid
			toGo := fmt.Sprintf("{pt_cnt, '%s'}", goName)
			toC := fmt.Sprintf("{pt_cnt, '%s'}", c.Name)
			armC := fmt.Sprintf("{pt_cnt, '%s'} ! {pt_arm, %%d, self()}", c.Name)
			for _, kind := range []string{"small", "1KiB", "64KiB"} {
				cnt := counts[kind]
				b.Run("beam_to_go/"+kind, func(b *testing.B) {
					var goRate, beamRate, beamCPU, goCPU float64
					for i := 0; i < b.N; i++ {
						cpu0 := ptCPU(b, cPid)
						beamRate = ptBeamSendRate(b, a, toC, fmt.Sprintf(armC, cnt), cnt, kind)
						beamCPU = (ptCPU(b, cPid) - cpu0) * 1e3 / float64(cnt)
						// Arm the Go sink to notify the sending Eval process.
						ptDirect(b, sinkP, ptArm{max: cnt, notify: evalPid})
						go0 := ptCPU(b, "self")
						goRate = ptBeamSendRate(b, a, toGo, "ok", cnt, kind)
						goCPU = (ptCPU(b, "self") - go0) * 1e3 / float64(cnt)
					}
					b.ReportMetric(goRate, "go_msg/s")
					b.ReportMetric(beamRate, "beam_msg/s")
					b.ReportMetric(goRate/beamRate, "x_beam")
					// CPU time (user and system) the receiver spent per
					// message: the receiving BEAM node's, or this whole Go
					// process's.
					b.ReportMetric(beamCPU, "rx_cpu_us/msg_beam")
					b.ReportMetric(goCPU, "rx_cpu_us/msg_go")
				})
				b.Run("go_to_beam/"+kind, func(b *testing.B) {
					var m ptSendRun
					for i := 0; i < b.N; i++ {
						m = r.goToBeam(b, kind, cnt)
					}
					b.ReportMetric(m.goRate, "go_msg/s")
					b.ReportMetric(m.beamRate, "beam_msg/s")
					b.ReportMetric(m.goRate/m.beamRate, "x_beam")
					// CPU time (user and system) the receiving BEAM node
					// spent per message, both runs timed the same way.
					b.ReportMetric(m.beamRx, "rx_cpu_us/msg_from_beam")
					b.ReportMetric(m.goRx, "rx_cpu_us/msg_from_go")
					// CPU time the sender spent per message: the sending
					// BEAM node's, or this whole Go process's.
					b.ReportMetric(m.beamTx, "tx_cpu_us/msg_beam")
					b.ReportMetric(m.goTx, "tx_cpu_us/msg_go")
				})
				// Calls are timed in rounds of ptCallRound, the Go and the
				// BEAM->BEAM blocks alternating (and swapping order each
				// round), so that a change in machine load hits both.
				beamCalls := func(b *testing.B) []float64 {
					return ptBeamCallTimes(b, a, fmt.Sprintf("{pt_echo, '%s'}", c.Name), ptCallRound, kind)
				}
				b.Run("call_beam_to_go/"+kind, func(b *testing.B) {
					var goLat, beamLat []float64
					for i := 0; i < b.N; i++ {
						goLat, beamLat = r.callBeamToGo(b, kind)
					}
					ptReportLatency(b, goLat, beamLat)
				})
				b.Run("call_go_to_beam/"+kind, func(b *testing.B) {
					var goLat, beamLat []float64
					for i := 0; i < b.N; i++ {
						goLat, beamLat = ptCallRoundsOf(func() []float64 {
							v, err := goProc.DirectWithTimeout(ptCallTimes{gen.ProcessID{Name: "pt_echo", Node: c.Name}, ptMsgGo(kind), ptCallRound}, 120)
							if err != nil {
								b.Fatal(err)
							}
							var lat []float64
							for _, d := range v.([]time.Duration) {
								lat = append(lat, float64(d.Nanoseconds())/1e3)
							}
							return lat
						}, func() []float64 { return beamCalls(b) })
					}
					ptReportLatency(b, goLat, beamLat)
				})
			}
		})
	}
}

// ptRig is the setup of the Go-versus-BEAM benchmarks: BEAM node a sends
// and calls; BEAM node c and the Go node receive, each with a counter
// (pt_cnt) and an echo (pt_echo); all three are connected.
type ptRig struct {
	a, c       *beamtest.Node
	aPid, cPid string // operating system process ids
	goName     string
	sinkP      gen.Process // the Go counter, pt_cnt
	goProc     gen.Process // the Go echo, pt_echo
	srv        *ptBenchEcho
	evalPid    etf.Pid // the process that runs a's Evals
}

// ptStartRig starts a rig on rel, its node names starting with prefix, with
// distribution over TLS everywhere when tlsFiles is set (ptWriteTLS), plain TCP
// otherwise.
func ptStartRig(b *testing.B, rel beamtest.Release, prefix string, tlsFiles *ptTLSFiles) *ptRig {
	b.Helper()
	cookie := beamtest.RandomCookie()
	var erlArgs []string
	var goTLS *TLSConfig
	if tlsFiles != nil {
		erlArgs, goTLS = tlsFiles.erlArgs, tlsFiles.goTLS
	}
	r := &ptRig{goName: prefix + "go_" + rel.Name + "@127.0.0.1"}
	r.a = beamtest.Start(b, rel, beamtest.Options{Name: prefix + "a_" + rel.Name + "@127.0.0.1", Cookie: cookie, ErlArgs: erlArgs})
	r.c = beamtest.Start(b, rel, beamtest.Options{Name: prefix + "c_" + rel.Name + "@127.0.0.1", Cookie: cookie, ErlArgs: erlArgs})
	r.c.Eval(b, ptBenchSetup)
	r.cPid, r.aPid = ptOSPid(b, r.c), ptOSPid(b, r.a)
	n := ptGoNodeTLS(b, r.goName, cookie, 60*time.Second, goTLS)
	ptSpawn(b, n, "net_kernel", newPTSrv())
	var err error
	if r.sinkP, err = n.Spawn("pt_cnt", gen.ProcessOptions{MailboxSize: 4096}, &ptCountSink{}); err != nil {
		b.Fatal(err)
	}
	r.srv = &ptBenchEcho{infos: make(chan etf.Term, 64)}
	if r.goProc, err = n.Spawn("pt_echo", gen.ProcessOptions{MailboxSize: 4096}, r.srv); err != nil {
		b.Fatal(err)
	}
	r.a.Eval(b, fmt.Sprintf("pong = net_adm:ping('%s'), pong = net_adm:ping('%s'), ok.", r.c.Name, r.goName))
	if err := n.Connect(r.c.Name); err != nil {
		b.Fatal(err)
	}
	// Every Eval on a runs in the same process: learn its pid.
	r.a.Eval(b, fmt.Sprintf("{pt_echo, '%s'} ! {pt_whoami, self()}, ok.", r.goName))
	select {
	case m := <-r.srv.infos:
		t, ok := m.(etf.Tuple)
		if !ok || len(t) != 2 {
			b.Fatalf("whoami: %v", m)
		}
		r.evalPid = t[1].(etf.Pid)
	case <-time.After(20 * time.Second):
		b.Fatal("no whoami")
	}
	return r
}

// ptSendRun is one go_to_beam measurement: messages per second from the Go
// node and from BEAM node a to c's counter, and CPU microseconds per message
// of the receiver (c) and of the sender.
type ptSendRun struct {
	goRate, beamRate float64
	goRx, beamRx     float64 // c's CPU per message, sent by Go or by a
	goTx, beamTx     float64 // the sender's CPU per message
}

// goToBeam sends cnt messages of kind from a to c's counter, then as many
// from the Go node's echo process to it.
func (r *ptRig) goToBeam(b *testing.B, kind string, cnt int) ptSendRun {
	b.Helper()
	var m ptSendRun
	armC := fmt.Sprintf("{pt_cnt, '%s'} ! {pt_arm, %d, self()}", r.c.Name, cnt)
	cpu0, tx0 := ptCPU(b, r.cPid), ptCPU(b, r.aPid)
	m.beamRate = ptBeamSendRate(b, r.a, fmt.Sprintf("{pt_cnt, '%s'}", r.c.Name), armC, cnt, kind)
	cpu1, tx1 := ptCPU(b, r.cPid), ptCPU(b, r.aPid)
	r.c.Eval(b, fmt.Sprintf("pt_cnt ! {pt_arm, %d, %s}, ok.", cnt, ptGoPidOnBeamFrom(r.goName, "pt_echo")))
	msg := ptMsgGo(kind)
	gtx0 := ptCPU(b, "self")
	start := time.Now()
	ptDirect(b, r.goProc, ptSendReq{to: gen.ProcessID{Name: "pt_cnt", Node: r.c.Name}, n: cnt, make: func(int) etf.Term { return msg }})
	select {
	case <-r.srv.infos:
	case <-time.After(120 * time.Second):
		b.Fatal("the BEAM counter did not report")
	}
	m.goRate = float64(cnt) / time.Since(start).Seconds()
	cpu2, gtx1 := ptCPU(b, r.cPid), ptCPU(b, "self")
	m.beamRx, m.goRx = (cpu1-cpu0)*1e3/float64(cnt), (cpu2-cpu1)*1e3/float64(cnt)
	m.beamTx, m.goTx = (tx1-tx0)*1e3/float64(cnt), (gtx1-gtx0)*1e3/float64(cnt)
	return m
}

// callBeamToGo times a's calls of kind to the Go echo and to c's echo, in
// alternating rounds (ptCallRoundsOf), and returns the round trips in
// microseconds.
func (r *ptRig) callBeamToGo(b *testing.B, kind string) (goLat, beamLat []float64) {
	b.Helper()
	return ptCallRoundsOf(func() []float64 {
		return ptBeamCallTimes(b, r.a, fmt.Sprintf("{pt_echo, '%s'}", r.goName), ptCallRound, kind)
	}, func() []float64 {
		return ptBeamCallTimes(b, r.a, fmt.Sprintf("{pt_echo, '%s'}", r.c.Name), ptCallRound, kind)
	})
}

// ptOSPid returns the operating system's process id of a BEAM node.
func ptOSPid(b *testing.B, n *beamtest.Node) string {
	b.Helper()
	return strings.Trim(n.Eval(b, "os:getpid()."), `"`)
}

// ptCPU returns the CPU time in milliseconds that process pid ("self" for
// this one) has used, user and system, summed over its threads (from
// /proc/PID/task/*/schedstat): the receiver's whole cost of a message,
// including the page faults and copies of its reads.
func ptCPU(b *testing.B, pid string) float64 {
	b.Helper()
	tasks, err := os.ReadDir("/proc/" + pid + "/task")
	if err != nil {
		b.Fatalf("cpu time of %s: %v", pid, err)
	}
	var ns float64
	for _, task := range tasks {
		st, err := os.ReadFile("/proc/" + pid + "/task/" + task.Name() + "/schedstat")
		if err != nil {
			continue // the thread exited
		}
		if f := strings.Fields(string(st)); len(f) > 0 {
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				b.Fatalf("schedstat of %s: %q", pid, st)
			}
			ns += v
		}
	}
	return ns / 1e6
}

func ptGoPidOnBeamFrom(goName, name string) string {
	return fmt.Sprintf("gen_server:call({%s, '%s'}, pid)", name, goName)
}
