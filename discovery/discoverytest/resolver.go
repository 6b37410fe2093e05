package discoverytest

import (
	"context"
	"net/netip"
	"sync"

	"github.com/gonode/gonode/discovery"
)

// Reply is one scripted answer of a Resolver.
type Reply struct {
	Answer discovery.Answer
	Err    error
}

// Resolver is a scripted discovery.Resolver. Each query answers with its
// queued one-shot replies first, then with its standing reply; a query with
// neither answers "not found".
type Resolver struct {
	mu       sync.Mutex
	standing map[discovery.Query]Reply
	queued   map[discovery.Query][]Reply
	calls    []discovery.Query
	gate     chan struct{}
}

// NewResolver returns an empty Resolver.
func NewResolver() *Resolver {
	return &Resolver{standing: map[discovery.Query]Reply{}, queued: map[discovery.Query][]Reply{}}
}

// Set makes r answer q with ans and err from now on.
func (r *Resolver) Set(q discovery.Query, ans discovery.Answer, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.standing[q] = Reply{Answer: ans, Err: err}
}

// Queue adds one-shot replies for q, used in order before the standing one.
func (r *Resolver) Queue(q discovery.Query, replies ...Reply) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queued[q] = append(r.queued[q], replies...)
}

// Hold makes every Lookup wait until Release or until its context ends.
func (r *Resolver) Hold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gate == nil {
		r.gate = make(chan struct{})
	}
}

// Release lets held Lookups go on.
func (r *Resolver) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gate != nil {
		close(r.gate)
		r.gate = nil
	}
}

// Calls returns the queries asked so far, in order.
func (r *Resolver) Calls() []discovery.Query {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]discovery.Query(nil), r.calls...)
}

// Lookup implements discovery.Resolver.
func (r *Resolver) Lookup(ctx context.Context, q discovery.Query) (discovery.Answer, error) {
	r.mu.Lock()
	r.calls = append(r.calls, q)
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return discovery.Answer{Transport: discovery.TransportNone},
				&discovery.LookupError{Name: q.Name, Type: q.Type.String(), Kind: discovery.ErrLookupFailed, Errs: []error{context.Cause(ctx)}}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if qs := r.queued[q]; len(qs) > 0 {
		r.queued[q] = qs[1:]
		return qs[0].Answer, qs[0].Err
	}
	if rep, ok := r.standing[q]; ok {
		return rep.Answer, rep.Err
	}
	return discovery.Answer{Transport: discovery.TransportUDP},
		&discovery.LookupError{Name: q.Name, Type: q.Type.String(), Kind: discovery.ErrNotFound, Rcode: "NXDOMAIN"}
}

// Addrs returns an Answer holding the given IP addresses (over UDP). It
// panics on a malformed address: it is for literals in tests.
func Addrs(ips ...string) discovery.Answer {
	a := discovery.Answer{Transport: discovery.TransportUDP, Records: len(ips)}
	for _, s := range ips {
		a.Addrs = append(a.Addrs, netip.MustParseAddr(s))
	}
	return a
}

// Failed returns a lookup failure for q, as a resolver would report a
// SERVFAIL.
func Failed(q discovery.Query) error {
	return &discovery.LookupError{Name: q.Name, Type: q.Type.String(), Kind: discovery.ErrLookupFailed, Rcode: "SERVFAIL"}
}
