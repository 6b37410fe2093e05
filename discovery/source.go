package discovery

import "context"

// Source is a strategy that is told about its peers (a watch) instead of
// asking for them at each poll. The kubernetes strategy's Source is in
// package discovery/k8s; discovery itself imports no API client.
//
// The Discoverer calls Run once, in a goroutine of its own, and waits for it
// when it stops. After each value on Changed it reconciles at once with
// Targets, so a new peer is dialled when the watch reports it, not at the
// next poll; it also reconciles every PollingInterval (reconnects and
// retries). Targets and Changed may be called concurrently with Run.
type Source interface {
	// Run watches until ctx ends. Failures of the watch are the Source's to
	// retry, log and report; they never end Run.
	Run(ctx context.Context)
	// Changed delivers a value when Targets may have changed. Values may be
	// coalesced: one value may stand for many changes.
	Changed() <-chan struct{}
	// Targets returns the current peers. Before the first complete answer
	// it returns an error wrapping ErrLookupFailed; after it, the last good
	// answer, even while the watch is failing (a failed watch never
	// disconnects anyone).
	Targets() ([]Target, error)
}

// WatchErrorReason classifies a failure of a watching strategy's API
// requests; its values are the "reason" label of
// gonode_discovery_watch_errors_total.
type WatchErrorReason string

// Watch error reasons.
const (
	WatchUnauthorized WatchErrorReason = "unauthorized" // 401: the credentials were refused
	WatchForbidden    WatchErrorReason = "forbidden"    // 403: RBAC does not allow the request
	WatchGone         WatchErrorReason = "gone"         // 410: the resource version expired; a re-list follows
	WatchTimeout      WatchErrorReason = "timeout"      // the request or the connection timed out
	WatchUnavailable  WatchErrorReason = "unavailable"  // the API server could not be reached or answered 5xx/429
	WatchOther        WatchErrorReason = "other"        // anything else (a decoding error, a 4xx not above)
)

// WatchErrorReasons lists every WatchErrorReason.
func WatchErrorReasons() []WatchErrorReason {
	return []WatchErrorReason{WatchUnauthorized, WatchForbidden, WatchGone, WatchTimeout, WatchUnavailable, WatchOther}
}

// WatchRequest names an API request of a watching strategy; its values are
// the "request" label of gonode_discovery_watch_requests_total.
type WatchRequest string

// Watch requests.
const (
	RequestList  WatchRequest = "list"  // a full list (at start and after a failed watch)
	RequestWatch WatchRequest = "watch" // a watch opened from the last list's resource version
)

// WatchRequests lists every WatchRequest.
func WatchRequests() []WatchRequest { return []WatchRequest{RequestList, RequestWatch} }

// WatchEvent reports one API request of a watching strategy (Request set,
// Err empty on success) or one failure of it (Reason set):
// gonode_discovery_watch_requests_total{request,result} and
// gonode_discovery_watch_errors_total{reason}.
type WatchEvent struct {
	Request WatchRequest
	OK      bool
	Reason  WatchErrorReason // when !OK
}

// WatchObserver receives a watching strategy's events, for metrics. Package
// metrics' discovery observer satisfies it. Its method may be called from
// the Source's goroutines and must not block.
type WatchObserver interface {
	Watch(WatchEvent)
}
