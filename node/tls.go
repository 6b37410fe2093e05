package node

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/gonode/gonode/node/dist"
)

// TLSVerify says whether a TLS node verifies its peers' certificates.
type TLSVerify string

// TLS verification modes.
const (
	// TLSVerifyPeer (the default, also meant by "") verifies every peer's
	// certificate against Config.TLS.CAFile and requires one from every
	// incoming peer: OTP's verify_peer with fail_if_no_peer_cert.
	TLSVerifyPeer TLSVerify = "peer"
	// TLSVerifyNone verifies nothing and asks incoming peers for no
	// certificate: the traffic is encrypted but anyone may connect (OTP's
	// verify_none). For trying TLS out, not for production.
	TLSVerifyNone TLSVerify = "none"
)

// TLSConfig runs distribution over TLS, as OTP's -proto_dist inet_tls does.
// TLS is on when any of CertFile, KeyFile and CAFile is set (then CertFile
// and KeyFile are required); Verify and ServerName alone change nothing. The
// zero value is plain TCP. Every peer of a TLS node must run TLS
// distribution too.
//
// The files are read at New, which fails when one is missing or unreadable,
// when the key does not match the certificate, when the certificate has
// expired or is not valid yet, or when the CA file holds no certificate.
// They are checked again, at most once a second, when a connection starts:
// when one changed (its modification time, size or identity, as when
// Kubernetes swaps the symbolic links of a mounted Secret), new connections
// use the new files and the connections already up keep theirs. New files
// that fail to load are logged and the previous ones stay in use.
type TLSConfig struct {
	// CertFile is the PEM file of this node's certificate, with the chain
	// of intermediates after it. It serves as both the server certificate
	// (incoming connections) and the client certificate (outgoing ones), as
	// an ssl_dist_optfile gives certfile to both. "" means no TLS.
	CertFile string
	// KeyFile is the PEM file of CertFile's private key. Required with
	// CertFile.
	KeyFile string
	// CAFile is the PEM bundle of the certificate authorities peers'
	// certificates must chain to. Required unless Verify is TLSVerifyNone.
	CAFile string
	// Verify is TLSVerifyPeer (default, also "") or TLSVerifyNone.
	Verify TLSVerify
	// ServerName, when set, is the name (DNS name or IP address) every
	// peer's certificate must be valid for, in both directions; it is also
	// sent as the server name indication. Default "": a peer's certificate
	// must chain to the CA and be valid now, whatever names it has (peers
	// are reached by pod IPs that certificates rarely list).
	ServerName string
}

// Enabled reports whether t turns TLS on.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" }

// validate reports t's problems without reading the files.
func (t TLSConfig) validate() []tlsProblem {
	if !t.Enabled() {
		return nil
	}
	var bad []tlsProblem
	if t.CertFile == "" {
		bad = append(bad, tlsProblem{"CertFile", "TLS needs a certificate file"})
	}
	if t.KeyFile == "" {
		bad = append(bad, tlsProblem{"KeyFile", "TLS needs a key file"})
	}
	switch t.Verify {
	case "", TLSVerifyPeer:
		if t.CAFile == "" {
			bad = append(bad, tlsProblem{"CAFile", "TLS peer verification needs a CA file (or verify none)"})
		}
	case TLSVerifyNone:
	default:
		bad = append(bad, tlsProblem{"Verify", fmt.Sprintf("unknown TLS verify mode %q (want %q or %q)", t.Verify, TLSVerifyPeer, TLSVerifyNone)})
	}
	return bad
}

// tlsProblem is a problem of the TLSConfig field named field.
type tlsProblem struct{ field, problem string }

// verifies reports whether peers' certificates are verified.
func (t TLSConfig) verifies() bool { return t.Verify != TLSVerifyNone }

// tlsReloadInterval bounds how often the files are looked at: a stat of
// each per second at most, whatever the connection rate.
const tlsReloadInterval = time.Second

// tlsMaterial is what the files held when they were loaded.
type tlsMaterial struct {
	cert  tls.Certificate // with Leaf set
	roots *x509.CertPool  // nil when nothing is verified
}

// fileStamp identifies a version of a file.
type fileStamp struct {
	info os.FileInfo
}

func (s fileStamp) same(o fileStamp) bool {
	if s.info == nil || o.info == nil {
		return s.info == o.info
	}
	return os.SameFile(s.info, o.info) && s.info.ModTime().Equal(o.info.ModTime()) && s.info.Size() == o.info.Size()
}

// certSource holds the current TLS material and reloads it when the files
// change. It is safe for concurrent use.
type certSource struct {
	cfg      TLSConfig
	log      *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	checked time.Time
	stamps  []fileStamp // of cfg's files, as last loaded or tried
	cur     *tlsMaterial
}

// newCertSource loads cfg's files, or says what is wrong with them.
func newCertSource(cfg TLSConfig, log *slog.Logger) (*certSource, error) {
	s := &certSource{cfg: cfg, log: log.With("component", "tls"), interval: tlsReloadInterval}
	s.stamps = s.stat()
	m, err := loadTLS(cfg, time.Now())
	if err != nil {
		return nil, err
	}
	s.cur, s.checked = m, time.Now()
	return s, nil
}

func (s *certSource) files() []string {
	f := []string{s.cfg.CertFile, s.cfg.KeyFile}
	if s.cfg.CAFile != "" {
		f = append(f, s.cfg.CAFile)
	}
	return f
}

