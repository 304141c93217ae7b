defmodule PhNode.StartResult do
  @moduledoc """
  The result of an awaited start (ProcessHub's `%ProcessHub.StartResult{}`):
  `started` is `[{cid, [{node, pid}]}]`, `errors` is `[{cid, node, reason}]`.
  Every helper passes `{:error, reason}` through.
  """
  defstruct status: :ok, started: [], errors: [], rollback: false

  @type t :: %__MODULE__{
          status: :ok | :error,
          started: [{term, [{node, pid}]}],
          errors: [{term, node, term}],
          rollback: boolean
        }

  @doc "`{:ok, started}` | `{:error, {errors, started}}` | `{:error, {errors, started}, :rollback}`."
  def format(%__MODULE__{status: :ok, started: s}), do: {:ok, s}
  def format(%__MODULE__{errors: e, started: s, rollback: true}), do: {:error, {e, s}, :rollback}
  def format(%__MODULE__{errors: e, started: s}), do: {:error, {e, s}}
  def format({:error, _} = e), do: e

  def errors(%__MODULE__{errors: e}), do: e
  def errors({:error, _} = e), do: e

  def status(%__MODULE__{status: s}), do: s
  def status({:error, _} = e), do: e

  @doc "The first started child: `{cid, [{node, pid}]}` or nil."
  def first(%__MODULE__{started: [f | _]}), do: f
  def first(%__MODULE__{}), do: nil
  def first({:error, _} = e), do: e

  @doc "The first pid of the first started child, or nil."
  def pid(%__MODULE__{started: [{_, [{_, p} | _]} | _]}), do: p
  def pid(%__MODULE__{}), do: nil
  def pid({:error, _} = e), do: e

  def pids(%__MODULE__{started: s}), do: for({_, nps} <- s, {_, p} <- nps, do: p)
  def pids({:error, _} = e), do: e

  @doc "The first node of the first started child, or nil."
  def node(%__MODULE__{started: [{_, [{n, _} | _]} | _]}), do: n
  def node(%__MODULE__{}), do: nil
  def node({:error, _} = e), do: e

  def nodes(%__MODULE__{started: s}), do: Enum.uniq(for {_, nps} <- s, {n, _} <- nps, do: n)
  def nodes({:error, _} = e), do: e

  def cids(%__MODULE__{started: s}), do: for({c, _} <- s, do: c)
  def cids({:error, _} = e), do: e
end
