defmodule GonodeExample.Cluster do
  @moduledoc """
  Clusters by a headless Service the way libcluster's
  `Cluster.Strategy.Kubernetes.DNS` does, with no dependency: every polling
  interval it resolves the Service's A records with `:inet_res` (through the
  pod's resolv.conf), names each address `<basename>@<ip>`, connects to the
  names it is not connected to, and disconnects the names that left the
  answer since the last lookup. A failed lookup (a DNS outage) changes
  nothing: the previous answer stands and no connection is cut.

  gonode pods name themselves the same way (`GONODE_APPLICATION_NAME` is the
  basename), so Go and Elixir pods behind one Service form one full mesh.
  """
  use GenServer
  require Logger

  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @doc """
  The names the last successful lookup found, the lookups so far, and how
  many times each node came up and went down (nodeup/nodedown) here.
  """
  def status, do: GenServer.call(__MODULE__, :status)

  @impl true
  def init(opts) do
    :ok = :net_kernel.monitor_nodes(true)
    send(self(), :poll)

    {:ok,
     %{
       service: opts[:service],
       basename: opts[:basename],
       interval: opts[:interval],
       known: MapSet.new(),
       polls: 0,
       failures: 0,
       ups: %{},
       downs: %{}
     }}
  end

  @impl true
  def handle_call(:status, _from, s) do
    {:reply,
     %{known: MapSet.to_list(s.known), polls: s.polls, failures: s.failures, ups: s.ups, downs: s.downs},
     s}
  end

  @impl true
  def handle_info(:poll, s) do
    s = poll(s)
    Process.send_after(self(), :poll, s.interval)
    {:noreply, s}
  end

  def handle_info({:nodeup, n}, s), do: {:noreply, %{s | ups: Map.update(s.ups, n, 1, &(&1 + 1))}}

  def handle_info({:nodedown, n}, s),
    do: {:noreply, %{s | downs: Map.update(s.downs, n, 1, &(&1 + 1))}}

  def handle_info(_other, s), do: {:noreply, s}

  defp poll(%{service: nil} = s), do: s

  defp poll(s) do
    case :inet_res.getbyname(String.to_charlist(s.service), :a, 2_000) do
      {:ok, {:hostent, _name, _aliases, :inet, _len, addrs}} ->
        found =
          addrs
          |> Enum.map(fn ip -> :"#{s.basename}@#{:inet.ntoa(ip)}" end)
          |> Enum.reject(&(&1 == node()))
          |> MapSet.new()

        connected = MapSet.new(Node.list())

        for n <- MapSet.difference(s.known, found), MapSet.member?(connected, n) do
          Logger.info("cluster: #{n} left #{s.service}, disconnecting")
          Node.disconnect(n)
        end

        # Concurrently and off this process: a peer that does not answer
        # (an address of a pod that is gone) holds up only its own
        # connection attempt, not the next poll or status/0.
        for n <- found, not MapSet.member?(connected, n) do
          Task.start(fn -> Node.connect(n) end)
        end

        %{s | known: found, polls: s.polls + 1}

      {:error, reason} ->
        Logger.warning("cluster: looking up #{s.service} failed: #{inspect(reason)}")
        %{s | failures: s.failures + 1}
    end
  end
end
