package discovery

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// StrategyName selects how peers are found. Its values are a small fixed set
// and double as the "strategy" label of gonode_discovery_polls_total.
type StrategyName string

// Strategies.
const (
	// StrategyDNS resolves the A (and/or AAAA) records of a headless Service and
	// names each peer <application-name>@<ip>, like libcluster's
	// Cluster.Strategy.Kubernetes.DNS.
	StrategyDNS StrategyName = "dns"
	// StrategyDNSSRV resolves the SRV records of
	// <service>.<namespace>.svc.<cluster-domain> and names each peer
	// <application-name>@<target host>, like libcluster's
	// Cluster.Strategy.Kubernetes.DNSSRV (StatefulSets).
	StrategyDNSSRV StrategyName = "dnssrv"
	// StrategyStatic connects to a fixed list of node names, like libcluster's
	// Cluster.Strategy.Epmd.
	StrategyStatic StrategyName = "static"
	// StrategyKubernetes watches the EndpointSlices of a Service (or of a
	// label selector) through the Kubernetes API and names each ready
	// endpoint <application-name>@<ip>, or <application-name>@<hostname> in
	// KubernetesMode hostname, like libcluster's Cluster.Strategy.Kubernetes
	// but pushed by a watch instead of polled. Its Source lives in package
	// discovery/k8s (this package does not import client-go).
	StrategyKubernetes StrategyName = "kubernetes"
)

// KubernetesMode is how the kubernetes strategy names a peer.
type KubernetesMode string

// Kubernetes modes, libcluster's mode: :ip and mode: :hostname.
const (
	// KubernetesModeIP names a peer <application-name>@<endpoint address>.
	KubernetesModeIP KubernetesMode = "ip"
	// KubernetesModeHostname names a peer
	// <application-name>@<hostname>.<service>.<namespace>.svc.<cluster-domain>,
	// the stable name of a StatefulSet pod behind a headless Service.
	KubernetesModeHostname KubernetesMode = "hostname"
)

// Strategies lists every StrategyName, for pre-creating metric series.
func Strategies() []StrategyName {
	return []StrategyName{StrategyDNS, StrategyDNSSRV, StrategyStatic, StrategyKubernetes}
}

// IPFamily selects which address records the dns strategy asks for.
type IPFamily string

// IP families.
const (
	// IPv4 asks for A records only.
	IPv4 IPFamily = "ipv4"
	// IPv6 asks for AAAA records only.
	IPv6 IPFamily = "ipv6"
	// DualStack asks for both A and AAAA records.
	DualStack IPFamily = "dual"
)

// Config is the plain-data configuration of discovery. Each field maps onto
// one command-line flag and one environment variable (see Flags). The zero
// value is not usable; start from DefaultConfig. Nothing in this package
// modifies a Config it is given.
type Config struct {
	// Strategy is dns, dnssrv, static or kubernetes. Default dns. Flag --strategy.
	Strategy StrategyName
	// Service is the headless Service to resolve (dns: the name whose A/AAAA
	// records are asked, expanded through the resolv.conf search list; dnssrv:
	// the Service part of <service>.<namespace>.svc.<cluster-domain>).
	// kubernetes: the Service whose EndpointSlices are watched, by their
	// kubernetes.io/service-name label).
	// Empty with no Hosts (and, for kubernetes, no KubernetesSelector):
	// discovery is off. Flag --service.
	Service string
	// ApplicationName is the part before @ in discovered node names. Empty
	// means the basename of this node's own name. Flag --application-name.
	ApplicationName string
	// Namespace is the Kubernetes namespace of Service; required by dnssrv.
	// kubernetes: empty means the pod's own namespace, read from the
	// service-account mount. Flag --namespace.
	Namespace string
	// ClusterDomain is the cluster's DNS domain used by dnssrv. Default
	// cluster.local, Kubernetes' default. Environment CLUSTER_DOMAIN.
	ClusterDomain string
	// Hosts is the fixed list of node names of the static strategy.
	// Flag --hosts (comma separated).
	Hosts []string
	// IPFamily is ipv4, ipv6 or dual (dns strategy: the records asked;
	// kubernetes: the EndpointSlice address types taken). Default ipv4, what
	// libcluster supports. Flag --ip-family.
	IPFamily IPFamily
	// Resolver is a nameserver host:port that replaces the nameservers of
	// ResolvConf; empty uses ResolvConf's. Flag --resolver.
	Resolver string
	// ResolvConf is the resolv.conf to read nameservers, search, ndots,
	// timeout, attempts and rotate from. Default /etc/resolv.conf. A missing
	// file is an error only when Resolver is empty. Flag --resolv-conf.
	ResolvConf string
	// PollingInterval is the time between two polls, jittered by +-10 %.
	// Default 5s, libcluster's polling_interval. Flag --polling-interval.
	PollingInterval time.Duration
	// Prune disconnects discovered peers that have left the answer. Default
	// true. Flag --prune.
	Prune bool
	// PruneAfter is how many consecutive successful answers a discovered peer
	// must be absent from before it is disconnected. Default 2: one answer
	// racing a pod's readiness does not cut a connection. Flag --prune-after.
	PruneAfter int
	// MaxConcurrentConnects bounds connects running at once. Default 16: a
	// 4,000-pod answer of unreachable peers does not open 4,000 sockets.
	// Flag --max-concurrent-connects.
	MaxConcurrentConnects int
	// ConnectTimeout bounds each connect. Default 5s, under OTP's 7 s
	// net_setuptime. Flag --connect-timeout.
	ConnectTimeout time.Duration
	// MaxPeers caps the peers taken from one answer; the rest are cut with a
	// warning. Default 10000, above the ~4,090 A records one DNS message can
	// carry. Flag --max-peers.
	MaxPeers int
	// KubernetesSelector is a label selector of EndpointSlices (kubernetes
	// strategy), used instead of or together with Service. Empty: none.
	// Flag --kubernetes-selector.
	KubernetesSelector string
	// KubernetesMode is ip or hostname (kubernetes strategy). Default ip,
	// libcluster's default. Flag --kubernetes-mode.
	KubernetesMode KubernetesMode
	// Kubeconfig is a kubeconfig file for the kubernetes strategy; empty
	// uses the in-cluster configuration (the pod's service account).
	// Flag --kubeconfig.
	Kubeconfig string
}

