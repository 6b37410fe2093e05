package discovery

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// reply is a response with ID 7 to "peers.test. A" holding rrs.
func reply(t testing.TB, rrs ...string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("peers.test.", dns.TypeA)
	m.Id, m.Response = 7, true
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	return m
}

func pack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	out, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDecodeReply(t *testing.T) {
	good := pack(t, reply(t, "peers.test. 5 IN A 10.0.0.1", "Peers.Test. 5 IN A 10.0.0.2", "other.test. 5 IN A 10.0.0.3"))
	cut := good[:len(good)-3] // the last record loses its address
	truncated := append([]byte(nil), cut...)
	truncated[2] |= 0x02 // TC
	notResponse := append([]byte(nil), good...)
	notResponse[2] &^= 0x80
	twoQuestions := reply(t)
	twoQuestions.Question = append(twoQuestions.Question, dns.Question{Name: "x.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	loop := reply(t, "peers.test. 5 IN CNAME a.test.", "a.test. 5 IN CNAME peers.test.")
	chain := reply(t, "peers.test. 5 IN CNAME A.test.", "a.test. 5 IN A 10.1.1.1", "peers.test. 5 IN A 10.9.9.9")
	dangling := reply(t, "peers.test. 5 IN CNAME a.test.")
	badVers := reply(t)
	badVers.SetEdns0(4096, false)
	badVers.Rcode = dns.RcodeBadVers // 16: the upper bits travel in the OPT record
	for _, tc := range []struct {
		name    string
		raw     []byte
		want    decoded
		wantErr error
	}{
		{"records of the question's name, any case", good, decoded{records: 3, final: "peers.test.",
			addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}}, nil},
		{"shorter than a header", good[:11], decoded{}, ErrMalformed},
		{"another ID", append([]byte{0, 8}, good[2:]...), decoded{}, ErrMalformed},
		{"not a response", notResponse, decoded{}, ErrMalformed},
		{"cut inside a record", cut, decoded{}, ErrMalformed},
		{"cut inside a record, truncated", truncated, decoded{truncated: true}, nil},
		{"two questions", pack(t, twoQuestions), decoded{}, ErrMalformed},
		{"CNAME loop", pack(t, loop), decoded{}, ErrLookupFailed},
		{"CNAME chain, case folded", pack(t, chain), decoded{records: 3, final: "a.test.", hops: 1,
			addrs: []netip.Addr{netip.MustParseAddr("10.1.1.1")}}, nil},
		{"CNAME to a target the reply lacks", pack(t, dangling), decoded{records: 1, final: "a.test.", hops: 1, dangling: true}, nil},
		{"extended rcode from EDNS0", pack(t, badVers), decoded{rcode: dns.RcodeBadVers, final: "peers.test."}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := decodeReply(tc.raw, 7, "peers.test.", dns.TypeA)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || len(d.addrs)+len(d.srv) != 0 {
					t.Fatalf("got %+v, %v; want an error wrapping %v", d, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if d.rcode != tc.want.rcode || d.truncated != tc.want.truncated || d.final != tc.want.final || d.hops != tc.want.hops ||
				d.dangling != tc.want.dangling || d.records != tc.want.records || len(d.addrs) != len(tc.want.addrs) || len(d.srv) != 0 {
				t.Fatalf("got %+v, want %+v", d, tc.want)
			}
			for i := range d.addrs {
				if d.addrs[i] != tc.want.addrs[i] {
					t.Fatalf("addresses %v, want %v", d.addrs, tc.want.addrs)
				}
			}
		})
	}
}

// An SRV target comes out lower-case, without its trailing dot, with bytes
// that are not plain host-name text escaped (it ends up in node names and
// log lines); "." means no service.
func TestDecodeReplySRVTargets(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion("web.test.", dns.TypeSRV)
	m.Id, m.Response = 7, true
	for _, target := range []string{"Web-0.Test.", `web\0101.test.`, "."} {
		m.Answer = append(m.Answer, &dns.SRV{Hdr: dns.RR_Header{Name: "web.test.", Rrtype: dns.TypeSRV, Class: dns.ClassINET},
			Priority: 1, Weight: 2, Port: 4369, Target: target})
	}
	d, err := decodeReply(pack(t, m), 7, "web.test.", dns.TypeSRV)
	if err != nil {
		t.Fatal(err)
	}
	want := []SRV{{Target: "web-0.test", Priority: 1, Weight: 2, Port: 4369}, {Target: `web\010` + "1.test", Priority: 1, Weight: 2, Port: 4369}}
	if len(d.srv) != len(want) || d.srv[0] != want[0] || d.srv[1] != want[1] {
		t.Fatalf("SRV %+v, want %+v", d.srv, want)
	}
}

// BenchmarkDecodeReply4000 measures parsing alone: the 4,000-record A reply
// of the lookup benchmarks, names compressed.
func BenchmarkDecodeReply4000(b *testing.B) {
	m := reply(b)
	for i := range 4000 {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "peers.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
			A: net.IPv4(10, 0, byte(i>>8), byte(i))})
	}
	m.Compress = true
	raw := pack(b, m)
	b.ReportAllocs()
	for b.Loop() {
		d, err := decodeReply(raw, 7, "peers.test.", dns.TypeA)
		if err != nil || len(d.addrs) != 4000 {
			b.Fatalf("%d addresses, %v", len(d.addrs), err)
		}
	}
}
