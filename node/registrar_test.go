package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/lib"
	ergonode "github.com/ergo-services/ergo/node"
	"go.uber.org/goleak"

	"github.com/gonode/gonode/epmd"
	"github.com/gonode/gonode/epmd/epmdtest"
	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
)

// These tests run in the package's network namespace (TestMain in
// node_test.go): the EPMD ports they use are theirs alone.

// regLeakCheck fails t if goroutines started during the test outlive its
// cleanups (it is registered first, so it runs last).
func regLeakCheck(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func registrarConfig(mode EPMDMode, epmdPort int) Config {
	cfg := DefaultConfig()
	cfg.Name, cfg.Cookie = "gonode@127.0.0.1", "c"
	cfg.EPMD, cfg.EPMDPort = mode, epmdPort
	cfg.EPMDAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(epmdPort))
	return cfg
}

func newTestRegistrar(t *testing.T, cfg Config, obs epmd.Observer) *registrar {
	t.Helper()
	r := newRegistrar(cfg, nil, obs)
	t.Cleanup(func() { r.Close() })
	return r
}

var regOpts = ergonode.RegisterOptions{Port: 9100, Creation: 77, HandshakeVersion: 6}

// lookup asks the EPMD at 127.0.0.1:port for name.
func lookup(port int, name string) (epmd.NodeInfo, error) {
	c := &epmd.Client{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	return c.LookupPort(context.Background(), name)
}

func waitRegistered(t *testing.T, port int, name string, wantPort uint16) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, func() (bool, string) {
		info, err := lookup(port, name)
		return err == nil && info.Port == wantPort, fmt.Sprintf("lookup = %+v, %v", info, err)
	})
}

func waitUnregistered(t *testing.T, port int, name string) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, func() (bool, string) {
		info, err := lookup(port, name)
		return errors.Is(err, epmd.ErrNotFound), fmt.Sprintf("lookup = %+v, %v", info, err)
	})
}

func TestRegistrarEmbeddedServes(t *testing.T) {
	regLeakCheck(t)
	port := epmdtest.FreePort(t)
	rec := &epmdtest.Recorder{}
	r := newRegistrar(registrarConfig(EPMDEmbedded, port), nil, rec)
	if err := r.Register(context.Background(), "gonode@127.0.0.1", regOpts); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(context.Background(), "gonode@127.0.0.1", regOpts); err == nil {
		t.Fatal("a second Register succeeded")
	}
	info, err := lookup(port, "gonode")
	if err != nil || info.Port != 9100 || info.HighestVersion != 6 {
		t.Fatalf("our embedded EPMD answers %+v, %v", info, err)
	}
	// Both families are served.
	c6 := &epmd.Client{Addr: net.JoinHostPort("::1", strconv.Itoa(port))}
	if info, err := c6.LookupPort(context.Background(), "gonode"); err != nil || info.Port != 9100 {
		t.Fatalf("over IPv6: %+v, %v", info, err)
	}
	if c := r.Creation(); c == regOpts.Creation || c < 4 {
		t.Fatalf("Creation() = %d, want the embedded EPMD's 32-bit creation, not ergo's %d", c, regOpts.Creation)
	}

	for _, peer := range []string{"gonode@127.0.0.1", "gonode@localhost", "gonode@::1"} {
		route, err := r.Resolve(peer)
		if err != nil || route.Port != 9100 || route.Node != "gonode" {
			t.Fatalf("Resolve(%s) = %+v, %v", peer, route, err)
		}
	}
	if _, err := r.Resolve("nobody@127.0.0.1"); !errors.Is(err, epmd.ErrNotFound) || !errors.Is(err, ErrPeerUnresolved) {
		t.Fatalf("Resolve(nobody) = %v, want ErrPeerUnresolved and epmd.ErrNotFound", err)
	}
	if n := rec.WaitFor(epmd.RequestAlive2, epmd.ResultOK, 1); n != 1 {
		t.Fatalf("the observer saw alive2/ok %d times, want 1 (%s)", n, rec)
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// The port is free again: the embedded server is gone.
	l, err := net.Listen("tcp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("EPMD port still held after Close: %v", err)
	}
	l.Close()
	if err := r.Register(context.Background(), "gonode@127.0.0.1", regOpts); err == nil {
		t.Fatal("Register after Close succeeded")
	}
}

// TestRegistrarEmbeddedUsesRunningEPMD: when another EPMD serves the port,
// the registrar registers with it, as erl does; when that EPMD goes away,
// the registrar serves the port itself and registers again.
func TestRegistrarEmbeddedUsesRunningEPMD(t *testing.T) {
	regLeakCheck(t)
	other, addr := epmdtest.StartServer(t, epmd.DefaultConfig())
	_, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)

	r := newTestRegistrar(t, registrarConfig(EPMDEmbedded, port), nil)
	if err := r.Register(context.Background(), "gonode@127.0.0.1", regOpts); err != nil {
		t.Fatal(err)
	}
	nodes := other.Nodes()
	if len(nodes) != 1 || nodes[0].Node.Name != "gonode" || nodes[0].Node.Port != 9100 {
		t.Fatalf("the running EPMD has %+v, want gonode at 9100", nodes)
	}
	if r.Creation() != nodes[0].Creation {
		t.Fatalf("Creation() = %d, the EPMD handed out %d", r.Creation(), nodes[0].Creation)
	}
	first := r.Creation()

	// The other EPMD dies: the registrar takes the port over and registers
	// with its own server.
	other.Close()
	waitRegistered(t, port, "gonode", 9100)
	testutil.Eventually(t, 15*time.Second, func() (bool, string) {
		c := r.Creation()
		return c != first, fmt.Sprintf("creation %d", c)
	})
	r.Close()
	testutil.Eventually(t, 15*time.Second, func() (bool, string) {
		_, err := lookup(port, "gonode")
		return err != nil, fmt.Sprintf("lookup after Close: %v", err)
	})
}