// Defaults, each with its reason (see the Config fields).
const (
	DefaultStrategy              = StrategyDNS
	DefaultClusterDomain         = "cluster.local"
	DefaultIPFamily              = IPv4
	DefaultResolvConf            = "/etc/resolv.conf"
	DefaultPollingInterval       = 5 * time.Second
	DefaultPruneAfter            = 2
	DefaultMaxConcurrentConnects = 16
	DefaultConnectTimeout        = 5 * time.Second
	DefaultMaxPeers              = 10000
	DefaultKubernetesMode        = KubernetesModeIP
	// DefaultBackoffMin and DefaultBackoffMax bound a failing peer's retry delay.
	DefaultBackoffMin = time.Second
	DefaultBackoffMax = 60 * time.Second
)

// DefaultConfig returns a Config with every default filled in and discovery
// off (no Service, no Hosts).
func DefaultConfig() Config {
	return Config{
		Strategy:              DefaultStrategy,
		ClusterDomain:         DefaultClusterDomain,
		IPFamily:              DefaultIPFamily,
		ResolvConf:            DefaultResolvConf,
		PollingInterval:       DefaultPollingInterval,
		Prune:                 true,
		PruneAfter:            DefaultPruneAfter,
		MaxConcurrentConnects: DefaultMaxConcurrentConnects,
		ConnectTimeout:        DefaultConnectTimeout,
		MaxPeers:              DefaultMaxPeers,
		KubernetesMode:        DefaultKubernetesMode,
	}
}

// Enabled reports whether discovery runs: a Service or Hosts is set (or,
// for the kubernetes strategy, a KubernetesSelector).
func (c Config) Enabled() bool {
	return c.Service != "" || len(c.Hosts) > 0 ||
		(c.Strategy == StrategyKubernetes && c.KubernetesSelector != "")
}

// ErrInvalidConfig wraps every problem Validate reports.
var ErrInvalidConfig = errors.New("invalid discovery configuration")

// FieldError is one problem Validate found, with the Config field it is
// about (a Field of Flags), so that a program can name its own setting for
// it. Err is the problem, which wraps ErrInvalidConfig.
type FieldError struct {
	Field string // e.g. "PollingInterval"
	Err   error
}

