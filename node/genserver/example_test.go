package genserver_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/genserver"
)

// Counter is a gen_server whose callbacks run in its process loop. Elixir
// calls it as
//
//	GenServer.call({:counter, :"count@127.0.0.1"}, :incr)  #=> 1
//	GenServer.cast({:counter, :"count@127.0.0.1"}, :reset)
type Counter struct {
	genserver.Server
	n int64
}

func (c *Counter) HandleCall(p *genserver.Process, from gen.ServerFrom, msg etf.Term) (etf.Term, gen.ServerStatus) {
	switch msg {
	case etf.Atom("incr"):
		c.n++
		return c.n, gen.ServerStatusOK
	case etf.Atom("double"):
		// A nested call to a gen_server (here this node's built-in gonode
		// server) waits for its reply inside the callback; other messages
		// wait their turn.
		pong, err := p.CallWithTimeout(node.ServerName, etf.Atom("ping"), time.Second)
		if err != nil {
			return etf.Tuple{etf.Atom("error"), []byte(err.Error())}, gen.ServerStatusOK
		}
		c.n *= 2
		return etf.Tuple{pong, c.n}, gen.ServerStatusOK
	}
	return etf.Atom("badarg"), gen.ServerStatusOK
}

func (c *Counter) HandleCast(p *genserver.Process, msg etf.Term) gen.ServerStatus {
	if msg == etf.Atom("reset") {
		c.n = 0
	}
	return gen.ServerStatusOK
}

// Register a genserver.Server with a node and call it.
func ExampleServer() {
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = "count@127.0.0.1", "secret"
	// For the example: on 127.0.0.1 only, without EPMD, on a port the
	// system has free (a node in a cluster keeps the EPMD defaults).
	cfg.ListenAddr, cfg.EPMD, cfg.DistPort = "127.0.0.1", node.EPMDNone, freePort()
	n, err := node.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer n.Stop(context.Background())

	if _, err := n.RegisterServer("counter", &Counter{}); err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range []etf.Atom{"incr", "incr", "double"} {
		reply, err := n.Call(ctx, "counter", m)
		fmt.Println(reply, err)
	}
	// Output:
	// 1 <nil>
	// 2 <nil>
	// [pong 4] <nil>
}

// freePort returns a port the system has free on 127.0.0.1, for a node
// without EPMD (EPMDNone needs a fixed port).
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
