package discovery

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Resolver limits.
const (
	// EDNSBufferSize is the UDP payload size advertised with EDNS0.
	EDNSBufferSize = 4096
	// MaxCNAMEHops bounds how many CNAMEs one lookup follows.
	MaxCNAMEHops = 8
	// MaxMessageSize is the largest DNS message (RFC 1035 over TCP).
	MaxMessageSize = dns.MaxMsgSize
)

// DNSResolver is a Resolver on github.com/miekg/dns: EDNS0 with a 4096-byte
// UDP buffer, a TCP retry when a reply is truncated, CNAME chains followed
// up to MaxCNAMEHops, resolv.conf's search list, ndots, timeout, attempts and
// rotate. A failed lookup wraps ErrLookupFailed; no such name and no records
// wrap ErrNotFound. It is safe for concurrent use.
type DNSResolver struct {
	rc     ResolvConf
	next   atomic.Uint32 // rotate offset
	dialer net.Dialer
	// tcpFirst holds server+question keys whose last reply needed TCP:
	// discovery asks the same question every poll, and a 4,000-pod answer
	// never fits UDP, so the truncated UDP round trip is skipped until a
	// TCP reply would fit in EDNSBufferSize again.
	tcpFirst sync.Map
}

// NewDNSResolver builds the resolver of cfg: resolv.conf at cfg.ResolvConf,
// with its nameservers replaced by cfg.Resolver when that is set (then a
// missing resolv.conf is not an error).
func NewDNSResolver(cfg Config) (*DNSResolver, error) {
	rc, err := ReadResolvConf(cfg.ResolvConf)
	if cfg.ResolvConf == "" {
		rc, err = DefaultResolvConfValues(), nil
	}
	if err != nil {
		if cfg.Resolver == "" || !errors.Is(err, ErrResolvConf) {
			return nil, err
		}
		rc = DefaultResolvConfValues()
	}
	if cfg.Resolver != "" {
		if _, _, err := net.SplitHostPort(cfg.Resolver); err != nil {
			return nil, fmt.Errorf("%w: resolver %q: %w", ErrInvalidConfig, cfg.Resolver, err)
		}
		rc.Nameservers = []string{cfg.Resolver}
	}
	return NewDNSResolverFrom(rc), nil
}

// NewDNSResolverFrom builds a resolver from parsed resolv.conf values; zero
// fields take glibc's defaults.
func NewDNSResolverFrom(rc ResolvConf) *DNSResolver {
	if len(rc.Nameservers) == 0 {
		rc.Nameservers = []string{"127.0.0.1:53"}
	}
	if rc.Timeout <= 0 {
		rc.Timeout = defaultTimeout
	}
	if rc.Attempts <= 0 {
		rc.Attempts = defaultAttempts
	}
	if rc.Ndots < 0 {
		rc.Ndots = defaultNdots
	}
	rc.Nameservers = append([]string(nil), rc.Nameservers...)
	rc.Search = append([]string(nil), rc.Search...)
	return &DNSResolver{rc: rc}
}

// Config returns the resolv.conf values in use.
func (r *DNSResolver) Config() ResolvConf { return r.rc }

// Candidates returns the fully qualified names tried for name, in order:
// absolute names as is; names with at least ndots dots first as is, then
// through the search list; other names through the search list first.
func (r *DNSResolver) Candidates(name string) []string {
	if strings.HasSuffix(name, ".") {
		return []string{fqdn(name)}
	}
	out := make([]string, 0, len(r.rc.Search)+1)
	asIs := fqdn(name)
	if strings.Count(name, ".") >= r.rc.Ndots {
		out = append(out, asIs)
	}
	for _, s := range r.rc.Search {
		out = append(out, fqdn(strings.TrimSuffix(name, ".")+"."+s))
	}
	if strings.Count(name, ".") < r.rc.Ndots {
		out = append(out, asIs)
	}
	return out
}

// Lookup implements Resolver. The search-list candidates are asked in order;
// an answer counts only when every earlier candidate was definitely empty,
// so a failure stops the walk with ErrLookupFailed.
func (r *DNSResolver) Lookup(ctx context.Context, q Query) (Answer, error) {
	if err := checkDNSName(q.Name); err != nil {
		return Answer{Transport: TransportNone}, &LookupError{Name: q.Name, Type: q.Type.String(),
			Kind: ErrLookupFailed, Errs: []error{fmt.Errorf("%w: %w", ErrInvalidConfig, err)}}
	}
	var last Answer
	var lastErr error
	for _, name := range r.Candidates(q.Name) {
		ans, err := r.lookupName(ctx, name, q.Type)
		if err == nil {
			return ans, nil
		}
		last, lastErr = ans, err
		if !errors.Is(err, ErrNotFound) {
			return ans, err
		}
	}
	return last, lastErr
}

// lookupName resolves one fully qualified name, following CNAMEs.
func (r *DNSResolver) lookupName(ctx context.Context, name string, t RecordType) (Answer, error) {
	ans := Answer{Transport: TransportNone}
	cur := name
	for hop := 0; ; hop++ {
		d, tr, server, err := r.ask(ctx, cur, t)
		ans.Transport = tr
		if err != nil {
			return ans, err
		}
		ans.Records += d.records
		ans.NearLimit = ans.NearLimit || d.nearLimit
		le := &LookupError{Name: cur, Type: t.String(), Server: server, Rcode: dns.RcodeToString[d.rcode]}
		switch {
		case d.rcode == dns.RcodeNameError:
			le.Kind = ErrNotFound
			return ans, le
		case len(d.addrs) > 0 || len(d.srv) > 0:
			ans.Name, ans.Addrs, ans.SRV = d.final, d.addrs, d.srv
			return ans, nil
		case d.dangling && hop < MaxCNAMEHops-d.hops:
			cur = d.final // the server gave only the CNAME: ask its target
			continue
		case d.dangling:
			le.Kind = ErrLookupFailed
			le.Errs = []error{fmt.Errorf("more than %d CNAMEs", MaxCNAMEHops)}
			return ans, le
		default:
			le.Kind = ErrNotFound
			return ans, le
		}
	}
}

