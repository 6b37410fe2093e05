//go:build integration

package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Addresses of the cluster network. 198.18.0.0/15 is reserved for
// benchmarking and never routed; nothing here leaves the bridge anyway.
var (
	// Subnet is the pod network.
	Subnet = netip.MustParsePrefix("198.18.0.0/24")
	// NodeIP is the bridge's address in the node namespace, where the harness
	// probes pods from.
	NodeIP = netip.MustParseAddr("198.18.0.1")
	// DNSIP is the DNS pod's address, the nameserver of every pod.
	DNSIP = netip.MustParseAddr("198.18.0.2")
)

// firstPodHost is the host part of the first pod address handed out.
const firstPodHost = 10

// ClusterConfig describes a cluster. The zero value is not usable; start from
// DefaultClusterConfig.
type ClusterConfig struct {
	// Namespace is the Kubernetes namespace of the Service and of the pods'
	// search path. Default "gonode".
	Namespace string
	// Service is the headless Service's name. Default "myapp-headless".
	Service string
	// AppName is the node basename of every pod: pods are AppName@<ip>.
	// Default "myapp".
	AppName string
	// Cookie is the distribution cookie of the cluster's pods. Default: a
	// fresh random cookie.
	Cookie string
}

// DefaultClusterConfig returns the defaults with a fresh random cookie.
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{Namespace: "gonode", Service: "myapp-headless", AppName: "myapp", Cookie: RandomCookie()}
}

// Validate reports every problem in c.
func (c ClusterConfig) Validate() error {
	var errs []error
	for _, f := range []struct{ name, v string }{{"namespace", c.Namespace}, {"service", c.Service}, {"app name", c.AppName}, {"cookie", c.Cookie}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("%s is empty", f.name))
		}
	}
	return errors.Join(errs...)
}

// RandomCookie returns a fresh random cookie.
func RandomCookie() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "c" + hex.EncodeToString(b[:])
}

// Cluster is a Kubernetes-like cluster of network-namespace pods around one
// bridge, with a DNS pod. Its methods are safe for concurrent use.
type Cluster struct {
	Config ClusterConfig
	// ID is random and part of every namespace name, so clusters of parallel
	// tests never meet.
	ID string
	// Dir is the cluster's working directory (hosts file, Elixir module, logs).
	Dir string

	bridgeNS string
	http     *http.Client

	mu       sync.Mutex
	nextHost int
	pods     []*Pod
	ready    map[string]netip.Addr // pod name -> IP listed in DNS
	dns      *dnsServer
	closed   bool
}

// FQDN is the Service's fully qualified name.
func (c *Cluster) FQDN() string {
	return c.Config.Service + "." + c.Config.Namespace + ".svc.cluster.local"
}

// NewCluster creates the node namespace with its bridge, the DNS pod running
// dnsmasq with an empty Service, and the cluster's directory. On error
// everything created so far is removed.
func NewCluster(cfg ClusterConfig) (_ *Cluster, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	c := &Cluster{Config: cfg, ID: hex.EncodeToString(b[:]), nextHost: firstPodHost, ready: map[string]netip.Addr{}}
	c.bridgeNS = "gnit-" + c.ID + "-br"
	c.http = &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialIn(ctx, c.bridgeNS, network, addr)
			},
		},
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Close())
		}
	}()
	if c.Dir, err = os.MkdirTemp("", "gnit-"+c.ID+"-"); err != nil {
		return nil, err
	}
	if err := os.Chmod(c.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := writeElixirModule(c.Dir); err != nil {
		return nil, err
	}
	if err := addNetns(c.bridgeNS); err != nil {
		return nil, err
	}
	for _, argv := range [][]string{
		{"ip", "-n", c.bridgeNS, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", c.bridgeNS, "addr", "add", NodeIP.String() + "/24", "dev", "br0"},
		{"ip", "-n", c.bridgeNS, "link", "set", "br0", "up"},
	} {
		if err := run(argv...); err != nil {
			return nil, err
		}
	}
	dnsPod, err := c.addPod("dns", DNSIP)
	if err != nil {
		return nil, err
	}
	c.dns = &dnsServer{pod: dnsPod, hostsFile: filepath.Join(c.Dir, "hosts"), fqdn: c.FQDN()}
	if err := c.writeHosts(); err != nil {
		return nil, err
	}
	if err := c.StartDNS(); err != nil {
		return nil, err
	}
	return c, nil
}

// Pod is one pod: a network namespace with its own IP and resolv.conf.
type Pod struct {
	Name string
	IP   netip.Addr
	// NS is the pod's network namespace.
	NS string

	c    *Cluster
	veth string // the bridge-side end, in the node namespace
}

// NodeName is the distribution name of a node in this pod: <app>@<ip>.
func (p *Pod) NodeName() string { return p.c.Config.AppName + "@" + p.IP.String() }

// NewPod creates an empty pod with the next free address.
func (c *Cluster) NewPod(name string) (*Pod, error) {
	c.mu.Lock()
	host := c.nextHost
	c.nextHost++
	c.mu.Unlock()
	if host > 250 {
		return nil, errors.New("pod network is full")
	}
	ip := netip.AddrFrom4([4]byte{198, 18, 0, byte(host)})
	return c.addPod(name, ip)
}

func (c *Cluster) addPod(name string, ip netip.Addr) (*Pod, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errors.New("cluster is closed")
	}
	for _, p := range c.pods {
		if p.Name == name {
			c.mu.Unlock()
			return nil, fmt.Errorf("pod %s already exists", name)
		}
	}
	p := &Pod{Name: name, IP: ip, NS: "gnit-" + c.ID + "-" + name, c: c, veth: fmt.Sprintf("v%d", ip.As4()[3])}
	c.pods = append(c.pods, p)
	c.mu.Unlock()

	if err := addNetns(p.NS); err != nil {
		return nil, err
	}
	dir := filepath.Join(etcNetnsDir, p.NS)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	resolv := fmt.Sprintf("nameserver %s\nsearch %s.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n", DNSIP, c.Config.Namespace)
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(resolv), 0o644); err != nil {
		return nil, err
	}
	for _, argv := range [][]string{
		{"ip", "-n", c.bridgeNS, "link", "add", p.veth, "type", "veth", "peer", "name", "eth0", "netns", p.NS},
		{"ip", "-n", c.bridgeNS, "link", "set", p.veth, "master", "br0", "up"},
		{"ip", "-n", p.NS, "addr", "add", ip.String() + "/24", "dev", "eth0"},
		{"ip", "-n", p.NS, "link", "set", "eth0", "up"},
	} {
		if err := run(argv...); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Pods returns the cluster's pods, the DNS pod included.
func (c *Cluster) Pods() []*Pod {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Pod(nil), c.pods...)
}