func (s *certSource) stat() []fileStamp {
	var st []fileStamp
	for _, f := range s.files() {
		fi, _ := os.Stat(f) // a missing file is a change that fails to load
		st = append(st, fileStamp{fi})
	}
	return st
}

// current returns the material to use now, reloading it first when the
// files changed since they were last looked at (at most once per interval).
func (s *certSource) current() *tlsMaterial {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Sub(s.checked) < s.interval {
		return s.cur
	}
	s.checked = now
	st := s.stat()
	changed := false
	for i := range st {
		if !st[i].same(s.stamps[i]) {
			changed = true
		}
	}
	if !changed {
		return s.cur
	}
	s.stamps = st // a failed version is reported once, not at every check
	m, err := loadTLS(s.cfg, now)
	if err != nil {
		s.log.Warn("the TLS files changed but cannot be used; new connections keep the previous ones", "err", err)
		return s.cur
	}
	s.cur = m
	s.log.Info("TLS files reloaded; new connections use them", "serial", m.cert.Leaf.SerialNumber.String(),
		"not_after", m.cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return s.cur
}

// loadTLS reads and checks cfg's files at now.
func loadTLS(cfg TLSConfig, now time.Time) (*tlsMaterial, error) {
	certPEM, err := os.ReadFile(cfg.CertFile)
	if err != nil {
		return nil, &FieldError{Field: "TLS.CertFile", Err: fmt.Errorf("TLS certificate file: %w", err)}
	}
	keyPEM, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, &FieldError{Field: "TLS.KeyFile", Err: fmt.Errorf("TLS key file: %w", err)}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &FieldError{Field: "TLS.CertFile", Err: fmt.Errorf("TLS certificate %s and key %s: %w", cfg.CertFile, cfg.KeyFile, err)}
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, &FieldError{Field: "TLS.CertFile", Err: fmt.Errorf("TLS certificate %s: %w", cfg.CertFile, err)}
		}
		cert.Leaf = leaf
	}
	switch {
	case now.After(leaf.NotAfter):
		return nil, &FieldError{Field: "TLS.CertFile", Err: fmt.Errorf("TLS certificate %s (serial %s) expired at %s", cfg.CertFile, leaf.SerialNumber, leaf.NotAfter.UTC().Format(time.RFC3339))}
	case now.Before(leaf.NotBefore):
		return nil, &FieldError{Field: "TLS.CertFile", Err: fmt.Errorf("TLS certificate %s (serial %s) is not valid before %s", cfg.CertFile, leaf.SerialNumber, leaf.NotBefore.UTC().Format(time.RFC3339))}
	}
	m := &tlsMaterial{cert: cert}
	if cfg.CAFile == "" {
		return m, nil
	}
	caPEM, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, &FieldError{Field: "TLS.CAFile", Err: fmt.Errorf("TLS CA file: %w", err)}
	}
	if m.roots, err = parseCAs(caPEM); err != nil {
		return nil, &FieldError{Field: "TLS.CAFile", Err: fmt.Errorf("TLS CA file %s: %w", cfg.CAFile, err)}
	}
	return m, nil
}

// parseCAs parses a PEM bundle of CA certificates; every certificate block
// must parse and there must be one at least.
func parseCAs(b []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return pool, nil
}

// configs returns the TLS configurations of the handshake. Both read the
// current material at each connection; neither is modified afterwards.
func (s *certSource) configs() *dist.TLSConfig {
	server := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := s.current()
			c := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{m.cert},
			}
			if s.cfg.verifies() {
				// Verified by VerifyConnection against the current CAs, so
				// that a reload applies to the next connection.
				c.ClientAuth = tls.RequireAnyClientCert
				c.VerifyConnection = s.verify(x509.ExtKeyUsageClientAuth)
			}
			return c, nil
		},
	}
	client := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: s.cfg.ServerName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c := s.current().cert
			return &c, nil
		},
		// crypto/tls's own verification is replaced by VerifyConnection,
		// which verifies against the current CAs, with the configured
		// server name when there is one (instead of the host dialed).
		InsecureSkipVerify: true,
	}
	if s.cfg.verifies() {
		client.VerifyConnection = s.verify(x509.ExtKeyUsageServerAuth)
	}
	return &dist.TLSConfig{Server: server, Client: client}
}

// verify returns the check of a peer's certificate chain: it must chain to
// the current CAs, be valid now and for usage, and, with a ServerName, be
// valid for that name.
func (s *certSource) verify(usage x509.ExtKeyUsage) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the peer sent no certificate")
		}
		opts := x509.VerifyOptions{
			Roots:         s.current().roots,
			Intermediates: x509.NewCertPool(),
			DNSName:       s.cfg.ServerName,
			KeyUsages:     []x509.ExtKeyUsage{usage},
		}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		leaf := cs.PeerCertificates[0]
		if _, err := leaf.Verify(opts); err != nil {
			return fmt.Errorf("peer certificate (subject %q, serial %s): %w", leaf.Subject.String(), leaf.SerialNumber, err)
		}
		return nil
	}
}

// TLSCertificateExpiry returns when the certificate this node presents to
// peers expires (after a rotation, the new one's: the files are looked at
// as for a new connection, at most once a second), and false when the node
// runs without TLS.
func (n *Node) TLSCertificateExpiry() (time.Time, bool) {
	if n.tls == nil { // set by New, never changed
		return time.Time{}, false
	}
	return n.tls.current().cert.Leaf.NotAfter, true
}
