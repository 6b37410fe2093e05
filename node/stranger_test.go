package node_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
)

// strangers keeps n connections open to addr, each from a source address
// of its own in 127.0.1.0/24 (every 127/8 address is the loopback
// interface's): silent ones, and every fifth one stalled after half a name
// message. A connection the node closes is opened again at once, as a port
// scanner or a misbehaving client would, at most rounds times per address.
// It stops when the test ends.
func strangers(t testing.TB, addr string, n, rounds int) (opened func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	count := 0
	for i := range n {
		src := netip.AddrFrom4([4]byte{127, 0, 1, byte(1 + i)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: time.Second}
			for range rounds {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
					continue
				}
				mu.Lock()
				count++
				mu.Unlock()
				if i%5 == 0 {
					var msg [5]byte
					binary.BigEndian.PutUint16(msg[:], 60) // a name message of 60 bytes, never finished
					msg[2] = 'N'
					_, _ = c.Write(msg[:])
				}
				stop := context.AfterFunc(ctx, func() { _ = c.Close() })
				_, _ = io.Copy(io.Discard, c) // until the node closes it
				stop()
				_ = c.Close()
				if ctx.Err() != nil {
					return
				}
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return count
	}
}

// A stranger that connects to the distribution port and says nothing, or
// stops half-way through its name, must not keep real peers out: with 100
// of them connected (and reconnecting whenever the node closes them), a
// BEAM node that starts afterwards pings the gonode at its first try.
// Before incoming handshakes ran concurrently, each stranger held ergo's
// accept loop for the whole handshake timeout, so the ping answered pang.
func TestStrangersDoNotKeepPeersOut(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName := uniq("go") + "@127.0.0.1"
		gn, _ := startGo(t, goName, node.Cookie(cookie))
		erl := beamtest.Start(t, rel, beamtest.Options{Name: uniq("erl") + "@127.0.0.1", Cookie: cookie})
		opened := strangers(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(gn.ListenPort())), 100, 1000)
		testutil.EventuallyNamed(t, 30*time.Second, "100 strangers connected", func() (bool, string) {
			return opened() >= 100, fmt.Sprintf("%d connected", opened())
		})
		for i := range 3 {
			if got := erl.Eval(t, fmt.Sprintf("net_adm:ping('%s').", goName)); got != "pong" {
				t.Fatalf("ping %d with 100 strangers connected: %s, want pong", i, got)
			}
			erl.Eval(t, fmt.Sprintf("erlang:disconnect_node('%s').", goName))
			testutil.EventuallyNamed(t, 30*time.Second, "disconnected", func() (bool, string) {
				return !gn.IsConnected(erl.Name), ""
			})
		}
	})
}
