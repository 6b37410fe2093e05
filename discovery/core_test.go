package discovery_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/gonode/gonode/discovery"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func policy() discovery.Policy {
	p := discovery.DefaultConfig().Policy("app@10.0.0.1")
	return p
}

func targets(names ...string) []discovery.Target {
	out := make([]discovery.Target, 0, len(names))
	for _, n := range names {
		out = append(out, discovery.Target{Name: n, Addr: n[4:]})
	}
	return out
}

func connect(names ...string) []discovery.Action {
	out := []discovery.Action{}
	for _, n := range names {
		out = append(out, discovery.Action{Kind: discovery.ActConnect, Node: n, Addr: n[4:]})
	}
	return out
}

func disconnect(names ...string) []discovery.Action {
	out := []discovery.Action{}
	for _, n := range names {
		out = append(out, discovery.Action{Kind: discovery.ActDisconnect, Node: n, Addr: n[4:]})
	}
	return out
}

func ok(names ...string) []discovery.Result {
	out := []discovery.Result{}
	for _, n := range names {
		out = append(out, discovery.Result{Action: discovery.Action{Kind: discovery.ActConnect, Node: n, Addr: n[4:]}})
	}
	return out
}

func failed(err error, names ...string) []discovery.Result {
	out := ok(names...)
	for i := range out {
		out[i].Err = err
	}
	return out
}

// step is one row of a core step table.
type step struct {
	name   string
	at     time.Duration // since t0
	poll   *discovery.Poll
	res    []discovery.Result
	want   []discovery.Action
	states map[string]discovery.PeerState // peers to check; "" means absent from state
}

func answer(connected []string, names ...string) *discovery.Poll {
	return &discovery.Poll{Targets: targets(names...), Connected: connected}
}

func lookupFailed(connected []string) *discovery.Poll {
	return &discovery.Poll{Err: fmt.Errorf("%w: SERVFAIL", discovery.ErrLookupFailed), Connected: connected}
}

func runSteps(t *testing.T, p discovery.Policy, steps []step) discovery.State {
	t.Helper()
	s := discovery.NewState(1)
	for i, st := range steps {
		var actions []discovery.Action
		s, actions, _ = discovery.Plan(p, s, discovery.Input{Now: t0.Add(st.at), Poll: st.poll, Results: st.res})
		if len(actions) == 0 {
			actions = []discovery.Action{}
		}
		if st.want == nil {
			st.want = []discovery.Action{}
		}
		if !reflect.DeepEqual(actions, st.want) {
			t.Fatalf("step %d %q: actions\n got %v\nwant %v", i, st.name, actions, st.want)
		}
		got := map[string]discovery.PeerState{}
		for _, pi := range s.Peers() {
			got[pi.Name] = pi.State
		}
		for n, want := range st.states {
			if got[n] != want {
				t.Fatalf("step %d %q: peer %s is %q, want %q (all: %v)", i, st.name, n, got[n], want, got)
			}
		}
	}
	return s
}

const (
	a = "app@10.0.0.2"
	b = "app@10.0.0.3"
	c = "app@10.0.0.4"
)

var errRefused = errors.New("connection refused")

func TestPlanFailedLookupNeverDisconnects(t *testing.T) {
	runSteps(t, policy(), []step{
		{name: "discover", poll: answer(nil, a, b), want: connect(a, b)},
		{name: "connected", res: ok(a, b), states: map[string]discovery.PeerState{a: discovery.StateConnected}},
		{name: "failed lookup 1", at: 5 * time.Second, poll: lookupFailed([]string{a, b}),
			states: map[string]discovery.PeerState{a: discovery.StateConnected, b: discovery.StateConnected}},
		{name: "failed lookup 2", at: 10 * time.Second, poll: lookupFailed([]string{a, b})},
		{name: "failed lookup 3", at: 15 * time.Second, poll: lookupFailed([]string{a, b}),
			states: map[string]discovery.PeerState{a: discovery.StateConnected, b: discovery.StateConnected}},
		{name: "answer again", at: 20 * time.Second, poll: answer([]string{a, b}, a, b)},
	})
}

