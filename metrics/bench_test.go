package metrics_test

import (
	"io"
	"testing"

	"github.com/prometheus/common/expfmt"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/node"
)

// BenchmarkNodeObserver measures one connect event, the hottest observer
// path (many goroutines report at once).
func BenchmarkNodeObserver(b *testing.B) {
	_, m := newMetricsB(b)
	o := m.NodeObserver()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o.Connected("app@10.0.0.1", node.Incoming)
		}
	})
}

// BenchmarkDiscoveryLookup measures one lookup event (a histogram observe).
func BenchmarkDiscoveryLookup(b *testing.B) {
	_, m := newMetricsB(b)
	o := m.DiscoveryObserver()
	ev := discovery.LookupEvent{Transport: discovery.TransportUDP, Records: 12, Result: discovery.PollOK}
	b.ReportAllocs()
	for b.Loop() {
		o.Lookup(ev)
	}
}

// BenchmarkScrape measures gathering and encoding the whole registry, Go and
// process collectors included, as /metrics does.
func BenchmarkScrape(b *testing.B) {
	reg, m := newMetricsB(b)
	p := &peers{}
	p.set("a@h", "b@h")
	m.SetPeerSource(p)
	m.SetTrafficSource(traffic{MessagesIn: 1})
	b.ReportAllocs()
	for b.Loop() {
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		enc := expfmt.NewEncoder(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				b.Fatal(err)
			}
		}
	}
}
