package node_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gonode/gonode/discovery"
	"github.com/gonode/gonode/discovery/discoverytest"
	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
)

// peerZone is an authoritative zone holding the A records of one headless
// Service name, changed by the test while discovery polls it: the records
// can be replaced, and every answer can be forced to an error rcode.
type peerZone struct {
	name string // fully qualified, lower case

	mu    sync.Mutex
	addrs []netip.Addr
	rcode int // non-zero: answered to every query
}

func (z *peerZone) set(addrs ...netip.Addr) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.addrs = append([]netip.Addr(nil), addrs...)
}

func (z *peerZone) fail(rcode int) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.rcode = rcode
}

// ServeDNS implements dns.Handler: the Service name exists (an empty record
// set is a valid NOERROR answer with no records), other names do not.
func (z *peerZone) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	z.mu.Lock()
	switch {
	case z.rcode != 0:
		m.Rcode = z.rcode
	case len(req.Question) != 1:
		m.Rcode = dns.RcodeFormatError
	case strings.ToLower(req.Question[0].Name) != z.name:
		m.Rcode = dns.RcodeNameError
	case req.Question[0].Qtype == dns.TypeA:
		for _, a := range z.addrs {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: z.name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
				A:   net.IP(a.AsSlice()),
			})
		}
	}
	z.mu.Unlock()
	_ = w.WriteMsg(m)
}

// pollCounter is a discovery.Observer counting polls by result and the
// disconnect actions, remembering how many empty answers had been seen at
// each disconnect. The discoverer calls it from one goroutine; the test
// reads it from another.
type pollCounter struct {
	mu                sync.Mutex
	polls             map[discovery.PollResult]int
	connects          int
	disconnects       int
	emptyAtDisconnect []int
}

func newPollCounter() *pollCounter {
	return &pollCounter{polls: map[discovery.PollResult]int{}}
}

func (c *pollCounter) Poll(ev discovery.PollEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.polls[ev.Result]++
}

func (c *pollCounter) Action(ev discovery.ActionEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev.Kind {
	case discovery.ActConnect:
		c.connects++
	case discovery.ActDisconnect:
		c.disconnects++
		c.emptyAtDisconnect = append(c.emptyAtDisconnect, c.polls[discovery.PollEmpty])
	}
}

func (c *pollCounter) Lookup(discovery.LookupEvent) {}
func (c *pollCounter) Peers(discovery.PeerCounts)   {}

func (c *pollCounter) count(r discovery.PollResult) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.polls[r]
}

func (c *pollCounter) disconnectsSeen() (int, []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.disconnects, append([]int(nil), c.emptyAtDisconnect...)
}

func (c *pollCounter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("polls %v, connects %d, disconnects %d (empty answers seen at each: %v)",
		c.polls, c.connects, c.disconnects, c.emptyAtDisconnect)
}

