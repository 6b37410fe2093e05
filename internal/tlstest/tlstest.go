// Package tlstest makes certificate authorities and certificates for tests
// of TLS distribution, and writes them as PEM files. It is for tests only.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a certificate authority.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// Cert is a leaf certificate with its key.
type Cert struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serial atomic.Int64

func nextSerial() *big.Int {
	return big.NewInt(time.Now().UnixNano()/1000*100 + serial.Add(1)%100)
}

// NewCA makes a self-signed CA named name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	c, key := sign(t, tmpl, nil, nil)
	return &CA{Cert: c, key: key}
}

// sign makes a key and the certificate tmpl describes for it, signed by
// parent with parentKey, or self-signed when parent is nil.
func sign(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// Issue makes a certificate for name, valid from notBefore to notAfter, for
// both server and client authentication, for localhost and 127.0.0.1 (see
// IssueFor).
func (ca *CA) Issue(t testing.TB, name string, notBefore, notAfter time.Time) *Cert {
	t.Helper()
	return ca.IssueFor(t, name, []string{"localhost", "127.0.0.1"}, notBefore, notAfter)
}

// IssueFor makes a certificate for name, valid from notBefore to notAfter,
// for both server and client authentication, for hosts: a host name as a DNS
// name, an IP address both as an IP address and as a DNS name, since OTP's TLS
// distribution checks the host part of a node's name (such as 127.0.0.1 in
// go@127.0.0.1) against the DNS names.
func (ca *CA) IssueFor(t testing.TB, name string, hosts []string, notBefore, notAfter time.Time) *Cert {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     hosts,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	}
	c, key := sign(t, tmpl, ca.Cert, ca.key)
	return &Cert{Cert: c, key: key}
}

// Valid issues a certificate for localhost and 127.0.0.1 valid from an hour
// ago for a day.
func (ca *CA) Valid(t testing.TB, name string) *Cert {
	return ca.Issue(t, name, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// ValidFor issues a certificate for hosts (see IssueFor) valid from an hour
// ago for a day.
func (ca *CA) ValidFor(t testing.TB, name string, hosts ...string) *Cert {
	t.Helper()
	return ca.IssueFor(t, name, hosts, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// Expired issues a certificate that expired an hour ago.
func (ca *CA) Expired(t testing.TB, name string) *Cert {
	return ca.Issue(t, name, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
}

// WriteCA writes the CA certificates, concatenated, to path.
func WriteCA(t testing.TB, path string, cas ...*CA) {
	t.Helper()
	var b []byte
	for _, ca := range cas {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})...)
	}
	write(t, path, b)
}

// Write writes the certificate to dir/name.pem and its key to
// dir/name.key, and returns their paths.
func (c *Cert) Write(t testing.TB, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	c.WriteTo(t, certFile, keyFile)
	return certFile, keyFile
}

// WriteTo writes the certificate and its key to the given paths.
func (c *Cert) WriteTo(t testing.TB, certFile, keyFile string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	write(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw}))
	write(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// write replaces path's content through a rename, as a Secret update
// replaces a file rather than rewriting it.
func write(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
