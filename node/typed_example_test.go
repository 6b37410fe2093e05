package node_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gonode/gonode/node"
)

// startNode starts a node that listens on 127.0.0.1 only, on a port the
// system picks, without EPMD (peers would reach it on that port): enough to
// run servers and call them from Go. It returns the node and its stop.
func startNode(name string) (*node.Node, func()) {
	cfg := node.DefaultConfig()
	cfg.Name, cfg.Cookie = name+"@127.0.0.1", "secret"
	cfg.ListenAddr, cfg.DistPort, cfg.EPMD = "127.0.0.1", freePort(), node.EPMDNone
	n, err := node.New(cfg)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		panic(err)
	}
	return n, func() { n.Stop(context.Background()) }
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

// A gen_server of typed handlers, called from Go. Elixir calls it the same
// way:
//
//	GenServer.call({:inventory, :"shop@127.0.0.1"}, {:put, "sku-1", 7})  #=> :ok
//	GenServer.call({:inventory, :"shop@127.0.0.1"}, {:get, "sku-1"})     #=> 7
//	GenServer.cast({:inventory, :"shop@127.0.0.1"}, :reset)
func ExampleNewServer() {
	// A node for the example: on 127.0.0.1 only, without EPMD, on a port
	// the system has free (see startNode). A service joining an Elixir
	// cluster keeps DefaultConfig's EPMD settings.
	n, stop := startNode("shop")
	defer stop()

	stock := map[string]int{}
	inv := node.NewServer()
	inv.Call("get", func(sku string) int { return stock[sku] })
	inv.Call("put", func(sku string, qty int) error {
		if qty < 0 {
			return fmt.Errorf("negative quantity %d", qty)
		}
		stock[sku] = qty
		return nil
	})
	inv.Call("all", func() map[string]int { return stock })
	inv.Cast("reset", func() { clear(stock) })
	if _, err := n.RegisterServer("inventory", inv); err != nil {
		fmt.Println(err)
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call := func(msg node.Term) {
		var reply node.Term
		if err := n.CallInto(ctx, "inventory", msg, &reply); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(node.Format(reply))
	}
	call(node.Tuple{node.Atom("put"), "sku-1", 7})
	call(node.Tuple{node.Atom("put"), "sku-2", -1})
	call(node.Tuple{node.Atom("get"), "sku-1"})
	call(node.Atom("all"))
	call(node.Tuple{node.Atom("get"), "sku-1", "extra"})

	// A reply goes into a Go value of the type you ask for.
	var qty int
	err := n.CallInto(ctx, "inventory", node.Tuple{node.Atom("get"), "sku-1"}, &qty)
	fmt.Println(qty, err)
	// Output:
	// ok
	// {error,<<"negative quantity -1">>}
	// 7
	// #{<<"sku-1">> => 7}
	// {error,{unknown_call,{get,<<"sku-1">>,<<"extra">>}}}
	// 7 <nil>
}

// Price is what a pricing server answers: an Elixir %Price{} struct, or any
// map with these keys, atoms or strings.
type Price struct {
	SKU   string `erl:"sku"`
	Cents int    `erl:"cents"`
}

// outOfStock is an error whose reply is a term: {:error, :out_of_stock}.
type outOfStock struct{}

func (outOfStock) Error() string   { return "out of stock" }
func (outOfStock) Term() node.Term { return node.Atom("out_of_stock") }

// Call a server and get its reply as a Go struct. Here the server is a Go
// one on the same node; an Elixir GenServer on a peer is called the same
// way, with node.Name("pricing", peer) as the target.
func ExampleNode_CallInto() {
	n, stop := startNode("pricing")
	defer stop()

	pricing := node.NewServer()
	pricing.Call("price", func(sku string) (Price, error) {
		if sku == "sku-0" {
			return Price{}, outOfStock{}
		}
		return Price{SKU: sku, Cents: 1299}, nil
	})
	if _, err := n.RegisterServer("pricing", pricing); err != nil {
		fmt.Println(err)
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// {:ok, %{sku: .., cents: ..}} into a tuple, then its map into a Price.
	var reply node.Tuple
	err := n.CallInto(ctx, "pricing", node.Tuple{node.Atom("price"), "sku-1"}, &reply)
	fmt.Println(node.Format(reply), err)
	var p Price
	err = node.Unmarshal(reply[1], &p)
	fmt.Printf("%+v %v\n", p, err)

	err = n.CallInto(ctx, "pricing", node.Tuple{node.Atom("price"), "sku-0"}, &reply)
	fmt.Println(node.Format(reply), err)

	// A reply that does not fit the Go value is an error that says why.
	err = n.CallInto(ctx, "pricing", node.Tuple{node.Atom("price"), "sku-1"}, &p)
	fmt.Println(errors.Is(err, node.ErrTypeMismatch))
	// Output:
	// {ok,#{cents => 1299,sku => <<"sku-1">>}} <nil>
	// {SKU:sku-1 Cents:1299} <nil>
	// {error,out_of_stock} <nil>
	// true
}