// TestRegistrarEmbeddedWithRealEPMD: OTP's epmd serves the port; the
// registrar registers with it and `epmd -names` lists the node until Close.
func TestRegistrarEmbeddedWithRealEPMD(t *testing.T) {
	beamtest.RequireRelease(t, beamtest.Host, "epmd")
	port := epmdtest.FreePort(t)
	cmd := exec.Command("epmd", "-port", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testutil.Eventually(t, 15*time.Second, func() (bool, string) {
		_, err := (&epmd.Client{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}).Names(context.Background())
		return err == nil, fmt.Sprint(err)
	})
	names := func() string {
		out, _ := exec.Command("epmd", "-port", strconv.Itoa(port), "-names").CombinedOutput()
		return string(out)
	}
	r := newTestRegistrar(t, registrarConfig(EPMDEmbedded, port), nil)
	if err := r.Register(context.Background(), "gonode@127.0.0.1", regOpts); err != nil {
		t.Fatal(err)
	}
	if out := names(); !strings.Contains(out, "name gonode at port 9100") {
		t.Fatalf("epmd -names:\n%s", out)
	}
	r.Close()
	testutil.Eventually(t, 15*time.Second, func() (bool, string) {
		out := names()
		return !strings.Contains(out, "gonode"), out
	})
}

func TestRegistrarExternal(t *testing.T) {
	regLeakCheck(t)
	ext, addr := epmdtest.StartServer(t, epmd.DefaultConfig())
	_, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	cfg := registrarConfig(EPMDExternal, port)
	cfg.EPMDAddr = addr

	t.Run("registers and unregisters", func(t *testing.T) {
		r := newTestRegistrar(t, cfg, nil)
		if err := r.Register(context.Background(), "gonode@127.0.0.1", regOpts); err != nil {
			t.Fatal(err)
		}
		if nodes := ext.Nodes(); len(nodes) != 1 || nodes[0].Creation != r.Creation() {
			t.Fatalf("external EPMD has %+v; registrar creation %d", nodes, r.Creation())
		}
		route, err := r.Resolve("gonode@127.0.0.1")
		if err != nil || route.Port != 9100 || route.Host != "127.0.0.1" {
			t.Fatalf("Resolve = %+v, %v", route, err)
		}
		r.Close()
		waitUnregistered(t, port, "gonode")
	})
	t.Run("node context ends", func(t *testing.T) {
		r := newTestRegistrar(t, cfg, nil)
		ctx, cancel := context.WithCancel(context.Background())
		if err := r.Register(ctx, "gonode@127.0.0.1", regOpts); err != nil {
			t.Fatal(err)
		}
		cancel()
		waitUnregistered(t, port, "gonode")
	})
	t.Run("name taken", func(t *testing.T) {
		holder := newTestRegistrar(t, cfg, nil)
		if err := holder.Register(context.Background(), "gonode@127.0.0.1", regOpts); err != nil {
			t.Fatal(err)
		}
		r := newTestRegistrar(t, cfg, nil)
		if err := r.Register(context.Background(), "gonode@127.0.0.1", regOpts); !errors.Is(err, epmd.ErrRegistrationRefused) {
			t.Fatalf("Register of a taken name = %v, want ErrRegistrationRefused", err)
		}
	})
	t.Run("no EPMD there", func(t *testing.T) {
		cfg := cfg
		cfg.EPMDAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(epmdtest.FreePort(t)))
		r := newTestRegistrar(t, cfg, nil)
		if err := r.Register(context.Background(), "gonode@127.0.0.1", regOpts); err == nil {
			t.Fatal("Register with no EPMD listening succeeded")
		}
	})
}

