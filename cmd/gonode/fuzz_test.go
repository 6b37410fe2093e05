package main

import (
	"errors"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary arguments and variable values to load: it never
// panics, an error is always a usage or a configuration error, and the
// cookie never appears in it.
func FuzzLoad(f *testing.F) {
	f.Add("--name=a@b\x00--dist-port=5", "60", "x@y,z@w", "10.0.0.1")
	f.Add("--hidden\x00false", "abc", "", "fd00::1")
	f.Add("--net-ticktime=99999999999999999999", "-1", ",,,", "[::1]")
	f.Add("--strategy=dnssrv\x00--service=a..b", "1e3", "@", "fe80::1%eth0")
	const cookie = "Zq7-DISTINCTIVE-COOKIE-4Xw"
	f.Fuzz(func(t *testing.T, args, tick, hosts, podIP string) {
		argv := []string{"--cookie=" + cookie}
		if args != "" {
			argv = append(argv, strings.Split(args, "\x00")...)
		}
		env := testEnv(map[string]string{
			"GONODE_NET_TICKTIME":     tick,
			"GONODE_POLLING_INTERVAL": tick,
			"GONODE_HOSTS":            hosts,
			"POD_IP":                  podIP,
		})
		_, _, err := load(argv, env)
		if err == nil {
			return
		}
		if !errors.Is(err, errUsage) && !errors.Is(err, errInvalid) {
			t.Fatalf("error wraps neither errUsage nor errInvalid: %v", err)
		}
		if strings.Contains(err.Error(), cookie) && !strings.Contains(args+tick+hosts+podIP, cookie) {
			t.Fatalf("the cookie appears in the error: %v", err)
		}
	})
}
