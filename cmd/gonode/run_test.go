package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
)

// TestMain runs the package's tests in a network namespace of their own:
// the end-to-end tests start a real node with an embedded EPMD on port 4369
// and real BEAM nodes.
func TestMain(m *testing.M) { os.Exit(beamtest.RunInNetns(m)) }

// gonodeRun is one run(...) in a goroutine.
type gonodeRun struct {
	cancel  context.CancelFunc
	out     *testutil.SyncBuffer
	errOut  *testutil.SyncBuffer
	started chan started
	code    chan int
}

func startRun(t *testing.T, args []string, vars map[string]string) *gonodeRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &gonodeRun{cancel: cancel, out: &testutil.SyncBuffer{}, errOut: &testutil.SyncBuffer{},
		started: make(chan started, 1), code: make(chan int, 1)}
	env := testEnv(vars)
	env.OnStarted = func(s started) { r.started <- s }
	go func() { r.code <- run(ctx, args, env, r.out, r.errOut) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.code:
		case <-time.After(10 * time.Second):
			t.Errorf("run did not return after cancel")
		}
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", r.out.String(), r.errOut.String())
		}
	})
	return r
}

// waitStarted returns the started node, or fails when run returns first.
func (r *gonodeRun) waitStarted(t *testing.T) started {
	t.Helper()
	select {
	case s := <-r.started:
		return s
	case code := <-r.code:
		r.code <- code
		t.Fatalf("run exited with %d before the node started:\n%s%s", code, r.out.String(), r.errOut.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the node did not start within 30 s:\n%s", r.out.String())
	}
	return started{}
}

// stop cancels the run's context, as the first SIGTERM does, and returns
// the exit status.
func (r *gonodeRun) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	select {
	case code := <-r.code:
		r.code <- code // for Cleanup
		return code
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10 s of the stop")
	}
	return -1
}

