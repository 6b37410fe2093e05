// Command inventory is the example program of docs/guide.md: a Go service
// in an Elixir cluster. It serves an `:inventory` gen_server that Elixir
// calls, casts to and sends events to, calls the Elixir `Pricing`
// GenServer of another node for a %Price{} struct, and monitors it.
//
//	RELEASE_COOKIE=secret go run ./examples/inventory -name shop@127.0.0.1 -pricing pricing@127.0.0.1
//
// pricing.exs, next to this file, is the Elixir side. The program prints
// what it sees and exits when the Pricing server goes down (or on Ctrl-C).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gonode/gonode/node"
)

// Event is the info message {:event, %{type: :restock, items: [1, 2, 3]}}.
type Event struct {
	Type  node.Atom `erl:"type"`
	Items []int     `erl:"items"`
}

// Price is the Elixir struct %Price{sku: "sku-1", cents: 1299, currency: :eur}.
type Price struct {
	SKU      string    `erl:"sku"`
	Cents    int       `erl:"cents"`
	Currency node.Atom `erl:"currency"`
}

// newInventory is the whole gen_server: stock per SKU, two calls, a cast
// and an info.
func newInventory(out io.Writer) *node.TypedServer {
	stock := map[string]int{}
	inv := node.NewServer()
	inv.Call("get", func(sku string) int { return stock[sku] })
	inv.Call("put", func(sku string, qty int) error {
		if qty < 0 {
			return fmt.Errorf("negative quantity %d for %s", qty, sku)
		}
		stock[sku] = qty
		return nil
	})
	inv.Cast("reset", func() { clear(stock) })
	inv.Info("event", func(e Event) { fmt.Fprintf(out, "event %s %v\n", e.Type, e.Items) })
	return inv
}

// options are the program's flags.
type options struct {
	name, pricing string
	cookie        node.Cookie
}

func main() {
	var o options
	flag.StringVar(&o.name, "name", envOr("RELEASE_NODE", "shop@127.0.0.1"), "this node's name (RELEASE_NODE)")
	flag.StringVar(&o.pricing, "pricing", "", "the Elixir node that runs the Pricing GenServer")
	flag.Parse()
	o.cookie = node.Cookie(os.Getenv("RELEASE_COOKIE"))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, o, os.Stdout, log); err != nil {
		log.Error("inventory", "err", err)
		os.Exit(1)
	}
}

// run starts the node, serves the inventory, asks Pricing for a price,
// and waits until Pricing goes down or ctx ends.
func run(ctx context.Context, o options, out io.Writer, log *slog.Logger) error {
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = o.name, o.cookie
	n, err := node.New(cfg, node.WithLogger(log))
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	defer n.Stop(context.Background())
	if _, err := n.RegisterServer("inventory", newInventory(out)); err != nil {
		return err
	}
	// :erpc.call(go_node, Shop.Stock, :count, [sku]) asks the server.
	err = n.ProvideRPC("Elixir.Shop.Stock", "count", func(ctx context.Context, args []node.Term) (node.Term, error) {
		var sku string
		if len(args) != 1 || node.Unmarshal(args[0], &sku) != nil {
			return nil, &node.RPCException{Class: node.RPCError, Reason: node.Atom("badarg")}
		}
		var qty int
		err := n.CallInto(ctx, "inventory", node.Tuple{node.Atom("get"), sku}, &qty)
		return qty, err
	})
	if err != nil {
		return err
	}
	if o.pricing == "" {
		fmt.Fprintln(out, "serving inventory on", n.Name())
		<-ctx.Done()
		return nil
	}

	// Go calls Elixir: the reply, a %Price{}, lands in a Go struct.
	pricing := node.Name("pricing", o.pricing)
	callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	var p Price
	err = n.CallInto(callCtx, pricing, node.Tuple{node.Atom("price"), "sku-1"}, &p)
	cancel()
	switch {
	case errors.Is(err, node.ErrBadCookie):
		return fmt.Errorf("the cookie does not match %s's: %w", o.pricing, err)
	case err != nil:
		return err
	}
	fmt.Fprintf(out, "price %s %d %s\n", p.SKU, p.Cents, p.Currency)

	// Monitor Pricing from plain Go code, as Process.monitor/1 does.
	mon, err := n.Monitor(pricing)
	if err != nil {
		return err
	}
	defer mon.Demonitor()
	fmt.Fprintln(out, "ready")
	select {
	case d := <-mon.Down():
		fmt.Fprintln(out, "pricing down:", d.ReasonText())
	case <-ctx.Done():
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