// ask sends one question to the nameservers (attempts rounds, rotating if
// configured) until one gives a definite reply (NOERROR or NXDOMAIN).
func (r *DNSResolver) ask(ctx context.Context, name string, t RecordType) (decoded, Transport, string, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, uint16(t))
	m.RecursionDesired = true
	m.SetEdns0(EDNSBufferSize, false)
	le := &LookupError{Name: name, Type: t.String(), Kind: ErrLookupFailed}
	tr := TransportNone
	servers := r.rc.Nameservers
	start := 0
	if r.rc.Rotate {
		start = int(r.next.Add(1)-1) % len(servers)
	}
	for a := 0; a < r.rc.Attempts; a++ {
		for i := range servers {
			if err := ctx.Err(); err != nil {
				le.Errs = append(le.Errs, err)
				return decoded{}, tr, "", le
			}
			server := servers[(start+i)%len(servers)]
			m.Id = dns.Id()
			d, trans, err := r.exchange(ctx, server, m, name, t)
			if trans != TransportNone {
				tr = trans
			}
			if err != nil {
				le.Server = server
				le.Errs = append(le.Errs, err)
				continue
			}
			if d.rcode == dns.RcodeSuccess || d.rcode == dns.RcodeNameError {
				return d, trans, server, nil
			}
			le.Server, le.Rcode = server, dns.RcodeToString[d.rcode]
			le.Errs = append(le.Errs, fmt.Errorf("%s answered %s", server, le.Rcode))
		}
	}
	return decoded{}, tr, le.Server, le
}

// exchange asks one server over UDP, and over TCP when the UDP reply is
// truncated (or at once, when the last reply to the same question needed
// TCP).
func (r *DNSResolver) exchange(ctx context.Context, server string, m *dns.Msg, name string, t RecordType) (decoded, Transport, error) {
	out, err := m.Pack()
	if err != nil {
		return decoded{}, TransportNone, fmt.Errorf("%w: packing the query: %w", ErrMalformed, err)
	}
	key := server + " " + name + " " + t.String()
	if _, sticky := r.tcpFirst.Load(key); !sticky {
		raw, err := r.roundTrip(ctx, "udp", server, out, m.Id)
		if err != nil {
			return decoded{}, TransportNone, err
		}
		d, err := decodeReply(raw, m.Id, name, uint16(t))
		if err != nil {
			return decoded{}, TransportUDP, err
		}
		if !d.truncated {
			return d, TransportUDP, nil
		}
	}
	raw, err := r.roundTrip(ctx, "tcp", server, out, m.Id)
	if err != nil {
		r.tcpFirst.Delete(key)
		return decoded{}, TransportUDP, fmt.Errorf("truncated reply over UDP and TCP failed: %w", err)
	}
	d, err := decodeReply(raw, m.Id, name, uint16(t))
	if err != nil {
		return decoded{}, TransportTCP, err
	}
	if len(raw) > EDNSBufferSize {
		r.tcpFirst.Store(key, struct{}{})
	} else {
		r.tcpFirst.Delete(key)
	}
	if d.truncated {
		d.nearLimit = true // a server cut the reply even over TCP
	}
	return d, TransportTCP, nil
}

// roundTrip sends one query and returns the raw reply with the same ID.
func (r *DNSResolver) roundTrip(ctx context.Context, network, server string, query []byte, id uint16) ([]byte, error) {
	deadline := time.Now().Add(r.rc.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := r.dialer.DialContext(dctx, network, server)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLookupFailed, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(dctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLookupFailed, err)
	}
	wrap := func(err error) error {
		if ctxErr := dctx.Err(); ctxErr != nil && ctx.Err() != nil {
			return fmt.Errorf("%w: %s %s: %w", ErrLookupFailed, network, server, ctx.Err())
		}
		return fmt.Errorf("%w: %s %s: %w", ErrLookupFailed, network, server, err)
	}
	if network == "udp" {
		if _, err := conn.Write(query); err != nil {
			return nil, wrap(err)
		}
		buf := make([]byte, MaxMessageSize)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return nil, wrap(err)
			}
			if n >= 2 && binary.BigEndian.Uint16(buf) != id {
				continue // a stray or spoofed reply: keep waiting for ours
			}
			return buf[:n:n], nil
		}
	}
	msg := make([]byte, 2+len(query))
	binary.BigEndian.PutUint16(msg, uint16(len(query)))
	copy(msg[2:], query)
	if _, err := conn.Write(msg); err != nil {
		return nil, wrap(err)
	}
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		return nil, wrap(err)
	}
	buf := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, wrap(err)
	}
	return buf, nil
}

// decoded is one reply, reduced to what discovery needs.
type decoded struct {
	rcode     int
	truncated bool
	final     string // the name at the end of the CNAME chain
	hops      int    // CNAMEs followed inside this reply
	dangling  bool   // the chain ends in a CNAME target this reply has nothing for
	addrs     []netip.Addr
	srv       []SRV
	records   int // answer-section records
	nearLimit bool
}
