package epmd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gonode/gonode/epmd"
	"github.com/gonode/gonode/epmd/epmdtest"
	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
)

func node(name string, port uint16) epmd.NodeInfo {
	return epmd.NodeInfo{Name: name, Port: port, Type: epmd.NodeTypeNormal, Protocol: epmd.ProtocolTCP,
		HighestVersion: epmd.DistVersion6, LowestVersion: epmd.DistVersion5}
}

func register(t *testing.T, c *epmd.Client, n epmd.NodeInfo) *epmd.Registration {
	t.Helper()
	r, err := c.Register(context.Background(), n)
	if err != nil {
		t.Fatalf("Register(%s): %v", n.Name, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// waitGone waits until the EPMD at c no longer knows name.
func waitGone(t *testing.T, c *epmd.Client, name string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() (bool, string) {
		n, err := c.LookupPort(context.Background(), name)
		return errors.Is(err, epmd.ErrNotFound), fmt.Sprintf("LookupPort = %+v, %v", n, err)
	})
}

func TestServerRegisterLookupNames(t *testing.T) {
	rec := &epmdtest.Recorder{}
	srv, addr := epmdtest.StartServer(t, epmd.DefaultConfig(), epmd.WithObserver(rec))
	c := &epmd.Client{Addr: addr}
	ctx := context.Background()

	want := node("gonode", 9100)
	want.Extra = []byte("x")
	reg := register(t, c, want)
	register(t, c, node("other", 9200))

	got, err := c.LookupPort(ctx, "gonode")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != want.Name || got.Port != want.Port || got.Type != want.Type || !bytes.Equal(got.Extra, want.Extra) ||
		got.HighestVersion != want.HighestVersion || got.LowestVersion != want.LowestVersion {
		t.Fatalf("LookupPort = %+v, want %+v", got, want)
	}
	names, err := c.Names(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []epmd.NameEntry{{Name: "gonode", Port: 9100}, {Name: "other", Port: 9200}}
	if fmt.Sprint(names.Nodes) != fmt.Sprint(wantNames) {
		t.Fatalf("Names = %+v, want %+v", names.Nodes, wantNames)
	}
	if _, port, _ := net.SplitHostPort(addr); fmt.Sprint(names.EPMDPort) != port {
		t.Fatalf("Names EPMD port %d, want %s", names.EPMDPort, port)
	}
	if nodes := srv.Nodes(); len(nodes) != 2 || nodes[0].Creation != reg.Creation {
		t.Fatalf("server Nodes() = %+v, want 2 with gonode's creation %d", nodes, reg.Creation)
	}

	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	if reg.Err() != nil {
		t.Fatalf("Err after Close = %v, want nil", reg.Err())
	}
	waitGone(t, c, "gonode")
	if _, err := c.LookupPort(ctx, "other"); err != nil {
		t.Fatalf("the other registration went too: %v", err)
	}
	if n := rec.WaitFor(epmd.RequestAlive2, epmd.ResultOK, 2); n != 2 {
		t.Fatalf("alive2/ok = %d, want 2 (%s)", n, rec)
	}
	if n := rec.WaitFor(epmd.RequestPortPlease2, epmd.ResultNotFound, 1); n < 1 {
		t.Fatalf("port_please2/not_found = %d, want >= 1 (%s)", n, rec)
	}
	if n := rec.WaitFor(epmd.RequestNames, epmd.ResultOK, 1); n != 1 {
		t.Fatalf("names/ok = %d, want 1 (%s)", n, rec)
	}
}

func TestServerRefusesLiveName(t *testing.T) {
	rec := &epmdtest.Recorder{}
	_, addr := epmdtest.StartServer(t, epmd.DefaultConfig(), epmd.WithObserver(rec))
	c := &epmd.Client{Addr: addr}
	first := register(t, c, node("dup", 1000))
	_, err := c.Register(context.Background(), node("dup", 2000))
	if !errors.Is(err, epmd.ErrRegistrationRefused) {
		t.Fatalf("second Register = %v, want ErrRegistrationRefused", err)
	}
	if n := rec.WaitFor(epmd.RequestAlive2, epmd.ResultRefused, 1); n != 1 {
		t.Fatalf("alive2/refused = %d, want 1 (%s)", n, rec)
	}
	got, err := c.LookupPort(context.Background(), "dup")
	if err != nil || got.Port != 1000 {
		t.Fatalf("LookupPort = %+v, %v; want the first registration's port 1000", got, err)
	}
	// Once the first registration ends, the name is free again.
	first.Close()
	waitGone(t, c, "dup")
	register(t, c, node("dup", 3000))
}

func TestServerReregistrationGetsNewCreation(t *testing.T) {
	tests := []struct {
		name    string
		highest uint16
		inRange func(uint32) bool
	}{
		{"OTP 23+ (32-bit creation)", epmd.DistVersion6, func(c uint32) bool { return c >= 4 }},
		{"old node (creation 1..3)", epmd.DistVersion5, func(c uint32) bool { return c >= 1 && c <= 3 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := epmdtest.StartServer(t, epmd.DefaultConfig())
			c := &epmd.Client{Addr: addr}
			n := node("again", 4000)
			n.HighestVersion = tt.highest
			var prev uint32
			for i := range 6 {
				r, err := c.Register(context.Background(), n)
				if err != nil {
					t.Fatalf("round %d: %v", i, err)
				}
				if !tt.inRange(r.Creation) {
					t.Errorf("round %d: creation %d out of range", i, r.Creation)
				}
				if i > 0 && r.Creation == prev {
					t.Errorf("round %d: creation %d repeats the previous registration's", i, r.Creation)
				}
				prev = r.Creation
				r.Close()
				waitGone(t, c, n.Name)
			}
		})
	}
}

func TestServerIPv4AndIPv6(t *testing.T) {
	cfg := epmd.DefaultConfig()
	cfg.Addrs = []string{"127.0.0.1:0", "[::1]:0"}
	started := make(chan []net.Addr, 1)
	srv, err := epmd.New(cfg, epmd.WithNotifyStarted(func(a []net.Addr) { started <- a }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	addrs := <-started
	if len(addrs) != 2 {
		t.Fatalf("listening on %v, want 2 addresses", addrs)
	}
	v4, v6 := &epmd.Client{Addr: addrs[0].String()}, &epmd.Client{Addr: addrs[1].String()}
	if !strings.HasPrefix(v6.Addr, "[::1]:") {
		t.Fatalf("second listener %s, want [::1]", v6.Addr)
	}
	r := register(t, v6, node("six", 6666))
	got, err := v4.LookupPort(ctx, "six")
	if err != nil || got.Port != 6666 {
		t.Fatalf("IPv4 lookup of an IPv6 registration = %+v, %v", got, err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v, want nil after the context ends", err)
	}
	// Stopping the server drops the registration.
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("registration still live after the server stopped")
	}
	if r.Err() == nil {
		t.Fatal("Err() = nil, want why the registration ended")
	}
}

func TestServerStartAddrInUse(t *testing.T) {
	_, addr := epmdtest.StartServer(t, epmd.DefaultConfig())
	cfg := epmd.DefaultConfig()
	cfg.Addrs = []string{addr}
	s, err := epmd.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start(context.Background()); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Start on a used port = %v, want EADDRINUSE", err)
	}
	if err := s.Start(context.Background()); !errors.Is(err, epmd.ErrServerClosed) {
		t.Fatalf("second Start = %v, want ErrServerClosed", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := epmd.DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig invalid: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*epmd.Config)
		errs   int
	}{
		{"no address", func(c *epmd.Config) { c.Addrs = nil }, 1},
		{"host name", func(c *epmd.Config) { c.Addrs = []string{"localhost:4369"} }, 1},
		{"bad port", func(c *epmd.Config) { c.Addrs = []string{"127.0.0.1:99999"} }, 1},
		{"everything zero", func(c *epmd.Config) { *c = epmd.Config{} }, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := epmd.DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if !errors.Is(err, epmd.ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != tt.errs {
				t.Fatalf("Validate reported %d problems, want %d: %v", n, tt.errs, err)
			}
			if _, err := epmd.New(c); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

// rawExchange sends b on a new connection and returns everything the server
// writes until it closes the connection.
func rawExchange(t *testing.T, addr string, b []byte) []byte {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if len(b) > 0 {
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	out, err := io.ReadAll(conn)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading the answer: %v", err)
	}
	return out
}

func TestServerBadInput(t *testing.T) {
	longName := strings.Repeat("n", 256)
	tests := []struct {
		name   string
		input  []byte
		kind   epmd.RequestKind
		result epmd.Result
		reply  []byte
	}{
		{"name over 255 characters", frame(alive2Body(longName, nil)...), epmd.RequestMalformed, epmd.ResultError, nil},
		{"truncated packet", frame(alive2Body("a", nil)...)[:7], epmd.RequestMalformed, epmd.ResultError, nil},
		{"length over the limit", []byte{0xff, 0xff, epmd.TagAlive2Req}, epmd.RequestMalformed, epmd.ResultError, nil},
		{"unknown request (KILL_REQ)", frame(107), epmd.RequestUnknown, epmd.ResultError, nil},
		{"newline in name", frame(alive2Body("a\nb", nil)...), epmd.RequestAlive2, epmd.ResultError, []byte{epmd.TagAlive2XResp, 1, 0, 0, 0, 0}},
		{"lookup of an unknown name", frame(epmd.TagPortPlease2Req, 'z'), epmd.RequestPortPlease2, epmd.ResultNotFound, []byte{epmd.TagPort2Resp, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &epmdtest.Recorder{}
			_, addr := epmdtest.StartServer(t, epmd.DefaultConfig(), epmd.WithObserver(rec))
			if got := rawExchange(t, addr, tt.input); !bytes.Equal(got, tt.reply) {
				t.Fatalf("server answered %v, want %v", got, tt.reply)
			}
			testutil.Eventually(t, 10*time.Second, func() (bool, string) {
				return rec.Count(tt.kind, tt.result) == 1, rec.String()
			})
			// The server keeps serving.
			register(t, &epmd.Client{Addr: addr}, node("still", 1))
		})
	}
}

func TestServerSilentClientIsDropped(t *testing.T) {
	rec := &epmdtest.Recorder{}
	cfg := epmd.DefaultConfig()
	cfg.ReadTimeout = 100 * time.Millisecond
	_, addr := epmdtest.StartServer(t, cfg, epmd.WithObserver(rec))
	for _, sent := range [][]byte{nil, {0}, {0, 5, epmd.TagPortPlease2Req}} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(sent)
		// The server must close the connection on its own; the 10s bound only
		// keeps a broken server from hanging the test.
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(make([]byte, 1))
		conn.Close()
		if n != 0 || (!errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET)) {
			t.Fatalf("after sending %v: Read = %d, %v; want the server to close", sent, n, err)
		}
	}
	testutil.Eventually(t, 10*time.Second, func() (bool, string) {
		return rec.Count(epmd.RequestMalformed, epmd.ResultError) == 3, rec.String()
	})
}

func TestServerMaxConns(t *testing.T) {
	rec := &epmdtest.Recorder{}
	cfg := epmd.DefaultConfig()
	cfg.MaxConns = 2
	_, addr := epmdtest.StartServer(t, cfg, epmd.WithObserver(rec))
	c := &epmd.Client{Addr: addr}
	register(t, c, node("one", 1))
	register(t, c, node("two", 2))
	_, err := c.Names(context.Background())
	if err == nil {
		t.Fatal("a third connection was served with MaxConns 2")
	}
	if n := rec.WaitFor(epmd.RequestUnknown, epmd.ResultRefused, 1); n != 1 {
		t.Fatalf("unknown/refused = %d, want 1 (%s)", n, rec)
	}
}

func TestServerNonLocalRegistrationRefused(t *testing.T) {
	beamtest.RequireNetns(t) // it adds addresses to loopback
	// Two addresses of 198.18.0.0/15 on this test namespace's loopback: a
	// connection from .2 to .1 comes from neither loopback nor the address it
	// reached, so OTP's epmd would call it remote.
	for _, a := range []string{"198.18.0.1/32", "198.18.0.2/32"} {
		if out, err := exec.Command("ip", "addr", "replace", a, "dev", "lo").CombinedOutput(); err != nil {
			t.Fatalf("ip addr replace %s: %v: %s", a, err, out)
		}
	}
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("AllowRemoteRegistration=%v", allow), func(t *testing.T) {
			cfg := epmd.DefaultConfig()
			cfg.Addrs = []string{"198.18.0.1:0"}
			cfg.AllowRemoteRegistration = allow
			s, err := epmd.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			remote := &epmd.Client{Addr: s.Addrs()[0].String(), Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("198.18.0.2")}}}
			r, err := remote.Register(context.Background(), node("far", 1))
			if allow {
				if err != nil {
					t.Fatalf("Register = %v, want success", err)
				}
				r.Close()
			} else if !errors.Is(err, epmd.ErrRegistrationRefused) {
				t.Fatalf("Register from a remote address = %v, want ErrRegistrationRefused", err)
			}
			// Lookups from anywhere are served.
			if _, err := remote.LookupPort(context.Background(), "far"); err != nil && !errors.Is(err, epmd.ErrNotFound) {
				t.Fatalf("remote LookupPort = %v", err)
			}
			// The host's own address is local.
			local := &epmd.Client{Addr: s.Addrs()[0].String()}
			register(t, local, node("near", 2))
		})
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestServerThousandConnections(t *testing.T) {
	defer goleak.VerifyNone(t)
	before := countFDs(t)
	rec := &epmdtest.Recorder{}
	cfg := epmd.DefaultConfig()
	cfg.Addrs = []string{"127.0.0.1:0"}
	s, err := epmd.New(cfg, epmd.WithObserver(rec))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := s.Addrs()[0].String()
	c := &epmd.Client{Addr: addr}
	reg, err := c.Register(context.Background(), node("steady", 7))
	if err != nil {
		t.Fatal(err)
	}

	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 4 {
			case 0: // open and close
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					errs <- err
					return
				}
				conn.Close()
			case 1: // half a request, then close
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					errs <- err
					return
				}
				conn.Write([]byte{0, 9, epmd.TagAlive2Req})
				conn.Close()
			case 2:
				if _, err := c.LookupPort(context.Background(), "steady"); err != nil {
					errs <- err
				}
			case 3:
				if _, err := c.Names(context.Background()); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("client: %v", err)
	}
	if got, err := c.LookupPort(context.Background(), "steady"); err != nil || got.Port != 7 {
		t.Fatalf("after the storm LookupPort = %+v, %v", got, err)
	}
	if ok := rec.WaitFor(epmd.RequestPortPlease2, epmd.ResultOK, n/4+1); ok != n/4+1 {
		t.Errorf("port_please2/ok = %d, want %d (%s)", ok, n/4+1, rec)
	}
	reg.Close()
	s.Close()
	if after := countFDs(t); after != before {
		t.Fatalf("%d file descriptors open before, %d after", before, after)
	}
}

func TestClientHonoursContext(t *testing.T) {
	// A listener that accepts and never answers.
	l := testutil.SilentListener(t)
	c := &epmd.Client{Addr: l.Addr().String(), Timeout: 50 * time.Millisecond}
	calls := map[string]func(context.Context) error{
		"LookupPort": func(ctx context.Context) error { _, err := c.LookupPort(ctx, "x"); return err },
		"Names":      func(ctx context.Context) error { _, err := c.Names(ctx); return err },
		"Register":   func(ctx context.Context) error { _, err := c.Register(ctx, node("x", 1)); return err },
	}
	for name, call := range calls {
		t.Run(name+"/timeout", func(t *testing.T) {
			if err := call(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want an error wrapping context.DeadlineExceeded", err)
			}
		})
		t.Run(name+"/cancel", func(t *testing.T) {
			c.Timeout = time.Minute
			defer func() { c.Timeout = 50 * time.Millisecond }()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- call(ctx) }()
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want an error wrapping context.Canceled", err)
			}
		})
	}
}
