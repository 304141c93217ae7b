# The measuring side of the benchmarks: one Elixir node drives phnode's
# workers and the same jobs on a BEAM node, alternating rounds so both see
# the same machine load. Prints one JSON object per scenario.
#
#   elixir --name ... --cookie ... bench/client.exs PHNODE BEAMNODE ROUNDS
[ph, bs, rounds] = System.argv()
ph = String.to_atom(ph)
bs = String.to_atom(bs)
rounds = String.to_integer(rounds)

defmodule Bench do
  def spawn_ph(ph, module, args) do
    {:ok, pid} = GenServer.call({:phnode, ph}, {:spawn, module, args, []})
    pid
  end

  def timed(fun) do
    t0 = System.monotonic_time(:microsecond)
    fun.()
    System.monotonic_time(:microsecond) - t0
  end

  def sequential(target, n) do
    us = timed(fn -> for i <- 1..n, do: ^i = GenServer.call(target, i) end)
    n * 1_000_000 / us
  end

  def concurrent(target, callers, n) do
    us =
      timed(fn ->
        1..callers
        |> Enum.map(fn _ -> Task.async(fn -> for i <- 1..n, do: ^i = GenServer.call(target, i) end) end)
        |> Enum.each(&Task.await(&1, :infinity))
      end)

    callers * n * 1_000_000 / us
  end

  # n casts of {:add, 1}, then one call (ordered after them) until all are counted.
  def one_way(counter, n) do
    base = GenServer.call(counter, :get)
    us =
      timed(fn ->
        for _ <- 1..n, do: GenServer.cast(counter, {:add, 1})
        wait_count(counter, base + n)
      end)

    n * 1_000_000 / us
  end

  defp wait_count(counter, want) do
    case GenServer.call(counter, :get, 60_000) do
      ^want -> :ok
      _ -> wait_count(counter, want)
    end
  end

  def median(xs), do: xs |> Enum.sort() |> Enum.at(div(length(xs), 2))

  def report(name, ph_rates, beam_rates, unit) do
    p = median(ph_rates)
    b = median(beam_rates)
    IO.puts(
      ~s({"scenario": "#{name}", "unit": "#{unit}", "phnode": #{round(p)}, "beam": #{round(b)}, ) <>
        ~s("ratio": #{Float.round(p / b, 2)}, "phnode_rounds": #{inspect(Enum.map(ph_rates, &round/1))}, ) <>
        ~s("beam_rounds": #{inspect(Enum.map(beam_rates, &round/1))}})
    )
  end

  def compare(name, unit, rounds, ph_fun, beam_fun) do
    ph_fun.()
    beam_fun.()
    {p, b} =
      Enum.reduce(1..rounds, {[], []}, fn _, {ps, bs} ->
        {[ph_fun.() | ps], [beam_fun.() | bs]}
      end)

    report(name, p, b, unit)
  end
end

true = Node.connect(bs)
:pong = Node.ping(ph)
ph_echo = Bench.spawn_ph(ph, :echo, [])
ph_counter = Bench.spawn_ph(ph, :counter, [0])
beam_echo = :rpc.call(bs, :erlang, :whereis, [:ph_bench_echo])
beam_counter = :rpc.call(bs, :erlang, :whereis, [:ph_bench_counter])

Bench.compare("sequential_call_by_pid", "calls/s", rounds,
  fn -> Bench.sequential(ph_echo, 20_000) end,
  fn -> Bench.sequential(beam_echo, 20_000) end)

Bench.compare("concurrent_8_callers", "calls/s", rounds,
  fn -> Bench.concurrent(ph_echo, 8, 5_000) end,
  fn -> Bench.concurrent(beam_echo, 8, 5_000) end)

Bench.compare("one_way_200k_sends", "msgs/s", rounds,
  fn -> Bench.one_way(ph_counter, 200_000) end,
  fn -> Bench.one_way(beam_counter, 200_000) end)