func TestRegistrarNone(t *testing.T) {
	cfg := registrarConfig(EPMDNone, epmdtest.FreePort(t))
	cfg.DistPort = 9999
	r := newTestRegistrar(t, cfg, nil)
	if err := r.Register(context.Background(), "gonode@127.0.0.1", regOpts); err != nil {
		t.Fatal(err)
	}
	if c := r.Creation(); c != regOpts.Creation {
		t.Fatalf("Creation() = %d, want ergo's %d without EPMD", c, regOpts.Creation)
	}
	if _, err := lookup(cfg.EPMDPort, "gonode"); err == nil {
		t.Fatal("an EPMD answers in mode none")
	}
	tests := []struct {
		peer string
		want ergonode.Route
	}{
		{"app@10.1.2.3", ergonode.Route{Node: "app", Host: "10.1.2.3", Port: 9999}},
		{"app@app-0.app.default.svc.cluster.local", ergonode.Route{Node: "app", Host: "app-0.app.default.svc.cluster.local", Port: 9999}},
	}
	for _, tt := range tests {
		t.Run(tt.peer, func(t *testing.T) {
			got, err := r.Resolve(tt.peer)
			if err != nil || got != tt.want {
				t.Fatalf("Resolve = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestRegistrarBadNames(t *testing.T) {
	for _, mode := range []EPMDMode{EPMDEmbedded, EPMDNone} {
		r := newTestRegistrar(t, registrarConfig(mode, epmdtest.FreePort(t)), nil)
		for _, name := range []string{"", "noat", "a@", "@host", "a@b@c", strings.Repeat("n", 256) + "@h", "a\x00b@h"} {
			if _, err := r.Resolve(name); !errors.Is(err, ErrPeerUnresolved) || !errors.Is(err, ErrInvalidName) {
				t.Errorf("%s: Resolve(%q) = %v, want ErrPeerUnresolved and ErrInvalidName", mode, name, err)
			}
			if err := r.Register(context.Background(), name, regOpts); !errors.Is(err, ErrInvalidName) {
				t.Errorf("%s: Register(%q) = %v, want ErrInvalidName", mode, name, err)
			}
		}
	}
}

func TestRegistrarProxyUnsupported(t *testing.T) {
	r := newTestRegistrar(t, registrarConfig(EPMDEmbedded, DefaultEPMDPort), nil)
	if err := r.RegisterProxy("a@b", 1, ergonode.ProxyFlags{}); !errors.Is(err, lib.ErrUnsupported) {
		t.Errorf("RegisterProxy = %v", err)
	}
	if err := r.UnregisterProxy("a@b"); !errors.Is(err, lib.ErrUnsupported) {
		t.Errorf("UnregisterProxy = %v", err)
	}
	if _, err := r.ResolveProxy("a@b"); !errors.Is(err, lib.ErrUnsupported) {
		t.Errorf("ResolveProxy = %v", err)
	}
	if _, err := r.Config(); !errors.Is(err, lib.ErrUnsupported) {
		t.Errorf("Config = %v", err)
	}
	if _, err := r.ConfigItem("x"); !errors.Is(err, lib.ErrUnsupported) {
		t.Errorf("ConfigItem = %v", err)
	}
	if err := r.SetConfigUpdateCallback(nil); !errors.Is(err, lib.ErrUnsupported) {
		t.Errorf("SetConfigUpdateCallback = %v", err)
	}
}

// TestRegistrarResolveIsBounded: a peer host whose EPMD port accepts but never
// answers (or nothing listens at all) gives a clear error, never a hang.
func TestRegistrarResolveIsBounded(t *testing.T) {
	l := testutil.SilentListener(t)
	port := l.Addr().(*net.TCPAddr).Port
	r := newTestRegistrar(t, registrarConfig(EPMDEmbedded, port), nil)
	r.resolveTimeout = 100 * time.Millisecond
	_, err := r.Resolve("mute@127.0.0.1")
	if !errors.Is(err, ErrPeerUnresolved) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Resolve against a mute EPMD = %v, want ErrPeerUnresolved and context.DeadlineExceeded", err)
	}
	r2 := newTestRegistrar(t, registrarConfig(EPMDEmbedded, epmdtest.FreePort(t)), nil)
	if _, err := r2.Resolve("x@127.0.0.1"); !errors.Is(err, ErrPeerUnresolved) || !strings.Contains(err.Error(), "no EPMD answered") {
		t.Fatalf("Resolve with nothing listening = %v", err)
	}
	// A DNS server on loopback that is not there: the lookup fails without
	// any traffic leaving the host.
	deadDNS := epmdtest.FreePort(t)
	r2.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", strconv.Itoa(deadDNS)))
	}}
	if _, err := r2.Resolve("x@no-such-host.invalid"); !errors.Is(err, ErrPeerUnresolved) || !strings.Contains(err.Error(), "look up host") {
		t.Fatalf("Resolve of an unknown host = %v", err)
	}
}

var erlNamesRE = regexp.MustCompile(`\{"([^"]+)",(\d+)\}`)

// TestRegistrarWithErl: in embedded mode our registrar serves the port, erl
// nodes of every release register with it (-start_epmd false, ERL_EPMD_PORT),
// list both nodes, find us, and we resolve them.
func TestRegistrarWithErl(t *testing.T) {
	beamtest.ForEach(t, func(t *testing.T, rel beamtest.Release) {
		port := epmdtest.FreePort(t)
		r := newTestRegistrar(t, registrarConfig(EPMDEmbedded, port), nil)
		if err := r.Register(context.Background(), "gonode@127.0.0.1", regOpts); err != nil {
			t.Fatal(err)
		}
		a := beamtest.Start(t, rel, beamtest.Options{
			Name: "a@127.0.0.1", Cookie: beamtest.RandomCookie(),
			ErlArgs: []string{"-start_epmd", "false"},
			Env:     []string{"ERL_EPMD_PORT=" + strconv.Itoa(port)},
		})
		out := a.Eval(t, "erl_epmd:names().")
		found := map[string]string{}
		for _, m := range erlNamesRE.FindAllStringSubmatch(out, -1) {
			found[m[1]] = m[2]
		}
		if found["gonode"] != "9100" || found["a"] == "" {
			t.Fatalf("erl_epmd:names() = %s, want a and gonode", out)
		}
		if out := a.Eval(t, `erl_epmd:port_please("gonode", {127,0,0,1}).`); out != "{port,9100,6}" {
			t.Fatalf("port_please(gonode) = %s", out)
		}
		route, err := r.Resolve("a@127.0.0.1")
		if err != nil || strconv.Itoa(int(route.Port)) != found["a"] {
			t.Fatalf("Resolve(a) = %+v, %v; erl registered port %s", route, err, found["a"])
		}
	})
}
