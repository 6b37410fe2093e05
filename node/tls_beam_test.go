package node_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/internal/tlstest"
	"github.com/gonode/gonode/node"
)

// tlsFiles are one node's TLS files, by the test's paths (host) and the
// BEAM's (beam, inside its chroot).
type tlsFiles struct {
	cert, key, ca string // host paths
	dir, beamDir  string
}

func (f tlsFiles) beam(p string) string { return filepath.Join(f.beamDir, filepath.Base(p)) }

// writeTLS writes cert (and its key) and the CA bundle cas into a fresh
// directory both the test and rel's nodes can read.
func writeTLS(t *testing.T, rel beamtest.Release, name string, cert *tlstest.Cert, cas ...*tlstest.CA) tlsFiles {
	t.Helper()
	dir, beamDir := rel.TempDir(t)
	f := tlsFiles{dir: dir, beamDir: beamDir, ca: filepath.Join(dir, name+"-ca.pem")}
	f.cert, f.key = cert.Write(t, dir, name)
	tlstest.WriteCA(t, f.ca, cas...)
	return f
}

// erlTLSArgs writes an ssl_dist_optfile for f (verify_peer and
// fail_if_no_peer_cert, as a hardened one sets them) and returns the
// emulator arguments that run distribution over TLS with it. withoutClientCert
// leaves the certificate out of the client options.
func erlTLSArgs(t *testing.T, f tlsFiles, withoutClientCert bool) []string {
	t.Helper()
	return erlTLSArgsWith(t, f, withoutClientCert, "")
}

// erlTLSArgsWith is erlTLSArgs with more ssl options (Erlang terms, each
// followed by a comma) on both sides.
func erlTLSArgsWith(t *testing.T, f tlsFiles, withoutClientCert bool, more string) []string {
	t.Helper()
	certs := fmt.Sprintf(`{certfile, %q}, {keyfile, %q}, `, f.beam(f.cert), f.beam(f.key))
	clientCerts := certs
	if withoutClientCert {
		clientCerts = ""
	}
	opt := fmt.Sprintf(`[{server, [%s%s{cacertfile, %q}, {verify, verify_peer}, {fail_if_no_peer_cert, true}, {secure_renegotiate, true}]},
 {client, [%s%s{cacertfile, %q}, {verify, verify_peer}, {secure_renegotiate, true}]}].
`, certs, more, f.beam(f.ca), clientCerts, more, f.beam(f.ca))
	path := filepath.Join(f.dir, "ssl_dist.conf")
	if err := os.WriteFile(path, []byte(opt), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"-proto_dist", "inet_tls", "-ssl_dist_optfile", f.beam(path)}
}

// startTLSGo starts a gonode with TLS from f (host paths) and a short
// handshake timeout, so that a refused attempt is over quickly.
func startTLSGo(t *testing.T, name, cookie string, f tlsFiles, rec node.Observer) (*node.Node, *testutil.SyncBuffer) {
	t.Helper()
	return startGoObserved(t, name, node.Cookie(cookie), rec, func(c *node.Config) {
		c.TLS = node.TLSConfig{CertFile: f.cert, KeyFile: f.key, CAFile: f.ca}
		c.HandshakeTimeout = 3 * time.Second
	})
}

