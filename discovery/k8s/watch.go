package k8s

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/gonode/gonode/discovery"
)

// listWatch is the informer's ListerWatcher: the EndpointSlices of one
// namespace matching the selector. It counts every request and remembers
// the verb of the last failed one, so a 403 can name it.
type listWatch struct {
	client     SliceClient
	selector   string
	src        *Source
	failedVerb atomic.Pointer[string]
}

var (
	_ cache.ListerWatcherWithContext = (*listWatch)(nil)
	_ cache.ListerWatcher            = (*listWatch)(nil)
)

func (l *listWatch) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	opts.LabelSelector = l.selector
	obj, err := l.client.List(ctx, opts)
	l.done(discovery.RequestList, err)
	if err != nil {
		return nil, err
	}
	return obj, nil
}

func (l *listWatch) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.LabelSelector = l.selector
	w, err := l.client.Watch(ctx, opts)
	l.done(discovery.RequestWatch, err)
	return w, err
}

func (l *listWatch) List(opts metav1.ListOptions) (runtime.Object, error) {
	return l.ListWithContext(context.Background(), opts)
}

func (l *listWatch) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return l.WatchWithContext(context.Background(), opts)
}

// IsWatchListSemanticsUnSupported turns client-go's streaming lists off for
// this informer (see the package comment): every re-list is one LIST.
func (l *listWatch) IsWatchListSemanticsUnSupported() bool { return true }

func (l *listWatch) done(req discovery.WatchRequest, err error) {
	ev := discovery.WatchEvent{Request: req, OK: err == nil}
	if err != nil {
		ev.Reason = Reason(err)
		v := string(req)
		l.failedVerb.Store(&v)
		// Logged here as well as in the informer's error handler: the
		// reflector retries a refused watch on its own, without calling
		// the handler. The rate limit (per reason) keeps it to one line.
		l.src.report(string(req), ev.Reason, err)
	} else if l.src.failing.CompareAndSwap(true, false) {
		l.src.lastErr.Store(nil)
		l.src.log.Info("kubernetes API answers again: the EndpointSlice "+string(req)+" succeeded; the peer set follows the API again", "request", string(req))
	}
	l.src.observer.Watch(ev)
}

// Reason classifies an API error for gonode_discovery_watch_errors_total.
func Reason(err error) discovery.WatchErrorReason {
	var ne net.Error
	switch {
	case apierrors.IsUnauthorized(err):
		return discovery.WatchUnauthorized
	case apierrors.IsForbidden(err):
		return discovery.WatchForbidden
	case apierrors.IsGone(err) || apierrors.IsResourceExpired(err):
		return discovery.WatchGone
	case apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()):
		return discovery.WatchTimeout
	case apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsUnexpectedServerError(err) || errors.As(err, new(*net.OpError)) || isConnectionError(err):
		return discovery.WatchUnavailable
	}
	return discovery.WatchOther
}

// isConnectionError recognises transport failures that reach the reflector
// without a typed error (a watch stream cut by a stopped API server).
func isConnectionError(err error) bool {
	var se interface{ Status() metav1.Status }
	if errors.As(err, &se) {
		return false
	}
	var syscallErr interface{ Temporary() bool }
	return errors.As(err, &syscallErr) || strings.Contains(err.Error(), "connection refused") ||
		strings.Contains(err.Error(), "EOF")
}

// watchError is the informer's watch error handler: it counts and logs
// (rate-limited) a failed list or watch. The informer retries on its own;
// the store, and so Targets, keeps the last good set meanwhile.
func (s *Source) watchError(_ context.Context, _ *cache.Reflector, err error) {
	reason := Reason(err)
	if reason == discovery.WatchGone {
		// 410 Gone: the watch's resource version expired. Expected; the
		// reflector re-lists at once. Counted, logged at debug.
		s.observer.Watch(discovery.WatchEvent{Reason: reason})
		s.log.Debug("EndpointSlice watch expired (410 Gone); re-listing", "err", err)
		return
	}
	verb := "list"
	if p := s.lw.failedVerb.Load(); p != nil {
		verb = *p
	}
	s.report(verb, reason, err)
}

// report records a failed request of verb and logs it, at most once a
// minute per reason.
func (s *Source) report(verb string, reason discovery.WatchErrorReason, err error) {
	msg := err.Error()
	s.lastErr.Store(&msg)
	s.failing.Store(true)
	const keep = "; keeping the last good peer set and retrying (nobody is disconnected)"
	switch reason {
	case discovery.WatchForbidden:
		s.limit.Error(string(reason), fmt.Sprintf("kubernetes API refused %s on endpointslices.discovery.k8s.io in namespace %s (403): "+
			"grant the service account get, list and watch on endpointslices (deploy/kubernetes/base/rbac.yaml)"+keep, verb, s.namespace),
			"verb", verb, "resource", "endpointslices.discovery.k8s.io", "namespace", s.namespace, "reason", string(reason), "err", msg)
	case discovery.WatchUnauthorized:
		s.limit.Error(string(reason), "kubernetes API refused the credentials (401): check the service-account token or --kubeconfig"+keep,
			"verb", verb, "reason", string(reason), "err", msg)
	default:
		s.limit.Warn(string(reason), "kubernetes API request for EndpointSlices failed"+keep,
			"verb", verb, "namespace", s.namespace, "reason", string(reason), "err", msg)
	}
}
