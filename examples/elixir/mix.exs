defmodule GonodeExample.MixProject do
  use Mix.Project

  # No dependencies: the application builds offline, with the Mix and OTP of
  # the image it is built in (scripts/k8s-images.sh). Elixir 1.14 and later.
  def project do
    [
      app: :gonode_example,
      version: "0.1.0",
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      deps: [],
      releases: [gonode_example: [include_executables_for: [:unix]]]
    ]
  end

  def application do
    [extra_applications: [:logger], mod: {GonodeExample.Application, []}]
  end
end
