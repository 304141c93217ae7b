defmodule PhNode.Future do
  @moduledoc """
  The handle of an awaitable start or stop (ProcessHub's `%ProcessHub.Future{}`).

  The request is on its way to the hub when the future is returned; `await/1`
  waits for the hub's answer and then for the local registry cache to show the
  result (read-your-writes), and returns a `PhNode.StartResult` or
  `PhNode.StopResult`.

  Unlike ProcessHub's future, the answer is delivered to the process that made
  the call (it is a `:gen_server.send_request/2` request id): await it from that
  process.
  """
  defstruct [
    :future_resolver,
    :ref,
    :timeout,
    :hub_id,
    :kind,
    :pre,
    :owner,
    :member,
    :sub,
    :specs,
    :meta,
    :parts
  ]

  @type t :: %__MODULE__{}

  @doc """
  Waits for the result. Accepts a future or `{:ok, future}`; `{:error, reason}`
  is returned as is; anything else gives `{:error, :invalid_argument}`.
  """
  def await({:ok, %__MODULE__{} = f}), do: await(f)
  def await({:error, _} = e), do: e

  def await(%__MODULE__{} = f) do
    if f.owner != self() do
      {:error, :not_owner}
    else
      if f.parts do
        PhNode.Hub.await_parts(f)
      else
        case :gen_server.wait_response(f.ref, f.timeout + 50_000) do
          {:reply, reply} -> PhNode.Hub.finish(f, reply)
          :timeout -> {:error, :timeout}
          {:error, {reason, _server}} -> {:error, {:hub_down, reason}}
        end
      end
    end
  end

  def await(_), do: {:error, :invalid_argument}
end
