package node_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/gonode/gonode/node"
)

// Prices is a Go gen_server. Elixir calls it as
//
//	GenServer.call({:prices, :"shop@127.0.0.1"}, {:get, "EUR"})  #=> {:ok, 1.08}
type Prices struct{ gen.Server }

func (Prices) HandleCall(p *gen.ServerProcess, from gen.ServerFrom, msg etf.Term) (etf.Term, gen.ServerStatus) {
	if t, ok := msg.(etf.Tuple); ok && len(t) == 2 && t[0] == etf.Atom("get") {
		if cur, ok := t[1].([]byte); ok && string(cur) == "EUR" { // an Elixir string is a binary
			return etf.Tuple{etf.Atom("ok"), 1.08}, gen.ServerStatusOK
		}
		return etf.Tuple{etf.Atom("error"), etf.Atom("unknown_currency")}, gen.ServerStatusOK
	}
	return etf.Atom("badarg"), gen.ServerStatusOK
}

// Start a node, run a Go gen_server on it, call it, and stop. Peers connect
// with the same cookie; the built-in `gonode` server answers ping.
func ExampleNew() {
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = "shop@127.0.0.1", "secret"
	// For the example: on 127.0.0.1 only, without EPMD, on a port the
	// system has free. A node that joins a cluster keeps the defaults (EPMD
	// on port 4369, every interface, any free distribution port).
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

	if _, err := n.RegisterServer("prices", &Prices{}); err != nil {
		fmt.Println(err)
		return
	}
	reply, err := n.Call(ctx, "prices", etf.Tuple{etf.Atom("get"), []byte("EUR")})
	fmt.Println(reply, err)
	pong, err := n.Call(ctx, node.ServerName, etf.Atom("ping"))
	fmt.Println(pong, err)
	// Output:
	// [ok 1.08] <nil>
	// pong <nil>
}

// Follow peers coming and going.
func ExampleNode_Subscribe() {
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = "watcher@127.0.0.1", "secret"
	n, err := node.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	events, stop := n.Subscribe(64)
	defer stop()
	go func() {
		for e := range events {
			fmt.Println(e.Peer, "up:", e.Up)
		}
	}()
	fmt.Println(n.Name(), n.Started())
	// Output: watcher@127.0.0.1 false
}
