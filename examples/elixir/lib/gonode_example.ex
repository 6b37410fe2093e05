defmodule GonodeExample do
  @moduledoc """
  Calls into the cluster, for an operator's `bin/gonode_example rpc`:

      bin/gonode_example rpc 'IO.inspect(GonodeExample.ping_go())'
  """

  @doc "The gonode nodes of the mesh: those whose built-in `gonode` server answers `ping`."
  def go_nodes do
    Enum.filter(Node.list(), fn n ->
      try do
        GenServer.call({:gonode, n}, :ping, 2_000) == :pong
      catch
        :exit, _ -> false
      end
    end)
  end

  @doc "Calls `:ping` on the gonode server of every gonode node."
  def ping_go, do: Enum.map(go_nodes(), &{&1, GenServer.call({:gonode, &1}, :ping)})

  @doc """
  Asks the gonode node `go` to call `:greeter` on `elixir` (a Go -> Elixir
  call): gonode's built-in server answers `{:ok, reply}` or `{:error, reason}`.
  """
  def go_calls_greeter(go, elixir),
    do: GenServer.call({:gonode, go}, {:call, {:greeter, elixir}, {:hello, go}})
end
