package node_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
)

// These tests use the EPMD port 4369 of the package's network namespace
// (TestMain). Other tests of the package may leave an OTP epmd daemon behind
// (a BEAM started without -start_epmd false launches one when nothing serves
// the port), so each test here first kills every epmd process of the
// namespace (found with `ip netns pids`, never by name across the machine)
// and waits until nothing answers on 4369. The BEAM nodes these tests start
// all run with -start_epmd false, so they leave no epmd behind either.

// netnsEPMDs returns the pids of the live epmd processes of this test
// binary's network namespace.
func netnsEPMDs(t *testing.T) []int {
	t.Helper()
	beamtest.RequireNetns(t)
	ns := beamtest.NetnsName()
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		t.Fatalf("ip netns pids %s: %v", ns, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != "epmd" {
			continue
		}
		// A zombie holds no socket and cannot be killed again: skip it.
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if _, rest, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(rest, "Z") {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// epmdPortServed reports whether something accepts connections on
// 127.0.0.1:4369.
func epmdPortServed() (bool, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(node.DefaultEPMDPort)), time.Second)
	if err != nil {
		return false, err
	}
	c.Close()
	return true, nil
}

// freeEPMDPort kills the epmd daemons of the namespace and waits until port
// 4369 is free, so the next gonode node in embedded mode serves it.
func freeEPMDPort(t *testing.T) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, func() (bool, string) {
		pids := netnsEPMDs(t)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		served, err := epmdPortServed()
		return len(pids) == 0 && !served, fmt.Sprintf("epmd pids %v, port 4369 served %v (%v)", pids, served, err)
	})
}

// erlEPMDNames returns the names registered with the EPMD on 127.0.0.1 as
// the erl node sees them (erl_epmd:names/1), sorted.
func erlEPMDNames(t *testing.T, erl *beamtest.Node) []string {
	t.Helper()
	out := erl.Eval(t, `case erl_epmd:names({127,0,0,1}) of
		{ok, Ns} -> lists:flatten(lists:join(" ", lists:sort([N || {N, _} <- Ns])));
		Err -> lists:flatten(io_lib:format("error: ~p", [Err]))
	end.`)
	out = strings.Trim(out, `"`)
	if strings.HasPrefix(out, "error:") {
		t.Fatalf("erl_epmd:names() on %s: %s", erl.Name, out)
	}
	return strings.Fields(out)
}

func basename(name string) string {
	b, _, _ := strings.Cut(name, "@")
	return b
}

// erlConnectedTo reports whether name is in the erl node's nodes().
func erlConnectedTo(t *testing.T, erl *beamtest.Node, name string) (bool, string) {
	t.Helper()
	out := erl.Eval(t, "nodes().")
	return strings.Contains(out, "'"+name+"'"), "nodes() on " + erl.Name + " = " + out
}

// disconnectFromErl cuts the connection from the erl side and waits until
// both sides see it gone.
func disconnectFromErl(t *testing.T, erl *beamtest.Node, gn *node.Node) {
	t.Helper()
	erl.Eval(t, fmt.Sprintf("erlang:disconnect_node('%s').", gn.Name()))
	testutil.Eventually(t, 15*time.Second, func() (bool, string) {
		up, state := erlConnectedTo(t, erl, gn.Name())
		return !up && !gn.IsConnected(erl.Name), fmt.Sprintf("%s; gonode connected %v", state, gn.Connected())
	})
}

