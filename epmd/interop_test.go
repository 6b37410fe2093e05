package epmd_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gonode/gonode/epmd"
	"github.com/gonode/gonode/epmd/epmdtest"
	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
)

// releaseCommand returns argv running prog from rel (the host's OTP, or a
// chroot of the OTP matrix). beamtest keeps its own version unexported.
func releaseCommand(rel beamtest.Release, prog string, args ...string) []string {
	if rel.Root == "" || rel.Root == "/" {
		return append([]string{prog}, args...)
	}
	return append([]string{"chroot", rel.Root, prog}, args...)
}

// startRealEPMD runs OTP's epmd in the foreground on port, killed in
// t.Cleanup, and waits until it answers.
func startRealEPMD(t *testing.T, rel beamtest.Release, port int) *epmd.Client {
	t.Helper()
	argv := releaseCommand(rel, "epmd", "-port", strconv.Itoa(port), "-address", "127.0.0.1")
	cmd := exec.Command(argv[0], argv[1:]...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start epmd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("epmd output:\n%s", out.String())
		}
	})
	c := &epmd.Client{Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	testutil.Eventually(t, 20*time.Second, func() (bool, string) {
		_, err := c.Names(context.Background())
		return err == nil, fmt.Sprintf("Names: %v", err)
	})
	return c
}

// epmdNames runs `epmd -port P -names` of rel and returns its output.
func epmdNames(t *testing.T, rel beamtest.Release, port int) string {
	t.Helper()
	argv := releaseCommand(rel, "epmd", "-port", strconv.Itoa(port), "-names")
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("epmd -names: %v: %s", err, out)
	}
	return string(out)
}

// TestClientAgainstRealEPMD registers with OTP's own epmd of every release:
// `epmd -names` lists us, lookups answer, a live name is refused, the
// registration vanishes when we close, and a re-registration gets a new
// creation.
func TestClientAgainstRealEPMD(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		port := epmdtest.FreePort(t)
		c := startRealEPMD(t, rel, port)
		ctx := context.Background()

		n := node("gonode", 9100)
		reg, err := c.Register(ctx, n)
		if err != nil {
			t.Fatalf("Register: %v", err)
		}
		defer reg.Close()
		if reg.Creation == 0 {
			t.Fatal("creation 0 from a real epmd")
		}
		if out := epmdNames(t, rel, port); !strings.Contains(out, "name gonode at port 9100") {
			t.Fatalf("epmd -names does not list us:\n%s", out)
		}
		got, err := c.LookupPort(ctx, "gonode")
		if err != nil {
			t.Fatalf("LookupPort: %v", err)
		}
		if got.Port != 9100 || got.Type != epmd.NodeTypeNormal || got.HighestVersion != 6 || got.LowestVersion != 5 {
			t.Fatalf("LookupPort = %+v", got)
		}
		names, err := c.Names(ctx)
		if err != nil || fmt.Sprint(names.Nodes) != fmt.Sprint([]epmd.NameEntry{{Name: "gonode", Port: 9100}}) || int(names.EPMDPort) != port {
			t.Fatalf("Names = %+v, %v", names, err)
		}
		if _, err := c.LookupPort(ctx, "nobody"); !errors.Is(err, epmd.ErrNotFound) {
			t.Fatalf("LookupPort(nobody) = %v, want ErrNotFound", err)
		}
		if _, err := c.Register(ctx, node("gonode", 9200)); !errors.Is(err, epmd.ErrRegistrationRefused) {
			t.Fatalf("second Register of a live name = %v, want ErrRegistrationRefused", err)
		}

		first := reg.Creation
		reg.Close()
		testutil.Eventually(t, 10*time.Second, func() (bool, string) {
			out := epmdNames(t, rel, port)
			return !strings.Contains(out, "gonode"), out
		})
		again, err := c.Register(ctx, n)
		if err != nil {
			t.Fatalf("Register again: %v", err)
		}
		defer again.Close()
		if again.Creation == first {
			t.Fatalf("real epmd gave the same creation %d twice", first)
		}
	})
}

var namesRE = regexp.MustCompile(`\{"([^"]+)",(\d+)\}`)

// TestErlRegistersWithOurServer runs our Server on port 4369 of the test's
// namespace (nothing else serves it there) and starts real BEAM nodes of every
// release against it: erl registers itself, erl_epmd:names() lists it and us,
// erl_epmd:port_please finds us, the node's creation is the one we handed
// out, and a restarted node gets a new one.
func TestErlRegistersWithOurServer(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		rec := &epmdtest.Recorder{}
		srv, err := epmd.New(epmd.DefaultConfig(), epmd.WithObserver(rec))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(context.Background()); err != nil {
			t.Fatalf("Start on 4369: %v", err)
		}
		t.Cleanup(func() { srv.Close() })
		c := &epmd.Client{} // the zero Client asks 127.0.0.1:4369
		reg, err := c.Register(context.Background(), node("gonode", 9100))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { reg.Close() })

		cookie := beamtest.RandomCookie()
		var lastCreation string
		for round := range 2 {
			a := beamtest.Start(t, rel, beamtest.Options{Name: "a@127.0.0.1", Cookie: cookie, ErlArgs: []string{"-start_epmd", "false"}})
			out := a.Eval(t, "erl_epmd:names().")
			found := map[string]string{}
			for _, m := range namesRE.FindAllStringSubmatch(out, -1) {
				found[m[1]] = m[2]
			}
			if found["gonode"] != "9100" || found["a"] == "" || len(found) != 2 {
				t.Fatalf("erl_epmd:names() = %s, want a and gonode", out)
			}
			if out := a.Eval(t, `erl_epmd:port_please("gonode", {127,0,0,1}).`); out != "{port,9100,6}" {
				t.Fatalf("port_please(gonode) = %s, want {port,9100,6}", out)
			}
			info, err := c.LookupPort(context.Background(), "a")
			if err != nil || strconv.Itoa(int(info.Port)) != found["a"] {
				t.Fatalf("our LookupPort(a) = %+v, %v; erl says port %s", info, err, found["a"])
			}
			creation := a.Eval(t, "erlang:system_info(creation).")
			var ours uint32
			for _, r := range srv.Nodes() {
				if r.Node.Name == "a" {
					ours = r.Creation
				}
			}
			if creation != strconv.FormatUint(uint64(ours), 10) {
				t.Fatalf("round %d: erl's creation %s, our server handed out %d", round, creation, ours)
			}
			if creation == lastCreation {
				t.Fatalf("round %d: the restarted node got creation %s again", round, creation)
			}
			t.Logf("round %d: erl_epmd:names() = %s, creation %s", round, out, creation)
			lastCreation = creation
			a.Stop()
			waitGone(t, c, "a")
		}
		if n := rec.WaitFor(epmd.RequestAlive2, epmd.ResultOK, 3); n != 3 {
			t.Fatalf("alive2/ok = %d, want 3 (%s)", n, rec)
		}
	})
}
