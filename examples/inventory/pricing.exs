# The Elixir side of the inventory example (docs/guide.md): a Price struct,
# a Pricing GenServer registered as :pricing, and Shop, which calls the Go
# node's :inventory server.
#
#   elixir --name pricing@127.0.0.1 --cookie secret -r examples/inventory/pricing.exs -e 'Pricing.start(); Process.sleep(:infinity)'

defmodule Price do
  defstruct [:sku, :cents, currency: :eur]
end

defmodule Pricing do
  use GenServer

  def start, do: GenServer.start(__MODULE__, %{"sku-1" => 1299, "sku-2" => 450}, name: :pricing)

  @impl true
  def init(prices), do: {:ok, prices}

  @impl true
  def handle_call({:price, sku}, _from, prices) do
    case Map.fetch(prices, sku) do
      {:ok, cents} -> {:reply, %Price{sku: sku, cents: cents}, prices}
      :error -> {:reply, {:error, :unknown_sku}, prices}
    end
  end
end

defmodule Shop do
  # Calls, an RPC, a cast and an event to the Go inventory on node go;
  # returns what the calls answered.
  def exercise(go) do
    inv = {:inventory, go}
    put = GenServer.call(inv, {:put, "sku-1", 7})
    get = GenServer.call(inv, {:get, "sku-1"})
    count = :erpc.call(go, Shop.Stock, :count, ["sku-1"])
    bad = GenServer.call(inv, {:put, "sku-2", -1})
    GenServer.cast(inv, {:reset})
    after_reset = GenServer.call(inv, {:get, "sku-1"})
    send(inv, {:event, %{type: :restock, items: [1, 2, 3]}})
    {put, get, count, bad, after_reset}
  end
end
