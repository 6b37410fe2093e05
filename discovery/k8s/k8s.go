package k8s

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/internal/ratelog"
)

// NamespaceFile is where a pod's service-account mount holds its namespace.
const NamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// ServiceNameLabel is the label the EndpointSlice controller puts on every
// slice of a Service.
const ServiceNameLabel = discoveryv1.LabelServiceName

// Option sets an optional dependency of New.
type Option func(*options)

type options struct {
	client   func(namespace string) SliceClient
	log      *slog.Logger
	observer discovery.WatchObserver
	nsFile   string
}

// WithClient sets the EndpointSlice client of a namespace (tests pass
// client-go's fake clientset's DiscoveryV1().EndpointSlices). Default: a
// REST client built from Config.Kubeconfig or the in-cluster configuration.
func WithClient(c func(namespace string) SliceClient) Option {
	return func(o *options) { o.client = c }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithObserver sets the observer of API requests and failures (default
// none).
func WithObserver(obs discovery.WatchObserver) Option { return func(o *options) { o.observer = obs } }

// WithNamespaceFile sets the file the namespace is read from when
// Config.Namespace is empty (default NamespaceFile).
func WithNamespaceFile(path string) Option { return func(o *options) { o.nsFile = path } }

type nopObserver struct{}

func (nopObserver) Watch(discovery.WatchEvent) {}

// Source watches EndpointSlices; it satisfies discovery.Source.
type Source struct {
	namespace string
	selector  labels.Selector
	app       string
	mode      discovery.KubernetesMode
	v4, v6    bool
	domain    string
	log       *slog.Logger
	limit     *ratelog.Limiter
	observer  discovery.WatchObserver
	informer  cache.SharedIndexInformer
	changed   chan struct{}
	lw        *listWatch

	failing atomic.Bool // the last request failed (the recovery is logged once)
	lastErr atomic.Pointer[string]
}

// New builds the Source of the kubernetes strategy for the node named self,
// from the discovery configuration cfg (Service, KubernetesSelector,
// Namespace, KubernetesMode, IPFamily, ClusterDomain, ApplicationName,
// Kubeconfig). It changes nothing in cfg and starts nothing: Run does.
func New(cfg discovery.Config, self string, opts ...Option) (*Source, error) {
	o := options{log: slog.Default(), observer: nopObserver{}, nsFile: NamespaceFile}
	for _, opt := range opts {
		opt(&o)
	}
	if cfg.Service == "" && cfg.KubernetesSelector == "" {
		return nil, fmt.Errorf("%w: strategy %q needs --service or --kubernetes-selector", discovery.ErrInvalidConfig, discovery.StrategyKubernetes)
	}
	sel, err := Selector(cfg.Service, cfg.KubernetesSelector)
	if err != nil {
		return nil, err
	}
	ns := cfg.Namespace
	if ns == "" {
		b, err := os.ReadFile(o.nsFile)
		if err != nil {
			return nil, fmt.Errorf("%w: no --namespace and the pod's namespace cannot be read: %w", discovery.ErrInvalidConfig, err)
		}
		ns = strings.TrimSpace(string(b))
		if ns == "" {
			return nil, fmt.Errorf("%w: no --namespace and %s is empty", discovery.ErrInvalidConfig, o.nsFile)
		}
	}
	app := cfg.ApplicationName
	if app == "" {
		app, _, _ = strings.Cut(self, "@")
	}
	if app == "" {
		return nil, fmt.Errorf("%w: no application name and no node name to take it from", discovery.ErrInvalidConfig)
	}
	var client SliceClient
	if o.client != nil {
		client = o.client(ns)
	} else {
		rc, err := restConfig(cfg.Kubeconfig)
		if err != nil {
			return nil, err
		}
		if client, err = newRESTSlices(rc, ns); err != nil {
			return nil, err
		}
	}
	mode := cfg.KubernetesMode
	if mode == "" {
		mode = discovery.DefaultKubernetesMode
	}
	s := &Source{
		namespace: ns, selector: sel, app: app, mode: mode,
		v4: cfg.IPFamily != discovery.IPv6, v6: cfg.IPFamily != discovery.IPv4,
		domain:   strings.TrimSuffix(cfg.ClusterDomain, "."),
		log:      o.log.With("component", "discovery", "strategy", string(discovery.StrategyKubernetes)),
		observer: o.observer,
		changed:  make(chan struct{}, 1),
	}
	// One line a minute per failure reason, 10 a minute in all: an API
	// server that is down fails every retry, and the metric counts each.
	s.limit = ratelog.New(s.log, ratelog.Config{Burst: 1, Every: time.Minute, Total: 10})
	s.lw = &listWatch{client: client, selector: sel.String(), src: s}
	s.informer = cache.NewSharedIndexInformer(s.lw, &discoveryv1.EndpointSlice{}, 0, cache.Indexers{})
	if err := s.informer.SetWatchErrorHandlerWithContext(s.watchError); err != nil {
		return nil, fmt.Errorf("kubernetes informer: %w", err)
	}
	signal := func(any) { s.signal() }
	if _, err := s.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    signal,
		UpdateFunc: func(_, obj any) { signal(obj) },
		DeleteFunc: signal,
	}); err != nil {
		return nil, fmt.Errorf("kubernetes informer: %w", err)
	}
	return s, nil
}

