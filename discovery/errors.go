package discovery

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Check them with errors.Is.
var (
	// ErrNotFound: the name does not exist or has no records of the asked
	// type (NXDOMAIN or NODATA). It is a valid, empty answer: peers absent
	// from it count towards pruning.
	ErrNotFound = errors.New("no such name or no records")
	// ErrLookupFailed: no usable answer (timeout, SERVFAIL, REFUSED, a
	// malformed reply, a truncated reply with no TCP). The last good answer
	// stands and nobody is disconnected.
	ErrLookupFailed = errors.New("lookup failed")
	// ErrMalformed wraps a reply that does not parse or does not answer the
	// question asked; it also wraps ErrLookupFailed.
	ErrMalformed = fmt.Errorf("%w: malformed reply", ErrLookupFailed)
	// ErrConnectTimeout is the cause of a connect cancelled by ConnectTimeout.
	ErrConnectTimeout = errors.New("connect timed out")
	// ErrStopped: the discoverer is shutting down.
	ErrStopped = errors.New("discovery stopped")
)

// LookupError describes a failed or empty lookup. It wraps ErrNotFound or
// ErrLookupFailed (and the underlying cause), so errors.Is works on it.
type LookupError struct {
	Name   string // the name asked last
	Type   string // "A", "AAAA" or "SRV"
	Server string // the nameserver that answered last, "" if none did
	Rcode  string // the last response code, "" if none
	Kind   error  // ErrNotFound or ErrLookupFailed
	Errs   []error
}

func (e *LookupError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lookup %s %s", e.Type, e.Name)
	if e.Server != "" {
		fmt.Fprintf(&b, " on %s", e.Server)
	}
	fmt.Fprintf(&b, ": %v", e.Kind)
	if e.Rcode != "" {
		fmt.Fprintf(&b, " (%s)", e.Rcode)
	}
	for i, err := range e.Errs {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Errs)-3)
			break
		}
		fmt.Fprintf(&b, "; %v", err)
	}
	return b.String()
}

// Unwrap returns the kind and the causes.
func (e *LookupError) Unwrap() []error {
	return append([]error{e.Kind}, e.Errs...)
}
