package dist

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/tlstest"
)

// ptTLSFiles run a rig's distribution over TLS: the BEAM nodes' emulator
// arguments and the Go node's configuration, with certificates of one CA and
// mutual verification on both sides.
type ptTLSFiles struct {
	erlArgs []string
	goTLS   *TLSConfig
}

// ptWriteTLS issues a certificate for localhost and 127.0.0.1 (which the
// BEAM's hostname check needs for nodes named x@127.0.0.1) and writes it, its
// key, the CA and an ssl_dist_optfile where rel's nodes can read them. The BEAM
// nodes and the Go node share the certificate.
func ptWriteTLS(b *testing.B, rel beamtest.Release) *ptTLSFiles {
	b.Helper()
	ca := tlstest.NewCA(b, "bench CA")
	leaf := ca.Valid(b, "bench")
	dir, beamDir := rel.TempDir(b)
	certFile, keyFile := leaf.Write(b, dir, "node")
	caFile := filepath.Join(dir, "ca.pem")
	tlstest.WriteCA(b, caFile, ca)
	inBeam := func(p string) string { return filepath.Join(beamDir, filepath.Base(p)) }
	opts := fmt.Sprintf(`{certfile, %q}, {keyfile, %q}, {cacertfile, %q}, {verify, verify_peer}, {secure_renegotiate, true}`,
		inBeam(certFile), inBeam(keyFile), inBeam(caFile))
	conf := filepath.Join(dir, "ssl_dist.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("[{server, [%s, {fail_if_no_peer_cert, true}]},\n {client, [%s]}].\n", opts, opts)), 0o644); err != nil {
		b.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &ptTLSFiles{
		erlArgs: []string{"-proto_dist", "inet_tls", "-ssl_dist_optfile", inBeam(conf)},
		goTLS: &TLSConfig{
			Server: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert},
			Client: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "localhost"},
		},
	}
}

// BenchmarkDistTLSVsBEAM is a few cells of BenchmarkDistVsBEAM over TLS: the
// Go node with TLS and both BEAM nodes with -proto_dist inet_tls, against
// BEAM<->BEAM over TLS in the same run ("tls_..." and "tls_x_beam"), with the
// same cells over plain TCP measured alongside by a second, plain rig, so
// that the cost of TLS shows on each side ("go_tls_x_plain",
// "beam_tls_x_plain": TLS over plain; above 1 for latency and below 1 for
// throughput means TLS costs). Run it with -benchtime=1x.
func BenchmarkDistTLSVsBEAM(b *testing.B) {
	counts := map[string]int{"small": 200000, "64KiB": 4000}
	for _, rel := range beamtest.Releases(b) {
		b.Run(rel.Name, func(b *testing.B) {
			plain := ptStartRig(b, rel, "tp", nil)
			secure := ptStartRig(b, rel, "ts", ptWriteTLS(b, rel))
			if got := secure.a.Eval(b, fmt.Sprintf(`[element(4, proplists:get_value(address, I)) || N <- ['%s', '%s'], {ok, I} <- [net_kernel:node_info(N)]].`,
				secure.c.Name, secure.goName)); got != "[tls,tls]" {
				b.Fatalf("the TLS rig's connections run over %s, want [tls,tls]", got)
			}
			for _, kind := range []string{"small", "64KiB"} {
				cnt := counts[kind]
				b.Run("go_to_beam/"+kind, func(b *testing.B) {
					var p, s ptSendRun
					for i := 0; i < b.N; i++ {
						p = plain.goToBeam(b, kind, cnt)
						s = secure.goToBeam(b, kind, cnt)
					}
					b.ReportMetric(s.goRate, "tls_go_msg/s")
					b.ReportMetric(s.beamRate, "tls_beam_msg/s")
					b.ReportMetric(s.goRate/s.beamRate, "tls_x_beam")
					b.ReportMetric(p.goRate, "go_msg/s")
					b.ReportMetric(p.beamRate, "beam_msg/s")
					b.ReportMetric(p.goRate/p.beamRate, "x_beam")
					b.ReportMetric(s.goRate/p.goRate, "go_tls_x_plain")
					b.ReportMetric(s.beamRate/p.beamRate, "beam_tls_x_plain")
				})
			}
			b.Run("call_beam_to_go/small", func(b *testing.B) {
				var pGo, pBeam, sGo, sBeam []float64
				for i := 0; i < b.N; i++ {
					pGo, pBeam = plain.callBeamToGo(b, "small")
					sGo, sBeam = secure.callBeamToGo(b, "small")
				}
				pg50, pg99 := ptPercentiles(pGo)
				pb50, pb99 := ptPercentiles(pBeam)
				sg50, sg99 := ptPercentiles(sGo)
				sb50, sb99 := ptPercentiles(sBeam)
				for _, m := range []struct {
					v    float64
					unit string
				}{
					{sg50, "tls_go_p50_us"}, {sg99, "tls_go_p99_us"}, {sb50, "tls_beam_p50_us"}, {sb99, "tls_beam_p99_us"},
					{sg50 / sb50, "tls_x_beam_p50"}, {sg99 / sb99, "tls_x_beam_p99"},
					{pg50, "go_p50_us"}, {pg99, "go_p99_us"}, {pb50, "beam_p50_us"}, {pb99, "beam_p99_us"},
					{sg50 / pg50, "go_tls_x_plain_p50"}, {sb50 / pb50, "beam_tls_x_plain_p50"},
					{sg99 / pg99, "go_tls_x_plain_p99"}, {sb99 / pb99, "beam_tls_x_plain_p99"},
				} {
					b.ReportMetric(m.v, m.unit)
				}
			})
		})
	}
}