func TestPlanPruneAfterConsecutiveAbsentAnswers(t *testing.T) {
	runSteps(t, policy(), []step{
		{name: "discover", poll: answer(nil, a, b), want: connect(a, b)},
		{name: "connected", res: ok(a, b)},
		{name: "b absent once", at: 5 * time.Second, poll: answer([]string{a, b}, a),
			states: map[string]discovery.PeerState{b: discovery.StatePruning}},
		{name: "failure does not count", at: 10 * time.Second, poll: lookupFailed([]string{a, b}),
			states: map[string]discovery.PeerState{b: discovery.StatePruning}},
		{name: "b back: count reset", at: 15 * time.Second, poll: answer([]string{a, b}, a, b),
			states: map[string]discovery.PeerState{b: discovery.StateConnected}},
		{name: "b absent once more", at: 20 * time.Second, poll: answer([]string{a, b}, a)},
		{name: "b absent twice: pruned", at: 25 * time.Second, poll: answer([]string{a, b}, a), want: disconnect(b),
			states: map[string]discovery.PeerState{b: "", a: discovery.StateConnected}},
	})
}

func TestPlanPruneDisabledNeverDisconnects(t *testing.T) {
	p := policy()
	p.Prune = false
	runSteps(t, p, []step{
		{name: "discover", poll: answer(nil, a, b), want: connect(a, b)},
		{name: "connected", res: ok(a, b)},
		{name: "b absent", at: 5 * time.Second, poll: answer([]string{a, b}, a)},
		{name: "b absent", at: 10 * time.Second, poll: answer([]string{a, b}, a)},
		{name: "b absent", at: 15 * time.Second, poll: answer([]string{a, b}, a), states: map[string]discovery.PeerState{b: discovery.StatePruning}},
		{name: "empty answer", at: 20 * time.Second, poll: answer([]string{a, b})},
		{name: "b drops: forgotten, not reconnected", at: 25 * time.Second, poll: answer([]string{a}), states: map[string]discovery.PeerState{b: ""}},
	})
}

func TestPlanUndiscoveredPeersNeverPruned(t *testing.T) {
	inbound := "other@10.9.9.9"
	runSteps(t, policy(), []step{
		{name: "discover a; c connected to us", poll: answer([]string{inbound}, a), want: connect(a)},
		{name: "connected", res: ok(a)},
		{name: "empty", at: 5 * time.Second, poll: answer([]string{a, inbound})},
		{name: "empty: a pruned, inbound untouched", at: 10 * time.Second, poll: answer([]string{a, inbound}), want: disconnect(a),
			states: map[string]discovery.PeerState{inbound: ""}},
		{name: "empty", at: 15 * time.Second, poll: answer([]string{inbound})},
	})
}

func TestPlanNeverConnectsToSelf(t *testing.T) {
	p := policy()
	runSteps(t, p, []step{
		{name: "answer holds self", poll: answer(nil, p.Self, a), want: connect(a), states: map[string]discovery.PeerState{p.Self: ""}},
		{name: "self listed connected", at: 5 * time.Second, poll: answer([]string{p.Self}, p.Self), states: map[string]discovery.PeerState{p.Self: ""}},
	})
}

func TestPlanInboundWantedPeerCountsAsConnected(t *testing.T) {
	runSteps(t, policy(), []step{
		{name: "already connected to us", poll: answer([]string{a}, a, b), want: connect(b),
			states: map[string]discovery.PeerState{a: discovery.StateConnected, b: discovery.StateConnecting}},
	})
}

