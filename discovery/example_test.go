package discovery_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/discovery/discoverytest"
)

// A static list of peers, connected through an in-memory Connector.
func Example_static() {
	cfg := discovery.DefaultConfig()
	cfg.Strategy = discovery.StrategyStatic
	cfg.Hosts = []string{"app@10.0.0.1", "app@10.0.0.2", "app@10.0.0.3"}

	conn := discoverytest.NewConnector()
	polled := make(chan struct{}, 1)
	d, err := discovery.New(cfg, "app@10.0.0.1", conn,
		discovery.WithLogger(slog.New(slog.DiscardHandler)),
		discovery.WithObserver(pollSignal(polled)))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	<-polled
	for !slicesEqual(conn.Connected(), []string{"app@10.0.0.2", "app@10.0.0.3"}) {
		<-polled // connect results also report peer counts
	}
	cancel()
	<-done
	fmt.Println(conn.Connected(), d.Ready())
	// Output: [app@10.0.0.2 app@10.0.0.3] true
}

// pollSignal is an Observer that signals each peer-count report.
type pollSignal chan struct{}

func (pollSignal) Poll(discovery.PollEvent)     {}
func (pollSignal) Lookup(discovery.LookupEvent) {}
func (pollSignal) Action(discovery.ActionEvent) {}
func (p pollSignal) Peers(discovery.PeerCounts) {
	select {
	case p <- struct{}{}:
	default:
	}
}

func slicesEqual(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// The pure core: one answer in, connects out; then two answers without a
// peer prune it.
func ExamplePlan() {
	p := discovery.DefaultConfig().Policy("app@10.0.0.1")
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := discovery.NewState(rand.Uint64())
	ans := []discovery.Target{{Name: "app@10.0.0.1"}, {Name: "app@10.0.0.2"}, {Name: "app@10.0.0.3"}}

	s, acts, _ := discovery.Plan(p, s, discovery.Input{Now: now, Poll: &discovery.Poll{Targets: ans}})
	fmt.Println(acts)
	s, _, _ = discovery.Plan(p, s, discovery.Input{Now: now, Results: []discovery.Result{{Action: acts[0]}, {Action: acts[1]}}})
	connected := []string{"app@10.0.0.2", "app@10.0.0.3"}
	for i := 0; i < 2; i++ {
		now = now.Add(5 * time.Second)
		s, acts, _ = discovery.Plan(p, s, discovery.Input{Now: now, Poll: &discovery.Poll{Targets: ans[:2], Connected: connected}})
		fmt.Println(acts)
	}
	// Output:
	// [{connect app@10.0.0.2 } {connect app@10.0.0.3 }]
	// []
	// [{disconnect app@10.0.0.3 }]
}

// The configuration table cmd/gonode builds its flags from.
func ExampleFlags() {
	for _, f := range discovery.Flags()[:3] {
		fmt.Printf("--%s %s default=%q libcluster=%q\n", f.Name, f.Env, f.Default, f.Libcluster)
	}
	// Output:
	// --strategy GONODE_STRATEGY default="dns" libcluster="strategy (Kubernetes.DNS, Kubernetes.DNSSRV, Epmd, Kubernetes)"
	// --service GONODE_SERVICE default="" libcluster="service, kubernetes_service_name"
	// --application-name GONODE_APPLICATION_NAME default="" libcluster="application_name"
}
