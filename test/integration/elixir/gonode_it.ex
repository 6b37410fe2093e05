# The Elixir side of gonode's integration harness: what a small Elixir
# application on Kubernetes runs. Loaded with `elixir -r gonode_it.ex -e
# "GonodeIT.Pod.main()"`; configured through the environment:
#   GONODE_IT_SERVICE  the headless Service to resolve (A records)
#   GONODE_IT_POLL_MS  the polling interval in milliseconds (default 1000)
# Written for Elixir 1.14 (OTP 25) through 1.20 (OTP 29).

defmodule GonodeIT.Cluster do
  @moduledoc """
  Discovery in the manner of libcluster's Kubernetes.DNS strategy: every
  polling interval resolve the Service's A records with :inet_res (through the
  pod's resolv.conf: nameserver, search list, ndots), name each address
  <basename>@<ip>, connect to the names not connected yet and disconnect the
  names that left the answer. A failed lookup changes nothing (the previous
  answer stands), so a DNS outage never cuts a connection.

  It also records nodeup/nodedown events per node for the tests.
  """
  use GenServer

  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @doc "The poller's state: polls, failures, last error, known names, node events."
  def state, do: GenServer.call(__MODULE__, :state, 30_000)

  @impl true
  def init(opts) do
    :ok = :net_kernel.monitor_nodes(true, node_type: :visible)
    send(self(), :poll)

    {:ok,
     %{
       service: Keyword.fetch!(opts, :service),
       basename: Keyword.fetch!(opts, :basename),
       interval: Keyword.fetch!(opts, :interval),
       known: MapSet.new(),
       polls: 0,
       failures: 0,
       last_error: nil,
       ups: %{},
       downs: %{}
     }}
  end

  @impl true
  def handle_call(:state, _from, s), do: {:reply, s, s}

  @impl true
  def handle_info(:poll, s) do
    s = poll(s)
    Process.send_after(self(), :poll, s.interval)
    {:noreply, s}
  end

  def handle_info({:nodeup, n, _info}, s),
    do: {:noreply, %{s | ups: Map.update(s.ups, n, 1, &(&1 + 1))}}

  def handle_info({:nodedown, n, _info}, s),
    do: {:noreply, %{s | downs: Map.update(s.downs, n, 1, &(&1 + 1))}}

  def handle_info(_other, s), do: {:noreply, s}

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
          :erlang.disconnect_node(n)
        end

        # Connect concurrently: a silent peer (partition) blocks its connect
        # for net_setuptime and must not hold up the others.
        found
        |> Enum.reject(&MapSet.member?(connected, &1))
        |> Task.async_stream(&:net_kernel.connect_node/1,
          timeout: 10_000,
          on_timeout: :kill_task,
          ordered: false
        )
        |> Stream.run()

        %{s | known: found, polls: s.polls + 1}

      {:error, reason} ->
        %{s | failures: s.failures + 1, last_error: reason}
    end
  end
end

defmodule GonodeIT.Echo do
  @moduledoc """
  Registered as :echo. A call is answered with the request itself; a message
  {pid, term} is sent back to pid as term. It remembers the last messages it
  received, so a test can see what reached it.
  """
  use GenServer

  def start_link(_), do: GenServer.start_link(__MODULE__, nil, name: :echo)

  @doc "The last messages :echo received, oldest first."
  def received, do: GenServer.call(:echo, :"$gonode_it_received")

  @impl true
  def init(nil), do: {:ok, []}

  @impl true
  def handle_call(:"$gonode_it_received", _from, log), do: {:reply, Enum.reverse(log), log}
  def handle_call(req, _from, log), do: {:reply, req, remember(log, {:call, req})}

  @impl true
  def handle_cast(msg, log), do: {:noreply, remember(log, {:cast, msg})}

  @impl true
  def handle_info({from, term} = msg, log) when is_pid(from) do
    send(from, term)
    {:noreply, remember(log, {:info, msg})}
  end

  def handle_info(msg, log), do: {:noreply, remember(log, {:info, msg})}

  defp remember(log, entry), do: Enum.take([entry | log], 100)
end

defmodule GonodeIT.Control do
  @moduledoc """
  The harness's control loop on standard input: a line "<id> <base64 code>"
  is evaluated and answered on standard output with
  "@@IT <id> ok|error <byte size>\\n<result>\\n", the result being the value
  itself when it is a binary and its inspect otherwise. End of input halts
  the node, so a harness that dies takes its nodes with it.
  """
  def loop do
    case IO.read(:stdio, :line) do
      :eof ->
        System.halt(0)

      {:error, _} ->
        System.halt(0)

      line ->
        case String.split(String.trim(line), " ") do
          [id, b64] -> answer(id, b64)
          _ -> :ignore
        end

        loop()
    end
  end

  defp answer(id, b64) do
    {status, out} =
      try do
        {value, _binding} = Code.eval_string(Base.decode64!(b64))
        {"ok", render(value)}
      rescue
        e -> {"error", Exception.format(:error, e, __STACKTRACE__)}
      catch
        kind, reason -> {"error", Exception.format(kind, reason, __STACKTRACE__)}
      end

    IO.binwrite(:stdio, ["@@IT ", id, " ", status, " ", Integer.to_string(byte_size(out)), "\n", out, "\n"])
  end

  defp render(v) when is_binary(v), do: v
  defp render(v), do: inspect(v, limit: :infinity, printable_limit: :infinity)
end

defmodule GonodeIT.Pod do
  @moduledoc "Starts the pod's application and runs the control loop."
  def main do
    service = System.fetch_env!("GONODE_IT_SERVICE")
    interval = String.to_integer(System.get_env("GONODE_IT_POLL_MS", "1000"))
    [basename, _host] = node() |> Atom.to_string() |> String.split("@")

    children = [
      GonodeIT.Echo,
      {GonodeIT.Cluster, service: service, basename: basename, interval: interval}
    ]

    {:ok, _} = Supervisor.start_link(children, strategy: :one_for_one, name: GonodeIT.Sup)
    GonodeIT.Control.loop()
  end

  @doc "This node's visible peers, sorted, space separated."
  def nodes, do: Node.list() |> Enum.map(&Atom.to_string/1) |> Enum.sort() |> Enum.join(" ")
end
