# A stand-in for Phoenix.PubSub 2.2.0 with its default adapter,
# Phoenix.PubSub.PG2 (phoenix_pubsub's lib/phoenix/pubsub.ex,
# pubsub/supervisor.ex, pubsub/pg2.ex and pubsub/application.ex at that
# version), for the tests of package pubsub: Hex packages cannot be
# installed where the tests run. It keeps what a gonode node meets on the
# wire and nothing else:
#
# - the adapter's groups, in pg scope Phoenix.PubSub (which the library's
#   application starts; the test starts it with :pg.start/1): the adapter
#   name <Name>.Adapter, then <Name>.Adapter_2 .. _N for pool_size N, each
#   joined by one worker per node registered under the group's name;
# - broadcast: {:forward_to_local, topic, message, dispatcher} to every
#   member of one broadcast group (chosen by the sender's pid, among the
#   first broadcast_pool_size groups) not on this node, then local dispatch;
#   direct_broadcast: the same tuple to {group, node};
# - local dispatch through a duplicate-key Registry named after the server,
#   whose meta :pubsub holds {adapter, adapter_name}, and the dispatcher's
#   dispatch/3.
#
# Left out: pg2 (OTP < 23), metadata on subscribe, the `!` functions.

defmodule Phoenix.PubSub do
  def child_spec(opts) do
    %{id: Keyword.fetch!(opts, :name), type: :supervisor,
      start: {Phoenix.PubSub.Supervisor, :start_link, [opts]}}
  end

  def subscribe(pubsub, topic) when is_atom(pubsub) and is_binary(topic) do
    {:ok, _} = Registry.register(pubsub, topic, nil)
    :ok
  end

  def unsubscribe(pubsub, topic), do: Registry.unregister(pubsub, topic)

  def broadcast(pubsub, topic, message, dispatcher \\ __MODULE__)
      when is_atom(pubsub) and is_binary(topic) and is_atom(dispatcher) do
    {:ok, {adapter, adapter_name}} = Registry.meta(pubsub, :pubsub)

    with :ok <- adapter.broadcast(adapter_name, topic, message, dispatcher) do
      dispatch_here(pubsub, :none, topic, message, dispatcher)
    end
  end

  def local_broadcast(pubsub, topic, message, dispatcher \\ __MODULE__),
    do: dispatch_here(pubsub, :none, topic, message, dispatcher)

  def direct_broadcast(node_name, pubsub, topic, message, dispatcher \\ __MODULE__) do
    {:ok, {adapter, adapter_name}} = Registry.meta(pubsub, :pubsub)
    adapter.direct_broadcast(adapter_name, node_name, topic, message, dispatcher)
  end

  # The default dispatcher: every subscriber but the sender, if one is named.
  def dispatch(entries, from, message) do
    Enum.each(entries, fn {pid, _} -> if pid != from, do: send(pid, message) end)
    :ok
  end

  defp dispatch_here(pubsub, from, topic, message, dispatcher) do
    Registry.dispatch(pubsub, topic, {dispatcher, :dispatch, [from, message]})
    :ok
  end
end

defmodule Phoenix.PubSub.Supervisor do
  use Supervisor

  def start_link(opts) do
    name = Keyword.fetch!(opts, :name)
    Supervisor.start_link(__MODULE__, opts, name: Module.concat(name, "Supervisor"))
  end

  @impl true
  def init(opts) do
    name = opts[:name]
    adapter_name = Module.concat(name, "Adapter")

    registry = [
      keys: :duplicate,
      name: name,
      partitions: opts[:pool_size] || 1,
      meta: [pubsub: {Phoenix.PubSub.PG2, adapter_name}]
    ]

    children = [
      {Registry, registry},
      {Phoenix.PubSub.PG2, Keyword.put(opts, :adapter_name, adapter_name)}
    ]

    Supervisor.init(children, strategy: :rest_for_one)
  end
end

defmodule Phoenix.PubSub.PG2 do
  use Supervisor

  def child_spec(opts), do: %{id: __MODULE__, type: :supervisor, start: {__MODULE__, :start_link, [opts]}}

  def start_link(opts) do
    pool = Keyword.get(opts, :pool_size, 1)
    broadcast_pool = Keyword.get(opts, :broadcast_pool_size, pool)
    adapter_name = Keyword.fetch!(opts, :adapter_name)
    args = {opts[:name], adapter_name, pool, broadcast_pool}
    Supervisor.start_link(__MODULE__, args, name: :"#{adapter_name}_supervisor")
  end

  @impl true
  def init({name, adapter_name, pool, broadcast_pool}) do
    :persistent_term.put(adapter_name, List.to_tuple(groups(adapter_name, broadcast_pool)))

    workers =
      for group <- groups(adapter_name, pool) do
        Supervisor.child_spec({Phoenix.PubSub.PG2Worker, {name, group}}, id: group)
      end

    Supervisor.init(workers, strategy: :one_for_one)
  end

  def broadcast(adapter_name, topic, message, dispatcher) do
    forward = {:forward_to_local, topic, message, dispatcher}

    for pid <- :pg.get_members(Phoenix.PubSub, pick(adapter_name)), node(pid) != node() do
      send(pid, forward)
    end

    :ok
  end

  def direct_broadcast(adapter_name, node_name, topic, message, dispatcher) do
    send({pick(adapter_name), node_name}, {:forward_to_local, topic, message, dispatcher})
    :ok
  end

  defp pick(adapter_name) do
    groups = :persistent_term.get(adapter_name)
    elem(groups, :erlang.phash2(self(), tuple_size(groups)))
  end

  defp groups(adapter_name, count),
    do: [adapter_name | Enum.map(2..count//1, &:"#{adapter_name}_#{&1}")]
end

defmodule Phoenix.PubSub.PG2Worker do
  use GenServer

  def start_link({name, group}), do: GenServer.start_link(__MODULE__, {name, group}, name: group)

  @impl true
  def init({name, group}) do
    :ok = :pg.join(Phoenix.PubSub, group, self())
    {:ok, name}
  end

  @impl true
  def handle_info({:forward_to_local, topic, message, dispatcher}, pubsub) do
    Phoenix.PubSub.local_broadcast(pubsub, topic, message, dispatcher)
    {:noreply, pubsub}
  end

  def handle_info(_other, pubsub), do: {:noreply, pubsub}
end