func TestPlanBackoffExponentialWithJitter(t *testing.T) {
	p := policy()
	s := discovery.NewState(42)
	s, _, _ = discovery.Plan(p, s, discovery.Input{Now: t0, Poll: answer(nil, a)})
	now := t0
	var delays []time.Duration
	for i := 0; i < 10; i++ {
		var ev []discovery.Event
		s, _, ev = discovery.Plan(p, s, discovery.Input{Now: now, Results: failed(errRefused, a)})
		if len(ev) != 1 || ev[0].Kind != discovery.EvConnectFailed {
			t.Fatalf("events %+v", ev)
		}
		d := ev[0].NextRetry.Sub(now)
		delays = append(delays, d)
		// before NextRetry: no connect
		var acts []discovery.Action
		s, acts, _ = discovery.Plan(p, s, discovery.Input{Now: ev[0].NextRetry.Add(-time.Millisecond), Poll: answer(nil, a)})
		if len(acts) != 0 {
			t.Fatalf("failure %d: connect %v before NextRetry", i+1, acts)
		}
		now = ev[0].NextRetry
		s, acts, _ = discovery.Plan(p, s, discovery.Input{Now: now, Poll: answer(nil, a)})
		if !reflect.DeepEqual(acts, connect(a)) {
			t.Fatalf("failure %d: at NextRetry got %v", i+1, acts)
		}
	}
	for i, d := range delays {
		nominal := min(time.Second<<i, time.Minute)
		lo, hi := max(time.Duration(float64(nominal)*0.8), time.Second), min(time.Duration(float64(nominal)*1.2), time.Minute)
		if d < lo || d > hi {
			t.Errorf("delay %d = %v, want in [%v, %v]", i+1, d, lo, hi)
		}
	}
	if delays[len(delays)-1] > time.Minute || delays[0] < time.Second {
		t.Errorf("delays %v leave [1s, 60s]", delays)
	}
	// Same seed, same delays: the jitter is deterministic.
	s2 := discovery.NewState(42)
	s2, _, _ = discovery.Plan(p, s2, discovery.Input{Now: t0, Poll: answer(nil, a)})
	_, _, ev := discovery.Plan(p, s2, discovery.Input{Now: t0, Results: failed(errRefused, a)})
	if got := ev[0].NextRetry.Sub(t0); got != delays[0] {
		t.Errorf("same seed gave %v then %v", delays[0], got)
	}
}

func TestPlanFailureReportedOncePerChange(t *testing.T) {
	p := policy()
	s := discovery.NewState(1)
	s, _, _ = discovery.Plan(p, s, discovery.Input{Now: t0, Poll: answer(nil, a)})
	var changed []bool
	now := t0
	for i, err := range []error{errRefused, errRefused, errRefused, errors.New("timeout"), errors.New("timeout")} {
		var ev []discovery.Event
		s, _, ev = discovery.Plan(p, s, discovery.Input{Now: now, Results: failed(err, a)})
		changed = append(changed, ev[0].Changed)
		now = ev[0].NextRetry
		var acts []discovery.Action
		s, acts, _ = discovery.Plan(p, s, discovery.Input{Now: now, Poll: answer(nil, a)})
		if len(acts) != 1 {
			t.Fatalf("retry %d: actions %v", i, acts)
		}
	}
	if want := []bool{true, false, false, true, false}; !reflect.DeepEqual(changed, want) {
		t.Fatalf("Changed flags %v, want %v", changed, want)
	}
	_, _, ev := discovery.Plan(p, s, discovery.Input{Now: now, Results: ok(a)})
	if len(ev) != 1 || ev[0].Kind != discovery.EvConnected || ev[0].Failures != 5 {
		t.Fatalf("recovery event %+v", ev)
	}
}

func TestPlanReconnectsDroppedPeer(t *testing.T) {
	runSteps(t, policy(), []step{
		{name: "discover", poll: answer(nil, a, b), want: connect(a, b)},
		{name: "connected", res: ok(a, b)},
		{name: "a dropped: reconnect at once", at: 5 * time.Second, poll: answer([]string{b}, a, b), want: connect(a)},
		{name: "reconnect fails", at: 6 * time.Second, res: failed(errRefused, a), states: map[string]discovery.PeerState{a: discovery.StateBackoff}},
		{name: "poll within backoff: nothing", at: 6500 * time.Millisecond, poll: answer([]string{b}, a, b)},
		{name: "poll after backoff: retry", at: 10 * time.Second, poll: answer([]string{b}, a, b), want: connect(a)},
	})
}