// TestTLSDistribution: a gonode with TLS and a BEAM with -proto_dist
// inet_tls, each verifying the other (verify_peer, fail_if_no_peer_cert),
// talk both ways: pings, gen_server calls and 1 MiB messages.
func TestTLSDistribution(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		ca := tlstest.NewCA(t, "dist CA")
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		goFiles := writeTLS(t, rel, "go", ca.Valid(t, "go"), ca)
		gn, _ := startTLSGo(t, goName, cookie, goFiles, node.NopObserver{})
		if _, err := gn.RegisterServer("echo", &echoServer{}); err != nil {
			t.Fatal(err)
		}
		erlFiles := writeTLS(t, rel, "erl", ca.Valid(t, "erl"), ca)
		erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie,
			ErlArgs: erlTLSArgs(t, erlFiles, false)})

		t.Run("erlang pings go", func(t *testing.T) {
			if got := erl.Eval(t, fmt.Sprintf("net_adm:ping('%s').", goName)); got != "pong" {
				t.Fatalf("net_adm:ping = %s, want pong", got)
			}
		})
		t.Run("the connection runs over TLS", func(t *testing.T) {
			// The BEAM's view: the address of the connection names its
			// protocol (a #net_address{} record, protocol tls).
			got := erl.Eval(t, fmt.Sprintf(`{ok, Info} = net_kernel:node_info('%s'), element(4, proplists:get_value(address, Info)).`, goName))
			if got != "tls" {
				t.Fatalf("the connection's protocol = %s, want tls", got)
			}
		})
		t.Run("erlang calls go with 1 MiB both ways", func(t *testing.T) {
			got := erl.Eval(t, fmt.Sprintf(`B = crypto:strong_rand_bytes(1 bsl 20),
				R = gen_server:call({echo, '%s'}, {big, B}, 30000),
				{R =:= {big, B}, byte_size(element(2, R))}.`, goName))
			if got != "{true,1048576}" {
				t.Fatalf("1 MiB echo = %s", got)
			}
		})
		t.Run("go connects and calls erlang with 1 MiB both ways", func(t *testing.T) {
			if err := gn.Disconnect(erl.Name); err != nil {
				t.Fatal(err)
			}
			testutil.EventuallyNamed(t, 15*time.Second, "erlang disconnected", func() (bool, string) { return !gn.IsConnected(erl.Name), "" })
			erl.Eval(t, erlEcho)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := gn.Connect(ctx, erl.Name); err != nil {
				t.Fatal(err)
			}
			big := make([]byte, 1<<20)
			for i := range big {
				big[i] = byte(i * 7)
			}
			reply, err := gn.Call(ctx, gen.ProcessID{Name: "echo", Node: erl.Name}, etf.Tuple{etf.Atom("big"), big})
			if err != nil {
				t.Fatal(err)
			}
			r, ok := reply.(etf.Tuple)
			if !ok || len(r) != 2 || r[0] != etf.Atom("echo") {
				t.Fatalf("reply = %T", reply)
			}
			inner, ok := r[1].(etf.Tuple)
			if !ok || len(inner) != 2 {
				t.Fatalf("reply = %T", r[1])
			}
			if b, ok := inner[1].([]byte); !ok || string(b) != string(big) {
				t.Fatalf("the 1 MiB binary came back different (%T, %d bytes)", inner[1], len(b))
			}
		})
	})
}

// TestTLS12: a BEAM that speaks only TLS 1.2 (versions ['tlsv1.2'] on both
// sides of its distribution) and a gonode reach each other both ways: the
// connection can only have been TLS 1.2.
func TestTLS12(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		ca := tlstest.NewCA(t, "dist CA")
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		goFiles := writeTLS(t, rel, "go", ca.Valid(t, "go"), ca)
		gn, _ := startTLSGo(t, goName, cookie, goFiles, node.NopObserver{})
		erlFiles := writeTLS(t, rel, "erl", ca.Valid(t, "erl"), ca)
		erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie,
			ErlArgs: erlTLSArgsWith(t, erlFiles, false, `{versions, ['tlsv1.2']}, `)})
		if got := erl.Eval(t, fmt.Sprintf("net_adm:ping('%s').", goName)); got != "pong" {
			t.Fatalf("a TLS 1.2 BEAM pinging gonode: %s, want pong", got)
		}
		if err := gn.Disconnect(erl.Name); err != nil {
			t.Fatal(err)
		}
		testutil.EventuallyNamed(t, 15*time.Second, "erlang disconnected", func() (bool, string) { return !gn.IsConnected(erl.Name), "" })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := gn.Connect(ctx, erl.Name); err != nil {
			t.Fatalf("gonode connecting to a TLS 1.2 BEAM: %v", err)
		}
	})
}

