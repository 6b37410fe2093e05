//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// meshLabel is the label the API strategy's selector picks EndpointSlices
// by: the Services' labels are copied onto their slices by the EndpointSlice
// controller.
const meshLabel = "e2e.gonode.io/mesh"

// apiStrategyKustomization deploys the example overlay with gonode switched
// to the kubernetes strategy (one replica, selecting the slices of every
// Service labelled meshLabel=api), and beside it:
//   - joiner: Elixir pods (the example release, no clustering of their own:
//     no CLUSTER_SERVICE) behind the headless Service joiner-headless, which
//     only Ready pods join. The mesh's gonode dials them when their endpoint
//     turns ready; nothing else dials them.
//   - gonode-dns: a gonode on the dns strategy resolving joiner-headless
//     every 5 s (the example's interval), for the comparison.
//
// Neither joiner nor gonode-dns carries erlang.cluster/name, so the mesh
// helpers (pods, fullMesh) do not count them.
const apiStrategyKustomization = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %[1]s
resources:
  - %[2]s
  - extra.yaml
images:
  - {name: gonode, newName: gonode, newTag: e2e}
  - {name: gonode-example, newName: gonode-example, newTag: otp27}
patches:
  - patch: |-
      apiVersion: v1
      kind: Service
      metadata:
        name: myapp-headless
        labels: {e2e.gonode.io/mesh: api}
  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: gonode
      spec:
        replicas: 1
        template:
          spec:
            containers:
              - name: gonode
                env:
                  - {name: GONODE_SERVICE, $patch: delete}
                  - {name: GONODE_STRATEGY, value: kubernetes}
                  - {name: GONODE_KUBERNETES_SELECTOR, value: "e2e.gonode.io/mesh=api"}
                  - {name: GONODE_LOG_LEVEL, value: debug}
`

const apiStrategyExtra = `apiVersion: v1
kind: Service
metadata:
  name: joiner-headless
  labels: {e2e.gonode.io/mesh: api}
spec:
  clusterIP: None
  selector: {e2e.gonode.io/joiner: "yes"}
  ports:
    - {name: dist, port: 9000, targetPort: 9000}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: joiner
spec:
  replicas: 0
  selector:
    matchLabels: {app.kubernetes.io/name: joiner}
  template:
    metadata:
      labels: {app.kubernetes.io/name: joiner, e2e.gonode.io/joiner: "yes"}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: elixir
          image: gonode-example
          imagePullPolicy: IfNotPresent
          args: [start]
          env:
            - name: POD_IP
              valueFrom: {fieldRef: {fieldPath: status.podIP}}
            - name: RELEASE_COOKIE
              valueFrom: {secretKeyRef: {name: erlang-cookie, key: cookie}}
            - {name: RELEASE_DISTRIBUTION, value: name}
            - {name: RELEASE_NODE, value: myapp@$(POD_IP)}
            - {name: RELEASE_TMP, value: /tmp}
            - {name: CLUSTER_BASENAME, value: myapp}
          readinessProbe:
            tcpSocket: {port: 9000}
            periodSeconds: 1
          volumeMounts:
            - {name: tmp, mountPath: /tmp}
      volumes:
        - name: tmp
          emptyDir: {sizeLimit: 64Mi}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: gonode-dns
spec:
  replicas: 1
  selector:
    matchLabels: {app.kubernetes.io/name: gonode-dns}
  template:
    metadata:
      labels: {app.kubernetes.io/name: gonode-dns}
    spec:
      serviceAccountName: gonode
      securityContext: {runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534}
      containers:
        - name: gonode
          image: gonode
          imagePullPolicy: IfNotPresent
          env:
            - name: POD_IP
              valueFrom: {fieldRef: {fieldPath: status.podIP}}
            - {name: GONODE_COOKIE_FILE, value: /etc/erlang/cookie}
            - {name: GONODE_APPLICATION_NAME, value: myapp}
            - {name: GONODE_SERVICE, value: joiner-headless.%[1]s.svc.cluster.local}
            - {name: GONODE_POLLING_INTERVAL, value: 5s}
            - {name: GONODE_DIST_PORT, value: "9000"}
            - {name: GONODE_LOG_FORMAT, value: json}
            - {name: GONODE_LOG_LEVEL, value: debug}
          volumeMounts:
            - {name: cookie, mountPath: /etc/erlang, readOnly: true}
      volumes:
        - name: cookie
          secret: {secretName: erlang-cookie, defaultMode: 0400, defaultUser: 65534}
