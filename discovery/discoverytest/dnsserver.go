package discoverytest

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// ServerOptions tune a Server.
type ServerOptions struct {
	// NoTCP serves UDP only: a truncated reply cannot be retried over TCP.
	NoTCP bool
}

// Server is an in-process miekg/dns server on 127.0.0.1 with its own
// ServeMux, serving UDP and (unless NoTCP) TCP on the same port.
type Server struct {
	// Addr is host:port of the server.
	Addr string
	// Mux routes queries; add handlers to it before or after Start.
	Mux *dns.ServeMux

	servers []*dns.Server
	once    sync.Once
	err     error
}

// StartServer starts a Server on 127.0.0.1:0 and returns once it listens
// (NotifyStartedFunc), so callers never wait by sleeping.
func StartServer(mux *dns.ServeMux, o ServerOptions) (*Server, error) {
	if mux == nil {
		mux = dns.NewServeMux()
	}
	var lastErr error
	for try := 0; try < 10; try++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: pc.LocalAddr().String(), Mux: mux}
		var ln net.Listener
		if !o.NoTCP {
			ln, err = net.Listen("tcp", s.Addr)
			if err != nil { // the TCP port is taken: try another UDP port
				pc.Close()
				lastErr = err
				continue
			}
		}
		s.servers = append(s.servers, &dns.Server{PacketConn: pc, Handler: mux})
		if ln != nil {
			s.servers = append(s.servers, &dns.Server{Listener: ln, Handler: mux})
		}
		started := make(chan struct{}, len(s.servers))
		failed := make(chan error, len(s.servers))
		for _, srv := range s.servers {
			srv.NotifyStartedFunc = func() { started <- struct{}{} }
			go func() {
				if err := srv.ActivateAndServe(); err != nil {
					failed <- err
				}
			}()
		}
		for range s.servers {
			select {
			case <-started:
			case err := <-failed:
				s.Close()
				return nil, err
			}
		}
		return s, nil
	}
	return nil, fmt.Errorf("no UDP port whose TCP twin is free: %w", lastErr)
}

// NewServer starts a Server and shuts it down in t.Cleanup.
func NewServer(t testing.TB, mux *dns.ServeMux, o ServerOptions) *Server {
	t.Helper()
	s, err := StartServer(mux, o)
	if err != nil {
		t.Fatalf("start DNS server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stop DNS server: %v", err)
		}
	})
	return s
}

// Close shuts the server down.
func (s *Server) Close() error {
	s.once.Do(func() {
		var errs []error
		for _, srv := range s.servers {
			if err := srv.Shutdown(); err != nil {
				errs = append(errs, err)
			}
		}
		s.err = errors.Join(errs...)
	})
	return s.err
}

// Zone answers from a fixed set of records, like an authoritative server:
// NXDOMAIN for names it does not hold, NOERROR with no answer for types it
// does not hold, CNAMEs followed within the zone. Replies are truncated to
// the client's UDP size (EDNS0, else 512) with the TC bit, and to 65,535
// bytes over TCP.
type Zone struct {
	mu  sync.RWMutex
	rrs map[string][]dns.RR // by lower-case owner name
	// Rcode, when non-zero, is answered to every query (e.g. SERVFAIL).
	Rcode int
}

// NewZone returns an empty Zone.
func NewZone() *Zone { return &Zone{rrs: map[string][]dns.RR{}} }

// Add adds records given in zone-file syntax ("a.example. 5 IN A 10.0.0.1").
// It panics on a syntax error: it is for literals in tests.
func (z *Zone) Add(records ...string) *Zone {
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(fmt.Sprintf("discoverytest: bad record %q: %v", s, err))
		}
		z.AddRR(rr)
	}
	return z
}

// AddRR adds records.
func (z *Zone) AddRR(rrs ...dns.RR) *Zone {
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, rr := range rrs {
		n := strings.ToLower(rr.Header().Name)
		z.rrs[n] = append(z.rrs[n], rr)
	}
	return z
}

// AddA adds n A records for name, 10.x.y.z counting up from 10.0.0.1.
func (z *Zone) AddA(name string, n int) *Zone {
	rrs := make([]dns.RR, 0, n)
	for i := 1; i <= n; i++ {
		rrs = append(rrs, &dns.A{
			Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5},
			A:   net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).To4(),
		})
	}
	return z.AddRR(rrs...)
}

// ServeDNS implements dns.Handler.
func (z *Zone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	z.mu.RLock()
	if z.Rcode != 0 {
		m.Rcode = z.Rcode
	} else {
		q := req.Question[0]
		name := strings.ToLower(q.Name)
		for hops := 0; hops < 16; hops++ {
			rrs, ok := z.rrs[name]
			if !ok {
				if hops == 0 {
					m.Rcode = dns.RcodeNameError
				}
				break
			}
			next := ""
			for _, rr := range rrs {
				if rr.Header().Rrtype == q.Qtype {
					m.Answer = append(m.Answer, rr)
				} else if c, ok := rr.(*dns.CNAME); ok {
					m.Answer = append(m.Answer, rr)
					next = strings.ToLower(c.Target)
				}
			}
			if next == "" {
				break
			}
			name = next
		}
	}
	z.mu.RUnlock()
	size := dns.MaxMsgSize
	if _, udp := w.LocalAddr().(*net.UDPAddr); udp {
		size = dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
			m.SetEdns0(opt.UDPSize(), false)
		}
	}
	m.Truncate(size)
	_ = w.WriteMsg(m)
}

// RawUDP is a UDP responder on 127.0.0.1:0 that answers each datagram with
// whatever Reply returns (nothing for nil): garbage, silence, anything a
// real server would not send.
type RawUDP struct {
	Addr string
	pc   net.PacketConn
	done chan struct{}
}

// StartRawUDP starts a RawUDP; reply gets each request and returns the
// bytes to send back, or nil to stay silent.
func StartRawUDP(reply func(req []byte) []byte) (*RawUDP, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &RawUDP{Addr: pc.LocalAddr().String(), pc: pc, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := reply(append([]byte(nil), buf[:n]...)); out != nil {
				_, _ = pc.WriteTo(out, from)
			}
		}
	}()
	return r, nil
}

// NewRawUDP starts a RawUDP and closes it in t.Cleanup.
func NewRawUDP(t testing.TB, reply func(req []byte) []byte) *RawUDP {
	t.Helper()
	r, err := StartRawUDP(reply)
	if err != nil {
		t.Fatalf("start raw UDP responder: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

// Close stops the responder and waits for its goroutine.
func (r *RawUDP) Close() {
	r.pc.Close()
	<-r.done
}
