package metrics

import (
	"time"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/epmd"
	"github.com/gonode/gonode/node"
)

// NodeObserver returns the node.Observer that counts the node's events: pass
// it to node.New with node.WithObserver. Peer and process names are ignored:
// they never become label values.
func (m *Metrics) NodeObserver() node.Observer { return nodeObserver{m} }

type nodeObserver struct{ m *Metrics }

func (o nodeObserver) Connected(_ string, dir node.Direction) {
	o.m.connects.WithLabelValues(direction(dir), string(node.ConnectOK)).Inc()
}

func (o nodeObserver) ConnectFailed(_ string, dir node.Direction, result node.ConnectResult) {
	r := oneOf(string(result), results, string(node.ConnectError))
	if r == string(node.ConnectOK) { // a failure reported as ok is still a failure
		r = string(node.ConnectError)
	}
	o.m.connects.WithLabelValues(direction(dir), r).Inc()
}

func (o nodeObserver) Disconnected(_ string, reason node.DisconnectReason) {
	o.m.disconnects.WithLabelValues(oneOf(string(reason), reasons, string(node.DisconnectError))).Inc()
}

// MailboxOverflow and MessageDropped are the same fact, a message dropped at
// a full mailbox, whether its sender was local or a peer.
func (o nodeObserver) MailboxOverflow(string) { o.m.mailboxOverflows.Inc() }

func (o nodeObserver) MessageDropped(string) { o.m.mailboxOverflows.Inc() }

func (o nodeObserver) MalformedFrame(string) { o.m.malformedFrames.Inc() }

// ServerRestarted counts by registered name: names are the program's own
// (RegisterServer), a small fixed set, unlike peer names; an unnamed server
// counts under "".
func (o nodeObserver) ServerRestarted(server string) {
	o.m.serverRestarts.WithLabelValues(server).Inc()
}

// direction maps an unknown Direction to "in": only an incoming attempt can
// fail before anything about it is known.
func direction(d node.Direction) string {
	return oneOf(string(d), directions, string(node.Incoming))
}

// DiscoveryObserver returns the discovery.Observer that records polls,
// lookups, actions and peer-set sizes: pass it to discovery.New with
// discovery.WithObserver.
func (m *Metrics) DiscoveryObserver() discovery.Observer { return discoveryObserver{m} }

// WatchObserver returns the discovery.WatchObserver that counts the
// kubernetes strategy's API requests and failures: pass it to
// discovery/k8s.New with k8s.WithObserver.
func (m *Metrics) WatchObserver() discovery.WatchObserver { return discoveryObserver{m} }

type discoveryObserver struct{ m *Metrics }

var (
	strategies   = strs(discovery.Strategies())
	pollResults  = strs(discovery.PollResults())
	transports   = strs(discovery.Transports())
	actionKinds  = strs(discovery.ActionKinds())
	actionResult = strs(discovery.ActionOutcomes())
	watchReqs    = strs(discovery.WatchRequests())
	watchReasons = strs(discovery.WatchErrorReasons())
	epmdKinds    = strs(epmd.RequestKinds)
	epmdResults  = strs(epmd.Results)
)

func strs[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

func (o discoveryObserver) Poll(e discovery.PollEvent) {
	// An unknown strategy cannot happen with a validated discovery.Config;
	// count it under the default rather than create a new series.
	s := oneOf(string(e.Strategy), strategies, string(discovery.DefaultStrategy))
	o.m.polls.WithLabelValues(s, oneOf(string(e.Result), pollResults, string(discovery.PollError))).Inc()
	o.m.pollDuration.Observe(seconds(e.Duration))
}

func (o discoveryObserver) Lookup(e discovery.LookupEvent) {
	t := oneOf(string(e.Transport), transports, string(discovery.TransportNone))
	o.m.lookupDuration.WithLabelValues(t).Observe(seconds(e.Duration))
	if e.Result != discovery.PollError && e.Records >= 0 {
		o.m.answerRecords.Observe(float64(e.Records))
	}
}

func (o discoveryObserver) Action(e discovery.ActionEvent) {
	o.m.actions.WithLabelValues(
		oneOf(string(e.Kind), actionKinds, string(discovery.ActConnect)),
		oneOf(string(e.Outcome), actionResult, string(discovery.OutcomeError))).Inc()
}

func (o discoveryObserver) Peers(c discovery.PeerCounts) {
	o.m.discoveryPeers.WithLabelValues(string(discovery.SetDesired)).Set(float64(c.Desired))
	o.m.discoveryPeers.WithLabelValues(string(discovery.SetConnected)).Set(float64(c.Connected))
	o.m.discoveryPeers.WithLabelValues(string(discovery.SetBackoff)).Set(float64(c.Backoff))
}

// Watch counts one API request (Request set) and, when it failed, its
// reason; a broken watch without a request of its own counts only the
// reason.
func (o discoveryObserver) Watch(e discovery.WatchEvent) {
	if !e.OK {
		o.m.watchErrors.WithLabelValues(oneOf(string(e.Reason), watchReasons, string(discovery.WatchOther))).Inc()
	}
	if e.Request == "" {
		return
	}
	res := discovery.OutcomeOK
	if !e.OK {
		res = discovery.OutcomeError
	}
	o.m.watchRequests.WithLabelValues(oneOf(string(e.Request), watchReqs, string(discovery.RequestWatch)), string(res)).Inc()
}

// EPMDObserver returns the epmd.Observer that counts the requests an
// epmd.Server handles: pass it to epmd.New with epmd.WithObserver.
func (m *Metrics) EPMDObserver() epmd.Observer { return epmdObserver{m} }

type epmdObserver struct{ m *Metrics }

func (o epmdObserver) ObserveRequest(kind epmd.RequestKind, result epmd.Result) {
	o.m.epmdRequests.WithLabelValues(
		oneOf(string(kind), epmdKinds, string(epmd.RequestUnknown)),
		oneOf(string(result), epmdResults, string(epmd.ResultError))).Inc()
}

// seconds converts d for a histogram; a negative duration (a clock stepped
// back) counts as zero.
func seconds(d time.Duration) float64 { return max(d, 0).Seconds() }
