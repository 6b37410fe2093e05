package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/metrics"
	"github.com/gonode/gonode/node"
)

// writeFile writes content to a new file in a test directory and returns
// its path.
func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNodeName(t *testing.T) {
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"default: application name at the detected pod IP", nil, nil, "gonode@10.1.2.3"},
		{"application name and pod IP from the environment", nil,
			map[string]string{"GONODE_APPLICATION_NAME": "myapp", "POD_IP": "10.9.8.7"}, "myapp@10.9.8.7"},
		{"flags", []string{"--application-name=web", "--pod-ip=192.0.2.4"}, nil, "web@192.0.2.4"},
		{"IPv6 pod IP", []string{"--pod-ip=fd00::1:2"}, nil, "gonode@fd00::1:2"},
		{"IPv6 pod IP in brackets, made canonical", []string{"--pod-ip=[FD00:0::1]"}, nil, "gonode@fd00::1"},
		{"IPv4-mapped IPv6 pod IP", []string{"--pod-ip=::ffff:10.0.0.9"}, nil, "gonode@10.0.0.9"},
		{"explicit RELEASE_NODE wins", nil,
			map[string]string{"RELEASE_NODE": "app@host.example", "GONODE_APPLICATION_NAME": "other", "POD_IP": "10.0.0.1"},
			"app@host.example"},
		{"explicit --name wins over RELEASE_NODE", []string{"--name", "b@10.0.0.2"},
			map[string]string{"RELEASE_NODE": "a@10.0.0.1"}, "b@10.0.0.2"},
		{"short names use the host name up to its first dot", []string{"--distribution=sname"}, nil, "gonode@pod-7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--cookie=c"}, tt.args...)
			c, _, err := load(args, testEnv(tt.vars))
			if err != nil {
				t.Fatal(err)
			}
			if c.Node.Name != tt.want {
				t.Errorf("name %q, want %q", c.Node.Name, tt.want)
			}
		})
	}
}

func TestDetectPodIPFallsBackToLoopback(t *testing.T) {
	env := testEnv(nil)
	env.InterfaceAddrs = func() ([]net.Addr, error) { return nil, errors.New("no interfaces here") }
	c, _, err := load([]string{"--cookie=c"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.Name != "gonode@127.0.0.1" {
		t.Errorf("name %q, want gonode@127.0.0.1", c.Node.Name)
	}
}

func TestApplicationName(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantDisc string // discovery.Config.ApplicationName
	}{
		{"unset: discovery takes the node's basename", []string{"--name=a@h"}, ""},
		{"default name: still unset", nil, ""},
		{"set: discovery uses it", []string{"--name=a@h", "--application-name=peers"}, "peers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := load(append([]string{"--cookie=c"}, tt.args...), testEnv(nil))
			if err != nil {
				t.Fatal(err)
			}
			if c.Discovery.ApplicationName != tt.wantDisc {
				t.Errorf("discovery application name %q, want %q", c.Discovery.ApplicationName, tt.wantDisc)
			}
		})
	}
}

func TestCookieSources(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".erlang.cookie"), []byte("from-home\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, "cookie", "from-file\r\n", 0o400)
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"flag", []string{"--cookie=from-flag"}, map[string]string{"HOME": home}, "from-flag"},
		{"RELEASE_COOKIE", nil, map[string]string{"RELEASE_COOKIE": "from-env", "HOME": home}, "from-env"},
		{"flag over RELEASE_COOKIE", []string{"--cookie=from-flag"}, map[string]string{"RELEASE_COOKIE": "from-env"}, "from-flag"},
		{"cookie over cookie file", []string{"--cookie=from-flag", "--cookie-file=" + file}, nil, "from-flag"},
		{"cookie file flag, CRLF dropped", []string{"--cookie-file=" + file}, map[string]string{"HOME": home}, "from-file"},
		{"GONODE_COOKIE_FILE", nil, map[string]string{"GONODE_COOKIE_FILE": file, "HOME": home}, "from-file"},
		{"$HOME/.erlang.cookie, newline dropped", nil, map[string]string{"HOME": home}, "from-home"},
		{"empty RELEASE_COOKIE falls through to the file", nil, map[string]string{"RELEASE_COOKIE": "", "HOME": home}, "from-home"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := load(tt.args, testEnv(tt.vars))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Node.Cookie.Reveal(); got != tt.want {
				t.Errorf("cookie %q, want %q", got, tt.want)
			}
		})
	}
}

