package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/node"
)

// testEnv is an environment with the given variables, one non-loopback IPv4
// address (10.1.2.3 after a loopback and a link-local one), the host name
// pod-7.example and no terminal.
func testEnv(vars map[string]string) environment {
	return environment{
		LookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		Environ: func() []string {
			var list []string
			for k, v := range vars {
				list = append(list, k+"="+v)
			}
			return list
		},
		InterfaceAddrs: func() ([]net.Addr, error) {
			return []net.Addr{
				&net.IPNet{IP: net.ParseIP("127.0.0.1"), Mask: net.CIDRMask(8, 32)},
				&net.IPNet{IP: net.ParseIP("169.254.1.1"), Mask: net.CIDRMask(16, 32)},
				&net.IPNet{IP: net.ParseIP("fd00::5"), Mask: net.CIDRMask(64, 128)},
				&net.IPNet{IP: net.ParseIP("10.1.2.3"), Mask: net.CIDRMask(16, 32)},
			}, nil
		},
		Hostname:   func() (string, error) { return "pod-7.example", nil },
		IsTerminal: func(io.Writer) bool { return false },
	}
}

func TestEveryOptionHasAnEnvironmentVariable(t *testing.T) {
	names, envs := map[string]bool{}, map[string]bool{}
	for _, o := range options() {
		t.Run(o.name, func(t *testing.T) {
			switch {
			case o.env == "":
				t.Errorf("--%s has no environment variable", o.name)
			case o.env != strings.ToUpper(o.env) || strings.ContainsAny(o.env, "- "):
				t.Errorf("--%s: environment variable %q is not UPPER_SNAKE", o.name, o.env)
			case names[o.name]:
				t.Errorf("--%s is in the table twice", o.name)
			case envs[o.env]:
				t.Errorf("%s is in the table twice", o.env)
			}
			if o.usage == "" || strings.Contains(o.usage, "\n") {
				t.Errorf("--%s: usage %q is not one line", o.name, o.usage)
			}
			if o.set == nil {
				t.Errorf("--%s has no setter", o.name)
			}
			if !slices.Contains(groups, o.group) {
				t.Errorf("--%s: unknown group %q", o.name, o.group)
			}
			names[o.name], envs[o.env] = true, true
		})
	}
}

// TestRequiredFlags lists the flags and variables the project's issues ask
// for; the table must have each with exactly that variable.
func TestRequiredFlags(t *testing.T) {
	want := map[string]string{
		"name": "RELEASE_NODE", "application-name": "GONODE_APPLICATION_NAME", "pod-ip": "POD_IP",
		"cookie": "RELEASE_COOKIE", "cookie-file": "GONODE_COOKIE_FILE", "distribution": "RELEASE_DISTRIBUTION",
		"dist-port": "GONODE_DIST_PORT", "hidden": "GONODE_HIDDEN", "net-ticktime": "GONODE_NET_TICKTIME",
		"epmd": "GONODE_EPMD", "epmd-port": "GONODE_EPMD_PORT", "epmd-addr": "GONODE_EPMD_ADDR",
		"strategy": "GONODE_STRATEGY", "service": "GONODE_SERVICE", "namespace": "GONODE_NAMESPACE",
		"cluster-domain": "CLUSTER_DOMAIN", "hosts": "GONODE_HOSTS", "ip-family": "GONODE_IP_FAMILY",
		"polling-interval": "GONODE_POLLING_INTERVAL", "resolver": "GONODE_RESOLVER", "prune": "GONODE_PRUNE",
		"prune-after": "GONODE_PRUNE_AFTER", "max-concurrent-connects": "GONODE_MAX_CONCURRENT_CONNECTS",
		"connect-timeout": "GONODE_CONNECT_TIMEOUT", "max-peers": "GONODE_MAX_PEERS",
		"metrics-addr": "GONODE_METRICS_ADDR", "min-peers": "GONODE_MIN_PEERS",
		"log-format": "GONODE_LOG_FORMAT", "log-level": "GONODE_LOG_LEVEL",
		"tls-cert": "GONODE_TLS_CERT", "tls-key": "GONODE_TLS_KEY", "tls-ca": "GONODE_TLS_CA",
		"tls-verify": "GONODE_TLS_VERIFY", "tls-server-name": "GONODE_TLS_SERVER_NAME",
	}
	have := map[string]string{}
	for _, o := range options() {
		have[o.name] = o.env
	}
	for flag, env := range want {
		if have[flag] != env {
			t.Errorf("--%s: variable %q, want %q", flag, have[flag], env)
		}
	}
}

