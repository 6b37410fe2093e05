//go:build integration

package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TLSFiles are a pod's files for TLS distribution (docs/tls.md): its
// certificate and key, served as server and client certificate, and the CA
// bundle its peers' certificates must chain to. The paths are the host's and
// must lie under the cluster's directory (Cluster.Dir), which pods of a
// chroot release see too.
type TLSFiles struct {
	Cert, Key, CA string
}

// TLSDir creates and returns the directory for the TLS files of the pod
// named pod, under the cluster's directory.
func (c *Cluster) TLSDir(pod string) (string, error) {
	dir := filepath.Join(c.Dir, "tls", pod)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// gonodeTLSEnv is the environment that turns TLS distribution on in a gonode
// pod, verifying every peer (the default of GONODE_TLS_VERIFY).
func gonodeTLSEnv(f TLSFiles) []string {
	return []string{"GONODE_TLS_CERT=" + f.Cert, "GONODE_TLS_KEY=" + f.Key, "GONODE_TLS_CA=" + f.CA}
}

// elixirTLSArgs writes the pod's ssl_dist_optfile next to its certificate,
// hardened as docs/tls.md shows it (verify_peer both ways,
// fail_if_no_peer_cert on the server side), and returns the emulator
// arguments that run the node's distribution over TLS with it. inNode maps a
// host path to the node's view of it.
func elixirTLSArgs(f TLSFiles, inNode func(string) (string, error)) (string, error) {
	var paths [3]string
	for i, p := range []string{f.Cert, f.Key, f.CA} {
		np, err := inNode(p)
		if err != nil {
			return "", err
		}
		paths[i] = np
	}
	cert, key, ca := paths[0], paths[1], paths[2]
	opt := fmt.Sprintf(`[{server, [{certfile, %[1]q}, {keyfile, %[2]q}, {cacertfile, %[3]q},
           {verify, verify_peer}, {fail_if_no_peer_cert, true}, {secure_renegotiate, true}]},
 {client, [{certfile, %[1]q}, {keyfile, %[2]q}, {cacertfile, %[3]q},
           {verify, verify_peer}, {secure_renegotiate, true}]}].
`, cert, key, ca)
	host := filepath.Join(filepath.Dir(f.Cert), "ssl_dist.conf")
	if err := os.WriteFile(host, []byte(opt), 0o644); err != nil {
		return "", err
	}
	conf, err := inNode(host)
	if err != nil {
		return "", err
	}
	return "-proto_dist inet_tls -ssl_dist_optfile " + conf, nil
}

// underDir maps path, which must lie under dir, to the same place under
// mount: how a node that sees dir at mount names the file.
func underDir(dir, mount, path string) (string, error) {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return "", err
	}
	if rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		return "", errors.New(path + " is not under the cluster's directory " + dir)
	}
	return filepath.Join(mount, rel), nil
}