// LinkDown cuts the pod off the bridge: its port goes down, so frames to and
// from the pod are dropped silently, as in a network partition. Connections
// are not reset; peers notice through their tick timeout.
func (p *Pod) LinkDown() error {
	return run("ip", "-n", p.c.bridgeNS, "link", "set", p.veth, "down")
}

// LinkUp reconnects the pod to the bridge.
func (p *Pod) LinkUp() error {
	return run("ip", "-n", p.c.bridgeNS, "link", "set", p.veth, "up")
}

// Kill SIGKILLs every process of the pod, as when a pod's container dies.
func (p *Pod) Kill() error { return killNetns(p.NS) }

// Listen opens a listener on the pod's address, in the pod's namespace.
func (p *Pod) Listen(port int) (net.Listener, error) {
	return listenIn(p.NS, "tcp4", netip.AddrPortFrom(p.IP, uint16(port)).String())
}

// Dial connects from the node namespace to addr (host:port in the pod network).
func (c *Cluster) Dial(ctx context.Context, addr string) (net.Conn, error) {
	return dialIn(ctx, c.bridgeNS, "tcp4", addr)
}

// Get fetches url from the node namespace and returns the status and body.
func (c *Cluster) Get(url string) (int, string, error) {
	resp, err := c.http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(body), err
}

// SetReady lists (ready) or unlists the pod in the Service's DNS answer, the
// way the endpoints controller follows a readiness probe, and waits until the
// DNS server answers the new set (unless DNS is stopped).
func (c *Cluster) SetReady(p *Pod, ready bool) error {
	c.mu.Lock()
	if ready {
		c.ready[p.Name] = p.IP
	} else {
		delete(c.ready, p.Name)
	}
	c.mu.Unlock()
	if err := c.writeHosts(); err != nil {
		return err
	}
	return c.dns.reload(c.ReadyIPs())
}

// ReadyIPs returns the sorted addresses listed in DNS.
func (c *Cluster) ReadyIPs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ips := make([]string, 0, len(c.ready))
	for _, ip := range c.ready {
		ips = append(ips, ip.String())
	}
	sort.Strings(ips)
	return ips
}

func (c *Cluster) writeHosts() error {
	var b strings.Builder
	b.WriteString("# Ready pods of the headless Service, written by the gonode integration harness.\n")
	for _, ip := range c.ReadyIPs() {
		fmt.Fprintf(&b, "%s %s\n", ip, c.FQDN())
	}
	tmp := c.dns.hostsFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, c.dns.hostsFile)
}

// StartDNS starts dnsmasq in the DNS pod and waits until it answers.
func (c *Cluster) StartDNS() error { return c.dns.start(c.ReadyIPs()) }

// StopDNS kills dnsmasq: every lookup fails until StartDNS.
func (c *Cluster) StopDNS() error { return c.dns.stop() }

// DNSLog returns what dnsmasq logged (queries included).
func (c *Cluster) DNSLog() string { return c.dns.output() }

// Close tears everything down: every pod's processes, the namespaces (and so
// the veths and the bridge), /etc/netns entries and the cluster's directory.
// It is safe to call more than once.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	pods := append([]*Pod(nil), c.pods...)
	c.mu.Unlock()
	var errs []error
	if c.dns != nil {
		errs = append(errs, c.dns.stop())
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(pods))
	for _, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- delNetns(p.NS)
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		errs = append(errs, err)
	}
	if c.bridgeNS != "" {
		errs = append(errs, delNetns(c.bridgeNS))
	}
	if c.Dir != "" {
		errs = append(errs, os.RemoveAll(c.Dir))
	}
	return errors.Join(errs...)
}
