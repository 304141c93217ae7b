# Where the Elixir client's extra time goes in a 100k-child awaited start
# (issue 16), run by `CLBENCH_SCRIPT=bench/client_start_phases.exs
# bench/client_cache.sh`. Prints one JSON object per round, then one with the
# medians; CPU in ms of this VM (:erlang.statistics(:runtime)), nothing else
# running in it.
#
# Per round, in a process of its own spawned with the specs (as the timed
# paths of bench/client_cache.exs): the raw call; building the cache's rows
# from its result (Phases.full_rows/3) the first time (this allocation
# triggers the collection that copies the result, a heap fragment until
# then, and the process's specs) and at once a second time (no collection:
# the building alone); one :ets.insert/2 of the rows into a table with the
# cache's options. Then, the same 100k started entries inserted into fresh
# tables in other row shapes (the order shuffled per round): what a smaller
# row would save.
Code.require_file("client_lib.exs", __DIR__)
PhTest.init()
Logger.configure(level: :error)

defmodule Phases do
  def cpu, do: elem(:erlang.statistics(:runtime), 0)

  def timed(fun) do
    c0 = cpu()
    v = fun.()
    {cpu() - c0, v}
  end

  # the full cache rows of a start on node (the client's until 2026-12-05 08:40 UTC)
  def full_rows(started, specs, node) do
    rows =
      for {{cid, [{^node, _}] = nps}, %{id: cid} = spec} <- Enum.zip(started, specs),
          do: {cid, nps, spec, %{}}

    {rows, length(rows)}
  end

  def table, do: :ets.new(:phases, [:set, :public, read_concurrency: true])

  # CPU of one :ets.insert/2 (or insert_new/2) of rows into a fresh table
  def insert_cpu(rows, op) do
    t = table()
    {c, true} = timed(fn -> apply(:ets, op, [t, rows]) end)
    :ets.delete(t)
    c
  end

  def median(l), do: l |> Enum.sort() |> Enum.at(div(length(l), 2))

  def json(map) do
    IO.puts(
      "{" <>
        Enum.map_join(map, ", ", fn {k, v} ->
          "\"#{k}\": " <> if(is_binary(v) or is_atom(v), do: "\"#{v}\"", else: "#{v}")
        end) <> "}"
    )
  end
end

ph = PhTest.start_node(args: [])
n = 100_000
ids = for i <- 1..n, do: "s#{i}"
specs = for id <- ids, do: %{id: id, start: {:counter, :start_link, [0]}}
rounds = String.to_integer(System.get_env("ROUNDS", "7"))
me = self()

results =
  for round <- 0..rounds do
    {pid, mref} =
      spawn_monitor(fn ->
        {call, {:ok, %{status: :ok, started: started}}} =
          Phases.timed(fn ->
            GenServer.call({:my_hub, ph.node}, {:start_children, specs, [awaitable: true]}, :infinity)
          end)

        node = ph.node
        {first, {rows, ^n}} = Phases.timed(fn -> Phases.full_rows(started, specs, node) end)
        {again, {_, ^n}} = Phases.timed(fn -> Phases.full_rows(started, specs, node) end)
        insert = Phases.insert_cpu(rows, :insert)

        # the other shapes, built before their clocks
        shapes = [
          insert_new: {rows, :insert_new},
          no_spec: {for({c, nps, _, m} <- rows, do: {c, nps, nil, m}), :insert},
          spec_sub_binary:
            {(fn ->
                bins = for {_, _, s, _} <- rows, do: :erlang.term_to_binary(s)
                big = IO.iodata_to_binary(bins)

                {l, _} =
                  Enum.map_reduce(Enum.zip(rows, bins), 0, fn {{c, nps, _, m}, b}, off ->
                    {{c, nps, binary_part(big, off, byte_size(b)), m}, off + byte_size(b)}
                  end)

                l
              end).(), :insert},
          started_entries: {started, :insert}
        ]

        :erlang.garbage_collect()

        others =
          for {name, {r, op}} <- Enum.shuffle(shapes), into: %{}, do: {name, Phases.insert_cpu(r, op)}

        send(
          me,
          {:round, self(),
           Map.merge(others, %{call: call, rows_first: first, rows_again: again, insert: insert})}
        )
      end)

    r =
      receive do
        {:round, ^pid, r} -> r
        {:DOWN, ^mref, _, _, reason} -> raise "round failed: #{inspect(reason)}"
      end

    receive do
      {:DOWN, ^mref, _, _, _} -> :ok
    end

    {:ok, _} =
      GenServer.call({:my_hub, ph.node}, {:stop_children, ids, [awaitable: true]}, :infinity)

    Phases.json(Map.put(r, :round, round))
    r
  end
  # the first round warms up
  |> tl()

{load1, _} = Float.parse(File.read!("/proc/loadavg"))

Phases.json(
  Map.new(hd(results), fn {k, _} -> {"median_" <> Atom.to_string(k), Phases.median(for r <- results, do: r[k])} end)
  |> Map.put(:scenario, "client_start_phases_cpu_ms")
  |> Map.put(:load_average_1m, load1)
)

PhTest.kill_node(ph)