// TestDiscoveryFlagsAreWired checks that every row of discovery.Flags is in
// the table with the same variable and a setter that stores into the field
// it names.
func TestDiscoveryFlagsAreWired(t *testing.T) {
	byName := map[string]option{}
	for _, o := range options() {
		byName[o.name] = o
	}
	sample := map[kind]string{kindString: "x.example", kindEnum: "static", kindBool: "false",
		kindInt: "7", kindDuration: "3s", kindList: "a@h1,b@h2"}
	for _, f := range discovery.Flags() {
		t.Run(f.Name, func(t *testing.T) {
			o, ok := byName[f.Name]
			if !ok {
				t.Fatalf("discovery flag --%s is not in the table", f.Name)
			}
			if o.env != f.Env {
				t.Errorf("variable %q, discovery says %q", o.env, f.Env)
			}
			if f.Field == "ApplicationName" {
				return // the node's --application-name row, checked in TestApplicationName
			}
			c := defaultConfig()
			before := reflect.ValueOf(c.Discovery).FieldByName(f.Field)
			if !before.IsValid() {
				t.Fatalf("discovery.Config has no field %s", f.Field)
			}
			before = reflect.ValueOf(before.Interface()) // a copy
			if err := o.set(&c, sample[o.kind]); err != nil {
				t.Fatalf("set %q: %v", sample[o.kind], err)
			}
			after := reflect.ValueOf(c.Discovery).FieldByName(f.Field)
			if reflect.DeepEqual(before.Interface(), after.Interface()) {
				t.Errorf("setting %q left %s at %v", sample[o.kind], f.Field, after.Interface())
			}
		})
	}
}

func TestHelpListsEveryFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, testEnv(nil), &out, &errOut); code != exitOK {
		t.Fatalf("--help exited %d: %s", code, errOut.String())
	}
	help := out.String()
	for _, o := range options() {
		if !strings.Contains(help, "  --"+o.name+" ") {
			t.Errorf("--help does not list --%s", o.name)
		}
		if !strings.Contains(help, "env "+o.env+",") {
			t.Errorf("--help does not list %s", o.env)
		}
	}
	for _, g := range groups {
		if !strings.Contains(help, "\n"+g+":\n") {
			t.Errorf("--help has no group %s", g)
		}
	}
	var short bytes.Buffer
	run(context.Background(), []string{"-h"}, testEnv(nil), &short, &errOut)
	if short.String() != help {
		t.Error("-h and --help differ")
	}
}

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, testEnv(nil), &out, &errOut); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if got, want := out.String(), "gonode "+version+"\n"; got != want {
		t.Errorf("--version printed %q, want %q", got, want)
	}
}

// TestPrecedence: a flag overrides its variable, which overrides the
// default, for one option of every kind.
func TestPrecedence(t *testing.T) {
	tests := []struct {
		name, flag, env      string
		envVal, flagVal      string
		get                  func(config) any
		def, fromEnv, fromFl any
	}{
		{"string", "service", "GONODE_SERVICE", "env-svc", "flag-svc",
			func(c config) any { return c.Discovery.Service }, "", "env-svc", "flag-svc"},
		{"enum", "distribution", "RELEASE_DISTRIBUTION", "sname", "name",
			func(c config) any { return c.Node.NameMode }, node.LongNames, node.ShortNames, node.LongNames},
		{"int", "dist-port", "GONODE_DIST_PORT", "9100", "9200",
			func(c config) any { return c.Node.DistPort }, 0, 9100, 9200},
		{"bool", "hidden", "GONODE_HIDDEN", "true", "false",
			func(c config) any { return c.Node.Hidden }, false, true, false},
		{"duration seconds", "net-ticktime", "GONODE_NET_TICKTIME", "20", "30s",
			func(c config) any { return c.Node.NetTickTime }, 60 * time.Second, 20 * time.Second, 30 * time.Second},
		{"duration milliseconds", "polling-interval", "GONODE_POLLING_INTERVAL", "2500", "1s",
			func(c config) any { return c.Discovery.PollingInterval }, 5 * time.Second, 2500 * time.Millisecond, time.Second},
		{"list", "hosts", "GONODE_HOSTS", "a@h1, b@h2", "c@h3",
			func(c config) any { return c.Discovery.Hosts }, []string(nil), []string{"a@h1", "b@h2"}, []string{"c@h3"}},
		{"tls-cert", "tls-cert", "GONODE_TLS_CERT", "/env/tls.crt", "/flag/tls.crt",
			func(c config) any { return c.Node.TLS.CertFile }, "", "/env/tls.crt", "/flag/tls.crt"},
		{"tls-key", "tls-key", "GONODE_TLS_KEY", "/env/tls.key", "/flag/tls.key",
			func(c config) any { return c.Node.TLS.KeyFile }, "", "/env/tls.key", "/flag/tls.key"},
		{"tls-ca", "tls-ca", "GONODE_TLS_CA", "/env/ca.crt", "/flag/ca.crt",
			func(c config) any { return c.Node.TLS.CAFile }, "", "/env/ca.crt", "/flag/ca.crt"},
		{"tls-verify", "tls-verify", "GONODE_TLS_VERIFY", "none", "peer",
			func(c config) any { return c.Node.TLS.Verify }, node.TLSVerify(""), node.TLSVerifyNone, node.TLSVerifyPeer},
		{"tls-server-name", "tls-server-name", "GONODE_TLS_SERVER_NAME", "dist.example", "other.example",
			func(c config) any { return c.Node.TLS.ServerName }, "", "dist.example", "other.example"},
		{"metrics-addr empty disables", "metrics-addr", "GONODE_METRICS_ADDR", "", "127.0.0.1:0",
			func(c config) any { return c.MetricsAddr }, ":9568", "", "127.0.0.1:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(what string, args []string, vars map[string]string, want any) {
				t.Helper()
				c, _, err := parse(args, testEnv(vars))
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if got := tt.get(c); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: got %#v, want %#v", what, got, want)
				}
			}
			check("default", nil, nil, tt.def)
			check("env", nil, map[string]string{tt.env: tt.envVal}, tt.fromEnv)
			check("flag over env", []string{"--" + tt.flag + "=" + tt.flagVal}, map[string]string{tt.env: tt.envVal}, tt.fromFl)
		})
	}
}