// cookieFile writes a cookie file with exactly mode (whatever the umask)
// and returns its path.
func cookieFile(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, ".erlang.cookie")
	if err := os.WriteFile(p, []byte("c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCookieFileMode: a cookie file that group or others may read (or
// write) is used, and reported for one warning at start; an owner-only one
// is not; a cookie given directly reads no file.
func TestCookieFileMode(t *testing.T) {
	tests := []struct {
		name  string
		mode  os.FileMode
		how   string // "flag", "home" or "cookie"
		loose bool
	}{
		{"0400", 0o400, "flag", false},
		{"0600", 0o600, "flag", false},
		{"0644 (a Kubernetes Secret by default)", 0o644, "flag", true},
		{"0640", 0o640, "flag", true},
		{"0604", 0o604, "flag", true},
		{"0620", 0o620, "flag", true},
		{"$HOME/.erlang.cookie 0644", 0o644, "home", true},
		{"$HOME/.erlang.cookie 0400", 0o400, "home", false},
		{"--cookie given: the file is not read", 0o644, "cookie", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := t.TempDir()
			path := cookieFile(t, home, tt.mode)
			vars := map[string]string{"HOME": home}
			var args []string
			switch tt.how {
			case "flag":
				args = []string{"--cookie-file=" + path}
				vars = nil
			case "cookie":
				args = []string{"--cookie=direct", "--cookie-file=" + path}
			}
			c, _, err := load(args, testEnv(vars))
			if err != nil {
				t.Fatal(err)
			}
			got := c.LooseCookieFile
			if !tt.loose {
				if got != (fileMode{}) {
					t.Fatalf("reported %+v for a cookie file of mode %04o", got, tt.mode)
				}
				return
			}
			if got.Path != path || got.Mode != tt.mode {
				t.Fatalf("reported %+v, want %s with mode %04o", got, path, tt.mode)
			}
		})
	}
}

func TestCookieErrors(t *testing.T) {
	emptyHome := t.TempDir()
	empty := writeFile(t, "empty", "\n", 0o400)
	tests := []struct {
		name     string
		args     []string
		vars     map[string]string
		mentions string
	}{
		{"no cookie and no $HOME", nil, nil, "$HOME is unset"},
		{"no $HOME/.erlang.cookie", nil, map[string]string{"HOME": emptyHome}, ".erlang.cookie"},
		{"missing cookie file", []string{"--cookie-file=" + filepath.Join(emptyHome, "nope")}, nil, "nope"},
		{"empty cookie file", []string{"--cookie-file=" + empty}, nil, "is empty"},
		{"cookie file is a directory", []string{"--cookie-file=" + emptyHome}, nil, emptyHome},
		{"control character", []string{"--cookie=a\x01b"}, nil, "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := load(append([]string{"--name=a@h"}, tt.args...), testEnv(tt.vars))
			if !errors.Is(err, errInvalid) {
				t.Fatalf("error %v does not wrap errInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.mentions) {
				t.Errorf("error %q does not mention %q", err, tt.mentions)
			}
			if n := problemCount(t, err); n != 1 {
				t.Errorf("%d problems reported, want 1: %v", n, err)
			}
			checkNamesFlagAndVariable(t, err)
		})
	}
}

func TestValidConfigurations(t *testing.T) {
	tests := []struct {
		name string
		args []string
		vars map[string]string
	}{
		{"defaults and a cookie", nil, nil},
		{"short names", []string{"--distribution=sname", "--name=a@host"}, nil},
		{"EPMD none with a port", []string{"--epmd=none", "--dist-port=9100"}, nil},
		{"external EPMD", []string{"--epmd=external", "--epmd-addr=127.0.0.1:4370"}, nil},
		{"dns strategy", []string{"--service=app-headless", "--ip-family=dual", "--resolver=127.0.0.1:53"}, nil},
		{"dnssrv strategy", nil, map[string]string{"GONODE_STRATEGY": "dnssrv", "GONODE_SERVICE": "app",
			"GONODE_NAMESPACE": "prod", "CLUSTER_DOMAIN": "cluster.local", "GONODE_RESOLVER": "127.0.0.1:53"}},
		{"static strategy", []string{"--strategy=static", "--hosts=a@10.0.0.1,b@10.0.0.2"}, nil},
		{"metrics off", []string{"--metrics-addr="}, nil},
		{"logs", []string{"--log-format=text", "--log-level=debug"}, nil},
		{"bare OTP and libcluster numbers", nil, map[string]string{"GONODE_NET_TICKTIME": "15", "GONODE_POLLING_INTERVAL": "500"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := load(append([]string{"--cookie=c"}, tt.args...), testEnv(tt.vars)); err != nil {
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
}

func TestInvalidConfigurations(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		vars     map[string]string
		is       error  // a sentinel the error wraps
		mentions string // what the message must name for the reader
	}{
		{"name without @", []string{"--name=nohost"}, nil, node.ErrInvalidName, "nohost"},
		{"invalid basename in name", []string{"--name=a.b@h"}, nil, node.ErrInvalidName, "a.b@h"},
		{"invalid host part", []string{"--name=a@h_x"}, nil, node.ErrInvalidName, "h_x"},
		{"invalid application name", []string{"--application-name=my.app"}, nil, errInvalid, "--application-name"},
		{"invalid pod IP", nil, map[string]string{"POD_IP": "10.0.0.300"}, errInvalid, "POD_IP"},
		{"pod IP with a zone", []string{"--pod-ip=fe80::1%eth0"}, nil, errInvalid, "zone"},
		{"short names with an IP host", []string{"--distribution=sname", "--name=a@10.0.0.1"}, nil, node.ErrInvalidName, "long names"},
		{"unknown distribution", nil, map[string]string{"RELEASE_DISTRIBUTION": "longnames"}, node.ErrInvalidConfig, "longnames"},
		{"dist port out of range", []string{"--dist-port=70000"}, nil, node.ErrInvalidConfig, "70000"},
		{"EPMD port out of range", []string{"--epmd-port=0"}, nil, node.ErrInvalidConfig, "EPMD port"},
		{"unparsable int", nil, map[string]string{"GONODE_DIST_PORT": "ninety"}, errInvalid, "GONODE_DIST_PORT"},
		{"unparsable bool", []string{"--hidden=perhaps"}, nil, errInvalid, "--hidden"},
		{"unparsable duration", []string{"--net-ticktime=soon"}, nil, errInvalid, "--net-ticktime"},
		{"duration without unit", []string{"--connect-timeout=5"}, nil, errInvalid, "no unit"},
		{"net tick time too short", []string{"--net-ticktime=10ms"}, nil, node.ErrInvalidConfig, "tick"},
		{"unknown EPMD mode", []string{"--epmd=both"}, nil, node.ErrInvalidConfig, "both"},
		{"EPMD none without a port", []string{"--epmd=none"}, nil, node.ErrInvalidConfig, "dist port"},
		{"EPMD address without port", []string{"--epmd-addr=127.0.0.1"}, nil, errInvalid, "--epmd-addr"},
		{"unknown strategy", []string{"--strategy=consul"}, nil, discovery.ErrInvalidConfig, "consul"},
		{"kubernetes mode", []string{"--strategy=kubernetes", "--service=s", "--kubernetes-mode=fqdn"}, nil, discovery.ErrInvalidConfig, "fqdn"},
		{"selector off strategy", []string{"--service=s", "--kubernetes-selector=app=x"}, nil, discovery.ErrInvalidConfig, "--kubernetes-selector"},
		{"dnssrv without namespace", []string{"--strategy=dnssrv", "--service=app"}, nil, discovery.ErrInvalidConfig, "namespace"},
		{"static with a bad host", []string{"--strategy=static", "--hosts=justahost"}, nil, discovery.ErrInvalidConfig, "justahost"},
		{"unknown IP family", []string{"--ip-family=ipv5"}, nil, discovery.ErrInvalidConfig, "ipv5"},
		{"bad resolver", []string{"--resolver=127.0.0.1"}, nil, discovery.ErrInvalidConfig, "resolver"},
		{"prune-after zero", []string{"--prune-after=0"}, nil, discovery.ErrInvalidConfig, "prune-after"},
		{"bad metrics address", []string{"--metrics-addr=9568"}, nil, errInvalid, "--metrics-addr"},
		{"negative min peers", []string{"--min-peers=-1"}, nil, metrics.ErrInvalidServerConfig, "min peers"},
		{"unknown log format", []string{"--log-format=xml"}, nil, errInvalid, "xml"},
		{"unknown log level", nil, map[string]string{"GONODE_LOG_LEVEL": "verbose"}, errInvalid, "verbose"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := load(append([]string{"--cookie=c"}, tt.args...), testEnv(tt.vars))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, errInvalid) || !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap errInvalid and %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.mentions) {
				t.Errorf("error %q does not mention %q", err, tt.mentions)
			}
			if n := problemCount(t, err); n != 1 {
				t.Errorf("%d problems reported, want exactly 1: %v", n, err)
			}
			checkNamesFlagAndVariable(t, err)
		})
	}
}

// TestEveryProblemInOneMessage runs with many bad settings and a distinctive
// cookie: the exit status is 2, stderr lists every problem once, and the
// cookie appears nowhere.
func TestEveryProblemInOneMessage(t *testing.T) {
	const cookie = "Zq7-DISTINCTIVE-COOKIE-4Xw"
	args := []string{
		"--cookie=" + cookie,
		"--name=nohost",
		"--dist-port=70000",
		"--net-ticktime=soon",
		"--strategy=consul",
		"--log-level=verbose",
	}
	vars := map[string]string{
		"RELEASE_DISTRIBUTION": "longnames",
		"GONODE_HIDDEN":        "perhaps",
		"GONODE_METRICS_ADDR":  "nope",
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, testEnv(vars), &out, &errOut)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitUsage, errOut.String())
	}
	all := out.String() + errOut.String()
	if strings.Contains(all, cookie) {
		t.Fatalf("the cookie appears in the output:\n%s", all)
	}
	msg := errOut.String()
	for _, want := range []string{"nohost", "70000", "--net-ticktime", "consul", "verbose", "longnames", "GONODE_HIDDEN", "--metrics-addr"} {
		if strings.Count(msg, want) != 1 {
			t.Errorf("stderr names %q %d times, want once:\n%s", want, strings.Count(msg, want), msg)
		}
	}
	if !strings.HasPrefix(msg, "gonode: invalid configuration (8 problems):\n") {
		t.Errorf("stderr does not start with the 8-problem header:\n%s", msg)
	}
}