// Selector returns the label selector of the EndpointSlices to watch:
// kubernetes.io/service-name=service (when service is set) and the
// requirements of extra (a label selector, when set).
func Selector(service, extra string) (labels.Selector, error) {
	sel := labels.Everything()
	if extra != "" {
		s, err := labels.Parse(extra)
		if err != nil {
			return nil, fmt.Errorf("%w: --kubernetes-selector %q: %w", discovery.ErrInvalidConfig, extra, err)
		}
		sel = s
	}
	if service != "" {
		r, err := labels.NewRequirement(ServiceNameLabel, "=", []string{service})
		if err != nil {
			return nil, fmt.Errorf("%w: --service %q is not a label value: %w", discovery.ErrInvalidConfig, service, err)
		}
		sel = sel.Add(*r)
	}
	return sel, nil
}

// restConfig is the kubeconfig's configuration, or the in-cluster one when
// path is empty.
func restConfig(path string) (*rest.Config, error) {
	if path != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		return rc, nil
	}
	rc, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes in-cluster configuration (or set --kubeconfig): %w", err)
	}
	return rc, nil
}

// Namespace is the namespace watched.
func (s *Source) Namespace() string { return s.namespace }

// Run runs the informer until ctx ends.
func (s *Source) Run(ctx context.Context) {
	s.log.Info("watching EndpointSlices", "namespace", s.namespace, "selector", s.selector.String(), "mode", string(s.mode))
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.informer.RunWithContext(ctx)
	}()
	// The first complete list may hold no slice at all, which no event
	// reports: signal it, so the Discoverer turns ready at once.
	if cache.WaitForCacheSync(ctx.Done(), s.informer.HasSynced) {
		s.log.Info("EndpointSlices listed", "slices", len(s.informer.GetStore().ListKeys()))
		s.signal()
	}
	<-done
	s.limit.Flush()
}

// Changed implements discovery.Source.
func (s *Source) Changed() <-chan struct{} { return s.changed }

func (s *Source) signal() {
	select {
	case s.changed <- struct{}{}:
	default: // one pending signal stands for any number of changes
	}
}

// ErrNotSynced is wrapped by Targets before the first list has completed.
var ErrNotSynced = errors.New("the first EndpointSlice list has not completed")

// Targets implements discovery.Source: the ready endpoints of the slices in
// the informer's store, sorted by name.
func (s *Source) Targets() ([]discovery.Target, error) {
	if !s.informer.HasSynced() {
		err := fmt.Errorf("%w: %w", discovery.ErrLookupFailed, ErrNotSynced)
		if p := s.lastErr.Load(); p != nil {
			err = fmt.Errorf("%w: %w (last error: %s)", discovery.ErrLookupFailed, ErrNotSynced, *p)
		}
		return nil, err
	}
	var out []discovery.Target
	for _, obj := range s.informer.GetStore().List() {
		es, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok || !s.selector.Matches(labels.Set(es.Labels)) {
			continue
		}
		out = s.appendTargets(out, es)
	}
	slices.SortFunc(out, func(a, b discovery.Target) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Targets returns the peers one EndpointSlice names under cfg's rules, for
// a node named self; it is Source.Targets for a single slice, exported for
// tests and tools.
func Targets(cfg discovery.Config, self string, es *discoveryv1.EndpointSlice) []discovery.Target {
	app := cfg.ApplicationName
	if app == "" {
		app, _, _ = strings.Cut(self, "@")
	}
	mode := cfg.KubernetesMode
	if mode == "" {
		mode = discovery.DefaultKubernetesMode
	}
	s := &Source{app: app, mode: mode, v4: cfg.IPFamily != discovery.IPv6, v6: cfg.IPFamily != discovery.IPv4,
		domain: strings.TrimSuffix(cfg.ClusterDomain, "."), namespace: cfg.Namespace}
	return s.appendTargets(nil, es)
}

func (s *Source) appendTargets(out []discovery.Target, es *discoveryv1.EndpointSlice) []discovery.Target {
	switch es.AddressType {
	case discoveryv1.AddressTypeIPv4:
		if !s.v4 {
			return out
		}
	case discoveryv1.AddressTypeIPv6:
		if !s.v6 {
			return out
		}
	default: // FQDN, or a type this code does not know
		return out
	}
	service := es.Labels[ServiceNameLabel]
	ns := es.Namespace
	if ns == "" {
		ns = s.namespace
	}
	for i := range es.Endpoints {
		ep := &es.Endpoints[i]
		c := ep.Conditions
		// A terminating endpoint is leaving: never dial it again. Ready
		// unset means ready (the API's rule for an unknown state).
		if (c.Terminating != nil && *c.Terminating) || (c.Ready != nil && !*c.Ready) {
			continue
		}
		var ip netip.Addr
		for _, a := range ep.Addresses {
			if p, err := netip.ParseAddr(a); err == nil && (p.Is4() || p.Is6()) {
				ip = p.Unmap()
				if es.AddressType == discoveryv1.AddressTypeIPv6 {
					ip = p
				}
				break
			}
		}
		if !ip.IsValid() {
			continue
		}
		switch s.mode {
		case discovery.KubernetesModeHostname:
			if ep.Hostname == nil || *ep.Hostname == "" || service == "" {
				continue
			}
			host := *ep.Hostname + "." + service + "." + ns + ".svc." + s.domain
			out = append(out, discovery.Target{Name: discovery.HostNodeName(s.app, host), Addr: ip.String()})
		default:
			out = append(out, discovery.Target{Name: discovery.NodeName(s.app, ip), Addr: ip.String()})
		}
	}
	return out
}