// An empty variable is unset for typed options, so a templated manifest's
// GONODE_DIST_PORT= keeps the default rather than failing.
func TestEmptyTypedVariableIsUnset(t *testing.T) {
	c, _, err := parse(nil, testEnv(map[string]string{
		"GONODE_DIST_PORT": "", "GONODE_HIDDEN": "", "GONODE_NET_TICKTIME": "", "GONODE_STRATEGY": "",
	}))
	if err != nil {
		t.Fatal(err)
	}
	d := defaultConfig()
	if c.Node.DistPort != d.Node.DistPort || c.Node.Hidden != d.Node.Hidden ||
		c.Node.NetTickTime != d.Node.NetTickTime || c.Discovery.Strategy != d.Discovery.Strategy {
		t.Errorf("empty variables changed the defaults: %+v", c)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		bare    time.Duration
		want    time.Duration
		wantErr bool
	}{
		{"60", time.Second, 60 * time.Second, false},
		{"60s", time.Second, 60 * time.Second, false},
		{" 1m30s ", time.Second, 90 * time.Second, false},
		{"5000", time.Millisecond, 5 * time.Second, false},
		{"250ms", time.Millisecond, 250 * time.Millisecond, false},
		{"0", 0, 0, false},
		{"5s", 0, 5 * time.Second, false},
		{"5", 0, 0, true},
		{"", time.Second, 0, true},
		{"abc", time.Second, 0, true},
		{"1x", 0, 0, true},
		{"99999999999999999", time.Second, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDuration(tt.in, tt.bare)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseDuration(%q, %v) = %v, %v; want %v, error %v", tt.in, tt.bare, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--no-such-flag"}, {"--dist-port"}, {"stray"}, {"--hidden", "false"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(context.Background(), args, testEnv(nil), &out, &errOut); code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if !strings.Contains(errOut.String(), "gonode --help") {
				t.Errorf("stderr does not point at --help: %q", errOut.String())
			}
		})
	}
}

// A GONODE_ variable that no option reads is found, with the option
// variable it is a slip of when one is close.
func TestUnknownEnv(t *testing.T) {
	environ := []string{
		"GONODE_SERVCE=app-headless",   // a letter dropped
		"GONODE_POLLING_INTERVALL=500", // a letter doubled
		"GONODE_LOGLEVEL=debug",        // the underscore dropped
		"GONODE_SOMETHING_ELSE_ENTIRELY=1",
		"GONODE_SERVICE=app", "GONODE_LOG_LEVEL=info", // known
		"RELEASE_COOKIE=x", "PATH=/bin", "GONODE=1", // not GONODE_ ones
		"GONODE_SERVCE=again", // listed twice: reported once
	}
	got := unknownEnv(environ, options())
	want := []envSlip{
		{"GONODE_LOGLEVEL", "GONODE_LOG_LEVEL"},
		{"GONODE_POLLING_INTERVALL", "GONODE_POLLING_INTERVAL"},
		{"GONODE_SERVCE", "GONODE_SERVICE"},
		{"GONODE_SOMETHING_ELSE_ENTIRELY", ""},
	}
	if !slices.Equal(got, want) {
		t.Errorf("unknownEnv = %v, want %v", got, want)
	}
}
