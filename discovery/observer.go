package discovery

import "time"

// PollResult is the outcome of one poll; its values are the "result" label of
// gonode_discovery_polls_total.
type PollResult string

// Poll results.
const (
	PollOK    PollResult = "ok"    // a successful answer with at least one peer
	PollEmpty PollResult = "empty" // a successful answer with no peer (no such name, no records)
	PollError PollResult = "error" // the lookup failed; the last good answer stands
)

// PollResults lists every PollResult.
func PollResults() []PollResult { return []PollResult{PollOK, PollEmpty, PollError} }

// Transport is how a lookup's final answer arrived; its values are the
// "transport" label of gonode_discovery_lookup_duration_seconds.
type Transport string

// Transports.
const (
	TransportUDP  Transport = "udp"
	TransportTCP  Transport = "tcp"
	TransportNone Transport = "none" // no answer arrived (failed before any reply)
)

// Transports lists every Transport.
func Transports() []Transport { return []Transport{TransportUDP, TransportTCP, TransportNone} }

// PeerSet names a peer-set size; its values are the "set" label of
// gonode_discovery_peers.
type PeerSet string

// Peer sets.
const (
	SetDesired   PeerSet = "desired"   // discovered peers this node wants connected
	SetConnected PeerSet = "connected" // discovered peers that are connected
	SetBackoff   PeerSet = "backoff"   // discovered peers waiting to retry a failed connect
)

// PeerSets lists every PeerSet.
func PeerSets() []PeerSet { return []PeerSet{SetDesired, SetConnected, SetBackoff} }

// ActionKind is what the shell asks the Connector to do.
type ActionKind string

// Action kinds.
const (
	ActConnect    ActionKind = "connect"
	ActDisconnect ActionKind = "disconnect"
)

// ActionKinds lists every ActionKind.
func ActionKinds() []ActionKind { return []ActionKind{ActConnect, ActDisconnect} }

// ActionOutcome is the result of one action.
type ActionOutcome string

// Action outcomes.
const (
	OutcomeOK    ActionOutcome = "ok"
	OutcomeError ActionOutcome = "error"
)

// ActionOutcomes lists every ActionOutcome.
func ActionOutcomes() []ActionOutcome { return []ActionOutcome{OutcomeOK, OutcomeError} }

// PollEvent reports one poll: gonode_discovery_polls_total{strategy,result}
// and gonode_discovery_poll_duration_seconds.
type PollEvent struct {
	Strategy StrategyName
	Result   PollResult
	Duration time.Duration // lookups plus reconcile, not the connects it starts
}

// LookupEvent reports one Resolver call:
// gonode_discovery_lookup_duration_seconds{transport} and
// gonode_discovery_answer_records.
type LookupEvent struct {
	Duration  time.Duration
	Transport Transport
	Records   int        // resource records in the answer section(s)
	Result    PollResult // ok (records), empty (valid empty answer) or error
}

// ActionEvent reports one finished connect or disconnect.
type ActionEvent struct {
	Kind    ActionKind
	Outcome ActionOutcome
}

// PeerCounts reports the peer-set sizes after a poll or an action result:
// gonode_discovery_peers{set}.
type PeerCounts struct {
	Desired   int
	Connected int
	Backoff   int
}

// Observer receives what discovery does, for metrics. Its methods are called
// from the discoverer's one loop goroutine, never concurrently by one
// Discoverer, and must not block.
type Observer interface {
	Poll(PollEvent)
	Lookup(LookupEvent)
	Action(ActionEvent)
	Peers(PeerCounts)
}

// NopObserver is an Observer that does nothing.
type NopObserver struct{}

func (NopObserver) Poll(PollEvent)     {}
func (NopObserver) Lookup(LookupEvent) {}
func (NopObserver) Action(ActionEvent) {}
func (NopObserver) Peers(PeerCounts)   {}
