//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gonode/gonode/internal/testutil"
)

// MetricsPort is where gonode pods serve /metrics, /healthz and /readyz.
const MetricsPort = 9568

// BuildGonode builds ./cmd/gonode of this module into dir and returns the
// binary's path.
func BuildGonode(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "gonode")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/gonode")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w: go build ./cmd/gonode: %v\n%s", ErrCommand, err, out)
	}
	return bin, nil
}

// moduleRoot finds the directory of go.mod above this source file.
func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the harness's source")
	}
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above " + filepath.Dir(file))
		}
		dir = parent
	}
}

// GonodeOptions describe a gonode pod: what its Deployment's environment says.
type GonodeOptions struct {
	// Binary is the built gonode binary. Required.
	Binary string
	// Cookie overrides the cluster's cookie (RELEASE_COOKIE).
	Cookie string
	// PollInterval is GONODE_POLLING_INTERVAL. Default 1s.
	PollInterval time.Duration
	// NetTickTime is GONODE_NET_TICKTIME; zero leaves it unset (60 s).
	NetTickTime time.Duration
	// ShortService sets GONODE_SERVICE to the Service's short name, expanded
	// through the pod's search path, instead of its FQDN.
	ShortService bool
	// TLS, when set, turns TLS distribution on through GONODE_TLS_CERT,
	// GONODE_TLS_KEY and GONODE_TLS_CA. Nil: plain TCP.
	TLS *TLSFiles
	// Env are extra KEY=VALUE variables.
	Env []string
}

// GonodePod is a pod running the gonode binary.
type GonodePod struct {
	*Pod
	Options GonodeOptions

	cmd  *exec.Cmd
	done chan struct{}

	mu      sync.Mutex
	log     testutil.SyncBuffer
	exitErr error
	exited  time.Time
}

// Env is the pod's environment, as a Deployment would set it.
func (c *Cluster) gonodeEnv(p *Pod, o GonodeOptions) []string {
	service := c.FQDN()
	if o.ShortService {
		service = c.Config.Service
	}
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/tmp",
		"RELEASE_COOKIE=" + o.Cookie,
		"POD_IP=" + p.IP.String(),
		"GONODE_APPLICATION_NAME=" + c.Config.AppName,
		"GONODE_SERVICE=" + service,
		"GONODE_POLLING_INTERVAL=" + o.PollInterval.String(),
		"GONODE_METRICS_ADDR=" + p.IP.String() + ":" + strconv.Itoa(MetricsPort),
		"GONODE_LOG_FORMAT=json",
	}
	if o.NetTickTime > 0 {
		env = append(env, "GONODE_NET_TICKTIME="+o.NetTickTime.String())
	}
	if o.TLS != nil {
		env = append(env, gonodeTLSEnv(*o.TLS)...)
	}
	return append(env, o.Env...)
}

// StartGonode creates a pod, starts the gonode binary in it and waits until
// /healthz answers. The pod is not in DNS until SetReady.
func (c *Cluster) StartGonode(name string, o GonodeOptions) (*GonodePod, error) {
	pod, err := c.NewPod(name)
	if err != nil {
		return nil, err
	}
	return c.StartGonodeIn(pod, o)
}

// StartGonodeIn starts the gonode binary in an existing pod.
func (c *Cluster) StartGonodeIn(pod *Pod, o GonodeOptions) (*GonodePod, error) {
	if o.Binary == "" {
		return nil, errors.New("GonodeOptions.Binary is required")
	}
	if o.Cookie == "" {
		o.Cookie = c.Config.Cookie
	}
	if o.PollInterval == 0 {
		o.PollInterval = time.Second
	}
	cmd := exec.Command("ip", "netns", "exec", pod.NS, o.Binary)
	cmd.Dir = "/"
	cmd.Env = c.gonodeEnv(pod, o)
	p := &GonodePod{Pod: pod, Options: o, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = &p.log
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start gonode in %s: %w", pod.Name, err)
	}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr, p.exited = err, time.Now()
		p.mu.Unlock()
		close(p.done)
	}()
	err := testutil.Poll(context.Background(), 30*time.Second, WaitInterval, func() (bool, string) {
		select {
		case <-p.done:
			return true, ""
		default:
		}
		code, body, err := c.Get(p.URL("/healthz"))
		return err == nil && code == 200, fmt.Sprintf("/healthz: %d %q %v", code, body, err)
	})
	select {
	case <-p.done:
		err = fmt.Errorf("exited: %v", p.ExitErr())
	default:
	}
	if err != nil {
		p.Kill()
		return nil, fmt.Errorf("gonode pod %s did not come up: %w\n%s", pod.Name, err, p.Output())
	}
	return p, nil
}