func httpGet(url string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestRunEndToEnd runs the binary's run with static discovery towards a
// real BEAM node: the node starts, discovery connects it, /readyz turns
// ready at --min-peers, the BEAM node sees it, and cancelling the context
// (what SIGTERM does) stops it with status 0 and a clean nodedown on the
// BEAM side. The cookie, given by RELEASE_COOKIE, appears in no output.
func TestRunEndToEnd(t *testing.T) {
	cookie := beamtest.RandomCookie()
	beam := beamtest.Start(t, beamtest.Host, beamtest.Options{Name: "beam@127.0.0.1", Cookie: cookie})

	r := startRun(t, []string{
		"--pod-ip=127.0.0.1",
		"--metrics-addr=127.0.0.1:0",
		"--strategy=static", "--hosts=" + beam.Name,
		"--polling-interval=200ms",
		"--min-peers=1",
		"--log-level=debug",
	}, map[string]string{"RELEASE_COOKIE": cookie})
	s := r.waitStarted(t)
	if got, want := s.Node.Name(), "gonode@127.0.0.1"; got != want {
		t.Fatalf("node name %q, want %q", got, want)
	}
	base := "http://" + s.MetricsAddr

	if code, body, err := httpGet(base + "/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("/healthz: %d %q %v", code, body, err)
	}
	testutil.EventuallyNamed(t, 20*time.Second, "discovery connects the BEAM node and /readyz is ready", func() (bool, string) {
		code, body, err := httpGet(base + "/readyz")
		peers := s.Node.Connected()
		return code == http.StatusOK && slices.Contains(peers, beam.Name),
			fmt.Sprintf("/readyz %d %q %v, connected %v", code, strings.TrimSpace(body), err, peers)
	})
	if got := beam.Eval(t, "nodes()."); !strings.Contains(got, "gonode@127.0.0.1") {
		t.Fatalf("the BEAM node's nodes() = %s, want gonode@127.0.0.1 listed", got)
	}
	testutil.EventuallyNamed(t, 10*time.Second, "/metrics shows the peer, the connect and the traffic", func() (bool, string) {
		code, body, err := httpGet(base + "/metrics")
		want := []string{"go_goroutines", "gonode_node_peers 1", `gonode_node_connects_total{direction="out",result="ok"} 1`,
			`gonode_discovery_polls_total{result="ok",strategy="static"}`, `gonode_build_info{goversion=`}
		var missing []string
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = append(missing, w)
			}
		}
		if code != http.StatusOK || err != nil || len(missing) > 0 {
			return false, fmt.Sprintf("%d %v, missing %q", code, err, missing)
		}
		return !strings.Contains(body, `gonode_dist_messages_total{direction="in"} 0`), "no message counted in"
	})
	if code, body, err := httpGet(base + "/debug/peers"); err != nil || code != http.StatusOK || !strings.Contains(body, beam.Name) {
		t.Fatalf("/debug/peers: %d %v, %q", code, err, body)
	}

	if code := r.stop(t); code != exitOK {
		t.Fatalf("exit status %d after the stop, want 0", code)
	}
	testutil.EventuallyNamed(t, 10*time.Second, "the BEAM node sees gonode leave", func() (bool, string) {
		got := beam.Eval(t, "nodes().")
		return !strings.Contains(got, "gonode@"), "nodes() = " + got
	})

	out := r.out.String() + r.errOut.String()
	if strings.Contains(out, cookie) {
		t.Fatalf("the cookie appears in the output")
	}
	for _, want := range []string{`"msg":"gonode started"`, `"strategy":"static"`, `"epmd":"embedded"`,
		`"distribution":"name"`, `"component":"discovery"`, `"msg":"gonode stopped"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the logs have no %s", want)
		}
	}
}

// TestRunStartFailures: a listener that cannot bind ends run with status 1
// and a log line that says why, without the cookie.
func TestRunStartFailures(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	port := busy.Addr().(*net.TCPAddr).Port
	const cookie = "Zq7-DISTINCTIVE-COOKIE-4Xw"
	tests := []struct {
		name string
		args []string
		log  string
	}{
		{"metrics port taken", []string{fmt.Sprintf("--metrics-addr=127.0.0.1:%d", port)}, "cannot listen for metrics"},
		{"dist port taken", []string{"--metrics-addr=", "--listen-addr=127.0.0.1", fmt.Sprintf("--dist-port=%d", port), "--epmd=none"}, "cannot start the node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut testutil.SyncBuffer
			args := append([]string{"--cookie=" + cookie, "--pod-ip=127.0.0.1"}, tt.args...)
			code := run(context.Background(), args, testEnv(nil), &out, &errOut)
			all := out.String() + errOut.String()
			if code != exitFailure {
				t.Errorf("exit %d, want %d:\n%s", code, exitFailure, all)
			}
			if !strings.Contains(all, tt.log) {
				t.Errorf("the output does not say %q:\n%s", tt.log, all)
			}
			if strings.Contains(all, cookie) {
				t.Errorf("the cookie appears in the output:\n%s", all)
			}
		})
	}
}

func TestSignalContext(t *testing.T) {
	sigs := make(chan os.Signal)
	forced := make(chan struct{})
	ctx, stop := signalContext(context.Background(), sigs, func() { close(forced) })
	defer stop()
	if ctx.Err() != nil {
		t.Fatal("the context ended before any signal")
	}
	sigs <- syscall.SIGTERM
	<-ctx.Done()
	if cause := context.Cause(ctx); cause == nil || !strings.Contains(cause.Error(), "terminated") {
		t.Errorf("cause %v, want the signal", cause)
	}
	select {
	case <-forced:
		t.Fatal("the first signal forced the exit")
	default:
	}
	sigs <- syscall.SIGINT
	<-forced
}

func TestSignalContextStopWithoutSignal(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	ctx, stop := signalContext(context.Background(), sigs, func() { t.Error("forced without a signal") })
	stop()
	<-ctx.Done() // stop releases the context
	sigs <- syscall.SIGTERM
	if len(sigs) != 1 {
		t.Error("the watcher still reads signals after stop")
	}
}

// TestRunLeavesNoGoroutines starts and stops a node with discovery off and
// the HTTP listener on, then checks that nothing run started is left. The
// node serves EPMD on port 4369: it needs the test's network namespace.
func TestRunLeavesNoGoroutines(t *testing.T) {
	beamtest.RequireNetns(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	code := func() int {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out testutil.SyncBuffer
		env := testEnv(nil)
		env.OnStarted = func(s started) {
			if code, _, err := httpGet("http://" + s.MetricsAddr + "/healthz"); err != nil || code != http.StatusOK {
				t.Errorf("/healthz: %d %v", code, err)
			}
			cancel()
		}
		return run(ctx, []string{"--cookie=c", "--pod-ip=127.0.0.1", "--metrics-addr=127.0.0.1:0"}, env, &out, &out)
	}()
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
}

// TestRunCancelledBeforeStart: a stop requested while the node starts is a
// clean exit, whichever of the start and the stop wins. A start that wins
// serves EPMD on port 4369: it needs the test's network namespace.
func TestRunCancelledBeforeStart(t *testing.T) {
	beamtest.RequireNetns(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out testutil.SyncBuffer
	code := run(ctx, []string{"--cookie=c", "--pod-ip=127.0.0.1", "--metrics-addr=127.0.0.1:0"}, testEnv(nil), &out, &out)
	if code != exitOK {
		t.Fatalf("exit %d, want 0:\n%s", code, out.String())
	}
}

func TestLogFormat(t *testing.T) {
	tests := []struct {
		name     string
		format   string
		terminal bool
		level    string
		json     bool
	}{
		{"default off a terminal is JSON", "", false, "info", true},
		{"default on a terminal is text", "", true, "info", false},
		{"explicit JSON on a terminal", "json", true, "info", true},
		{"explicit text", "text", false, "info", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv(nil)
			env.IsTerminal = func(io.Writer) bool { return tt.terminal }
			var b bytes.Buffer
			log := newLogger(config{LogFormat: tt.format, LogLevel: tt.level}, env, &b)
			log.Debug("hidden at info")
			log.With("component", "test").Info("shown")
			got := b.String()
			if strings.Contains(got, "hidden at info") {
				t.Errorf("a debug line passed the info level: %q", got)
			}
			if isJSON := strings.HasPrefix(got, "{"); isJSON != tt.json {
				t.Errorf("JSON %v, want %v: %q", isJSON, tt.json, got)
			}
			if !strings.Contains(got, "component") || !strings.Contains(got, "shown") {
				t.Errorf("the line lacks its message or component: %q", got)
			}
		})
	}
}

// TestRunWarnsOnceAboutALooseCookieFile: a cookie file readable by group or
// others starts the node with one warning that says how to fix it and shows
// neither the cookie nor anything but the path and mode; an owner-only file
// starts it without.
func TestRunWarnsOnceAboutALooseCookieFile(t *testing.T) {
	const cookie = "Zq7-DISTINCTIVE-COOKIE-4Xw"
	const warning = "the cookie file can be read by group or others"
	for _, tt := range []struct {
		mode os.FileMode
		want int
	}{{0o644, 1}, {0o400, 0}} {
		t.Run(fmt.Sprintf("%04o", tt.mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cookie")
			if err := os.WriteFile(path, []byte(cookie+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out testutil.SyncBuffer
			env := testEnv(nil)
			env.OnStarted = func(started) { cancel() }
			code := run(ctx, []string{"--cookie-file=" + path, "--pod-ip=127.0.0.1", "--metrics-addr="}, env, &out, &out)
			all := out.String()
			if code != exitOK {
				t.Fatalf("exit %d:\n%s", code, all)
			}
			if strings.Contains(all, cookie) {
				t.Fatalf("the cookie appears in the output:\n%s", all)
			}
			if n := strings.Count(all, warning); n != tt.want {
				t.Fatalf("%d warnings about the cookie file's mode, want %d:\n%s", n, tt.want, all)
			}
			if tt.want == 0 {
				return
			}
			for _, line := range strings.Split(all, "\n") {
				if !strings.Contains(line, warning) {
					continue
				}
				for _, s := range []string{`"level":"WARN"`, "chmod 400", "defaultMode: 0400", `"path":"` + path + `"`, `"mode":"0644"`} {
					if !strings.Contains(line, s) {
						t.Errorf("the warning does not say %s: %s", s, line)
					}
				}
			}
		})
	}
}

// TestRunWarnsAboutUnknownGonodeVariables: a GONODE_ variable no option
// reads (a typo of one) gets one warning at start naming it and the
// variable it likely meant; the known ones get none.
func TestRunWarnsAboutUnknownGonodeVariables(t *testing.T) {
	beamtest.RequireNetns(t) // the node serves EPMD on port 4369
	r := startRun(t, []string{"--pod-ip=127.0.0.1", "--metrics-addr=", "--cookie=c"},
		map[string]string{"GONODE_SERVCE": "app-headless", "GONODE_LOG_LEVEL": "info", "GONODE_UNRELATED_THING": "1"})
	r.waitStarted(t)
	var warnings []string
	for _, line := range strings.Split(r.out.String(), "\n") {
		if strings.Contains(line, "is not a gonode setting") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 2 {
		t.Fatalf("%d warnings about unknown variables, want 2 (GONODE_SERVCE, GONODE_UNRELATED_THING):\n%s", len(warnings), strings.Join(warnings, "\n"))
	}
	for i, want := range [][]string{
		{`"level":"WARN"`, `"variable":"GONODE_SERVCE"`, `"did_you_mean":"GONODE_SERVICE"`},
		{`"level":"WARN"`, `"variable":"GONODE_UNRELATED_THING"`},
	} {
		for _, s := range want {
			if !strings.Contains(warnings[i], s) {
				t.Errorf("warning %d does not say %s: %s", i, s, warnings[i])
			}
		}
	}
	if strings.Contains(warnings[1], "did_you_mean") {
		t.Errorf("a variable close to none gets a suggestion: %s", warnings[1])
	}
}
