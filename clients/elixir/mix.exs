defmodule PhNode.MixProject do
  use Mix.Project

  # Only Elixir and OTP: no Hex packages.
  def project do
    [
      app: :phnode,
      version: "0.1.0",
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      deps: []
    ]
  end

  def application do
    [extra_applications: [:logger]]
  end
end
