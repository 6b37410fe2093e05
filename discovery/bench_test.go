package discovery_test

import (
	"context"
	"testing"
	"time"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/discovery/discoverytest"
)

// BenchmarkPollReconcile4000 measures one poll as the shell runs it: a DNS
// lookup of a 4,000-record answer from an in-process server (UDP, truncated,
// then TCP), node names built from it, and one reconcile (Plan) against a
// steady state in which every peer is connected.
func BenchmarkPollReconcile4000(b *testing.B) {
	z := discoverytest.NewZone().AddA("peers.test.", 4000)
	s := zoneServer(b, z, discoverytest.ServerOptions{})
	r := resolverFor(s.Addr)
	p := discovery.DefaultConfig().Policy("app@10.0.0.1")
	ctx := context.Background()
	q := discovery.Query{Name: "peers.test.", Type: discovery.TypeA}

	poll := func(st discovery.State, connected []string) (discovery.State, []discovery.Action) {
		ans, err := r.Lookup(ctx, q)
		if err != nil || len(ans.Addrs) != 4000 {
			b.Fatalf("lookup: %d addresses, %v", len(ans.Addrs), err)
		}
		ts := make([]discovery.Target, len(ans.Addrs))
		for i, ip := range ans.Addrs {
			ts[i] = discovery.Target{Name: discovery.NodeName("app", ip), Addr: ip.String()}
		}
		st, acts, _ := discovery.Plan(p, st, discovery.Input{Now: t0, Poll: &discovery.Poll{Targets: ts, Connected: connected}})
		return st, acts
	}
	st, acts := poll(discovery.NewState(1), nil)
	results := make([]discovery.Result, len(acts))
	connected := make([]string, len(acts))
	for i, a := range acts {
		results[i] = discovery.Result{Action: a}
		connected[i] = a.Node
	}
	st, _, _ = discovery.Plan(p, st, discovery.Input{Now: t0, Results: results})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		st, acts = poll(st, connected)
		if len(acts) != 0 {
			b.Fatalf("steady state planned %d actions", len(acts))
		}
	}
}

// BenchmarkPlan4000 measures the core alone on a steady 4,000-peer answer.
func BenchmarkPlan4000(b *testing.B) {
	p := discovery.DefaultConfig().Policy("app@10.0.0.1")
	names := ips(4000)
	ts := make([]discovery.Target, len(names))
	connected := make([]string, len(names))
	for i, ip := range names {
		ts[i] = discovery.Target{Name: "app@" + ip, Addr: ip}
		connected[i] = "app@" + ip
	}
	st, acts, _ := discovery.Plan(p, discovery.NewState(1), discovery.Input{Now: t0, Poll: &discovery.Poll{Targets: ts}})
	res := make([]discovery.Result, len(acts))
	for i, a := range acts {
		res[i] = discovery.Result{Action: a}
	}
	st, _, _ = discovery.Plan(p, st, discovery.Input{Now: t0, Results: res})
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(5 * time.Second)
		st, acts, _ = discovery.Plan(p, st, discovery.Input{Now: now, Poll: &discovery.Poll{Targets: ts, Connected: connected}})
		if len(acts) != 0 {
			b.Fatalf("%d actions", len(acts))
		}
	}
}