// TestCookieNeverInErrors tries every way a cookie can enter and be wrong.
func TestCookieNeverInErrors(t *testing.T) {
	const cookie = "Zq7-DISTINCTIVE-COOKIE-4Xw"
	long := strings.Repeat(cookie, 20) // over 255 bytes
	file := writeFile(t, "cookie", long+"\n", 0o400)
	tests := []struct {
		name string
		args []string
		vars map[string]string
	}{
		{"too long from the flag", []string{"--cookie=" + long}, nil},
		{"too long from the environment", nil, map[string]string{"RELEASE_COOKIE": long}},
		{"too long from a file", []string{"--cookie-file=" + file}, nil},
		{"control character", []string{"--cookie=" + cookie + "\x07"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), append([]string{"--name=bad"}, tt.args...), testEnv(tt.vars), &out, &errOut)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d", code, exitUsage)
			}
			if all := out.String() + errOut.String(); strings.Contains(all, cookie) {
				t.Fatalf("the cookie appears in the output:\n%s", all)
			}
			if !strings.Contains(errOut.String(), "cookie") {
				t.Errorf("stderr does not report the cookie problem:\n%s", errOut.String())
			}
		})
	}
}

// problemCount is how many problems load's configError holds.
func problemCount(t *testing.T, err error) int {
	t.Helper()
	var ce *configError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a configError", err)
	}
	return len(ce.problems)
}

