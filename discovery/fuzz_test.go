package discovery

import (
	"errors"
	"net"
	"strings"
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
	c = m.Copy()
	c.Question[0].Qtype = dns.TypeSRV
	c.Answer = []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: "peers.test.", Rrtype: dns.TypeSRV, Class: dns.ClassINET}, Port: 4369, Target: "web-0.test."}}
	out, err := c.Pack()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(out, uint16(dns.TypeSRV))
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
		if d.records > (len(raw)-headerLen)/11 {
			t.Fatalf("%d answer records in a %d-byte message", d.records, len(raw))
		}
		if d.final == "" { // a truncated reply that did not parse: the flag and nothing else
			if !d.truncated || d.records+d.hops+len(d.addrs)+len(d.srv) != 0 {
				t.Fatalf("unparsed reply %+v", d)
			}
			return
		}
		if !strings.HasSuffix(d.final, ".") || d.final != strings.ToLower(d.final) {
			t.Fatalf("final name %q", d.final)
		}
		for _, s := range d.srv { // targets end up in node names and log lines
			if s.Target == "" || strings.HasSuffix(s.Target, ".") || strings.ContainsFunc(s.Target, func(r rune) bool { return r < ' ' || r > '~' }) {
				t.Fatalf("SRV target %q", s.Target)
			}
		}
	})
}

func FuzzParseResolvConf(f *testing.F) {
	f.Add("nameserver 10.96.0.10\nsearch a.svc.cluster.local svc.cluster.local\noptions ndots:5 timeout:2 attempts:3 rotate\n")
	f.Add("domain x\nnameserver ::1\n# c\n")
	f.Fuzz(func(t *testing.T, text string) {
		rc, err := ParseResolvConf(strings.NewReader(text))
		if err != nil {
			if !errors.Is(err, ErrResolvConf) {
				t.Fatalf("error %v does not wrap ErrResolvConf", err)
			}
			return
		}
		if rc.Ndots < 0 || rc.Ndots > maxNdots || rc.Attempts < 1 || rc.Attempts > maxAttempts || rc.Timeout <= 0 || rc.Timeout > maxTimeout {
			t.Fatalf("out of range: %+v", rc)
		}
		for _, s := range rc.Search {
			if !strings.HasSuffix(s, ".") {
				t.Fatalf("search domain %q not absolute", s)
			}
		}
	})
}
