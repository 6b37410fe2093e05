package dist

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/node"

	"github.com/gonode/gonode/node/term"
)

// benchRouter counts delivered messages and closes done at the target.
type benchRouter struct {
	*ptRouter
	n      atomic.Int64
	target int64
	done   chan struct{}
}

func (r *benchRouter) RouteSend(from etf.Pid, to etf.Pid, message etf.Term) error {
	if r.n.Add(1) == r.target {
		close(r.done)
	}
	return nil
}

// tcpPair connects two conns over TCP loopback (the package's tests run in
// their own network namespace), serves the receiving one with router, and
// returns the sending one.
func tcpPair(b testing.TB, cfg ProtoConfig, router node.CoreRouter) *conn {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	r, ok := <-accepted
	if !ok {
		b.Fatal("accept failed")
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	p, err := NewProto(cfg)
	if err != nil {
		b.Fatal(err)
	}
	flags := ptFlags()
	mk := func(nc net.Conn, self, peer string) *conn {
		ci, err := p.Init(context.Background(), nc, self, node.HandshakeDetails{Name: peer,
			Custom: Peer{Name: peer, Ours: flags, Theirs: flags, Creation: 9}})
		if err != nil {
			b.Fatal(err)
		}
		return ci.(*conn)
	}
	send := mk(a, ptLocal, ptRemote)
	recv := mk(r, ptRemote, ptLocal)
	served := make(chan struct{}, 2)
	go func() { send.serve(newPTRouter()); served <- struct{}{} }()
	go func() { recv.serve(router); served <- struct{}{} }()
	b.Cleanup(func() {
		send.shutdown(nil)
		recv.shutdown(nil)
		<-served
		<-served
	})
	return send
}

// TestConnLargeMessagesTCP sends a mix of small and large messages, some
// fragmented, between two connections over TCP (vectored writes, large
// frames read into buffers of their own, binaries kept in place) and checks
// each arrives intact and in order, also after later frames were read.
func TestConnLargeMessagesTCP(t *testing.T) {
	big := func(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }
	msgs := []etf.Term{
		int64(1), big(1024, 'a'), big(64<<10, 'b'), etf.Tuple{etf.Atom("two"), big(20<<10, 'c'), big(20<<10, 'd')},
		big(3000, 'e'), big(1<<20, 'f'), int64(2), big(16<<10, 'g'), big(64000-40, 'h'), big(200<<10, 'i'), int64(3),
	}
	for _, fs := range []int{64000, 20000, 1000} {
		t.Run(fmt.Sprintf("FragmentSize=%d", fs), func(t *testing.T) {
			cfg := DefaultProtoConfig()
			cfg.FragmentSize = fs
			router := newPTRouter()
			send := tcpPair(t, cfg, router)
			proc := ptProcess{self: ptLocalPid}
			const rounds = 20
			go func() {
				for r := 0; r < rounds; r++ {
					for _, m := range msgs {
						if err := send.Send(proc, ptRemotePid, m); err != nil {
							return
						}
					}
				}
			}()
			var got []etf.Term
			for i := 0; i < rounds*len(msgs); i++ {
				got = append(got, router.next(t).args[2])
			}
			for i, g := range got {
				if want := msgs[i%len(msgs)]; !term.Equal(g, want) {
					t.Fatalf("message %d: got %.60v, want %.60v", i, fmt.Sprint(g), fmt.Sprint(want))
				}
			}
		})
	}
}

// BenchmarkConnThroughput measures the wire layer alone (encode, queue,
// write, read, reassemble, decode, dispatch) between two connections over
// TCP loopback, without ergo or a BEAM. Compare with BenchmarkDistVsBEAM.
func BenchmarkConnThroughput(b *testing.B) {
	for _, kind := range []string{"small", "1KiB", "64KiB"} {
		b.Run(kind, func(b *testing.B) {
			router := &benchRouter{ptRouter: newPTRouter(), done: make(chan struct{})}
			send := tcpPair(b, DefaultProtoConfig(), router)
			msg := ptMsgGo(kind)
			proc := ptProcess{self: ptLocalPid}
			router.target = int64(b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := send.Send(proc, ptRemotePid, msg); err != nil {
					b.Fatal(err)
				}
			}
			<-router.done
		})
	}
}
