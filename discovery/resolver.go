package discovery

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
)

// RecordType is a DNS record type a strategy asks for.
type RecordType uint16

// Record types (their DNS type codes).
const (
	TypeA    RecordType = 1
	TypeAAAA RecordType = 28
	TypeSRV  RecordType = 33
)

func (t RecordType) String() string {
	switch t {
	case TypeA:
		return "A"
	case TypeAAAA:
		return "AAAA"
	case TypeSRV:
		return "SRV"
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// Query is one lookup: a name (relative names go through the search list)
// and a record type.
type Query struct {
	Name string
	Type RecordType
}

// SRV is one SRV record's target.
type SRV struct {
	Target   string // host name, without the trailing dot
	Port     uint16
	Priority uint16
	Weight   uint16
}

// Answer is a successful lookup's result.
type Answer struct {
	// Name is the name that answered (after search-list expansion and
	// CNAMEs), fully qualified.
	Name string
	// Addrs holds the A or AAAA addresses.
	Addrs []netip.Addr
	// SRV holds the SRV targets.
	SRV []SRV
	// Records counts the resource records in the answer section(s), CNAMEs
	// included.
	Records int
	// Transport is how the final reply arrived.
	Transport Transport
	// NearLimit is set when the reply filled a 65,535-byte DNS message (or
	// came truncated over TCP): records beyond it may have been cut.
	NearLimit bool
}

// Resolver performs the strategies' lookups. Lookup returns an Answer, or
// an error that wraps ErrNotFound (no such name / no records: a valid empty
// answer) or ErrLookupFailed (no usable answer). On error the Answer still
// carries the Transport of the last reply, if any. Lookup may be called
// concurrently.
type Resolver interface {
	Lookup(ctx context.Context, q Query) (Answer, error)
}

// NodeName returns the node name app@ip, the IP written the way BEAM's
// inet:ntoa writes it (IPv6 compressed per RFC 5952, lower case, no
// brackets; IPv4-mapped as ::ffff:a.b.c.d; no zone).
func NodeName(app string, ip netip.Addr) string {
	return app + "@" + ip.WithZone("").String()
}

// HostNodeName returns the node name app@host for an SRV target, without
// the trailing dot.
func HostNodeName(app, host string) string {
	return app + "@" + strings.TrimSuffix(host, ".")
}