`

// deployAPIStrategy applies apiStrategyKustomization to the test namespace.
func deployAPIStrategy(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	overlay, err := filepath.Rel(dir, filepath.Join(repoRoot, "deploy", "kubernetes", "overlays", "example"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(fmt.Sprintf(apiStrategyKustomization, namespace, overlay)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "extra.yaml"), []byte(fmt.Sprintf(apiStrategyExtra, namespace)), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, "apply", "-k", dir)
}

// podOf returns the one running pod of the Deployment's app label.
func podOf(t *testing.T, app string) pod {
	t.Helper()
	var p pod
	eventually(t, 3*time.Minute, "a Ready "+app+" pod", func() (bool, string) {
		out := mustKubectl(t, "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name="+app, "-o",
			`jsonpath={range .items[*]}{.metadata.name}{"\t"}{.status.podIP}{"\t"}{.status.conditions[?(@.type=="Ready")].status}{"\t"}{.metadata.deletionTimestamp}{"\n"}{end}`)
		var ready []pod
		for _, l := range strings.Split(out, "\n") {
			f := strings.Split(l, "\t")
			if len(f) >= 4 && f[1] != "" && f[2] == "True" && f[3] == "" {
				ready = append(ready, pod{Name: f[0], IP: f[1], App: app, Ready: true})
			}
		}
		if len(ready) != 1 {
			return false, fmt.Sprintf("ready pods %+v", ready)
		}
		p = ready[0]
		return true, ""
	})
	return p
}

// logLine is one JSON line of gonode's log.
type logLine struct {
	Time time.Time `json:"time"`
	Msg  string    `json:"msg"`
	Peer string    `json:"peer"`
	Verb string    `json:"verb"`
}

// gonodeLog returns the pod's log lines.
func gonodeLog(t *testing.T, podName string) []logLine {
	t.Helper()
	out := mustKubectl(t, "logs", "-n", namespace, podName)
	var ls []logLine
	for _, l := range strings.Split(out, "\n") {
		var x logLine
		if json.Unmarshal([]byte(l), &x) == nil && x.Msg != "" {
			ls = append(ls, x)
		}
	}
	return ls
}

// connectedAt is when the pod's gonode logged that it connected to peer,
// the first time after since.
func connectedAt(t *testing.T, podName, peer string, since time.Time) (time.Time, bool) {
	for _, l := range gonodeLog(t, podName) {
		if l.Msg == "peer connected" && l.Peer == peer && l.Time.After(since) {
			return l.Time, true
		}
	}
	return time.Time{}, false
}

// sliceWatch follows the EndpointSlices of a Service with kubectl's watch
// and records when each address was first seen ready.
type sliceWatch struct {
	cmd   *exec.Cmd
	ready chan readyEndpoint
}

type readyEndpoint struct {
	addr string
	at   time.Time
}

func watchSlices(t *testing.T, service string) *sliceWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot, "scripts", "k8s-kubectl.sh"), "get", "endpointslices", "-n", namespace,
		"-l", "kubernetes.io/service-name="+service, "--watch", "-o", "json")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &sliceWatch{cmd: cmd, ready: make(chan readyEndpoint, 64)}
	go func() {
		dec := json.NewDecoder(bufio.NewReader(out))
		seen := map[string]bool{}
		for {
			var es struct {
				Endpoints []struct {
					Addresses  []string `json:"addresses"`
					Conditions struct {
						Ready *bool `json:"ready"`
					} `json:"conditions"`
				} `json:"endpoints"`
			}
			if err := dec.Decode(&es); err != nil {
				close(w.ready)
				return
			}
			now := time.Now()
			cur := map[string]bool{}
			for _, e := range es.Endpoints {
				if len(e.Addresses) > 0 && e.Conditions.Ready != nil && *e.Conditions.Ready {
					cur[e.Addresses[0]] = true
					if !seen[e.Addresses[0]] {
						w.ready <- readyEndpoint{addr: e.Addresses[0], at: now}
					}
				}
			}
			seen = cur
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	return w
}

// httpGet fetches http://ip:9568/path from the cluster's network.
func httpGet(t *testing.T, ip, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/gonode-k8s", "--", "bash", "-c",
		`exec 3<>"/dev/tcp/$1/9568" && printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$1" >&3 && cat <&3`, "_", ip, path)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("GET %s%s: %v", ip, path, err)
	}
	return string(out)
}

