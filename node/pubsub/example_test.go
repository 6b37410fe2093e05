package pubsub_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/ergo-services/ergo/etf"

	"github.com/gonode/gonode/node"
	"github.com/gonode/gonode/node/pg"
	"github.com/gonode/gonode/node/pubsub"
	"github.com/gonode/gonode/node/term"
)

// Order is what Elixir broadcasts as %MyApp.Order{id: 7, total: "9.90"}.
type Order struct {
	ID    int    `erl:"id"`
	Total string `erl:"total"`
}

// A Go node runs the pg scope of Phoenix.PubSub and the server
// MyApp.PubSub, subscribes to "orders" and broadcasts on it: the local
// subscriber gets the message (so would every Elixir subscriber of a
// connected node), and decodes it into a Go struct.
func Example() {
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = "shop@127.0.0.1", "secret"
	// No EPMD, on a free port: the example runs anywhere.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg.EPMD, cfg.DistPort, cfg.ListenAddr = node.EPMDNone, port, "127.0.0.1"
	n, err := node.New(cfg, node.WithLogger(slog.New(slog.DiscardHandler)))
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

	scope, err := pg.Start(n, pubsub.Scope, pg.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ps, err := pubsub.Start(n, scope, "MyApp.PubSub", pubsub.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	sub, err := ps.Subscribe("orders")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Cancel()

	order, _ := term.Marshal(Order{ID: 7, Total: "9.90"}, term.WithStructName("Elixir.MyApp.Order"))
	if err := ps.Broadcast("orders", order); err != nil {
		fmt.Println(err)
		return
	}
	m := <-sub.C()
	var o Order
	err = m.Unmarshal(&o, term.WithStructName("Elixir.MyApp.Order"))
	fmt.Println(m.Topic, o.ID, o.Total, err)
	fmt.Println(scope.LocalGroups()[0] == etf.Atom("Elixir.MyApp.PubSub.Adapter"))
	// Output:
	// orders 7 9.90 <nil>
	// true
}
