package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/internal/tlstest"
)

// tlsSetup writes a CA and a valid certificate into a temporary directory
// and returns a TLSConfig using them, with the CA.
func tlsSetup(t *testing.T) (TLSConfig, *tlstest.CA) {
	t.Helper()
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	cert, key := ca.Valid(t, "node").Write(t, dir, "node")
	caFile := filepath.Join(dir, "ca.pem")
	tlstest.WriteCA(t, caFile, ca)
	return TLSConfig{CertFile: cert, KeyFile: key, CAFile: caFile}, ca
}

func tlsNodeConfig(t TLSConfig) Config {
	c := DefaultConfig()
	c.Name, c.Cookie, c.TLS = "tls@127.0.0.1", "cookie", t
	return c
}

// New refuses TLS files that cannot be used, saying why; the
// configuration's own problems are reported by Validate.
func TestNewTLSFileProblems(t *testing.T) {
	good, ca := tlsSetup(t)
	dir := t.TempDir()
	other := tlstest.NewCA(t, "other CA")
	_, otherKey := other.Valid(t, "x").Write(t, dir, "other")
	expiredCert, expiredKey := ca.Expired(t, "old").Write(t, dir, "expired")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("not PEM at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*TLSConfig)
		want string
		is   error
	}{
		{"missing certificate file", func(c *TLSConfig) { c.CertFile = filepath.Join(dir, "nope.pem") }, "TLS certificate file", fs.ErrNotExist},
		{"missing key file", func(c *TLSConfig) { c.KeyFile = filepath.Join(dir, "nope.key") }, "TLS key file", fs.ErrNotExist},
		{"missing CA file", func(c *TLSConfig) { c.CAFile = filepath.Join(dir, "nope-ca.pem") }, "TLS CA file", fs.ErrNotExist},
		{"key of another certificate", func(c *TLSConfig) { c.KeyFile = otherKey }, "private key does not match public key", nil},
		{"expired certificate", func(c *TLSConfig) { c.CertFile, c.KeyFile = expiredCert, expiredKey }, "expired at", nil},
		{"unparsable CA", func(c *TLSConfig) { c.CAFile = garbage }, "TLS CA file", nil},
		{"CA file without a certificate", func(c *TLSConfig) { c.CAFile = empty }, "no PEM certificate", nil},
		{"no CA with peer verification", func(c *TLSConfig) { c.CAFile = "" }, "needs a CA file", nil},
		{"no key", func(c *TLSConfig) { c.KeyFile = "" }, "needs a key file", nil},
		{"unknown verify mode", func(c *TLSConfig) { c.Verify = "sometimes" }, "unknown TLS verify mode", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			_, err := New(tlsNodeConfig(c))
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want ErrInvalidConfig saying %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("New = %v, want it to wrap %v", err, tc.is)
			}
		})
	}
	t.Run("good files", func(t *testing.T) {
		if _, err := New(tlsNodeConfig(good)); err != nil {
			t.Fatal(err)
		}
		none := good
		none.CAFile, none.Verify = "", TLSVerifyNone
		if _, err := New(tlsNodeConfig(none)); err != nil {
			t.Fatalf("verify none without a CA: %v", err)
		}
	})
}

// The certificate source picks up replaced files at the next check, keeps
// the previous material when the new files are broken, and looks at the
// files no more often than its interval.
func TestCertSourceReload(t *testing.T) {
	cfg, ca := tlsSetup(t)
	logs := &testutil.SyncBuffer{}
	s, err := newCertSource(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	first := s.current().cert.Leaf.SerialNumber.String()

	s.interval = time.Hour
	s.checked = time.Now()
	second := ca.Valid(t, "node")
	second.WriteTo(t, cfg.CertFile, cfg.KeyFile)
	if got := s.current().cert.Leaf.SerialNumber.String(); got != first {
		t.Fatalf("serial %s before the interval passed, want the old %s", got, first)
	}

	s.interval = 0
	if got := s.current().cert.Leaf.SerialNumber.String(); got != second.Cert.SerialNumber.String() {
		t.Fatalf("serial %s after the files changed, want %s", got, second.Cert.SerialNumber)
	}

	ca.Expired(t, "node").WriteTo(t, cfg.CertFile, cfg.KeyFile)
	if got := s.current().cert.Leaf.SerialNumber.String(); got != second.Cert.SerialNumber.String() {
		t.Fatalf("serial %s after an expired certificate replaced the files, want the previous %s", got, second.Cert.SerialNumber)
	}
	if !strings.Contains(logs.String(), "cannot be used") {
		t.Fatalf("the broken files were not logged:\n%s", logs.String())
	}

	// The handshake's configurations present and verify with the current
	// material.
	third := ca.Valid(t, "node")
	third.WriteTo(t, cfg.CertFile, cfg.KeyFile)
	dc := s.configs()
	sc, err := dc.Server.GetConfigForClient(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.Certificates[0].Leaf.SerialNumber; got.Cmp(third.Cert.SerialNumber) != 0 {
		t.Fatalf("server presents serial %s, want %s", got, third.Cert.SerialNumber)
	}
	cc, err := dc.Client.GetClientCertificate(&tls.CertificateRequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if got := cc.Leaf.SerialNumber; got.Cmp(third.Cert.SerialNumber) != 0 {
		t.Fatalf("client presents serial %s, want %s", got, third.Cert.SerialNumber)
	}
	if err := dc.Client.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{third.Cert}}); err != nil {
		t.Fatalf("a certificate of the CA was not verified: %v", err)
	}
	stranger := tlstest.NewCA(t, "stranger").Valid(t, "x")
	if err := dc.Client.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{stranger.Cert}}); err == nil {
		t.Fatal("a certificate of another CA was verified")
	}
}

// Verify and ServerName alone leave TLS off: a deployment may set them for
// every node, with or without certificates.
func TestTLSEnabledByFilesOnly(t *testing.T) {
	for _, c := range []TLSConfig{{}, {Verify: TLSVerifyPeer}, {ServerName: "x"}} {
		if c.Enabled() {
			t.Errorf("%+v turns TLS on", c)
		}
		if _, err := New(tlsNodeConfig(c)); err != nil {
			t.Errorf("New with %+v: %v", c, err)
		}
	}
	if !(TLSConfig{CAFile: "ca.pem"}).Enabled() {
		t.Error("a CA file alone leaves TLS off (it must fail for the missing certificate instead)")
	}
}

// TLSCertificateExpiry reports the presented certificate's expiry, the
// rotated one's after the files change, and nothing without TLS.
func TestTLSCertificateExpiry(t *testing.T) {
	cfg, ca := tlsSetup(t)
	n, err := New(tlsNodeConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	n.tls.interval = 0
	got, ok := n.TLSCertificateExpiry()
	if !ok || !got.Equal(n.tls.current().cert.Leaf.NotAfter) {
		t.Fatalf("expiry %v, %v", got, ok)
	}
	later := ca.Issue(t, "node", time.Now().Add(-time.Minute), time.Now().Add(90*24*time.Hour).Truncate(time.Second))
	later.WriteTo(t, cfg.CertFile, cfg.KeyFile)
	if got, ok := n.TLSCertificateExpiry(); !ok || !got.Equal(later.Cert.NotAfter) {
		t.Fatalf("expiry after rotation %v, %v, want %v", got, ok, later.Cert.NotAfter)
	}
	plain, err := New(tlsNodeConfig(TLSConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := plain.TLSCertificateExpiry(); ok {
		t.Fatal("a node without TLS reported a certificate expiry")
	}
}
