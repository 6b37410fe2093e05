package epmd

// RequestKind names a request for observers and metrics. The set is small and
// fixed, so it can be a metric label.
type RequestKind string

// Request kinds.
const (
	RequestAlive2      RequestKind = "alive2"       // ALIVE2_REQ
	RequestPortPlease2 RequestKind = "port_please2" // PORT_PLEASE2_REQ
	RequestNames       RequestKind = "names"        // NAMES_REQ
	// RequestUnknown is a well-framed request with a tag this server does not
	// serve, or a connection refused before any request was read (over
	// Config.MaxConns).
	RequestUnknown RequestKind = "unknown"
	// RequestMalformed is a request that could not be decoded: a bad length,
	// a truncated frame, bad fields, or no request before the read deadline.
	RequestMalformed RequestKind = "malformed"
)

// RequestKinds lists every RequestKind, for metrics that pre-create labels.
var RequestKinds = []RequestKind{RequestAlive2, RequestPortPlease2, RequestNames, RequestUnknown, RequestMalformed}

// Result is the outcome of a request. The set is small and fixed.
type Result string

// Results.
const (
	ResultOK       Result = "ok"        // served as asked
	ResultNotFound Result = "not_found" // PORT_PLEASE2_REQ for a name nobody registered
	// ResultRefused: the server said no on purpose: a name already registered,
	// a registration from a non-local peer, a full table, or a connection over
	// the limit.
	ResultRefused Result = "refused"
	// ResultError: bad input, or an I/O error while reading or answering.
	ResultError Result = "error"
)

// Results lists every Result.
var Results = []Result{ResultOK, ResultNotFound, ResultRefused, ResultError}

// Observer is told the outcome of every request a Server handles. It is
// called from many goroutines at once and must not block; the metrics package
// adapts it into gonode_epmd_requests_total{request,result}.
type Observer interface {
	ObserveRequest(kind RequestKind, result Result)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(kind RequestKind, result Result)

// ObserveRequest implements Observer.
func (f ObserverFunc) ObserveRequest(kind RequestKind, result Result) { f(kind, result) }

type nopObserver struct{}

func (nopObserver) ObserveRequest(RequestKind, Result) {}
