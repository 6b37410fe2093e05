package discovery_test

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gonode/gonode/discovery"
)

func TestDefaultConfig(t *testing.T) {
	c := discovery.DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if c.Enabled() {
		t.Fatal("discovery on with no --service and no --hosts")
	}
	if c.PollingInterval != 5*time.Second || c.PruneAfter != 2 || c.MaxConcurrentConnects != 16 ||
		c.ConnectTimeout != 5*time.Second || c.MaxPeers != 10000 || !c.Prune || c.Strategy != discovery.StrategyDNS ||
		c.ClusterDomain != "cluster.local" || c.IPFamily != discovery.IPv4 || c.ResolvConf != "/etc/resolv.conf" {
		t.Fatalf("defaults %+v", c)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*discovery.Config)
		errs   []string // substrings, one per expected problem
	}{
		{"dns with service", func(c *discovery.Config) { c.Service = "app-headless" }, nil},
		{"dnssrv", func(c *discovery.Config) {
			c.Strategy, c.Service, c.Namespace = discovery.StrategyDNSSRV, "web", "prod"
		}, nil},
		{"static", func(c *discovery.Config) { c.Strategy, c.Hosts = discovery.StrategyStatic, []string{"a@h1", "b@h2"} }, nil},
		{"unknown strategy", func(c *discovery.Config) { c.Strategy = "gossip" }, []string{"unknown strategy"}},
		{"dnssrv without namespace", func(c *discovery.Config) { c.Strategy, c.Service = discovery.StrategyDNSSRV, "web" }, []string{"needs --namespace"}},
		{"hosts with dns", func(c *discovery.Config) { c.Hosts = []string{"a@h"} }, []string{"needs --service"}},
		{"service with static", func(c *discovery.Config) { c.Strategy, c.Service = discovery.StrategyStatic, "x" }, []string{"needs --hosts"}},
		{"bad host", func(c *discovery.Config) { c.Strategy, c.Hosts = discovery.StrategyStatic, []string{"nohost"} }, []string{"want name@host"}},
		{"bad service", func(c *discovery.Config) { c.Service = "a..b" }, []string{"empty label"}},
		{"bad app name", func(c *discovery.Config) { c.Service, c.ApplicationName = "s", "a@b" }, []string{"application name"}},
		{"bad family", func(c *discovery.Config) { c.IPFamily = "ipx" }, []string{"ip family"}},
		{"bad resolver", func(c *discovery.Config) { c.Resolver = "10.0.0.1" }, []string{"host:port"}},
		{"resolver port", func(c *discovery.Config) { c.Resolver = "10.0.0.1:0" }, []string{"port in 1-65535"}},
		{"no resolver at all", func(c *discovery.Config) { c.Service, c.ResolvConf = "s", "" }, []string{"no resolver"}},
		{"every number at once", func(c *discovery.Config) {
			c.PollingInterval, c.PruneAfter, c.MaxConcurrentConnects, c.ConnectTimeout, c.MaxPeers = 0, 0, 0, -1, 0
		}, []string{"polling interval", "prune-after", "max-concurrent-connects", "connect timeout", "max-peers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := discovery.DefaultConfig()
			tc.mutate(&c)
			before := c
			before.Hosts = append([]string(nil), c.Hosts...)
			err := c.Validate()
			if !reflect.DeepEqual(before, c) {
				t.Fatal("Validate changed the config")
			}
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, discovery.ErrInvalidConfig) {
				t.Fatalf("err %v does not wrap ErrInvalidConfig", err)
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != len(tc.errs) {
				t.Errorf("%d problems reported, want %d: %v", n, len(tc.errs), err)
			}
		})
	}
}

func TestFlagsCoverConfig(t *testing.T) {
	fields := map[string]bool{}
	typ := reflect.TypeOf(discovery.Config{})
	for i := 0; i < typ.NumField(); i++ {
		fields[typ.Field(i).Name] = false
	}
	names, envs := map[string]bool{}, map[string]bool{}
	for _, f := range discovery.Flags() {
		if _, ok := fields[f.Field]; !ok {
			t.Errorf("flag --%s sets unknown field %q", f.Name, f.Field)
		}
		fields[f.Field] = true
		if f.Env == "" || f.Usage == "" || names[f.Name] || envs[f.Env] {
			t.Errorf("flag --%s: missing or duplicate env/usage", f.Name)
		}
		names[f.Name], envs[f.Env] = true, true
	}
	for name, seen := range fields {
		if !seen {
			t.Errorf("Config.%s has no flag", name)
		}
	}
}

func TestDocsListEveryFlag(t *testing.T) {
	doc, err := os.ReadFile("../docs/discovery.md")
	if err != nil {
		t.Fatalf("docs/discovery.md: %v", err)
	}
	for _, f := range discovery.Flags() {
		for _, s := range []string{"--" + f.Name, f.Env} {
			if !strings.Contains(string(doc), "`"+s+"`") {
				t.Errorf("docs/discovery.md does not list `%s`", s)
			}
		}
		if f.Libcluster != "" && !strings.Contains(string(doc), f.Libcluster) {
			t.Errorf("docs/discovery.md does not name libcluster's %s", f.Libcluster)
		}
	}
	if !strings.Contains(string(doc), "4,090") {
		t.Error("docs/discovery.md does not state the ~4,090-pod DNS limit")
	}
}