// A configError is checked with errors.Is and errors.As, never by its text:
// it wraps errInvalid and each problem; a Validate's join is split one
// level, so a problem wrapping two errors stays one.
func TestConfigError(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	wrapped := fmt.Errorf("%w: %w", a, b) // two %w: one problem, not two
	var list problems
	list.addValidation(errors.Join(a, wrapped, c), func(err error) bool { return err == c }, nil, nil)
	list.addValidation(nil, nil, nil, nil)
	list.addf("bad %q", "x")
	err := list.err()
	var ce *configError
	if !errors.As(err, &ce) {
		t.Fatalf("%v is not a configError", err)
	}
	if want := []error{a, wrapped}; len(ce.problems) != 3 || ce.problems[0] != want[0] || ce.problems[1] != want[1] {
		t.Fatalf("problems = %v, want a, the two-%%w error, bad \"x\"", ce.problems)
	}
	for _, target := range []error{errInvalid, a, b} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %v) = false", err, target)
		}
	}
	if errors.Is(err, c) || errors.Is(err, errUsage) {
		t.Errorf("%v wraps the skipped problem or errUsage", err)
	}
	if got, want := err.Error(), "invalid configuration: a\ninvalid configuration: a: b\ninvalid configuration: bad \"x\""; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}

	var merged problems
	merged.merge(err)
	merged.merge(nil)
	merged.merge(problems{c}.err())
	if n := problemCount(t, merged.err()); n != 4 {
		t.Errorf("merged %d problems, want 4", n)
	}
	if problems(nil).err() != nil {
		t.Error("no problems is not a nil error")
	}
}

