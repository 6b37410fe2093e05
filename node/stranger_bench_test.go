package node_test

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
)

// BenchmarkPingBehindStrangers times what a real peer waits for while
// strangers hold connections to the distribution port: a BEAM node pings
// (net_adm:ping, a whole connection set-up) a gonode and, in the same run,
// a stock OTP node of the same release, with 0, 10 and 100 silent or
// half-written connections open to the target (each reopened when the
// target closes it). Each cell reports the median and the worst of 21
// pings, timed inside the pinging node, and the gonode/OTP ratio of the
// medians (1.0 = as fast as OTP), for every release of the matrix.
//
//	go test -run '^$' -bench BenchmarkPingBehindStrangers -benchtime 1x ./node/
func BenchmarkPingBehindStrangers(b *testing.B) {
	for _, rel := range beamtest.Releases(b) {
		for _, n := range []int{0, 10, 100} {
			b.Run(fmt.Sprintf("%s/strangers=%d", rel.Name, n), func(b *testing.B) {
				benchPingBehindStrangers(b, rel, n)
			})
		}
	}
}

func benchPingBehindStrangers(b *testing.B, rel beamtest.Release, n int) {
	for range b.N {
		goMed, goMax := pingBehindStrangers(b, rel, n, true)
		otpMed, otpMax := pingBehindStrangers(b, rel, n, false)
		b.ReportMetric(goMed, "gonode_p50_us")
		b.ReportMetric(goMax, "gonode_max_us")
		b.ReportMetric(otpMed, "otp_p50_us")
		b.ReportMetric(otpMax, "otp_max_us")
		b.ReportMetric(goMed/otpMed, "gonode/otp_p50")
	}
}

// pingBehindStrangers starts a target (a gonode, or a stock OTP node) and
// a pinging BEAM node, opens n strangers to the target and returns the
// median and the worst ping time in microseconds.
func pingBehindStrangers(b *testing.B, rel beamtest.Release, n int, gonode bool) (p50, worst float64) {
	cookie := beamtest.RandomCookie()
	var target string
	var port int
	if gonode {
		target = uniq("go") + "@127.0.0.1"
		gn, _ := startGo(b, target, node.Cookie(cookie))
		port = gn.ListenPort()
	} else {
		stock := beamtest.Start(b, rel, beamtest.Options{Name: uniq("stock") + "@127.0.0.1", Cookie: cookie})
		target = stock.Name
		got := stock.Eval(b, `{ok, Names} = erl_epmd:names(),
			{_, P} = lists:keyfind(hd(string:split(atom_to_list(node()), "@")), 1, Names), P.`)
		var err error
		if port, err = strconv.Atoi(got); err != nil {
			b.Fatalf("stock node's port: %q", got)
		}
	}
	pinger := beamtest.Start(b, rel, beamtest.Options{Name: uniq("pinger") + "@127.0.0.1", Cookie: cookie})
	if n > 0 {
		opened := strangers(b, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), n, 1000)
		testutil.EventuallyNamed(b, 30*time.Second, "strangers connected", func() (bool, string) {
			return opened() >= n, fmt.Sprintf("%d connected", opened())
		})
	}
	// Each ping sets up a new connection: disconnect, then wait until the
	// target is gone from nodes() before the next one.
	out := pinger.Eval(b, fmt.Sprintf(`T = '%s',
		Ping = fun() ->
			T0 = erlang:monotonic_time(microsecond), R = net_adm:ping(T), T1 = erlang:monotonic_time(microsecond),
			erlang:disconnect_node(T),
			(fun W(0) -> ok; W(K) -> case lists:member(T, nodes()) of true -> timer:sleep(5), W(K-1); false -> ok end end)(200),
			timer:sleep(20),
			{R, T1 - T0}
		end,
		Rs = [Ping() || _ <- lists:seq(1, 21)],
		lists:flatten(io_lib:format("~w", [[case R of pong -> U; pang -> pang end || {R, U} <- Rs]])).`, target))
	var times []float64
	for _, us := range strings.Split(strings.Trim(out, `"[]`), ",") {
		v, err := strconv.ParseFloat(us, 64)
		if err != nil {
			b.Fatalf("pings of %s with %d strangers (microseconds): %s", target, n, out)
		}
		times = append(times, v)
	}
	slices.Sort(times)
	return times[len(times)/2], times[len(times)-1]
}
