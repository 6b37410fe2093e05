package discovery

import (
	"errors"
	"net"
	"testing"

	"github.com/miekg/dns"
)

func FuzzDecodeReply(f *testing.F) {
	add := func(m *dns.Msg) {
		out, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(out, uint16(dns.TypeA))
	}
	m := new(dns.Msg)
	m.SetQuestion("peers.test.", dns.TypeA)
	m.Id, m.Response = 7, true
	for i := 0; i < 3; i++ {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "peers.test.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IPv4(10, 0, 0, byte(i))})
	}
	add(m)
	c := m.Copy()
	c.Answer = append([]dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: "peers.test.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: "x.test."}}, c.Answer...)
	add(c)
	c = m.Copy()
	c.Truncated = true
	add(c)
	c = m.Copy()
	c.Rcode = dns.RcodeNameError
	c.Answer = nil
	add(c)
	f.Add([]byte{0, 7, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xde, 0xad}, uint16(dns.TypeA))
	f.Add([]byte{}, uint16(dns.TypeSRV))
	f.Fuzz(func(t *testing.T, raw []byte, qtype uint16) {
		d, err := decodeReply(raw, 7, "peers.test.", qtype)
		if err != nil {
			if !errors.Is(err, ErrLookupFailed) {
				t.Fatalf("error %v does not wrap ErrLookupFailed", err)
			}
			if len(d.addrs)+len(d.srv) != 0 {
				t.Fatalf("an error came with records")
			}
			return
		}
		if len(d.addrs)+len(d.srv) > d.records {
			t.Fatalf("%d addresses and %d SRV from %d answer records", len(d.addrs), len(d.srv), d.records)
		}
		for _, a := range d.addrs {
			if (qtype == dns.TypeA && !a.Is4()) || (qtype == dns.TypeAAAA && !a.Is6()) {
				t.Fatalf("address %v for qtype %d", a, qtype)
			}
		}
		if d.hops > MaxCNAMEHops {
			t.Fatalf("%d hops", d.hops)
		}
	})
}
