package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/beamtest"
)

// buildBinary builds gonode with its version set at link time, once per
// test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "gonode")
	cmd := exec.Command(gobin, "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinary runs the built program: --version shows the link-time version,
// and SIGTERM or SIGINT stops a running node with status 0. The node serves
// EPMD on port 4369: it needs the test's network namespace.
func TestBinary(t *testing.T) {
	beamtest.RequireNetns(t)
	bin := buildBinary(t)

	out, err := exec.Command(bin, "--version").Output()
	if err != nil || string(out) != "gonode v9.8.7-test\n" {
		t.Fatalf("--version: %q, %v", out, err)
	}

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			const cookie = "Zq7-DISTINCTIVE-COOKIE-4Xw"
			cmd := exec.Command(bin, "--pod-ip=127.0.0.1", "--metrics-addr=127.0.0.1:0", "--log-format=json")
			cmd.Env = append(os.Environ(), "RELEASE_COOKIE="+cookie)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			lines := make(chan string, 64)
			go func() {
				s := bufio.NewScanner(stdout)
				for s.Scan() {
					lines <- s.Text()
				}
				close(lines)
				exited <- cmd.Wait()
			}()
			t.Cleanup(func() { _ = cmd.Process.Kill() })

			var log []string
			waitFor := func(msg string) {
				t.Helper()
				timeout := time.After(30 * time.Second)
				for {
					select {
					case l, ok := <-lines:
						if !ok {
							t.Fatalf("stdout closed before %q; log:\n%s\nstderr:\n%s", msg, strings.Join(log, "\n"), stderr.String())
						}
						log = append(log, l)
						if strings.Contains(l, msg) {
							return
						}
					case <-timeout:
						t.Fatalf("no %q within 30 s; log:\n%s", msg, strings.Join(log, "\n"))
					}
				}
			}
			waitFor(`"msg":"gonode started"`)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			waitFor(`"msg":"gonode stopped"`)
			for l := range lines {
				log = append(log, l)
			}
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("exit after %v: %v; stderr:\n%s", sig, err, stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no exit within 10 s of %v", sig)
			}
			all := strings.Join(log, "\n") + stderr.String()
			if strings.Contains(all, cookie) {
				t.Fatal("the cookie appears in the output")
			}
			if !strings.Contains(all, `"version":"v9.8.7-test"`) {
				t.Errorf("the startup line does not carry the version:\n%s", all)
			}
		})
	}
}