func (e *FieldError) Error() string { return e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Validate reports every problem in c, joined, each a *FieldError wrapping
// ErrInvalidConfig. It changes nothing. A Config with discovery off is valid.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)})
	}
	switch c.Strategy {
	case StrategyDNS, StrategyDNSSRV:
		if c.Service == "" && len(c.Hosts) > 0 {
			bad("Service", "strategy %q needs --service; --hosts belongs to strategy %q", c.Strategy, StrategyStatic)
		}
		if c.Service != "" {
			if err := checkDNSName(c.Service); err != nil {
				bad("Service", "service %q: %v", c.Service, err)
			}
		}
	case StrategyStatic:
		if c.Service != "" && len(c.Hosts) == 0 {
			bad("Hosts", "strategy %q needs --hosts; --service belongs to strategies %q, %q and %q", c.Strategy, StrategyDNS, StrategyDNSSRV, StrategyKubernetes)
		}
	case StrategyKubernetes:
		if len(c.Hosts) > 0 {
			bad("Hosts", "strategy %q takes --service and/or --kubernetes-selector; --hosts belongs to strategy %q", c.Strategy, StrategyStatic)
		}
		if c.Service != "" {
			if err := checkDNSName(c.Service); err != nil {
				bad("Service", "service %q: %v", c.Service, err)
			}
		}
		if c.Namespace != "" {
			if err := checkDNSName(c.Namespace); err != nil {
				bad("Namespace", "namespace %q: %v", c.Namespace, err)
			}
		}
		switch c.KubernetesMode {
		case KubernetesModeIP:
		case KubernetesModeHostname:
			if c.ClusterDomain == "" {
				bad("ClusterDomain", "kubernetes mode %q needs a cluster domain (CLUSTER_DOMAIN)", KubernetesModeHostname)
			}
		default:
			bad("KubernetesMode", "unknown kubernetes mode %q (want %q or %q)", c.KubernetesMode, KubernetesModeIP, KubernetesModeHostname)
		}
	default:
		bad("Strategy", "unknown strategy %q (want %q, %q, %q or %q)", c.Strategy, StrategyDNS, StrategyDNSSRV, StrategyStatic, StrategyKubernetes)
	}
	if c.Strategy != StrategyKubernetes && c.KubernetesSelector != "" {
		bad("KubernetesSelector", "--kubernetes-selector belongs to strategy %q", StrategyKubernetes)
	}
	if c.Strategy == StrategyDNSSRV && c.Service != "" {
		if c.Namespace == "" {
			bad("Namespace", "strategy %q needs --namespace", StrategyDNSSRV)
		} else if err := checkDNSName(c.Namespace); err != nil {
			bad("Namespace", "namespace %q: %v", c.Namespace, err)
		}
		if c.ClusterDomain == "" {
			bad("ClusterDomain", "strategy %q needs a cluster domain (CLUSTER_DOMAIN)", StrategyDNSSRV)
		} else if err := checkDNSName(c.ClusterDomain); err != nil {
			bad("ClusterDomain", "cluster domain %q: %v", c.ClusterDomain, err)
		}
	}
	if c.ApplicationName != "" && (strings.ContainsAny(c.ApplicationName, "@ \t\r\n")) {
		bad("ApplicationName", "application name %q must not contain @ or white space", c.ApplicationName)
	}
	for _, h := range c.Hosts {
		if err := checkNodeName(h); err != nil {
			bad("Hosts", "host %q: %v", h, err)
		}
	}
	switch c.IPFamily {
	case IPv4, IPv6, DualStack:
	default:
		bad("IPFamily", "unknown ip family %q (want %q, %q or %q)", c.IPFamily, IPv4, IPv6, DualStack)
	}
	if c.Resolver != "" {
		host, port, err := net.SplitHostPort(c.Resolver)
		if err != nil {
			bad("Resolver", "resolver %q is not host:port: %v", c.Resolver, err)
		} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || host == "" {
			bad("Resolver", "resolver %q: want host:port with a port in 1-65535", c.Resolver)
		}
	} else if c.ResolvConf == "" && c.Service != "" && c.Strategy != StrategyKubernetes {
		bad("Resolver", "no resolver: both --resolver and --resolv-conf are empty")
	}
	if c.PollingInterval <= 0 {
		bad("PollingInterval", "polling interval %v must be positive", c.PollingInterval)
	}
	if c.PruneAfter < 1 {
		bad("PruneAfter", "prune-after %d must be at least 1", c.PruneAfter)
	}
	if c.MaxConcurrentConnects < 1 {
		bad("MaxConcurrentConnects", "max-concurrent-connects %d must be at least 1", c.MaxConcurrentConnects)
	}
	if c.ConnectTimeout <= 0 {
		bad("ConnectTimeout", "connect timeout %v must be positive", c.ConnectTimeout)
	}
	if c.MaxPeers < 1 {
		bad("MaxPeers", "max-peers %d must be at least 1", c.MaxPeers)
	}
	return errors.Join(errs...)
}

// checkDNSName accepts names a resolver can ask: labels of 1-63 bytes, 253
// bytes in all, no white space.
func checkDNSName(name string) error {
	n := strings.TrimSuffix(name, ".")
	if n == "" {
		return errors.New("empty name")
	}
	if len(n) > 253 {
		return errors.New("longer than 253 bytes")
	}
	for _, l := range strings.Split(n, ".") {
		if l == "" {
			return errors.New("empty label")
		}
		if len(l) > 63 {
			return errors.New("label longer than 63 bytes")
		}
		if strings.ContainsAny(l, " \t\r\n\\") {
			return errors.New("white space or backslash in a label")
		}
	}
	return nil
}

