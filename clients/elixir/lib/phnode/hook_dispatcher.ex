defmodule PhNode.HookDispatcher do
  @moduledoc false
  # Registered with the hub (as a pid handler) for every hook key that has
  # client handlers: runs that key's handlers, highest priority first, on the
  # client node. A handler that raises is logged; the others still run.
  require Logger

  def run(hooks) do
    receive do
      {:process_hub, key, data} ->
        handlers =
          case :ets.lookup(hooks, key) do
            [{_, l}] -> l
            [] -> []
          end

        Enum.each(handlers, &dispatch(&1, key, data))
        run(hooks)

      _other ->
        run(hooks)
    end
  end

  defp dispatch(h, key, data) do
    try do
      cond do
        is_function(h.fun, 1) -> h.fun.(data)
        is_pid(h.pid) -> send(h.pid, {:process_hub, key, data})
        true -> apply(h.m, h.f, Enum.map(h.a, fn x -> if x == :_, do: data, else: x end))
      end
    rescue
      e -> Logger.error("PhNode hook #{inspect(h.id)} (#{key}) raised: #{Exception.message(e)}")
    catch
      kind, reason ->
        Logger.error("PhNode hook #{inspect(h.id)} (#{key}): #{kind} #{inspect(reason)}")
    end
  end
end
