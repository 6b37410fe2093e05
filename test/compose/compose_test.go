//go:build compose

package compose

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/meshview"
	"github.com/gonode/gonode/internal/testutil"
)

// basename is the part before '@' of every node's name
// (GONODE_APPLICATION_NAME and the Elixir containers' RELEASE_NODE).
const basename = "myapp"

// maxImageBytes: the bound on gonode's image.
const maxImageBytes = 30 << 20

// container is one running container of the project.
type container struct {
	Name, Service, IP string
}

func (c container) nodeName() string { return basename + "@" + c.IP }

// containers lists the project's running containers, by name.
func containers(ctx context.Context) ([]container, error) {
	out, err := podman(ctx, "ps", "--filter", "label=com.docker.compose.project="+project,
		"--format", `{{.Names}} {{index .Labels "com.docker.compose.service"}}`)
	if err != nil {
		return nil, err
	}
	var cs []container
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		ip, err := podman(ctx, "inspect", "--format", `{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}`, f[0])
		if err != nil {
			return nil, err
		}
		cs = append(cs, container{Name: f[0], Service: f[1], IP: strings.Fields(ip + " -")[0]})
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	return cs, nil
}

func ofService(cs []container, s string) []container {
	var r []container
	for _, c := range cs {
		if c.Service == s {
			r = append(r, c)
		}
	}
	return r
}

// rpc evaluates Elixir code in the release of an Elixir container (named
// as the running node is, from the container's address) and returns what it
// printed.
func rpc(ctx context.Context, name, code string) (string, error) {
	return podman(ctx, "exec", name, "sh", "-c",
		`RELEASE_NODE=`+basename+`@$(hostname -i | cut -d' ' -f1) exec /app/bin/gonode_example rpc "$1"`, "_", code)
}

// fullMesh reports whether the nodes of cs are all connected to each other
// and to no other node of the cluster, as seen from the first Elixir
// container of cs.
func fullMesh(cs []container) (bool, string) {
	els := ofService(cs, "elixir")
	if len(els) == 0 {
		return false, "no Elixir container to look from"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := rpc(ctx, els[0].Name, meshview.Code)
	if err != nil {
		return false, err.Error()
	}
	var want []string
	for _, c := range cs {
		want = append(want, c.nodeName())
	}
	return meshview.Full(meshview.Parse(out, basename), want, "container")
}

// waitMesh waits until the project runs wantElixir Elixir and wantGo gonode
// containers that form a full mesh, and returns them.
func waitMesh(t *testing.T, wantElixir, wantGo int) []container {
	t.Helper()
	var cs []container
	start := time.Now()
	eventually(t, 3*time.Minute, "full mesh", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var err error
		if cs, err = containers(ctx); err != nil {
			return false, err.Error()
		}
		if len(ofService(cs, "elixir")) != wantElixir || len(ofService(cs, "gonode")) != wantGo {
			return false, fmt.Sprintf("containers %+v, want %d elixir and %d gonode", cs, wantElixir, wantGo)
		}
		return fullMesh(append(ofService(cs, "elixir"), ofService(cs, "gonode")...))
	})
	t.Logf("full mesh of %d Elixir and %d gonode nodes after %s", wantElixir, wantGo, time.Since(start).Round(100*time.Millisecond))
	return cs
}

// TestImage: gonode's image, as `docker-compose build` built it from the
// Dockerfile, is under 30 MB, runs as a non-root user, and its HEALTHCHECK
// (`gonode health`) passes in every gonode container.
func TestImage(t *testing.T) {
	var imgs []struct {
		Size        int64
		User        string
		Healthcheck struct{ Test []string }
	}
	image := "gonode:" + envOr("GONODE_VERSION", "dev")
	if err := json.Unmarshal([]byte(mustPodman(t, "image", "inspect", image)), &imgs); err != nil || len(imgs) != 1 {
		t.Fatalf("podman image inspect %s: %v", image, err)
	}
	img := imgs[0]
	t.Logf("%s: %.1f MB, user %q, health check %q", image, float64(img.Size)/(1<<20), img.User, img.Healthcheck.Test)
	if img.Size <= 0 || img.Size >= maxImageBytes {
		t.Errorf("%s is %d bytes, want under %d", image, img.Size, maxImageBytes)
	}
	if u := strings.Split(img.User, ":")[0]; u == "" || u == "0" || u == "root" {
		t.Errorf("%s runs as user %q, want a non-root user", image, img.User)
	}
	if hc := strings.Join(img.Healthcheck.Test, " "); !strings.HasSuffix(hc, "gonode health") {
		t.Errorf("%s has the health check %q, want gonode health", image, hc)
	}
	cs := waitMesh(t, 3, 2)
	for _, c := range cs {
		pid := strings.TrimSpace(mustPodman(t, "inspect", "--format", "{{.State.Pid}}", c.Name))
		status, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		for _, l := range strings.Split(string(status), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" && f[1] == "0" {
				t.Errorf("%s (%s) runs as root: %s", c.Name, c.Service, l)
			}
		}
	}
	for _, g := range ofService(cs, "gonode") {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := podman(ctx, "healthcheck", "run", g.Name)
		cancel()
		if err != nil {
			t.Errorf("%s: health check: %v %s", g.Name, err, out)
		}
	}
}

