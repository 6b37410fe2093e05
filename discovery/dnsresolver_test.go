package discovery_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/discovery/discoverytest"
)

// resolverFor returns a resolver asking only addrs, with short timeouts.
func resolverFor(addrs ...string) *discovery.DNSResolver {
	return discovery.NewDNSResolverFrom(discovery.ResolvConf{
		Nameservers: addrs, Timeout: 2 * time.Second, Attempts: 1, Ndots: 1,
	})
}

func zoneServer(t testing.TB, z *discoverytest.Zone, o discoverytest.ServerOptions) *discoverytest.Server {
	mux := dns.NewServeMux()
	mux.Handle(".", z)
	return discoverytest.NewServer(t, mux, o)
}

func lookup(t *testing.T, r discovery.Resolver, name string, typ discovery.RecordType) (discovery.Answer, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return r.Lookup(ctx, discovery.Query{Name: name, Type: typ})
}

func TestResolverA4000RecordsOverTCP(t *testing.T) {
	z := discoverytest.NewZone().AddA("peers.test.", 4000)
	s := zoneServer(t, z, discoverytest.ServerOptions{})
	ans, err := lookup(t, resolverFor(s.Addr), "peers.test.", discovery.TypeA)
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if len(ans.Addrs) != 4000 || ans.Records != 4000 {
		t.Fatalf("got %d addresses, %d records; want 4000", len(ans.Addrs), ans.Records)
	}
	if ans.Transport != discovery.TransportTCP {
		t.Errorf("transport %q, want tcp (the UDP reply must be truncated)", ans.Transport)
	}
	if ans.NearLimit {
		t.Errorf("4000 records (about 64,000 bytes) flagged as cut at the limit")
	}
	if ans.Addrs[0] != netip.MustParseAddr("10.0.0.1") || ans.Addrs[3999] != netip.MustParseAddr("10.0.15.160") {
		t.Errorf("first/last address %v/%v", ans.Addrs[0], ans.Addrs[3999])
	}
}

func TestResolverAnswerCutAtMessageLimit(t *testing.T) {
	z := discoverytest.NewZone().AddA("peers.test.", 4500)
	s := zoneServer(t, z, discoverytest.ServerOptions{})
	ans, err := lookup(t, resolverFor(s.Addr), "peers.test.", discovery.TypeA)
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if !ans.NearLimit {
		t.Errorf("an answer cut at 65,535 bytes is not flagged")
	}
	if n := len(ans.Addrs); n < 4000 || n >= 4500 {
		t.Errorf("got %d addresses; want the ~4,090 that fit", n)
	}
}

func TestResolverSmallAnswerOverUDP(t *testing.T) {
	z := discoverytest.NewZone().AddA("peers.test.", 3)
	s := zoneServer(t, z, discoverytest.ServerOptions{})
	ans, err := lookup(t, resolverFor(s.Addr), "peers.test", discovery.TypeA)
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if len(ans.Addrs) != 3 || ans.Transport != discovery.TransportUDP || ans.Name != "peers.test." {
		t.Fatalf("answer %+v", ans)
	}
}

func TestResolverAAAA(t *testing.T) {
	z := discoverytest.NewZone().Add(
		"v6.test. 5 IN AAAA fd00::1",
		"v6.test. 5 IN AAAA 2001:db8:0:1:1:1:1:1",
		"v6.test. 5 IN A 10.0.0.1",
	)
	s := zoneServer(t, z, discoverytest.ServerOptions{})
	ans, err := lookup(t, resolverFor(s.Addr), "v6.test.", discovery.TypeAAAA)
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	var names []string
	for _, ip := range ans.Addrs {
		names = append(names, discovery.NodeName("app", ip))
	}
	want := []string{"app@fd00::1", "app@2001:db8:0:1:1:1:1:1"}
	if !slices.Equal(names, want) {
		t.Fatalf("names %v, want %v", names, want)
	}
}

