// Package k8s is the Source of discovery's kubernetes strategy: it watches
// the EndpointSlices of a Service (label kubernetes.io/service-name) and/or
// of a label selector through the Kubernetes API with client-go's informer,
// and hands the ready endpoints to discovery's reconcile core the moment the
// watch reports them.
//
// # Design
//
// One informer lists, then watches, the EndpointSlices of one namespace (the
// pod's own, read from the service-account mount, unless Config.Namespace
// says otherwise). Every add, update or delete signals Changed; Targets
// reads the informer's store and turns each endpoint into a peer:
//   - an endpoint whose conditions say terminating, or not ready, is no peer
//     (a terminating pod is not dialled again; once it has left the answer
//     for PruneAfter answers, the core prunes it like any peer);
//   - address types IPv4 and/or IPv6 per Config.IPFamily; FQDN slices are
//     skipped; the first address that parses is used;
//   - mode ip names a peer <app>@<address>, mode hostname
//     <app>@<hostname>.<service>.<namespace>.svc.<cluster domain> and skips
//     endpoints without a hostname (only StatefulSet pods behind a headless
//     Service have one).
//
// API failures never disconnect anyone: the informer's store keeps the last
// good set while the informer retries (client-go's reflector backs off and
// re-lists after a failed watch or a 410 Gone), and Targets keeps answering
// from it. Each failure is counted on the WatchObserver by reason, and
// logged at most once a minute per reason; a 403 names the RBAC verb and
// resource that are missing. Every list and watch request is counted, which
// is how the benchmark measures the strategy's load on the API server.
// Streaming lists (WatchListClient) are turned off for this informer: a
// re-list is one ordinary LIST, which the API server serves from its cache.
//
// # Imports
//
// k8s imports discovery, internal/ratelog and client-go (only its
// discovery/v1 typed client, tools/cache and clientcmd). It is the only
// package besides cmd/gonode that does: discovery, node and metrics stay
// free of client-go.
package k8s