func TestPlanConnectingPeerNotConnectedTwice(t *testing.T) {
	runSteps(t, policy(), []step{
		{name: "discover", poll: answer(nil, a), want: connect(a)},
		{name: "still connecting at next poll", at: 5 * time.Second, poll: answer(nil, a), states: map[string]discovery.PeerState{a: discovery.StateConnecting}},
		{name: "absent twice while connecting: kept", at: 10 * time.Second, poll: answer(nil)},
		{name: "absent", at: 15 * time.Second, poll: answer(nil), states: map[string]discovery.PeerState{a: discovery.StatePruning}},
		{name: "connect ends", at: 16 * time.Second, res: ok(a)},
		{name: "pruned after the connect", at: 20 * time.Second, poll: answer([]string{a}), want: disconnect(a)},
	})
}

func TestPlanMaxPeersCut(t *testing.T) {
	p := policy()
	p.MaxPeers = 2
	s := discovery.NewState(1)
	s, acts, ev := discovery.Plan(p, s, discovery.Input{Now: t0, Poll: answer(nil, c, b, a)})
	if !reflect.DeepEqual(acts, connect(a, b)) {
		t.Fatalf("actions %v", acts)
	}
	if len(ev) != 1 || ev[0].Kind != discovery.EvCut || ev[0].Count != 1 {
		t.Fatalf("events %+v", ev)
	}
	if got := s.Counts().Desired; got != 2 {
		t.Fatalf("desired %d", got)
	}
	_, _, ev = discovery.Plan(p, s, discovery.Input{Now: t0.Add(time.Second), Poll: answer(nil, c, b, a)})
	for _, e := range ev {
		if e.Kind == discovery.EvCut {
			t.Fatalf("cut reported again with no change: %+v", e)
		}
	}
}

func TestPlanStableOrderAndDeterminism(t *testing.T) {
	p := policy()
	build := func() discovery.State {
		s := discovery.NewState(9)
		s, _, _ = discovery.Plan(p, s, discovery.Input{Now: t0, Poll: answer(nil, a, b, c)})
		s, _, _ = discovery.Plan(p, s, discovery.Input{Now: t0, Results: ok(a, b, c)})
		return s
	}
	in := discovery.Input{Now: t0.Add(5 * time.Second), Poll: answer([]string{a}, "app@10.0.0.9", "app@10.0.0.8", a)}
	s1, acts1, ev1 := discovery.Plan(p, build(), in)
	s2, acts2, ev2 := discovery.Plan(p, build(), in)
	if !reflect.DeepEqual(acts1, acts2) || !reflect.DeepEqual(ev1, ev2) || !reflect.DeepEqual(s1.Peers(), s2.Peers()) {
		t.Fatalf("same state and input gave different outputs")
	}
	want := connect("app@10.0.0.8", "app@10.0.0.9")
	if !reflect.DeepEqual(acts1, want) {
		t.Fatalf("actions %v, want %v", acts1, want)
	}
	_, acts3, _ := discovery.Plan(p, s1, discovery.Input{Now: t0.Add(10 * time.Second), Poll: answer([]string{a, b, c}, a, "app@10.0.0.7")})
	if want := append(disconnect(b, c), connect("app@10.0.0.7")...); !reflect.DeepEqual(acts3, want) {
		t.Fatalf("actions %v, want %v (disconnects first, each by name)", acts3, want)
	}
}

func TestPlanCloneIsIndependent(t *testing.T) {
	p := policy()
	s, _, _ := discovery.Plan(p, discovery.NewState(1), discovery.Input{Now: t0, Poll: answer(nil, a)})
	keep := s.Clone()
	_, _, _ = discovery.Plan(p, s, discovery.Input{Now: t0, Results: ok(a)})
	if got := keep.Peers()[0].State; got != discovery.StateConnecting {
		t.Fatalf("clone changed to %q", got)
	}
}
