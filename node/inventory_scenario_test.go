package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gonode/gonode/internal/beamtest"
	"github.com/gonode/gonode/internal/testutil"
	"github.com/gonode/gonode/node"
)

// The inventory scenario of issue 18, as the guide shows it: a Go
// gen_server `:inventory` that Elixir calls, casts to and sends events to,
// and a Go client of an Elixir `Pricing` GenServer that answers %Price{}
// structs. inventoryServer is the whole Go server.

// Event is the info message {:event, %{type: :restock, items: [1, 2, 3]}}.
type Event struct {
	Type  node.Atom `erl:"type"`
	Items []int     `erl:"items"`
}

func inventoryServer(events chan<- Event) *node.TypedServer {
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
	inv.Call("all", func() map[string]int { return stock })
	inv.Cast("reset", func() { clear(stock) })
	inv.Info("event", func(e Event) { events <- e })
	// Monitoring the pricing server from inside the server: a handler that
	// monitors, and the DOWN message matched by its tag. (Code outside any
	// process uses the node-level Monitor instead.)
	inv.Call("watch", func(p *node.Process, name, peer string) string {
		p.MonitorProcess(node.Name(name, peer))
		return "watching"
	})
	inv.Info("DOWN", func(_ node.Ref, _ node.Atom, who node.Tuple, reason node.Term) {
		events <- Event{Type: node.Atom("down " + node.Format(who) + " " + node.Format(reason))}
	})
	return inv
}

// PriceQuote is the Elixir %Price{} struct as a Go value.
type PriceQuote struct {
	Struct   node.Atom `erl:"__struct__"`
	SKU      string    `erl:"sku"`
	Cents    int       `erl:"cents"`
	Currency node.Atom `erl:"currency"`
}

// pricingModule is the Elixir side: a Price struct and a Pricing
// GenServer registered as :pricing.
const pricingModule = `
defmodule Price do
  defstruct [:sku, :cents, currency: :eur]
end

defmodule Pricing do
  use GenServer
  def init(prices), do: {:ok, prices}
  def handle_call({:price, sku}, _from, prices) do
    case Map.fetch(prices, sku) do
      {:ok, cents} -> {:reply, %Price{sku: sku, cents: cents}, prices}
      :error -> {:reply, {:error, :unknown_sku}, prices}
    end
  end
end

{:ok, _} = GenServer.start(Pricing, %{"sku-1" => 1299, "sku-2" => 450}, name: :pricing)
:ok`

// TestInventoryScenario runs the scenario against a real Elixir node of
// every release of the matrix.
func TestInventoryScenario(t *testing.T) {
	forEachRelease(t, func(t *testing.T, rel beamtest.Release) {
		cookie := beamtest.RandomCookie()
		goName := uniq("shop") + "@127.0.0.1"
		gn, logs := startGo(t, goName, node.Cookie(cookie))
		events := make(chan Event, 8)
		if _, err := gn.RegisterServer("inventory", inventoryServer(events)); err != nil {
			t.Fatal(err)
		}
		ex := beamtest.Start(t, rel, beamtest.Options{Name: uniq("ex") + "@127.0.0.1", Cookie: cookie, Elixir: true})
		if got := ex.Eval(t, pricingModule); got != ":ok" {
			t.Fatalf("starting Pricing: %s", got)
		}

		t.Run("Elixir calls, casts and sends to the Go server", func(t *testing.T) {
			got := ex.Eval(t, fmt.Sprintf(`inv = {:inventory, :"%s"}
				put = GenServer.call(inv, {:put, "sku-1", 7})
				get = GenServer.call(inv, {:get, "sku-1"})
				bad = GenServer.call(inv, {:put, "sku-2", -1})
				GenServer.call(inv, {:put, "sku-2", 3})
				all = GenServer.call(inv, :all)
				GenServer.cast(inv, {:reset})
				after_reset = GenServer.call(inv, {:get, "sku-1"})
				unknown = GenServer.call(inv, {:restock, "sku-1"})
				send(inv, {:event, %%{type: :restock, items: [1, 2, 3]}})
				{put, get, bad, all, after_reset, unknown}`, goName))
			want := `{:ok, 7, {:error, "negative quantity -1 for sku-2"}, %{"sku-1" => 7, "sku-2" => 3}, 0,` +
				` {:error, {:unknown_call, {:restock, "sku-1"}}}}`
			if got != want {
				t.Fatalf("Elixir saw\n%s\nwant\n%s", got, want)
			}
			e := testutil.Receive(t, events, 20*time.Second)
			if e.Type != "restock" || fmt.Sprint(e.Items) != "[1 2 3]" {
				t.Fatalf("event %+v, want restock [1 2 3]", e)
			}
			// The unknown call is in the node's log, with the server's name.
			line := `msg="typed server: no call handler for the message; answered {error, {unknown_call, Msg}}" component=genserver server=inventory`
			if !strings.Contains(logs.String(), line) {
				t.Fatalf("the node's log lacks %s", line)
			}
		})

		t.Run("Go calls the Elixir Pricing server into a Go struct", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var p PriceQuote
			err := gn.CallInto(ctx, node.Name("pricing", ex.Name), node.Tuple{node.Atom("price"), "sku-1"}, &p)
			if err != nil {
				t.Fatal(err)
			}
			if want := (PriceQuote{Struct: "Elixir.Price", SKU: "sku-1", Cents: 1299, Currency: "eur"}); p != want {
				t.Fatalf("price %+v, want %+v", p, want)
			}
			// An answer of another shape is an error that says so.
			err = gn.CallInto(ctx, node.Name("pricing", ex.Name), node.Tuple{node.Atom("price"), "sku-9"}, &p)
			if err == nil || !strings.Contains(err.Error(), "{error,unknown_sku}") {
				t.Fatalf("CallInto of {error, unknown_sku} into a struct: %v, want an error naming the reply", err)
			}
		})

		t.Run("the Go server monitors Pricing and gets its DOWN", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var r string
			if err := gn.CallInto(ctx, "inventory", node.Tuple{node.Atom("watch"), "pricing", ex.Name}, &r); err != nil || r != "watching" {
				t.Fatalf("watch: %q, %v", r, err)
			}
			ex.Eval(t, `GenServer.stop(:pricing, {:shutdown, :maintenance})`)
			e := testutil.Receive(t, events, 20*time.Second)
			if want := fmt.Sprintf("down {pricing,'%s'} {shutdown,maintenance}", ex.Name); string(e.Type) != want {
				t.Fatalf("event %q, want %q", e.Type, want)
			}
		})
	})
}
