defmodule PhNode.StopResult do
  @moduledoc """
  The result of an awaited stop (ProcessHub's `%ProcessHub.StopResult{}`):
  `stopped` is `[{cid, [node]}]`, `errors` is `[{cid, node, reason}]`.
  Every helper passes `{:error, reason}` through.
  """
  defstruct status: :ok, stopped: [], errors: []

  @type t :: %__MODULE__{
          status: :ok | :error,
          stopped: [{term, [node]}],
          errors: [{term, node, term}]
        }

  @doc "`{:ok, stopped}` | `{:error, {errors, stopped}}`."
  def format(%__MODULE__{status: :ok, stopped: s}), do: {:ok, s}
  def format(%__MODULE__{errors: e, stopped: s}), do: {:error, {e, s}}
  def format({:error, _} = e), do: e

  def errors(%__MODULE__{errors: e}), do: e
  def errors({:error, _} = e), do: e

  def status(%__MODULE__{status: s}), do: s
  def status({:error, _} = e), do: e

  def first(%__MODULE__{stopped: [f | _]}), do: f
  def first(%__MODULE__{}), do: nil
  def first({:error, _} = e), do: e

  def cids(%__MODULE__{stopped: s}), do: for({c, _} <- s, do: c)
  def cids({:error, _} = e), do: e

  def nodes(%__MODULE__{stopped: s}), do: Enum.uniq(for {_, ns} <- s, n <- ns, do: n)
  def nodes({:error, _} = e), do: e
end