// TestEPMDEmbeddedServesErl (issue 5): a gonode node in embedded mode
// serves EPMD on 4369; a real erl started with -start_epmd false registers
// with it, sees both nodes in erl_epmd:names(), and the two reach each other
// through it both ways. A second gonode node finds the port taken and
// registers with the first one's server; when it stops its name vanishes
// while erl's stays.
func TestEPMDEmbeddedServesErl(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		freeEPMDPort(t)
		cookie := beamtest.RandomCookie()
		owner, ownerLogs := startGo(t, uniq("go")+"@127.0.0.1", node.Cookie(cookie))
		testutil.Eventually(t, 10*time.Second, func() (bool, string) {
			l := ownerLogs.String()
			return strings.Contains(l, `msg="registered with EPMD"`) && strings.Contains(l, "embedded=true"), l
		})
		if served, err := epmdPortServed(); !served {
			t.Fatalf("nothing serves 4369 after the embedded node started: %v", err)
		}

		erl := beamtest.Start(t, rel, beamtest.Options{
			Name: uniq("erl") + "@127.0.0.1", Cookie: cookie,
			ErlArgs: []string{"-start_epmd", "false"},
		})
		// erl started no epmd of its own: 4369 is ours alone.
		if pids := netnsEPMDs(t); len(pids) != 0 {
			t.Fatalf("epmd processes %v run in the namespace; erl should have used gonode's EPMD", pids)
		}

		t.Run("names lists both", func(t *testing.T) {
			want := []string{basename(erl.Name), basename(owner.Name())}
			slices.Sort(want)
			if got := erlEPMDNames(t, erl); !slices.Equal(got, want) {
				t.Fatalf("erl_epmd:names() = %v, want %v", got, want)
			}
		})
		t.Run("gonode connects to erl", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := owner.Connect(ctx, erl.Name); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, 15*time.Second, func() (bool, string) {
				return erlConnectedTo(t, erl, owner.Name())
			})
			if !owner.IsConnected(erl.Name) {
				t.Fatalf("gonode lists %v, not %s", owner.Connected(), erl.Name)
			}
		})
		t.Run("erl pings gonode", func(t *testing.T) {
			disconnectFromErl(t, erl, owner)
			if got := erl.Eval(t, fmt.Sprintf("net_adm:ping('%s').", owner.Name())); got != "pong" {
				t.Fatalf("net_adm:ping = %s, want pong", got)
			}
			if up, state := erlConnectedTo(t, erl, owner.Name()); !up {
				t.Fatal(state)
			}
			testutil.Eventually(t, 15*time.Second, func() (bool, string) {
				return owner.IsConnected(erl.Name), fmt.Sprintf("gonode connected %v", owner.Connected())
			})
		})
		t.Run("second gonode registers with the first and unregisters on stop", func(t *testing.T) {
			// The first node keeps reporting its peers while a second node
			// runs in the process (ergo's own network event cannot: see
			// eventProto in wire.go).
			events, unsubscribe := owner.Subscribe(16)
			defer unsubscribe()
			second, secondLogs := startGo(t, uniq("go")+"@127.0.0.1", node.Cookie(cookie))
			testutil.Eventually(t, 10*time.Second, func() (bool, string) {
				l := secondLogs.String()
				return strings.Contains(l, `msg="registered with EPMD"`) && strings.Contains(l, "embedded=false"), l
			})
			all := []string{basename(erl.Name), basename(owner.Name()), basename(second.Name())}
			slices.Sort(all)
			if got := erlEPMDNames(t, erl); !slices.Equal(got, all) {
				t.Fatalf("erl_epmd:names() = %v, want %v", got, all)
			}
			if got := erl.Eval(t, fmt.Sprintf("net_adm:ping('%s').", second.Name())); got != "pong" {
				t.Fatalf("net_adm:ping(second) = %s, want pong", got)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := second.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			rest := []string{basename(erl.Name), basename(owner.Name())}
			slices.Sort(rest)
			testutil.Eventually(t, 15*time.Second, func() (bool, string) {
				got := erlEPMDNames(t, erl)
				return slices.Equal(got, rest), fmt.Sprintf("erl_epmd:names() = %v, want %v", got, rest)
			})
			// erl's registration stayed: gonode still finds it through EPMD.
			disconnectFromErl(t, erl, owner)
			waitEvent(t, events, node.Event{Peer: erl.Name, Up: false})
			if err := owner.Connect(ctx, erl.Name); err != nil {
				t.Fatalf("after the second node stopped: %v", err)
			}
			waitEvent(t, events, node.Event{Peer: erl.Name, Up: true})
		})
	})
}

// TestEPMDNoneWithErl (issue 5): gonode in none mode and erl with
// -erl_epmd_port P (no EPMD anywhere) reach each other on port P both ways.
// Both listen on the same port number, so each has a loopback address of its
// own: gonode on 127.0.0.2, erl on 127.0.0.3.
func TestEPMDNoneWithErl(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		// No EPMD at all: erl's registration attempt fails and it runs
		// without one, as -erl_epmd_port allows.
		freeEPMDPort(t)
		port := freePortOn(t, "127.0.0.2", "127.0.0.3")
		cookie := beamtest.RandomCookie()
		gn, logs := startGo(t, uniq("go")+"@127.0.0.2", node.Cookie(cookie), func(c *node.Config) {
			c.EPMD, c.DistPort, c.ListenAddr = node.EPMDNone, port, "127.0.0.2"
		})
		if !strings.Contains(logs.String(), "running without EPMD") {
			t.Fatalf("gonode did not start without EPMD:\n%s", logs.String())
		}
		p := strconv.Itoa(port)
		erl := beamtest.Start(t, rel, beamtest.Options{
			Name: uniq("e") + "@127.0.0.3", Cookie: cookie,
			ErlArgs: []string{
				"-start_epmd", "false", "-erl_epmd_port", p,
				"-kernel", "inet_dist_use_interface", "{127,0,0,3}",
				"-kernel", "inet_dist_listen_min", p, "inet_dist_listen_max", p,
			},
		})
		if served, _ := epmdPortServed(); served {
			t.Fatal("something serves EPMD on 4369; the test wants none")
		}

		t.Run("erl pings gonode", func(t *testing.T) {
			if got := erl.Eval(t, fmt.Sprintf("net_adm:ping('%s').", gn.Name())); got != "pong" {
				t.Fatalf("net_adm:ping = %s, want pong", got)
			}
			if up, state := erlConnectedTo(t, erl, gn.Name()); !up {
				t.Fatal(state)
			}
			testutil.Eventually(t, 15*time.Second, func() (bool, string) {
				return gn.IsConnected(erl.Name), fmt.Sprintf("gonode connected %v", gn.Connected())
			})
		})
		t.Run("gonode connects to erl", func(t *testing.T) {
			disconnectFromErl(t, erl, gn)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := gn.Connect(ctx, erl.Name); err != nil {
				t.Fatal(err)
			}
			if !gn.IsConnected(erl.Name) {
				t.Fatalf("gonode lists %v, not %s", gn.Connected(), erl.Name)
			}
			testutil.Eventually(t, 15*time.Second, func() (bool, string) {
				return erlConnectedTo(t, erl, gn.Name())
			})
		})
	})
}

// freePortOn returns a TCP port free on every one of the addresses.
func freePortOn(t *testing.T, addrs ...string) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", net.JoinHostPort(addrs[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{l}
		ok := true
		for _, a := range addrs[1:] {
			l2, err := net.Listen("tcp", net.JoinHostPort(a, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l2)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatalf("no port free on all of %v", addrs)
	return 0
}
