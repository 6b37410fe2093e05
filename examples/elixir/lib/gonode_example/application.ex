defmodule GonodeExample.Application do
  @moduledoc """
  Starts the cluster poller and the :greeter GenServer. Configured through
  the environment the Deployment sets:

    * `CLUSTER_SERVICE`: the headless Service whose A records are the pods of
      the cluster, fully qualified (`app-headless.default.svc.cluster.local`);
      unset, the node does not look for peers
    * `CLUSTER_BASENAME`: the part before `@` of every node's name (the
      release's `RELEASE_NODE` is `<basename>@<pod IP>`); defaults to this
      node's own
    * `CLUSTER_POLLING_INTERVAL`: milliseconds between two lookups (5000)
  """
  use Application

  @impl true
  def start(_type, _args) do
    basename =
      System.get_env("CLUSTER_BASENAME") ||
        node() |> Atom.to_string() |> String.split("@") |> hd()

    cluster = [
      service: System.get_env("CLUSTER_SERVICE"),
      basename: basename,
      interval: String.to_integer(System.get_env("CLUSTER_POLLING_INTERVAL") || "5000")
    ]

    children = [
      {GonodeExample.Cluster, cluster},
      GonodeExample.Greeter
    ]

    Supervisor.start_link(children, strategy: :one_for_one, name: GonodeExample.Supervisor)
  end
end
