package k8s_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/discovery/k8s"
	"github.com/gonode/gonode/internal/testutil"
)

// TestKubeconfigAndRESTClient: with --kubeconfig the Source talks to the
// API server the file names, through the REST client (not the fake): it
// lists the namespace's EndpointSlices by the Service's label, then opens a
// watch, and its Targets are the list's ready endpoints.
func TestKubeconfigAndRESTClient(t *testing.T) {
	var mu sync.Mutex
	var requests []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.URL.Path+" watch="+r.URL.Query().Get("watch")+" labelSelector="+r.URL.Query().Get("labelSelector"))
		mu.Unlock()
		if r.URL.Path != "/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("watch") == "true" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		fmt.Fprint(w, `{"kind":"EndpointSliceList","apiVersion":"discovery.k8s.io/v1","metadata":{"resourceVersion":"7"},"items":[
{"metadata":{"name":"s1","namespace":"prod","resourceVersion":"7","labels":{"kubernetes.io/service-name":"myapp-headless"}},
 "addressType":"IPv4","endpoints":[{"addresses":["10.0.0.2"],"conditions":{"ready":true}},{"addresses":["10.0.0.3"],"conditions":{"ready":true,"terminating":true}}]}]}`)
	}))
	t.Cleanup(srv.Close)
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	conf := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: t0ken}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`, srv.URL)
	if err := os.WriteFile(kc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig()
	cfg.Kubeconfig = kc
	src, err := k8s.New(cfg, self)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		src.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	var got []discovery.Target
	testutil.EventuallyNamed(t, 10*time.Second, "targets from the API server", func() (bool, string) {
		var err error
		got, err = src.Targets()
		return err == nil && len(got) > 0, fmt.Sprintf("%v, %v", got, err)
	})
	if n := names(got); !slices.Equal(n, []string{"myapp@10.0.0.2"}) {
		t.Errorf("targets %q, want [myapp@10.0.0.2]", n)
	}
	testutil.EventuallyNamed(t, 10*time.Second, "a watch", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range requests {
			if strings.Contains(r, "watch=true") && strings.HasSuffix(r, "labelSelector=kubernetes.io/service-name=myapp-headless") {
				return true, ""
			}
		}
		return false, strings.Join(requests, "\n")
	})
}

func TestBadKubeconfig(t *testing.T) {
	cfg := baseConfig()
	cfg.Kubeconfig = filepath.Join(t.TempDir(), "missing")
	if _, err := k8s.New(cfg, self); err == nil || !strings.Contains(err.Error(), "kubeconfig") {
		t.Errorf("New with a missing kubeconfig: %v, want an error naming the kubeconfig", err)
	}
}