// TestTLSRefusals: a gonode with TLS refuses, both ways, a BEAM whose
// certificate another CA signed, one whose certificate expired, one that
// presents no client certificate and one running plain TCP; a plain gonode
// refuses a TLS BEAM. Each failure is logged with its reason and counted
// with the tls result, and none waits past the handshake timeout.
func TestTLSRefusals(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		ca, other := tlstest.NewCA(t, "dist CA"), tlstest.NewCA(t, "other CA")
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		goFiles := writeTLS(t, rel, "go", ca.Valid(t, "go"), ca)
		rec := &eventRecorder{}
		gn, logs := startTLSGo(t, goName, cookie, goFiles, rec)

		refused := func(t *testing.T, erl *beamtest.Node, outgoing bool, reason string) {
			t.Helper()
			if got := erl.Eval(t, fmt.Sprintf("net_adm:ping('%s').", goName)); got != "pang" {
				t.Fatalf("erlang -> go: ping = %s, want pang", got)
			}
			testutil.EventuallyNamed(t, 15*time.Second, "incoming failure counted", func() (bool, string) {
				return rec.has(observed{"ConnectFailed", "", "in tls"})
			})
			if outgoing {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				err := gn.Connect(ctx, erl.Name)
				if err == nil {
					t.Fatal("go -> erlang connected")
				}
				if errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("go -> erlang waited past the handshake timeout: %v", err)
				}
				testutil.EventuallyNamed(t, 15*time.Second, "outgoing failure counted", func() (bool, string) {
					return rec.has(observed{"ConnectFailed", "", "out tls"})
				})
			}
			if !strings.Contains(logs.String(), reason) {
				t.Fatalf("gonode's log does not say %q:\n%s", reason, logs.String())
			}
			if gn.IsConnected(erl.Name) {
				t.Fatal("connected")
			}
		}
		reset := func() {
			rec.mu.Lock()
			rec.events = nil
			rec.mu.Unlock()
		}
		start := func(t *testing.T, f tlsFiles, noClientCert bool) *beamtest.Node {
			return beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie,
				ErlArgs: erlTLSArgs(t, f, noClientCert)})
		}

		t.Run("certificate of another CA", func(t *testing.T) {
			reset()
			erl := start(t, writeTLS(t, rel, "erl", other.Valid(t, "erl"), ca, other), false)
			refused(t, erl, true, "certificate signed by unknown authority")
		})
		t.Run("expired certificate", func(t *testing.T) {
			reset()
			erl := start(t, writeTLS(t, rel, "erl", ca.Expired(t, "erl"), ca), false)
			refused(t, erl, true, "certificate has expired")
		})
		t.Run("no client certificate", func(t *testing.T) {
			reset()
			erl := start(t, writeTLS(t, rel, "erl", ca.Valid(t, "erl"), ca), true)
			refused(t, erl, false, "client didn't provide a certificate")
		})
		t.Run("plain TCP BEAM", func(t *testing.T) {
			reset()
			erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
			refused(t, erl, true, "plain TCP distribution")
		})
		t.Run("TLS BEAM against plain gonode", func(t *testing.T) {
			plainRec := &eventRecorder{}
			plainName := uniq("plain") + "@127.0.0.1"
			plain, plainLogs := startGoObserved(t, plainName, node.Cookie(cookie), plainRec, func(c *node.Config) { c.HandshakeTimeout = 3 * time.Second })
			erl := start(t, writeTLS(t, rel, "erl", ca.Valid(t, "erl"), ca), false)
			if got := erl.Eval(t, fmt.Sprintf("net_adm:ping('%s').", plainName)); got != "pang" {
				t.Fatalf("erlang -> plain go: ping = %s, want pang", got)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := plain.Connect(ctx, erl.Name); err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("plain go -> TLS erlang: %v", err)
			}
			testutil.EventuallyNamed(t, 15*time.Second, "incoming failure counted", func() (bool, string) {
				return plainRec.has(observed{"ConnectFailed", "", "in tls"})
			})
			if !strings.Contains(plainLogs.String(), "the peer speaks TLS") {
				t.Fatalf("plain gonode's log does not say the peer speaks TLS:\n%s", plainLogs.String())
			}
		})
	})
}

// TestTLSRotation: replacing gonode's certificate files changes the
// certificate new connections get, while the connection already up stays.
func TestTLSRotation(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		ca := tlstest.NewCA(t, "dist CA")
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		first := ca.Valid(t, "go")
		goFiles := writeTLS(t, rel, "go", first, ca)
		gn, _ := startTLSGo(t, goName, cookie, goFiles, node.NopObserver{})
		node.SetTLSReloadIntervalForTest(gn, 0)
		erlFiles := writeTLS(t, rel, "erl", ca.Valid(t, "erl"), ca)
		erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie,
			ErlArgs: erlTLSArgs(t, erlFiles, false)})
		if got := erl.Eval(t, fmt.Sprintf("net_adm:ping('%s').", goName)); got != "pong" {
			t.Fatalf("ping = %s, want pong", got)
		}
		if got := presented(t, gn, erlFiles); got != first.Cert.SerialNumber.String() {
			t.Fatalf("before the rotation gonode presents serial %s, want %s", got, first.Cert.SerialNumber)
		}

		second := ca.Valid(t, "go")
		second.WriteTo(t, goFiles.cert, goFiles.key)
		if got := presented(t, gn, erlFiles); got != second.Cert.SerialNumber.String() {
			t.Fatalf("after the rotation gonode presents serial %s, want %s", got, second.Cert.SerialNumber)
		}
		// A new BEAM connects with the new certificate; the old connection
		// still carries calls.
		erl2 := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie,
			ErlArgs: erlTLSArgs(t, erlFiles, false)})
		if got := erl2.Eval(t, fmt.Sprintf("net_adm:ping('%s').", goName)); got != "pong" {
			t.Fatalf("new BEAM after the rotation: ping = %s, want pong", got)
		}
		got := erl.Eval(t, fmt.Sprintf(`{lists:member('%s', nodes()), gen_server:call({gonode, '%s'}, ping)}.`, goName, goName))
		if got != "{true,pong}" {
			t.Fatalf("old connection after the rotation: %s", got)
		}
	})
}

// presented connects to gn's distribution port as a TLS client with the
// BEAM's certificate and returns the serial of the certificate gn presents.
func presented(t *testing.T, gn *node.Node, f tlsFiles) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", gn.ListenPort()), &tls.Config{
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true, // only the serial is read
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}