// writeConfigError prints the problems of load's configError, of a
// package's Validate (node.New) and a usage error, each from its type.
func TestWriteConfigError(t *testing.T) {
	bad := node.DefaultConfig()
	bad.Name, bad.EPMDPort = "a@127.0.0.1", 0 // and no cookie
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"configError", problems{errors.New("--hidden: \"perhaps\" is not a boolean")}.err(),
			"gonode: invalid configuration (1 problem):\n  - --hidden: \"perhaps\" is not a boolean\n"},
		{"node.Config.Validate", bad.Validate(),
			"gonode: invalid configuration (2 problems):\n  - --cookie / RELEASE_COOKIE: invalid node configuration: the cookie is empty\n" +
				"  - --epmd-port / GONODE_EPMD_PORT: invalid node configuration: EPMD port 0 is out of range 1-65535\n"},
		{"usage", usagef("unexpected argument %q (every setting is a --flag)", "x"),
			"gonode: unexpected argument \"x\" (every setting is a --flag)\nRun gonode --help for the flags and their environment variables.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			writeConfigError(&out, tt.err)
			if out.String() != tt.want {
				t.Errorf("printed\n%s\nwant\n%s", out.String(), tt.want)
			}
		})
	}
}

// checkNamesFlagAndVariable fails unless every problem of err starts with
// the flag and the variable of one option: "--flag / VARIABLE: ".
func checkNamesFlagAndVariable(t *testing.T, err error) {
	t.Helper()
	var ce *configError
	if !errors.As(err, &ce) {
		t.Fatalf("%v is not a configError", err)
	}
	for _, p := range ce.problems {
		named := false
		for _, o := range options() {
			named = named || strings.HasPrefix(p.Error(), o.label()+": ") || strings.HasPrefix(p.Error(), o.label()+" (")
		}
		if !named {
			t.Errorf("problem %q does not start with the flag and the variable of an option (\"--flag / VARIABLE: \")", p)
		}
	}
}

// Every configuration error names its flag and its variable, whether the
// value came from the flag or the variable, and whether this binary or a
// package's Validate found the problem.
func TestConfigErrorsNameFlagAndVariable(t *testing.T) {
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"unparsable, from the flag", []string{"--polling-interval=soon"}, nil,
			`--polling-interval / GONODE_POLLING_INTERVAL: "soon" is neither a duration`},
		{"unparsable, from the variable", nil, map[string]string{"GONODE_POLLING_INTERVAL": "soon"},
			`--polling-interval / GONODE_POLLING_INTERVAL: "soon" is neither a duration`},
		{"discovery's Validate", nil, map[string]string{"GONODE_POLLING_INTERVAL": "-5"},
			`--polling-interval / GONODE_POLLING_INTERVAL: invalid discovery configuration: polling interval -5ms must be positive`},
		{"node's Validate", []string{"--net-ticktime=10ms"}, nil,
			`--net-ticktime / GONODE_NET_TICKTIME: invalid node configuration: net tick time 10ms is below 1s`},
		{"node's Validate, TLS", []string{"--tls-cert=/c.pem", "--tls-key=/k.pem"}, nil,
			`--tls-ca / GONODE_TLS_CA: invalid node configuration: TLS peer verification needs a CA file`},
		{"metrics' Validate", nil, map[string]string{"GONODE_MIN_PEERS": "-1"},
			`--min-peers / GONODE_MIN_PEERS: `},
		{"this binary's check", []string{"--log-format=xml"}, nil,
			`--log-format / GONODE_LOG_FORMAT: unknown format "xml"`},
		{"the cookie file's cookie", []string{"--cookie-file=" + writeFile(t, "ctl", "a\x01b", 0o400)}, nil,
			`--cookie-file / GONODE_COOKIE_FILE (the file's cookie): invalid node configuration: the cookie contains a control character`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--name=a@127.0.0.1"}, tt.args...)
			if !strings.Contains(strings.Join(tt.args, " "), "--cookie-file") {
				args = append(args, "--cookie=c")
			}
			_, _, err := load(args, testEnv(tt.vars))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			checkNamesFlagAndVariable(t, err)
		})
	}
}
