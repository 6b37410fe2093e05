package discovery

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

func BenchmarkDecodeExperiment(b *testing.B) {
	m := new(dns.Msg)
	m.SetQuestion("peers.test.", dns.TypeA)
	m.Id, m.Response = 7, true
	for i := 0; i < 4000; i++ {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "peers.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: net.IPv4(10, 0, byte(i>>8), byte(i))})
	}
	m.Compress = true
	raw, err := m.Pack()
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    func([]byte, uint16, string, uint16) (decoded, error)
	}{{"hand", decodeReply}, {"miekg", decodeMsg}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d, err := tc.f(raw, 7, "peers.test.", dns.TypeA)
				if err != nil || len(d.addrs) != 4000 {
					b.Fatal(err, len(d.addrs))
				}
			}
		})
	}
	b.Run("unpack-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m dns.Msg
			if err := m.Unpack(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
