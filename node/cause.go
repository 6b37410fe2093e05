package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gonode/gonode/node/dist"
)

// Why a connection to a peer could not be made. Connect, Call (with its
// *genserver.DownError, reason noconnection) and the discovery events carry
// one of them, checkable with errors.Is, when the cause is known:
//
//	err := n.Connect(ctx, "billing@10.0.0.8")
//	switch {
//	case errors.Is(err, node.ErrNotRegistered):   // no such node on that host
//	case errors.Is(err, node.ErrBadCookie):       // cookies differ
//	case errors.Is(err, node.ErrHostUnreachable): // nothing answered there
//	}
var (
	// ErrBadCookie: the peer and this node have different cookies (the
	// peer's digest did not match ours, or it closed the connection on our
	// digest, which is how an Erlang node rejects another cookie).
	ErrBadCookie = errors.New("cookie mismatch")
	// ErrNotRegistered: the EPMD on the peer's host answered that no node of
	// that name is registered there. It is also ErrPeerUnresolved.
	ErrNotRegistered = fmt.Errorf("%w: the name is not registered at the host's EPMD", ErrPeerUnresolved)
	// ErrHostUnreachable: the peer's host could not be reached: its EPMD or
	// its distribution port refused the connection, had no route, or did not
	// answer the TCP connect in time.
	ErrHostUnreachable = errors.New("host unreachable")
	// ErrNotAllowed: the peer refused this node: it answered not_allowed
	// (for example an Erlang node with net_kernel:allow/1 that does not list
	// this node).
	ErrNotAllowed = errors.New("connection not allowed by the peer")
	// ErrConnectTimeout: the TCP connection was made but the handshake did
	// not finish within Config.HandshakeTimeout.
	ErrConnectTimeout = errors.New("handshake timed out")
)

// CauseName names the cause of a failed connection attempt, for logs and
// debug pages: not_registered, bad_cookie, host_unreachable, not_allowed,
// connect_timeout, unresolved (ErrPeerUnresolved for another reason), or ""
// when err carries none of those.
func CauseName(err error) string {
	switch {
	case errors.Is(err, ErrNotRegistered):
		return "not_registered"
	case errors.Is(err, ErrBadCookie):
		return "bad_cookie"
	case errors.Is(err, ErrHostUnreachable):
		return "host_unreachable"
	case errors.Is(err, ErrNotAllowed):
		return "not_allowed"
	case errors.Is(err, ErrConnectTimeout):
		return "connect_timeout"
	case errors.Is(err, ErrPeerUnresolved):
		return "unresolved"
	}
	return ""
}

// handshakeCause adds the sentinel of this package to an outgoing
// handshake's error, when there is one.
func handshakeCause(err error) error {
	var s error
	switch {
	case errors.Is(err, dist.ErrWrongCookie):
		s = ErrBadCookie
	case errors.Is(err, dist.ErrNotAllowed):
		s = ErrNotAllowed
	case errors.Is(err, dist.ErrHandshakeTimeout):
		s = ErrConnectTimeout
	case errors.Is(err, context.DeadlineExceeded):
		// The TLS handshake's own deadline, which a caller would take for
		// its ctx's: a timeout of the handshake, without it.
		return fmt.Errorf("%w: %w", ErrConnectTimeout, notDeadline{err})
	default:
		return err
	}
	return fmt.Errorf("%w: %w", s, err)
}

// notDeadline is err, except that it is not context.DeadlineExceeded for
// errors.Is (and errors.As sees none of its chain).
type notDeadline struct{ err error }

func (e notDeadline) Error() string { return e.err.Error() }

func (e notDeadline) Is(target error) bool {
	return target != context.DeadlineExceeded && errors.Is(e.err, target)
}

// maxPeerCauses bounds the peers whose last failure is kept; beyond it the
// peer that changed least recently is forgotten.
const maxPeerCauses = 4096

// peerCauses keeps, by peer name, how the last outgoing connection attempt
// failed. ergo's router reports every failure to connect as lib.ErrNoRoute;
// the registrar's Resolve, which looks the peer up, dials it and runs the
// handshake (outgoing.go), records the cause here as it happens, and
// Connect, Call and ConnectFailures read it back. Safe for concurrent use.
type peerCauses struct {
	// seq numbers the changes; it changes under mu, mark reads it without
	// (a Call marks it on every call).
	seq atomic.Uint64
	mu  sync.Mutex
	m   map[string]*peerAttempt
}

type peerAttempt struct {
	seq uint64 // of the last change
	// failure is the last failure, at failedAt.
	failure  error
	failSeq  uint64
	failedAt time.Time
}

func newPeerCauses() *peerCauses { return &peerCauses{m: map[string]*peerAttempt{}} }

// mark returns a point in the sequence of events: since(peer, mark) only
// reports what happened after it.
func (c *peerCauses) mark() uint64 { return c.seq.Load() }

// getLocked returns peer's entry, creating it (and forgetting the stalest
// entry at the bound). c.mu must be held.
func (c *peerCauses) getLocked(peer string) *peerAttempt {
	seq := c.seq.Add(1)
	if a, ok := c.m[peer]; ok {
		a.seq = seq
		return a
	}
	if len(c.m) >= maxPeerCauses {
		oldest, at := "", ^uint64(0)
		for p, a := range c.m {
			if a.seq < at {
				oldest, at = p, a.seq
			}
		}
		delete(c.m, oldest)
	}
	a := &peerAttempt{seq: seq}
	c.m[peer] = a
	return a
}

// failed records err as peer's last failure.
func (c *peerCauses) failed(peer string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.getLocked(peer)
	a.failure, a.failSeq, a.failedAt = err, a.seq, time.Now()
}

// succeeded forgets peer's failures: it is connected.
func (c *peerCauses) succeeded(peer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, peer)
}

// since returns the cause of peer's failed connection attempt recorded
// after mark, or nil.
func (c *peerCauses) since(peer string, mark uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.m[peer]
	if !ok {
		return nil
	}
	if a.failure != nil && a.failSeq > mark {
		return a.failure
	}
	return nil
}

// failures returns the last failure of every peer that has one, unsorted.
func (c *peerCauses) failures() []PeerFailure {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]PeerFailure, 0, len(c.m))
	for p, a := range c.m {
		if a.failure != nil {
			out = append(out, PeerFailure{Peer: p, Err: a.failure, At: a.failedAt})
		}
	}
	return out
}

// PeerFailure is how the last attempt to connect to a peer failed.
type PeerFailure struct {
	// Peer is the peer's node name.
	Peer string
	// Err is the failure, errors.Is one of ErrNotRegistered, ErrBadCookie,
	// ErrHostUnreachable, ErrNotAllowed, ErrConnectTimeout, ErrPeerUnresolved
	// when the cause is one of those.
	Err error
	// At is when it failed.
	At time.Time
}

// ConnectFailures returns, sorted by peer, how the last outgoing connection
// attempt failed for each peer whose last attempt failed and that has not
// connected since (either way). The attempts are those of Connect and the
// ones the node makes itself to reach a remote process (Call, Send,
// Monitor). At most the 4,096 most recently tried peers are kept.
func (n *Node) ConnectFailures() []PeerFailure {
	out := n.causes.failures()
	slices.SortFunc(out, func(a, b PeerFailure) int { return strings.Compare(a.Peer, b.Peer) })
	return out
}
