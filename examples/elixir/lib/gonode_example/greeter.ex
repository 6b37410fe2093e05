defmodule GonodeExample.Greeter do
  @moduledoc """
  A GenServer registered as `:greeter` that gonode (or any node) calls:
  `{:hello, who}` is answered with `{:hello, who, node(), count}`, where count
  is the number of greetings this node has answered.
  """
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, 0, name: :greeter)

  @impl true
  def init(count), do: {:ok, count}

  @impl true
  def handle_call({:hello, who}, _from, count),
    do: {:reply, {:hello, who, node(), count + 1}, count + 1}
end