func TestResolverSRV(t *testing.T) {
	z := discoverytest.NewZone().Add(
		"web.prod.svc.cluster.local. 5 IN SRV 0 50 4369 web-0.web.prod.svc.cluster.local.",
		"web.prod.svc.cluster.local. 5 IN SRV 0 50 4369 web-1.web.prod.svc.cluster.local.",
	)
	s := zoneServer(t, z, discoverytest.ServerOptions{})
	ans, err := lookup(t, resolverFor(s.Addr), "web.prod.svc.cluster.local.", discovery.TypeSRV)
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if len(ans.SRV) != 2 || ans.SRV[0].Target != "web-0.web.prod.svc.cluster.local" || ans.SRV[1].Port != 4369 {
		t.Fatalf("SRV %+v", ans.SRV)
	}
	if got := discovery.HostNodeName("web", ans.SRV[1].Target+"."); got != "web@web-1.web.prod.svc.cluster.local" {
		t.Errorf("node name %q", got)
	}
}

func TestResolverCNAMEChain(t *testing.T) {
	t.Run("in one reply", func(t *testing.T) {
		z := discoverytest.NewZone().Add(
			"alias.test. 5 IN CNAME mid.test.",
			"mid.test. 5 IN CNAME real.test.",
			"real.test. 5 IN A 10.1.1.1",
			"real.test. 5 IN A 10.1.1.2",
		)
		s := zoneServer(t, z, discoverytest.ServerOptions{})
		ans, err := lookup(t, resolverFor(s.Addr), "alias.test.", discovery.TypeA)
		if err != nil {
			t.Fatalf("lookup: %v", err)
		}
		if len(ans.Addrs) != 2 || ans.Name != "real.test." || ans.Records != 4 {
			t.Fatalf("answer %+v", ans)
		}
	})
	t.Run("target asked separately", func(t *testing.T) {
		mux := dns.NewServeMux()
		mux.Handle("alias.test.", discoverytest.NewZone().Add("alias.test. 5 IN CNAME real.other."))
		mux.Handle("other.", discoverytest.NewZone().Add("real.other. 5 IN A 10.2.2.2"))
		s := discoverytest.NewServer(t, mux, discoverytest.ServerOptions{})
		ans, err := lookup(t, resolverFor(s.Addr), "alias.test.", discovery.TypeA)
		if err != nil {
			t.Fatalf("lookup: %v", err)
		}
		if len(ans.Addrs) != 1 || ans.Addrs[0] != netip.MustParseAddr("10.2.2.2") {
			t.Fatalf("answer %+v", ans)
		}
	})
	t.Run("loop is bounded", func(t *testing.T) {
		z := discoverytest.NewZone().Add("a.test. 5 IN CNAME b.test.", "b.test. 5 IN CNAME a.test.")
		s := zoneServer(t, z, discoverytest.ServerOptions{})
		_, err := lookup(t, resolverFor(s.Addr), "a.test.", discovery.TypeA)
		if !errors.Is(err, discovery.ErrLookupFailed) {
			t.Fatalf("err %v, want ErrLookupFailed", err)
		}
	})
	t.Run("chain to nothing is empty", func(t *testing.T) {
		z := discoverytest.NewZone().Add("a.test. 5 IN CNAME b.test.", "b.test. 5 IN TXT \"x\"")
		s := zoneServer(t, z, discoverytest.ServerOptions{})
		_, err := lookup(t, resolverFor(s.Addr), "a.test.", discovery.TypeA)
		if !errors.Is(err, discovery.ErrNotFound) {
			t.Fatalf("err %v, want ErrNotFound", err)
		}
	})
}

func TestResolverEmptyAnswers(t *testing.T) {
	z := discoverytest.NewZone().Add("exists.test. 5 IN TXT \"x\"")
	s := zoneServer(t, z, discoverytest.ServerOptions{})
	for _, tc := range []struct{ name, query, rcode string }{
		{"NXDOMAIN", "missing.test.", "NXDOMAIN"},
		{"NODATA", "exists.test.", "NOERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := lookup(t, resolverFor(s.Addr), tc.query, discovery.TypeA)
			if !errors.Is(err, discovery.ErrNotFound) || errors.Is(err, discovery.ErrLookupFailed) {
				t.Fatalf("err %v, want ErrNotFound only", err)
			}
			var le *discovery.LookupError
			if !errors.As(err, &le) || le.Rcode != tc.rcode || le.Server != s.Addr {
				t.Fatalf("LookupError %+v", le)
			}
		})
	}
}