// TestMeshAndCalls: 3 Elixir and 2 gonode containers form one full mesh
// through the shared alias; Elixir calls gonode's server by name and gonode
// calls Elixir's :greeter.
func TestMeshAndCalls(t *testing.T) {
	cs := waitMesh(t, 3, 2)
	els, gos := ofService(cs, "elixir"), ofService(cs, "gonode")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, g := range gos {
		out, err := rpc(ctx, els[0].Name, fmt.Sprintf(`IO.inspect(GenServer.call({:gonode, :"%s"}, :ping))`, g.nodeName()))
		if err != nil || strings.TrimSpace(out) != ":pong" {
			t.Errorf("Elixir %s -> gonode %s ping: %q, %v; want :pong", els[0].nodeName(), g.nodeName(), out, err)
		}
		for _, e := range els {
			out, err := rpc(ctx, els[0].Name, fmt.Sprintf(`IO.inspect(GonodeExample.go_calls_greeter(:"%s", :"%s"))`, g.nodeName(), e.nodeName()))
			want := fmt.Sprintf(`{:ok, {:hello, :"%s", :"%s",`, g.nodeName(), e.nodeName())
			if err != nil || !strings.HasPrefix(strings.TrimSpace(out), want) {
				t.Errorf("gonode %s -> Elixir %s :greeter: %q, %v; want %s...", g.nodeName(), e.nodeName(), out, err, want)
			}
		}
	}
}

// prometheus queries the stack's Prometheus through its published port
// (127.0.0.1:9090 in the service's network namespace) and returns the
// response's data.
func prometheus(path string) (json.RawMessage, error) {
	out, err := inEnv(30*time.Second, "compose_in", "bash", "-c",
		`exec 3<>/dev/tcp/127.0.0.1/9090 && printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$1" >&3 && cat <&3`, "_", path)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v: %s", path, err, out)
	}
	_, body, _ := strings.Cut(out, "\r\n\r\n")
	var r struct {
		Status string
		Data   json.RawMessage
		Error  string
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Status != "success" {
		return nil, fmt.Errorf("GET %s: %q %v", path, out, err)
	}
	return r.Data, nil
}

// query returns an instant query's result, by instance label ("" for a
// series without one).
func query(expr string) (map[string]string, error) {
	data, err := prometheus("/api/v1/query?query=" + strings.NewReplacer(" ", "%20", "+", "%2B", "{", "%7B", "}", "%7D", "\"", "%22", "=", "%3D").Replace(expr))
	if err != nil {
		return nil, err
	}
	var v struct {
		Result []struct {
			Metric map[string]string
			Value  [2]any
		}
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	r := map[string]string{}
	for _, s := range v.Result {
		r[s.Metric["instance"]] = fmt.Sprint(s.Value[1])
	}
	return r, nil
}

// promShowsMesh reports whether Prometheus scrapes exactly the gonode
// containers of cs, all up, each with gonode_node_peers equal to the mesh
// size less itself, and records the mesh size (gonode:mesh_nodes:max).
func promShowsMesh(cs []container) (bool, string) {
	gos := ofService(cs, "gonode")
	mesh := len(ofService(cs, "elixir")) + len(gos)
	data, err := prometheus("/api/v1/targets?state=active")
	if err != nil {
		return false, err.Error()
	}
	var tg struct {
		ActiveTargets []struct {
			Labels    map[string]string
			Health    string
			LastError string
		}
	}
	if err := json.Unmarshal(data, &tg); err != nil {
		return false, err.Error()
	}
	var got, want []string
	for _, t := range tg.ActiveTargets {
		got = append(got, t.Labels["job"]+" "+t.Labels["instance"]+" "+t.Health+" "+t.LastError)
	}
	for _, g := range gos {
		want = append(want, "gonode "+g.IP+":9568 up ")
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		return false, fmt.Sprintf("targets %q, want %q", got, want)
	}
	peers, err := query("gonode_node_peers")
	if err != nil {
		return false, err.Error()
	}
	for _, g := range gos {
		if peers[g.IP+":9568"] != strconv.Itoa(mesh-1) {
			return false, fmt.Sprintf("gonode_node_peers %v, want %d for every gonode", peers, mesh-1)
		}
	}
	size, err := query("gonode:mesh_nodes:max")
	if err != nil {
		return false, err.Error()
	}
	if size[""] != strconv.Itoa(mesh) {
		return false, fmt.Sprintf("gonode:mesh_nodes:max %v, want %d", size, mesh)
	}
	return true, ""
}

// TestPrometheusScrapesEveryGonode: Prometheus finds both gonode
// containers through DNS service discovery, scrapes them, and their
// connected-peer gauges and the recording rule show the mesh.
func TestPrometheusScrapesEveryGonode(t *testing.T) {
	cs := waitMesh(t, 3, 2)
	eventually(t, 2*time.Minute, "Prometheus shows the mesh", func() (bool, string) {
		return promShowsMesh(cs)
	})
}

// TestStoppedElixirIsPrunedAndRejoins: `stop` of one Elixir container
// removes its node from every node's peers (and from the metrics); `start`
// brings it back into the full mesh.
func TestStoppedElixirIsPrunedAndRejoins(t *testing.T) {
	cs := waitMesh(t, 3, 2)
	victim := ofService(cs, "elixir")[2]
	mustPodman(t, "stop", "--time", "10", victim.Name)
	cs = waitMesh(t, 2, 2)
	eventually(t, 2*time.Minute, "Prometheus shows the smaller mesh", func() (bool, string) {
		return promShowsMesh(cs)
	})
	mustPodman(t, "start", victim.Name)
	cs = waitMesh(t, 3, 2)
	eventually(t, 2*time.Minute, "Prometheus shows the whole mesh again", func() (bool, string) {
		return promShowsMesh(cs)
	})
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// eventually polls cond every half second (each poll runs commands in
// containers) until it holds, and fails the test with what and cond's last
// state after within.
func eventually(t testing.TB, within time.Duration, what string, cond testutil.Cond) {
	t.Helper()
	if err := testutil.Poll(context.Background(), within, 500*time.Millisecond, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