// TestDiscoveryDNSWithErl (issue 4): discovery with the dns strategy, a real
// clock and an in-process DNS server finds a real erl node, connects to it,
// drops it only after PruneAfter successful answers without it, and keeps
// the connection while DNS fails (SERVFAIL, then no server at all).
func TestDiscoveryDNSWithErl(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		// gonode serves EPMD on 4369 (embedded) and the erl node registers
		// with it; see epmd_interop_test.go for why stray epmds are killed.
		freeEPMDPort(t)
		cookie := beamtest.RandomCookie()
		gn, _ := startGo(t, uniq("go")+"@127.0.0.1", node.Cookie(cookie))

		app := uniq("app")
		erlIP := netip.MustParseAddr("127.0.0.11")
		erl := beamtest.Start(t, rel, beamtest.Options{
			Name: app + "@" + erlIP.String(), Cookie: cookie,
			ErlArgs: []string{"-start_epmd", "false"},
		})

		zone := &peerZone{name: "peers.gonode.test."}
		zone.set(erlIP)
		mux := dns.NewServeMux()
		mux.Handle("gonode.test.", zone)
		srv := discoverytest.NewServer(t, mux, discoverytest.ServerOptions{})

		cfg := discovery.DefaultConfig()
		cfg.Strategy = discovery.StrategyDNS
		cfg.Service = zone.name
		cfg.ApplicationName = app
		cfg.Resolver = srv.Addr
		cfg.ResolvConf = "" // resolv.conf's defaults; the nameserver is srv
		cfg.PollingInterval = 200 * time.Millisecond
		obs := newPollCounter()
		dlogs := &testutil.SyncBuffer{}
		d, err := discovery.New(cfg, gn.Name(), gn,
			discovery.WithObserver(obs),
			discovery.WithLogger(slog.New(slog.NewTextHandler(dlogs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		if err != nil {
			t.Fatal(err)
		}
		// Cleanups run last registered first: the log is printed once
		// discovery has stopped, and discovery stops before the node does
		// (its cleanup is registered after startGo's).
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("discovery log:\n%s\n%s", dlogs.String(), obs)
			}
		})
		testutil.Background(t, "discovery Run", d.Run)
		state := func() string {
			up, erlSide := erlConnectedTo(t, erl, gn.Name())
			return fmt.Sprintf("gonode connected %v; erl sees gonode %v (%s); %s; snapshot %+v",
				gn.Connected(), up, erlSide, obs, d.Snapshot())
		}
		bothConnected := func() (bool, string) {
			up, _ := erlConnectedTo(t, erl, gn.Name())
			return gn.IsConnected(erl.Name) && up, state()
		}

		t.Run("discovered and connected", func(t *testing.T) {
			testutil.Eventually(t, 30*time.Second, bothConnected)
		})

		t.Run("dropped after the grace once gone from DNS", func(t *testing.T) {
			if n, _ := obs.disconnectsSeen(); n != 0 {
				t.Fatalf("disconnects before the peer left DNS: %s", obs)
			}
			emptyBefore := obs.count(discovery.PollEmpty)
			zone.set()
			testutil.Eventually(t, 30*time.Second, func() (bool, string) {
				up, _ := erlConnectedTo(t, erl, gn.Name())
				return !gn.IsConnected(erl.Name) && !up, state()
			})
			n, emptyAt := obs.disconnectsSeen()
			if n != 1 {
				t.Fatalf("want exactly one disconnect: %s", obs)
			}
			if got := emptyAt[0] - emptyBefore; got < cfg.PruneAfter {
				t.Fatalf("disconnected after %d empty answers, want at least PruneAfter=%d: %s", got, cfg.PruneAfter, obs)
			}
		})

		t.Run("back in DNS, connected again", func(t *testing.T) {
			zone.set(erlIP)
			testutil.Eventually(t, 30*time.Second, bothConnected)
		})

		// keptWhileFailing waits for more failed polls while watching the
		// connection: it must stay up through all of them.
		keptWhileFailing := func(t *testing.T, polls int) {
			t.Helper()
			events, unsubscribe := gn.Subscribe(64)
			defer unsubscribe()
			disconnects, _ := obs.disconnectsSeen()
			base := obs.count(discovery.PollError)
			var downs []string
			testutil.Eventually(t, 30*time.Second, func() (bool, string) {
				for more := true; more; {
					select {
					case e, ok := <-events:
						if !ok {
							more = false
						} else if !e.Up {
							downs = append(downs, e.Peer)
						}
					default:
						more = false
					}
				}
				failed := obs.count(discovery.PollError) - base
				return failed >= polls || len(downs) > 0 || !gn.IsConnected(erl.Name),
					fmt.Sprintf("%d failed polls of %d; %s", failed, polls, state())
			})
			if len(downs) > 0 {
				t.Fatalf("connections went down while DNS failed: %v; %s", downs, state())
			}
			if ok, s := bothConnected(); !ok {
				t.Fatalf("the connection did not survive the DNS failure: %s", s)
			}
			if n, _ := obs.disconnectsSeen(); n != disconnects {
				t.Fatalf("discovery disconnected while DNS failed: %s", obs)
			}
		}

		t.Run("connection kept while DNS answers SERVFAIL", func(t *testing.T) {
			zone.fail(dns.RcodeServerFailure)
			keptWhileFailing(t, 5)
		})

		t.Run("connection kept while the DNS server is gone", func(t *testing.T) {
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
			keptWhileFailing(t, 5)
		})
	})
}

// A connect that discovery starts and that fails keeps its cause: discovery's
// log line and /debug/peers' source (Snapshot) say it, and the core's event
// carries the error itself for errors.Is.
func TestDiscoveryConnectFailureKeepsCause(t *testing.T) {
	gn, _ := startGo(t, uniq("go")+"@127.0.0.1", node.Cookie(beamtest.RandomCookie()))
	app := uniq("app")
	ip := netip.MustParseAddr("127.0.0.12")
	// A peer with another cookie.
	startGo(t, app+"@"+ip.String(), node.Cookie(beamtest.RandomCookie()))

	zone := &peerZone{name: "peers.gonode.test."}
	zone.set(ip)
	mux := dns.NewServeMux()
	mux.Handle("gonode.test.", zone)
	srv := discoverytest.NewServer(t, mux, discoverytest.ServerOptions{})
	cfg := discovery.DefaultConfig()
	cfg.Strategy = discovery.StrategyDNS
	cfg.Service = zone.name
	cfg.ApplicationName = app
	cfg.Resolver = srv.Addr
	cfg.ResolvConf = ""
	cfg.PollingInterval = 200 * time.Millisecond
	dlogs := &testutil.SyncBuffer{}
	d, err := discovery.New(cfg, gn.Name(), gn,
		discovery.WithLogger(slog.New(slog.NewTextHandler(dlogs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, "discovery Run", d.Run)
	peer := app + "@" + ip.String()
	testutil.Eventually(t, 30*time.Second, func() (bool, string) {
		for _, p := range d.Snapshot().Peers {
			if p.Name == peer && strings.Contains(p.LastError, "cookie mismatch") &&
				strings.Contains(dlogs.String(), "peer connect failed") && strings.Contains(dlogs.String(), "cookie mismatch") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("snapshot %+v; log:\n%s", d.Snapshot(), dlogs.String())
	})

	// The core, given the Connector's error, keeps it in its event.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cerr := gn.Connect(ctx, peer)
	s := discovery.NewState(1)
	p := cfg.Policy(gn.Name())
	s, _, _ = discovery.Plan(p, s, discovery.Input{Now: time.Unix(1, 0), Poll: &discovery.Poll{Targets: []discovery.Target{{Name: peer}}}})
	_, _, events := discovery.Plan(p, s, discovery.Input{Now: time.Unix(2, 0),
		Results: []discovery.Result{{Action: discovery.Action{Kind: discovery.ActConnect, Node: peer}, Err: cerr}}})
	if len(events) != 1 || !errors.Is(events[0].Cause, node.ErrBadCookie) {
		t.Fatalf("events %+v, want one EvConnectFailed whose Cause is node.ErrBadCookie", events)
	}
}