// URL is http://<pod ip>:<metrics port><path>.
func (p *GonodePod) URL(path string) string {
	return fmt.Sprintf("http://%s:%d%s", p.IP, MetricsPort, path)
}

// Ready reports whether /readyz answers 200.
func (p *GonodePod) Ready() (bool, string) {
	code, body, err := p.c.Get(p.URL("/readyz"))
	return err == nil && code == 200, fmt.Sprintf("/readyz: %d %q %v", code, strings.TrimSpace(body), err)
}

// Metrics fetches /metrics and returns the value of every sample, keyed by
// its name and labels as written (e.g. `x_total{result="error"}`).
func (p *GonodePod) Metrics() (map[string]float64, error) {
	code, body, err := p.c.Get(p.URL("/metrics"))
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("/metrics: status %d", code)
	}
	return ParseMetrics(body), nil
}

// ParseMetrics reads Prometheus text exposition samples.
func ParseMetrics(text string) map[string]float64 {
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m
}

// SumMetric adds the samples of one metric name whose labels contain every
// one of the given label="value" pairs.
func SumMetric(m map[string]float64, name string, labels ...string) float64 {
	var sum float64
	for k, v := range m {
		n, rest, _ := strings.Cut(k, "{")
		if n != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				ok = false
			}
		}
		if ok {
			sum += v
		}
	}
	return sum
}

// Output returns what the binary logged (JSON lines).
func (p *GonodePod) Output() string { return p.log.String() }

// LogLines returns the JSON log records, each as a map; lines that are not
// JSON are skipped.
func (p *GonodePod) LogLines() []map[string]any {
	var recs []map[string]any
	for _, line := range strings.Split(p.Output(), "\n") {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) == nil {
			recs = append(recs, r)
		}
	}
	return recs
}

// Done is closed when the binary has exited.
func (p *GonodePod) Done() <-chan struct{} { return p.done }

// ExitErr is the binary's exit error (nil: status 0), once Done.
func (p *GonodePod) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// ExitedAt is when the binary exited, once Done.
func (p *GonodePod) ExitedAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// Terminate sends SIGTERM, as the kubelet does when a pod is deleted.
func (p *GonodePod) Terminate() error { return p.cmd.Process.Signal(syscall.SIGTERM) }

// Kill kills the pod's processes (SIGKILL) and waits, bounded, for the exit.
func (p *GonodePod) Kill() {
	_ = p.Pod.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// PeersVia reads the node's connected peers, sorted, by calling its built-in
// `gonode` gen_server with `info` from an Elixir pod. The Elixir node must
// already be connected to it: the call is not made otherwise, so reading never
// creates the connection it is meant to observe.
func (p *GonodePod) PeersVia(ex *ElixirPod) ([]string, error) {
	code := `n = :"` + p.NodeName() + `"
if n in Node.list() do
  %{peers: peers} = GenServer.call({:gonode, n}, :info, 10_000)
  peers |> Enum.map(&Atom.to_string/1) |> Enum.sort() |> Enum.join(" ")
else
  raise "not connected to #{n}"
end`
	out, err := ex.EvalE(code, 20*time.Second)
	if err != nil {
		return nil, err
	}
	peers := strings.Fields(out)
	sort.Strings(peers)
	return peers, nil
}

// debugPeers is the part of /debug/peers the harness reads.
type debugPeers struct {
	Connected int `json:"connected"`
	Peers     []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"peers"`
}

// Nodes returns the peers the node is connected to, sorted, from its
// /debug/peers: those in state connected, or pruning (still connected, about
// to be dropped).
func (p *GonodePod) Nodes() ([]string, error) {
	code, body, err := p.c.Get(p.URL("/debug/peers"))
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("/debug/peers: status %d: %s", code, body)
	}
	var r debugPeers
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, fmt.Errorf("/debug/peers: %w", err)
	}
	var peers []string
	for _, x := range r.Peers {
		if x.State == "connected" || x.State == "pruning" {
			peers = append(peers, x.Name)
		}
	}
	sort.Strings(peers)
	if len(peers) != r.Connected {
		return peers, fmt.Errorf("/debug/peers lists %d connected peers %v but counts %d", len(peers), peers, r.Connected)
	}
	return peers, nil
}