func TestResolverFailures(t *testing.T) {
	servfail := discoverytest.NewZone()
	servfail.Rcode = dns.RcodeServerFailure
	sf := zoneServer(t, servfail, discoverytest.ServerOptions{})
	refused := discoverytest.NewZone()
	refused.Rcode = dns.RcodeRefused
	rf := zoneServer(t, refused, discoverytest.ServerOptions{})
	noTCP := zoneServer(t, discoverytest.NewZone().AddA("peers.test.", 4000), discoverytest.ServerOptions{NoTCP: true})
	silent := discoverytest.NewRawUDP(t, func([]byte) []byte { return nil })
	garbage := discoverytest.NewRawUDP(t, func(req []byte) []byte {
		// the query's ID, then bytes that are no DNS message
		return append(req[:2:2], 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef)
	})
	wrongQuestion := discoverytest.NewRawUDP(t, func(req []byte) []byte {
		var q dns.Msg
		if q.Unpack(req) != nil {
			return nil
		}
		m := new(dns.Msg)
		m.SetQuestion("other.test.", dns.TypeA)
		m.Id, m.Response = q.Id, true
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "other.test.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: []byte{1, 2, 3, 4}})
		out, _ := m.Pack()
		return out
	})
	for _, tc := range []struct {
		name    string
		addr    string
		timeout time.Duration
		want    error
	}{
		{"SERVFAIL", sf.Addr, 2 * time.Second, discovery.ErrLookupFailed},
		{"REFUSED", rf.Addr, 2 * time.Second, discovery.ErrLookupFailed},
		{"truncated without TCP", noTCP.Addr, 2 * time.Second, discovery.ErrLookupFailed},
		{"timeout", silent.Addr, 200 * time.Millisecond, discovery.ErrLookupFailed},
		{"garbage", garbage.Addr, 2 * time.Second, discovery.ErrMalformed},
		{"another question", wrongQuestion.Addr, 2 * time.Second, discovery.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := discovery.NewDNSResolverFrom(discovery.ResolvConf{Nameservers: []string{tc.addr}, Timeout: tc.timeout, Attempts: 1})
			ans, err := lookup(t, r, "peers.test.", discovery.TypeA)
			if !errors.Is(err, tc.want) || errors.Is(err, discovery.ErrNotFound) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if len(ans.Addrs) != 0 {
				t.Fatalf("a failed lookup returned %d addresses", len(ans.Addrs))
			}
		})
	}
	t.Run("cancelled context", func(t *testing.T) {
		r := discovery.NewDNSResolverFrom(discovery.ResolvConf{Nameservers: []string{silent.Addr}, Timeout: 30 * time.Second, Attempts: 1})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := r.Lookup(ctx, discovery.Query{Name: "peers.test.", Type: discovery.TypeA})
		if !errors.Is(err, discovery.ErrLookupFailed) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("next server answers", func(t *testing.T) {
		good := zoneServer(t, discoverytest.NewZone().AddA("peers.test.", 2), discoverytest.ServerOptions{})
		r := resolverFor(sf.Addr, good.Addr)
		ans, err := lookup(t, r, "peers.test.", discovery.TypeA)
		if err != nil || len(ans.Addrs) != 2 {
			t.Fatalf("answer %+v, err %v", ans, err)
		}
	})
	t.Run("bad name", func(t *testing.T) {
		_, err := lookup(t, resolverFor(sf.Addr), "a..b", discovery.TypeA)
		if !errors.Is(err, discovery.ErrLookupFailed) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestResolverSearchListWithNdots(t *testing.T) {
	z := discoverytest.NewZone().Add(
		"headless.prod.svc.cluster.local. 5 IN A 10.3.0.1",
		"headless.svc.cluster.local. 5 IN A 10.9.9.9",
		"a.b.c.d.e. 5 IN A 10.4.0.1",
	)
	s := zoneServer(t, z, discoverytest.ServerOptions{})
	path := filepath.Join(t.TempDir(), "resolv.conf")
	conf := "nameserver 127.0.0.1\nsearch prod.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:2 attempts:1\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := discovery.DefaultConfig()
	cfg.ResolvConf, cfg.Resolver = path, s.Addr
	r, err := discovery.NewDNSResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, query, want, answered string
	}{
		{"short name takes the first search domain", "headless", "10.3.0.1", "headless.prod.svc.cluster.local."},
		{"partial name through the list", "headless.svc", "10.9.9.9", "headless.svc.cluster.local."},
		{"no candidate exists", "nothing", "", ""},
		{"many dots still use the list first below ndots", "a.b.c.d.e", "10.4.0.1", "a.b.c.d.e."},
		{"absolute name skips the list", "headless.svc.cluster.local.", "10.9.9.9", "headless.svc.cluster.local."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ans, err := lookup(t, r, tc.query, discovery.TypeA)
			if tc.want == "" {
				if !errors.Is(err, discovery.ErrNotFound) {
					t.Fatalf("err %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("lookup: %v", err)
			}
			if len(ans.Addrs) != 1 || ans.Addrs[0].String() != tc.want || ans.Name != tc.answered {
				t.Fatalf("answer %+v", ans)
			}
		})
	}
}

func TestResolverSearchStopsAtFailure(t *testing.T) {
	mux := dns.NewServeMux()
	bad := discoverytest.NewZone()
	bad.Rcode = dns.RcodeServerFailure
	mux.Handle("prod.svc.cluster.local.", bad)
	mux.Handle(".", discoverytest.NewZone().Add("headless.svc.cluster.local. 5 IN A 10.9.9.9"))
	s := discoverytest.NewServer(t, mux, discoverytest.ServerOptions{})
	r := discovery.NewDNSResolverFrom(discovery.ResolvConf{Nameservers: []string{s.Addr}, Timeout: 2 * time.Second, Attempts: 1, Ndots: 5,
		Search: []string{"prod.svc.cluster.local.", "svc.cluster.local."}})
	_, err := lookup(t, r, "headless", discovery.TypeA)
	if !errors.Is(err, discovery.ErrLookupFailed) {
		t.Fatalf("err %v: an answer from a later search domain must not stand in for a failed earlier one", err)
	}
}

func TestCandidates(t *testing.T) {
	r := discovery.NewDNSResolverFrom(discovery.ResolvConf{Ndots: 2, Search: []string{"a.local.", "local."}})
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"svc", []string{"svc.a.local.", "svc.local.", "svc."}},
		{"svc.ns", []string{"svc.ns.a.local.", "svc.ns.local.", "svc.ns."}},
		{"svc.ns.x", []string{"svc.ns.x.", "svc.ns.x.a.local.", "svc.ns.x.local."}},
		{"svc.ns.x.", []string{"svc.ns.x."}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := r.Candidates(tc.in); !slices.Equal(got, tc.want) {
				t.Fatalf("Candidates(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want discovery.ResolvConf
		err  bool
	}{
		{"defaults", "", discovery.ResolvConf{Ndots: 1, Timeout: 5 * time.Second, Attempts: 2}, false},
		{"kubernetes pod", "search prod.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
			discovery.ResolvConf{Nameservers: []string{"10.96.0.10:53"}, Search: []string{"prod.svc.cluster.local.", "svc.cluster.local.", "cluster.local."},
				Ndots: 5, Timeout: 5 * time.Second, Attempts: 2}, false},
		{"all options and comments", "# c\nnameserver 127.0.0.53 ; x\nnameserver ::1\ndomain Example.COM\noptions timeout:1 attempts:3 rotate ndots:99 edns0\n",
			discovery.ResolvConf{Nameservers: []string{"127.0.0.53:53", "[::1]:53"}, Search: []string{"example.com."}, Ndots: 15, Timeout: time.Second, Attempts: 3, Rotate: true}, false},
		{"caps", "options timeout:999 attempts:99", discovery.ResolvConf{Ndots: 1, Timeout: 30 * time.Second, Attempts: 5}, false},
		{"bad numbers ignored", "options timeout:x attempts:-1 ndots:", discovery.ResolvConf{Ndots: 1, Timeout: 5 * time.Second, Attempts: 2}, false},
		{"nameserver not an IP", "nameserver dns.example.com", discovery.ResolvConf{}, true},
		{"nameserver without address", "nameserver", discovery.ResolvConf{}, true},
		{"line too long", "search " + strings.Repeat("a", 5000), discovery.ResolvConf{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := discovery.ParseResolvConf(strings.NewReader(tc.in))
			if tc.err {
				if !errors.Is(err, discovery.ErrResolvConf) {
					t.Fatalf("err %v, want ErrResolvConf", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Nameservers, tc.want.Nameservers) || !slices.Equal(got.Search, tc.want.Search) ||
				got.Ndots != tc.want.Ndots || got.Timeout != tc.want.Timeout || got.Attempts != tc.want.Attempts || got.Rotate != tc.want.Rotate {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNewDNSResolverResolvConfPath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(path, []byte("nameserver 192.0.2.53\nsearch x.local\noptions rotate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := discovery.DefaultConfig()
	cfg.ResolvConf = path
	r, err := discovery.NewDNSResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rc := r.Config(); !slices.Equal(rc.Nameservers, []string{"192.0.2.53:53"}) || !rc.Rotate {
		t.Fatalf("config %+v", rc)
	}
	cfg.ResolvConf = filepath.Join(dir, "missing")
	if _, err := discovery.NewDNSResolver(cfg); !errors.Is(err, discovery.ErrResolvConf) {
		t.Fatalf("missing file: err %v", err)
	}
	cfg.Resolver = "127.0.0.1:5353"
	r, err = discovery.NewDNSResolver(cfg)
	if err != nil {
		t.Fatalf("missing file with --resolver: %v", err)
	}
	if rc := r.Config(); !slices.Equal(rc.Nameservers, []string{"127.0.0.1:5353"}) {
		t.Fatalf("config %+v", rc)
	}
}

func TestNodeNameMatchesBEAM(t *testing.T) {
	// Expected strings are what OTP 25's inet:ntoa/1 prints for the same addresses.
	for _, tc := range []struct{ ip, want string }{
		{"10.0.0.7", "app@10.0.0.7"},
		{"2001:db8:0:1:1:1:1:1", "app@2001:db8:0:1:1:1:1:1"},
		{"FD00:0:0:0:0:0:0:1", "app@fd00::1"},
		{"::ffff:1.2.3.4", "app@::ffff:1.2.3.4"},
		{"2001:db8:0:0:1:0:0:1", "app@2001:db8::1:0:0:1"},
		{"fe80::1%eth0", "app@fe80::1"},
	} {
		t.Run(tc.ip, func(t *testing.T) {
			if got := discovery.NodeName("app", netip.MustParseAddr(tc.ip)); got != tc.want {
				t.Fatalf("NodeName = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestResolverRemembersTCP(t *testing.T) {
	z := discoverytest.NewZone().AddA("peers.test.", 1000)
	var udp, tcp atomic.Int32
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, m *dns.Msg) {
		if w.LocalAddr().Network() == "udp" {
			udp.Add(1)
		} else {
			tcp.Add(1)
		}
		z.ServeDNS(w, m)
	})
	s := discoverytest.NewServer(t, mux, discoverytest.ServerOptions{})
	r := resolverFor(s.Addr)
	for i := 0; i < 3; i++ {
		ans, err := lookup(t, r, "peers.test.", discovery.TypeA)
		if err != nil || len(ans.Addrs) != 1000 || ans.Transport != discovery.TransportTCP {
			t.Fatalf("lookup %d: %d addresses over %s, %v", i, len(ans.Addrs), ans.Transport, err)
		}
	}
	if udp.Load() != 1 || tcp.Load() != 3 {
		t.Fatalf("%d UDP and %d TCP queries; want 1 UDP (truncated) then TCP only", udp.Load(), tcp.Load())
	}
}
