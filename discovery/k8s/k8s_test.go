package k8s_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/discovery/discoverytest"
	"github.com/gonode/gonode/discovery/k8s"
	"github.com/gonode/gonode/internal/testutil"
)

const (
	self = "myapp@10.0.0.1"
	ns   = "prod"
	svc  = "myapp-headless"
)

var esResource = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}

func ptr[T any](v T) *T { return &v }

type ep struct {
	addr              string
	host              string
	ready, terminated *bool
}

func slice(name string, typ discoveryv1.AddressType, eps ...ep) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{k8s.ServiceNameLabel: svc}},
		AddressType: typ,
	}
	for _, e := range eps {
		x := discoveryv1.Endpoint{Addresses: []string{e.addr},
			Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Terminating: e.terminated, Serving: e.ready}}
		if e.host != "" {
			x.Hostname = ptr(e.host)
		}
		es.Endpoints = append(es.Endpoints, x)
	}
	return es
}

func names(ts []discovery.Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

func baseConfig() discovery.Config {
	c := discovery.DefaultConfig()
	c.Strategy, c.Service, c.Namespace = discovery.StrategyKubernetes, svc, ns
	return c
}

// TestTargets: which endpoints of one EndpointSlice become peers, and how
// they are named.
func TestTargets(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	v4 := slice("a", discoveryv1.AddressTypeIPv4,
		ep{addr: "10.0.0.2", ready: yes},
		ep{addr: "10.0.0.3", ready: no},                  // not ready: no peer yet
		ep{addr: "10.0.0.4", ready: no, terminated: yes}, // leaving
		ep{addr: "10.0.0.5"},                             // ready unknown: the API says treat as ready
		ep{addr: "10.0.0.6", ready: yes, terminated: yes},
		ep{addr: "not-an-ip", ready: yes},
	)
	v6 := slice("b", discoveryv1.AddressTypeIPv6, ep{addr: "fd00:0:0::7", ready: yes})
	fqdn := slice("c", discoveryv1.AddressTypeFQDN, ep{addr: "x.example", ready: yes})
	sts := slice("d", discoveryv1.AddressTypeIPv4, ep{addr: "10.0.0.8", host: "myapp-0", ready: yes}, ep{addr: "10.0.0.9", ready: yes})
	for _, tc := range []struct {
		name   string
		change func(*discovery.Config)
		es     *discoveryv1.EndpointSlice
		want   []string
	}{
		{"ipv4 conditions", nil, v4, []string{"myapp@10.0.0.2", "myapp@10.0.0.5"}},
		{"ipv6 slice skipped by ipv4", nil, v6, nil},
		{"ipv6 slice with ipv6", func(c *discovery.Config) { c.IPFamily = discovery.IPv6 }, v6, []string{"myapp@fd00::7"}},
		{"ipv4 slice skipped by ipv6", func(c *discovery.Config) { c.IPFamily = discovery.IPv6 }, v4, nil},
		{"dual takes both", func(c *discovery.Config) { c.IPFamily = discovery.DualStack }, v6, []string{"myapp@fd00::7"}},
		{"fqdn skipped", func(c *discovery.Config) { c.IPFamily = discovery.DualStack }, fqdn, nil},
		{"application name", func(c *discovery.Config) { c.ApplicationName = "other" }, sts, []string{"other@10.0.0.8", "other@10.0.0.9"}},
		{"hostname mode", func(c *discovery.Config) { c.KubernetesMode = discovery.KubernetesModeHostname }, sts,
			[]string{"myapp@myapp-0.myapp-headless.prod.svc.cluster.local"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := baseConfig()
			if tc.change != nil {
				tc.change(&c)
			}
			if got := names(k8s.Targets(c, self, tc.es)); !slices.Equal(got, tc.want) {
				t.Errorf("targets %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSelector(t *testing.T) {
	for _, tc := range []struct{ service, extra, want, err string }{
		{svc, "", "kubernetes.io/service-name=myapp-headless", ""},
		{"", "app=myapp", "app=myapp", ""},
		{svc, "app=myapp,tier!=db", "app=myapp,kubernetes.io/service-name=myapp-headless,tier!=db", ""},
		{"", "app in (", "", "--kubernetes-selector"},
		{"bad name!", "", "", "--service"},
	} {
		sel, err := k8s.Selector(tc.service, tc.extra)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Selector(%q, %q): err %v, want one naming %s", tc.service, tc.extra, err, tc.err)
			}
		case err != nil:
			t.Errorf("Selector(%q, %q): %v", tc.service, tc.extra, err)
		case sel.String() != tc.want:
			t.Errorf("Selector(%q, %q) = %q, want %q", tc.service, tc.extra, sel.String(), tc.want)
		}
	}
}

func TestNamespaceFromServiceAccountMount(t *testing.T) {
	dir := t.TempDir()
	f := dir + "/namespace"
	if err := writeFile(f, "team-a\n"); err != nil {
		t.Fatal(err)
	}
	c := baseConfig()
	c.Namespace = ""
	s, err := k8s.New(c, self, withFake(fake.NewClientset()), k8s.WithNamespaceFile(f))
	if err != nil {
		t.Fatal(err)
	}
	if s.Namespace() != "team-a" {
		t.Errorf("namespace %q, want team-a", s.Namespace())
	}
	if _, err := k8s.New(c, self, withFake(fake.NewClientset()), k8s.WithNamespaceFile(dir+"/missing")); err == nil {
		t.Error("no namespace and no mount: New succeeded")
	}
}

// withFake makes a Source use a fake clientset.
func withFake(cs *fake.Clientset) k8s.Option {
	return k8s.WithClient(func(namespace string) k8s.SliceClient { return cs.DiscoveryV1().EndpointSlices(namespace) })
}

// observer records watch events.
type observer struct {
	mu  sync.Mutex
	evs []discovery.WatchEvent
}

func (o *observer) Watch(e discovery.WatchEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.evs = append(o.evs, e)
}

func (o *observer) count(req discovery.WatchRequest, ok bool, reason discovery.WatchErrorReason) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, e := range o.evs {
		if (req == "" || e.Request == req) && e.OK == ok && e.Reason == reason {
			n++
		}
	}
	return n
}

// api is a fake clientset whose lists can be made to fail and whose watches
// can be broken, as an API server that restarts or loses its RBAC does.
type api struct {
	cs *fake.Clientset

	mu       sync.Mutex
	listErr  error
	watchers []*forwarder
}

// forwarder is a watch the test can break, fed by the fake clientset's own
// watch, which it stops when it is stopped.
type forwarder struct {
	*watch.RaceFreeFakeWatcher
	inner watch.Interface
}

func (f *forwarder) Stop() {
	f.inner.Stop()
	f.RaceFreeFakeWatcher.Stop()
}

func newAPI() *api {
	a := &api{cs: fake.NewClientset()}
	a.cs.PrependReactor("list", "endpointslices", func(k8stesting.Action) (bool, runtime.Object, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.listErr != nil, nil, a.listErr
	})
	a.cs.PrependWatchReactor("endpointslices", func(action k8stesting.Action) (bool, watch.Interface, error) {
		inner, err := a.cs.Tracker().Watch(esResource, action.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		w := &forwarder{RaceFreeFakeWatcher: watch.NewRaceFreeFake(), inner: inner}
		go func() {
			for ev := range inner.ResultChan() {
				w.Action(ev.Type, ev.Object)
			}
		}()
		a.mu.Lock()
		a.watchers = append(a.watchers, w)
		a.mu.Unlock()
		return true, w, nil
	})
	return a
}

// breakWatches ends every open watch with a 410 Gone, which makes the
// informer re-list.
func (a *api) breakWatches() {
	a.mu.Lock()
	ws := a.watchers
	a.watchers = nil
	a.mu.Unlock()
	gone := apierrors.NewResourceExpired("too old resource version")
	for _, w := range ws {
		w.Error(&gone.ErrStatus)
	}
}

func (a *api) failLists(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.listErr = err
}

func (a *api) put(t *testing.T, es *discoveryv1.EndpointSlice) {
	t.Helper()
	ctx := context.Background()
	c := a.cs.DiscoveryV1().EndpointSlices(ns)
	if _, err := c.Get(ctx, es.Name, metav1.GetOptions{}); err == nil {
		_, err = c.Update(ctx, es, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := c.Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// harness runs a Discoverer with the kubernetes Source on a fake clock that
// the test never advances: after the first poll, every reconcile it sees
// was triggered by the watch, none by the polling timer.
type harness struct {
	api   *api
	conn  *discoverytest.Connector
	obs   *observer
	logs  *testutil.SyncBuffer
	disc  *discovery.Discoverer
	clock *discoverytest.Clock
}

func start(t *testing.T) *harness {
	t.Helper()
	h := &harness{api: newAPI(), conn: discoverytest.NewConnector(), obs: &observer{}, logs: &testutil.SyncBuffer{}}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := baseConfig()
	cfg.PollingInterval = time.Hour
	src, err := k8s.New(cfg, self, withFake(h.api.cs), k8s.WithLogger(log), k8s.WithObserver(h.obs))
	if err != nil {
		t.Fatal(err)
	}
	h.clock = discoverytest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	h.disc, err = discovery.New(cfg, self, h.conn, discovery.WithSource(src), discovery.WithClock(h.clock), discovery.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.disc.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	testutil.EventuallyNamed(t, 10*time.Second, "the first list", func() (bool, string) {
		return h.disc.Ready(), fmt.Sprintf("ready=%v", h.disc.Ready())
	})
	return h
}

func (h *harness) connected(want ...string) testutil.Cond {
	return func() (bool, string) {
		got := h.conn.Connected()
		slices.Sort(got)
		return slices.Equal(got, want), fmt.Sprintf("connected %q, want %q", got, want)
	}
}

// TestWatchPushesNewEndpoint: a new ready endpoint is dialled when the
// watch reports it, without a poll (the clock never moves); a terminating
// one is not dialled again and is pruned after PruneAfter answers.
func TestWatchPushesNewEndpoint(t *testing.T) {
	h := start(t)
	yes := ptr(true)
	h.api.put(t, slice("s1", discoveryv1.AddressTypeIPv4, ep{addr: "10.0.0.2", ready: yes}))
	testutil.EventuallyNamed(t, 10*time.Second, "first endpoint", h.connected("myapp@10.0.0.2"))
	h.api.put(t, slice("s1", discoveryv1.AddressTypeIPv4, ep{addr: "10.0.0.2", ready: yes}, ep{addr: "10.0.0.3", ready: ptr(false)}))
	h.api.put(t, slice("s1", discoveryv1.AddressTypeIPv4, ep{addr: "10.0.0.2", ready: yes}, ep{addr: "10.0.0.3", ready: yes}))
	testutil.EventuallyNamed(t, 10*time.Second, "endpoint turned ready", h.connected("myapp@10.0.0.2", "myapp@10.0.0.3"))

	// 10.0.0.3 terminates; its link drops; it must not be dialled again.
	h.api.put(t, slice("s1", discoveryv1.AddressTypeIPv4, ep{addr: "10.0.0.2", ready: yes}, ep{addr: "10.0.0.3", ready: ptr(false), terminated: yes}))
	h.conn.Drop("myapp@10.0.0.3")
	h.api.put(t, slice("s2", discoveryv1.AddressTypeIPv4, ep{addr: "10.0.0.4", ready: yes}))
	testutil.EventuallyNamed(t, 10*time.Second, "another endpoint", h.connected("myapp@10.0.0.2", "myapp@10.0.0.4"))
	if n := h.conn.Count(discovery.ActConnect, "myapp@10.0.0.3"); n != 1 {
		t.Errorf("the terminating peer was dialled %d times, want 1 (before it terminated)", n)
	}

	// A still-connected peer that leaves is pruned after PruneAfter (2) answers.
	h.api.put(t, slice("s2", discoveryv1.AddressTypeIPv4))
	h.api.put(t, slice("s3", discoveryv1.AddressTypeIPv4, ep{addr: "10.0.0.5", ready: yes}))
	testutil.EventuallyNamed(t, 10*time.Second, "pruned", h.connected("myapp@10.0.0.2", "myapp@10.0.0.5"))
	if n := h.conn.Count(discovery.ActDisconnect, "myapp@10.0.0.4"); n != 1 {
		t.Errorf("10.0.0.4 disconnected %d times, want 1", n)
	}
}

// TestAPIFailureKeepsPeers: a watch that breaks and re-lists into 403s
// disconnects nobody, says which RBAC verb is missing, counts the failure,
// and the watch resumes once the API answers again.
func TestAPIFailureKeepsPeers(t *testing.T) {
	h := start(t)
	yes := ptr(true)
	h.api.put(t, slice("s1", discoveryv1.AddressTypeIPv4, ep{addr: "10.0.0.2", ready: yes}, ep{addr: "10.0.0.3", ready: yes}))
	testutil.EventuallyNamed(t, 10*time.Second, "mesh", h.connected("myapp@10.0.0.2", "myapp@10.0.0.3"))

	h.api.failLists(apierrors.NewForbidden(esResource.GroupResource(), "", fmt.Errorf("RBAC: access denied")))
	h.api.breakWatches()
	testutil.EventuallyNamed(t, 10*time.Second, "403 counted", func() (bool, string) {
		n := h.obs.count(discovery.RequestList, false, discovery.WatchForbidden)
		return n > 0, fmt.Sprintf("%d forbidden lists", n)
	})
	testutil.EventuallyNamed(t, 10*time.Second, "403 logged", func() (bool, string) {
		return strings.Contains(h.logs.String(), "refused list on endpointslices.discovery.k8s.io in namespace prod (403)"), h.logs.String()
	})
	// Polls while the API fails (more than PruneAfter of them) keep the
	// last good set.
	for i := range 3 {
		before := h.disc.Snapshot().LastPoll
		h.clock.Advance(70 * time.Minute)
		testutil.EventuallyNamed(t, 10*time.Second, fmt.Sprintf("poll %d while failing", i+1), func() (bool, string) {
			lp := h.disc.Snapshot().LastPoll
			return lp.After(before), fmt.Sprintf("last poll %v", lp)
		})
	}
	if got := h.conn.Calls(); slices.ContainsFunc(got, func(c discoverytest.Call) bool { return c.Op == discovery.ActDisconnect }) {
		t.Errorf("a disconnect while the API failed: %v", got)
	}
	testutil.EventuallyNamed(t, time.Second, "still connected", h.connected("myapp@10.0.0.2", "myapp@10.0.0.3"))

	h.api.failLists(nil)
	testutil.EventuallyNamed(t, 30*time.Second, "re-listed", func() (bool, string) {
		return strings.Contains(h.logs.String(), "kubernetes API answers again"), h.logs.String()
	})
	h.api.put(t, slice("s2", discoveryv1.AddressTypeIPv4, ep{addr: "10.0.0.4", ready: yes}))
	testutil.EventuallyNamed(t, 10*time.Second, "watch resumed", h.connected("myapp@10.0.0.2", "myapp@10.0.0.3", "myapp@10.0.0.4"))
}