// checkNodeName accepts name@host with both parts non-empty.
func checkNodeName(n string) error {
	base, host, ok := strings.Cut(n, "@")
	if !ok || base == "" || host == "" || strings.Contains(host, "@") {
		return errors.New("want name@host")
	}
	if strings.ContainsAny(n, " \t\r\n") {
		return errors.New("white space in a node name")
	}
	return nil
}

// Flag describes one configuration flag: its name, environment variable,
// default as text, the libcluster option it corresponds to and its help text.
// cmd/gonode builds its flags and --help from Flags, and a test checks that
// docs/discovery.md lists every one.
type Flag struct {
	Name       string // without the leading dashes
	Env        string
	Default    string
	Libcluster string // the libcluster option, or "" when it has none
	Usage      string
	Field      string // the Config field it sets
}

// Flags returns the table of discovery flags, one row per Config field.
func Flags() []Flag {
	d := DefaultConfig()
	return []Flag{
		{"strategy", "GONODE_STRATEGY", string(d.Strategy), "strategy (Kubernetes.DNS, Kubernetes.DNSSRV, Epmd, Kubernetes)", "peer discovery strategy: dns, dnssrv, static or kubernetes", "Strategy"},
		{"service", "GONODE_SERVICE", "", "service, kubernetes_service_name", "headless Service to resolve (kubernetes: whose EndpointSlices to watch); empty with no --hosts turns discovery off", "Service"},
		{"application-name", "GONODE_APPLICATION_NAME", "", "application_name", "name before @ in discovered node names; empty: this node's basename", "ApplicationName"},
		{"namespace", "GONODE_NAMESPACE", "", "namespace, kubernetes_namespace", "Kubernetes namespace of the Service (dnssrv; kubernetes: empty is the pod's own)", "Namespace"},
		{"cluster-domain", "CLUSTER_DOMAIN", d.ClusterDomain, "", "cluster DNS domain (dnssrv, kubernetes hostname mode)", "ClusterDomain"},
		{"hosts", "GONODE_HOSTS", "", "hosts", "comma-separated node names (static)", "Hosts"},
		{"ip-family", "GONODE_IP_FAMILY", string(d.IPFamily), "", "address records to ask: ipv4 (A), ipv6 (AAAA) or dual (kubernetes: EndpointSlice address types)", "IPFamily"},
		{"resolver", "GONODE_RESOLVER", "", "resolver", "nameserver host:port replacing resolv.conf's nameservers", "Resolver"},
		{"resolv-conf", "GONODE_RESOLV_CONF", d.ResolvConf, "", "resolv.conf to read nameservers, search, ndots, timeout, attempts, rotate from", "ResolvConf"},
		{"polling-interval", "GONODE_POLLING_INTERVAL", d.PollingInterval.String(), "polling_interval", "time between polls (+-10 % jitter)", "PollingInterval"},
		{"prune", "GONODE_PRUNE", strconv.FormatBool(d.Prune), "", "disconnect discovered peers that left the answer", "Prune"},
		{"prune-after", "GONODE_PRUNE_AFTER", strconv.Itoa(d.PruneAfter), "", "consecutive successful answers a peer must be absent from before it is disconnected", "PruneAfter"},
		{"max-concurrent-connects", "GONODE_MAX_CONCURRENT_CONNECTS", strconv.Itoa(d.MaxConcurrentConnects), "", "connects running at once", "MaxConcurrentConnects"},
		{"connect-timeout", "GONODE_CONNECT_TIMEOUT", d.ConnectTimeout.String(), "", "time bound of one connect", "ConnectTimeout"},
		{"max-peers", "GONODE_MAX_PEERS", strconv.Itoa(d.MaxPeers), "", "peers taken from one answer; the rest are cut with a warning", "MaxPeers"},
		{"kubernetes-selector", "GONODE_KUBERNETES_SELECTOR", "", "kubernetes_selector", "label selector of the EndpointSlices to watch (kubernetes)", "KubernetesSelector"},
		{"kubernetes-mode", "GONODE_KUBERNETES_MODE", string(d.KubernetesMode), "mode", "peer names: ip (app@address) or hostname (app@pod.service.namespace.svc.domain) (kubernetes)", "KubernetesMode"},
		{"kubeconfig", "GONODE_KUBECONFIG", "", "", "kubeconfig file; empty uses the pod's service account (kubernetes)", "Kubeconfig"},
	}
}