// metricValue sums the samples of the metric whose labels contain every
// one of labels.
func metricValue(text, name string, labels ...string) float64 {
	sum := 0.0
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, name) || (len(l) > len(name) && l[len(name)] != '{' && l[len(name)] != ' ') {
			continue
		}
		ok := true
		for _, lb := range labels {
			if !strings.Contains(l, lb) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// TestKubernetesAPIStrategy: gonode on --strategy kubernetes in the example's
// mesh of 3 Elixir pods.
//   - full mesh;
//   - a new pod is dialled when its endpoint turns ready: the delay from the
//     EndpointSlice update (seen by the test's own watch) to gonode's
//     "peer connected" line, for the API strategy and, in the same run, for
//     a gonode on the dns strategy (logged for BENCHMARKS.md, not asserted:
//     the machine is shared);
//   - a deleted Elixir pod is pruned and its replacement meshed;
//   - the API server stopped for 30 s: no link lost, the watch resumes;
//   - the RoleBinding removed: a clear error naming the verb, no link lost;
//     restored: the strategy follows the API again;
//   - the API requests per minute of each strategy with 50 endpoints that
//     the test writes and rewrites.
//
// benchSize is how much the test measures: 3 ready -> connected rounds and
// a 30 s window for the request rates in make test; with GONODE_E2E_BENCH=1
// the size BENCHMARKS.md reports (5 rounds, 60 s).
func benchSize() (rounds int, window time.Duration) {
	if os.Getenv("GONODE_E2E_BENCH") == "1" {
		return 5, time.Minute
	}
	return 3, 30 * time.Second
}

func TestKubernetesAPIStrategy(t *testing.T) {
	mustKubectl(t, "create", "namespace", namespace)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if _, err := kubectl(ctx, "delete", "namespace", namespace, "--wait=true"); err != nil {
			t.Logf("deleting the namespace: %v", err)
		}
	})
	deployAPIStrategy(t)
	ps := waitMesh(t, 3, 1, 5*time.Minute)
	api := ofApp(ps, "gonode")[0]
	dns := podOf(t, "gonode-dns")
	t.Logf("gonode (kubernetes strategy) %s, gonode (dns strategy) %s", api.nodeName(), dns.nodeName())

	t.Run("NewEndpointConnected", func(t *testing.T) {
		w := watchSlices(t, "joiner-headless")
		var apiDelays, dnsDelays []time.Duration
		rounds, _ := benchSize()
		for round := 1; round <= rounds; round++ {
			mustKubectl(t, "scale", "-n", namespace, "deployment/joiner", "--replicas=1")
			var ev readyEndpoint
			select {
			case ev = <-w.ready:
			case <-time.After(3 * time.Minute):
				t.Fatalf("round %d: the joiner's endpoint never turned ready", round)
			}
			peer := basename + "@" + ev.addr
			var atAPI, atDNS time.Time
			eventually(t, 2*time.Minute, "both gonodes connected to "+peer, func() (bool, string) {
				var ok1, ok2 bool
				atAPI, ok1 = connectedAt(t, api.Name, peer, ev.at.Add(-time.Minute))
				atDNS, ok2 = connectedAt(t, dns.Name, peer, ev.at.Add(-time.Minute))
				return ok1 && ok2, fmt.Sprintf("kubernetes strategy connected: %v, dns strategy connected: %v", ok1, ok2)
			})
			apiDelays = append(apiDelays, atAPI.Sub(ev.at))
			dnsDelays = append(dnsDelays, atDNS.Sub(ev.at))
			t.Logf("round %d: %s ready at %s; connected by the kubernetes strategy after %s, by the dns strategy after %s",
				round, peer, ev.at.Format(time.RFC3339Nano), atAPI.Sub(ev.at).Round(time.Millisecond), atDNS.Sub(ev.at).Round(time.Millisecond))
			mustKubectl(t, "scale", "-n", namespace, "deployment/joiner", "--replicas=0")
			// The joiner leaves: gonode's peers are the mesh's again.
			waitMesh(t, 3, 1, 3*time.Minute)
			eventually(t, 2*time.Minute, "joiner pods gone", func() (bool, string) {
				out := mustKubectl(t, "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=joiner", "-o", "name")
				return strings.TrimSpace(out) == "", out
			})
		}
		med := func(ds []time.Duration) time.Duration {
			s := slices.Clone(ds)
			slices.Sort(s)
			return s[len(s)/2]
		}
		t.Logf("endpoint ready -> connected, median of %d: kubernetes strategy %s, dns strategy %s (ratio dns/api %.1f); all: api %v dns %v",
			len(apiDelays), med(apiDelays).Round(time.Millisecond), med(dnsDelays).Round(time.Millisecond),
			float64(med(dnsDelays))/float64(max(med(apiDelays), time.Millisecond)), apiDelays, dnsDelays)
	})
	if t.Failed() {
		return
	}

	t.Run("DeletedPodPruned", func(t *testing.T) {
		victim := ofApp(running(pods(t)), "elixir")[0]
		mustKubectl(t, "delete", "pod", "-n", namespace, victim.Name, "--wait=false")
		after := waitMesh(t, 3, 1, 5*time.Minute)
		if contains(podNames(after), victim.Name) {
			t.Fatalf("deleted pod %s still in the mesh", victim.Name)
		}
		// Gone from discovery's state too (/debug/peers), not only from
		// the links (the deleted node closes them itself when it stops).
		eventually(t, time.Minute, "the deleted node gone from /debug/peers", func() (bool, string) {
			body := httpGet(t, api.IP, "/debug/peers")
			return !strings.Contains(body, `"`+victim.nodeName()+`"`), body
		})
		for _, l := range gonodeLog(t, api.Name) {
			if l.Peer == victim.nodeName() && strings.HasPrefix(l.Msg, "peer left the answer") {
				t.Logf("gonode: %s %s", l.Msg, l.Peer)
			}
		}
	})
	if t.Failed() {
		return
	}
	ps = waitMesh(t, 3, 1, 5*time.Minute)

	t.Run("APIServerStopped30s", func(t *testing.T) {
		before := scrape(t, api.IP)
		wantPeers := fmt.Sprintf("gonode_node_peers %d", len(ps)-1)
		disc0 := metricValue(before, "gonode_node_disconnects_total")
		watchOK0 := metricValue(before, "gonode_discovery_watch_requests_total", `result="ok"`)
		if out, err := script(time.Minute, "k8s-apiserver.sh", "stop"); err != nil {
			t.Fatalf("stopping kube-apiserver: %v\n%s", err, out)
		}
		restarted := false
		defer func() {
			if !restarted {
				_, _ = script(2*time.Minute, "k8s-apiserver.sh", "start")
			}
		}()
		// A hold, not a deadline: every look over 30 s must see the links.
		end := time.Now().Add(30 * time.Second)
		looks := 0
		for time.Now().Before(end) {
			m := scrape(t, api.IP)
			if !strings.Contains(m, "\n"+wantPeers+"\n") || metricValue(m, "gonode_node_disconnects_total") != disc0 {
				t.Fatalf("a link was lost during the API outage (look %d): want %q, disconnects %v -> %v",
					looks+1, wantPeers, disc0, metricValue(m, "gonode_node_disconnects_total"))
			}
			looks++
			time.Sleep(time.Second)
		}
		t.Logf("gonode kept its %d links at each of %d looks during a 30 s API server outage", len(ps)-1, looks)
		if out, err := script(2*time.Minute, "k8s-apiserver.sh", "start"); err != nil {
			t.Fatalf("starting kube-apiserver: %v\n%s", err, out)
		}
		restarted = true
		eventually(t, 2*time.Minute, "the watch resumed", func() (bool, string) {
			m := scrape(t, api.IP)
			v := metricValue(m, "gonode_discovery_watch_requests_total", `result="ok"`)
			return v > watchOK0, fmt.Sprintf("successful API requests %v, before the outage %v", v, watchOK0)
		})
		// The outage was said, once, and so was the recovery.
		var failed, recovered string
		eventually(t, time.Minute, "the outage and the recovery logged", func() (bool, string) {
			failed, recovered = "", ""
			for _, l := range gonodeLog(t, api.Name) {
				switch {
				case strings.HasPrefix(l.Msg, "kubernetes API request for EndpointSlices failed") && failed == "":
					failed = l.Msg
				case strings.HasPrefix(l.Msg, "kubernetes API answers again") && failed != "":
					recovered = l.Msg
				}
			}
			return failed != "" && recovered != "", fmt.Sprintf("failure line %q, recovery line %q", failed, recovered)
		})
		t.Logf("gonode said: %q, then %q", failed, recovered)
		m := scrape(t, api.IP)
		t.Logf("after the outage: requests list ok %v, watch ok %v, errors %v (unavailable %v, timeout %v)",
			metricValue(m, "gonode_discovery_watch_requests_total", `request="list"`, `result="ok"`),
			metricValue(m, "gonode_discovery_watch_requests_total", `request="watch"`, `result="ok"`),
			metricValue(m, "gonode_discovery_watch_errors_total"),
			metricValue(m, "gonode_discovery_watch_errors_total", `reason="unavailable"`),
			metricValue(m, "gonode_discovery_watch_errors_total", `reason="timeout"`))
		// The watch follows the API again: a new pod is meshed.
		mustKubectl(t, "scale", "-n", namespace, "deployment/elixir", "--replicas=4")
		waitMesh(t, 4, 1, 5*time.Minute)
		mustKubectl(t, "scale", "-n", namespace, "deployment/elixir", "--replicas=3")
		ps = waitMesh(t, 3, 1, 5*time.Minute)
	})
	if t.Failed() {
		return
	}

	t.Run("RBACRemoved", func(t *testing.T) {
		disc0 := metricValue(scrape(t, api.IP), "gonode_node_disconnects_total")
		mustKubectl(t, "delete", "rolebinding", "-n", namespace, "gonode-discovery")
		// RBAC is checked per request: restart the API server so that the
		// open watch ends and gonode must ask again.
		if out, err := script(time.Minute, "k8s-apiserver.sh", "stop"); err != nil {
			t.Fatalf("stopping kube-apiserver: %v\n%s", err, out)
		}
		if out, err := script(2*time.Minute, "k8s-apiserver.sh", "start"); err != nil {
			t.Fatalf("starting kube-apiserver: %v\n%s", err, out)
		}
		re := regexp.MustCompile(`kubernetes API refused (list|watch) on endpointslices\.discovery\.k8s\.io in namespace ` + namespace + ` \(403\)`)
		var line string
		eventually(t, 3*time.Minute, "the 403 logged", func() (bool, string) {
			for _, l := range gonodeLog(t, api.Name) {
				if re.MatchString(l.Msg) {
					line = l.Msg
					return true, ""
				}
			}
			return false, "no line matches " + re.String()
		})
		t.Logf("gonode says: %s", line)
		m := scrape(t, api.IP)
		if v := metricValue(m, "gonode_discovery_watch_errors_total", `reason="forbidden"`); v < 1 {
			t.Errorf("gonode_discovery_watch_errors_total{reason=\"forbidden\"} = %v, want >= 1", v)
		}
		if v := metricValue(m, "gonode_node_disconnects_total"); v != disc0 {
			t.Errorf("disconnects %v -> %v while RBAC was missing", disc0, v)
		}
		if ok, state := fullMesh(ps); !ok {
			t.Errorf("mesh lost while RBAC was missing:\n%s", state)
		}
		deployAPIStrategy(t) // restores the RoleBinding
		eventually(t, 3*time.Minute, "the API answers again", func() (bool, string) {
			for _, l := range gonodeLog(t, api.Name) {
				if strings.HasPrefix(l.Msg, "kubernetes API answers again") && l.Time.After(time.Now().Add(-3*time.Minute)) {
					return true, ""
				}
			}
			return false, "no recovery line"
		})
	})
	if t.Failed() {
		return
	}

	t.Run("RequestsPerMinute50Endpoints", func(t *testing.T) {
		// A Service without a selector and one EndpointSlice of 50
		// endpoints that the test writes itself, labelled for the API
		// strategy; the addresses (TEST-NET-1) answer no connect.
		var eps []string
		write := func(flip int) {
			eps = eps[:0]
			for i := 1; i <= 50; i++ {
				ready := i != flip
				eps = append(eps, fmt.Sprintf(`{"addresses":["192.0.2.%d"],"conditions":{"ready":%v}}`, i, ready))
			}
			doc := fmt.Sprintf(`{"apiVersion":"v1","kind":"List","items":[
{"apiVersion":"v1","kind":"Service","metadata":{"name":"bench-headless","namespace":%[1]q,"labels":{%[2]q:"api"}},"spec":{"clusterIP":"None","ports":[{"name":"dist","port":9000}]}},
{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"bench-50","namespace":%[1]q,"labels":{%[2]q:"api","kubernetes.io/service-name":"bench-headless","endpointslice.kubernetes.io/managed-by":"e2e.gonode.io"}},"addressType":"IPv4","ports":[{"name":"dist","port":9000}],"endpoints":[%[3]s]}]}`,
				namespace, meshLabel, strings.Join(eps, ","))
			f := filepath.Join(t.TempDir(), "bench.json")
			if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			mustKubectl(t, "apply", "-f", f)
		}
		write(0)
		eventually(t, time.Minute, "50 endpoints desired", func() (bool, string) {
			v := metricValue(scrape(t, api.IP), "gonode_discovery_peers", `set="desired"`)
			return v >= 53, fmt.Sprintf("desired %v", v)
		})
		a0, d0 := scrape(t, api.IP), scrape(t, dns.IP)
		_, window := benchSize()
		start := time.Now()
		updates := 0
		for time.Since(start) < window {
			write(updates%50 + 1) // one endpoint flips every 5 s
			updates++
			time.Sleep(5 * time.Second)
		}
		el := time.Since(start).Minutes()
		a1, d1 := scrape(t, api.IP), scrape(t, dns.IP)
		req := func(a, b string, labels ...string) float64 {
			return (metricValue(b, "gonode_discovery_watch_requests_total", labels...) - metricValue(a, "gonode_discovery_watch_requests_total", labels...)) / el
		}
		polls := func(a, b, strategy string) float64 {
			l := `strategy="` + strategy + `"`
			return (metricValue(b, "gonode_discovery_polls_total", l) - metricValue(a, "gonode_discovery_polls_total", l)) / el
		}
		t.Logf("50 endpoints, %d slice updates in %.2f min: kubernetes strategy %.1f API requests/min (list %.1f, watch %.1f), %.1f reconciles/min; "+
			"dns strategy 0 API requests/min, %.1f DNS polls/min",
			updates, el, req(a0, a1), req(a0, a1, `request="list"`), req(a0, a1, `request="watch"`), polls(a0, a1, "kubernetes"), polls(d0, d1, "dns"))
		mustKubectl(t, "delete", "-n", namespace, "endpointslice/bench-50", "service/bench-headless")
	})
}
