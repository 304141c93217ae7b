# The measuring side of the benchmarks: one Elixir node drives phnode's
# workers and the same jobs on a BEAM node, alternating rounds so both see
# the same machine load. Prints one JSON object per scenario.
#
#   elixir --name ... --cookie ... bench/client.exs PHNODE BEAMNODE ROUNDS PH_OSPID BEAM_OSPID
#
# Besides the rates, each scenario reports the CPU time the server process
# used per operation (the sum over its threads of /proc/PID/task/*/schedstat,
# nanoseconds on a CPU; /proc/PID/stat's 10 ms ticks where schedstat is
# missing): that shows each server's own cost even when the shared client
# is what limits the rate. Busy polling counts: a spinning thread is on a CPU.
[ph, bs, rounds, ph_os, bs_os] = System.argv()
ph = String.to_atom(ph)
bs = String.to_atom(bs)
rounds = String.to_integer(rounds)
Code.require_file("cpu_lib.exs", __DIR__)
Code.require_file("many_nodes.exs", __DIR__)

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

  # {rate, server CPU microseconds per operation}
  def measured(os_pid, ops, fun) do
    c0 = BenchCPU.cpu_us(os_pid)
    rate = fun.()
    {rate, (BenchCPU.cpu_us(os_pid) - c0) / ops}
  end

  # ratio: the median of the ratios of adjacent phnode/BEAM rounds. The
  # host's speed drifts by up to a third within a run; a pair of rounds
  # taken back to back sees the same host, so its ratio is what compares
  # the two servers. ratio_of_medians is given too.
  def report(name, ph_runs, beam_runs, unit) do
    p = median(Enum.map(ph_runs, &elem(&1, 0)))
    b = median(Enum.map(beam_runs, &elem(&1, 0)))
    pc = median(Enum.map(ph_runs, &elem(&1, 1)))
    bc = median(Enum.map(beam_runs, &elem(&1, 1)))
    paired = median(Enum.zip_with(ph_runs, beam_runs, fn {pr, _}, {br, _} -> pr / br end))
    IO.puts(
      ~s({"scenario": "#{name}", "unit": "#{unit}", "phnode": #{round(p)}, "beam": #{round(b)}, ) <>
        ~s("ratio": #{Float.round(paired, 2)}, "ratio_of_medians": #{Float.round(p / b, 2)}, ) <>
        ~s("phnode_cpu_us_per_op": #{Float.round(pc, 1)}, "beam_cpu_us_per_op": #{Float.round(bc, 1)}, ) <>
        ~s("phnode_rounds": #{inspect(Enum.map(ph_runs, &round(elem(&1, 0))))}, ) <>
        ~s("beam_rounds": #{inspect(Enum.map(beam_runs, &round(elem(&1, 0))))}})
    )
  end

  # pairs of rounds, the side that goes first alternating, after one
  # warm-up round each
  def compare(name, unit, pairs, {ph_os, bs_os, ops}, ph_fun, beam_fun) do
    ph_fun.()
    beam_fun.()
    {p, b} =
      Enum.reduce(1..pairs, {[], []}, fn i, {ps, bs} ->
        {pr, br} =
          if rem(i, 2) == 1 do
            pr = measured(ph_os, ops, ph_fun)
            {pr, measured(bs_os, ops, beam_fun)}
          else
            br = measured(bs_os, ops, beam_fun)
            {measured(ph_os, ops, ph_fun), br}
          end

        {[pr | ps], [br | bs]}
      end)

    report(name, Enum.reverse(p), Enum.reverse(b), unit)
  end
end

defmodule BenchCounter do
  use GenServer
  def start_link(n), do: GenServer.start_link(__MODULE__, n, name: {:via, Registry, {BenchReg, n}})
  def init(n), do: {:ok, n}
end

defmodule HubBench do
  def rss_bytes(os_pid) do
    File.read!("/proc/#{os_pid}/status")
    |> String.split("\n")
    |> Enum.find_value(fn l -> if String.starts_with?(l, "VmRSS:"), do: l end)
    |> String.split()
    |> Enum.at(1)
    |> String.to_integer()
    |> Kernel.*(1024)
  end

  # One awaitable start_children of n counters on phnode: {ms, bytes per child}.
  def phnode_start(ph, os_pid, n) do
    specs = for i <- 1..n, do: %{id: "b#{i}", start: {:counter, :start_link, [0]}}
    before = rss_bytes(os_pid)
    t0 = System.monotonic_time(:microsecond)
    {:ok, %{status: :ok, started: started}} =
      GenServer.call({:my_hub, ph}, {:start_children, specs, [awaitable: true]}, :infinity)
    ms = (System.monotonic_time(:microsecond) - t0) / 1000
    ^n = length(started)
    bytes = div(rss_bytes(os_pid) - before, n)
    ids = for i <- 1..n, do: "b#{i}"
    {:ok, _} = GenServer.call({:my_hub, ph}, {:stop_children, ids, [awaitable: true]}, :infinity)
    {ms, bytes}
  end

  # DynamicSupervisor + Registry starting n gen_servers on this node.
  def beam_start(n) do
    {:ok, reg} = Registry.start_link(keys: :unique, name: BenchReg)
    {:ok, sup} = DynamicSupervisor.start_link(strategy: :one_for_one, max_children: :infinity)
    :erlang.garbage_collect()
    before = :erlang.memory(:total)
    t0 = System.monotonic_time(:microsecond)
    for i <- 1..n, do: {:ok, _} = DynamicSupervisor.start_child(sup, {BenchCounter, "b#{i}"})
    ms = (System.monotonic_time(:microsecond) - t0) / 1000
    bytes = div(:erlang.memory(:total) - before, n)
    # the children do not trap exits: killing their supervisor ends them
    # at once, silently; the Registry is stopped in order (its partitions
    # would log a crash report each if killed)
    Process.unlink(sup)
    Process.exit(sup, :kill)
    Process.unlink(reg)
    :ok = Supervisor.stop(reg)
    Process.sleep(200)
    {ms, bytes}
  end
end

true = Node.connect(bs)
:pong = Node.ping(ph)
ph_echo = Bench.spawn_ph(ph, :echo, [])
ph_counter = Bench.spawn_ph(ph, :counter, [0])
beam_echo = :rpc.call(bs, :erlang, :whereis, [:ph_bench_echo])
beam_counter = :rpc.call(bs, :erlang, :whereis, [:ph_bench_counter])

# The call scenarios run four short pairs per ROUNDS round: more pairs,
# closer in time, give a steadier median on a host whose speed drifts.
pairs = rounds * 4

Bench.compare("sequential_call_by_pid", "calls/s", pairs, {ph_os, bs_os, 5_000},
  fn -> Bench.sequential(ph_echo, 5_000) end,
  fn -> Bench.sequential(beam_echo, 5_000) end)

Bench.compare("concurrent_8_callers", "calls/s", pairs, {ph_os, bs_os, 10_000},
  fn -> Bench.concurrent(ph_echo, 8, 1_250) end,
  fn -> Bench.concurrent(beam_echo, 8, 1_250) end)

# 8 client nodes with one sequential caller each, each calling a worker of
# its own (8 workers per server): 8 connections into each server.
peers = ManyNodes.start(8)
ph_echos = for _ <- 1..8, do: Bench.spawn_ph(ph, :echo, [])
beam_echos = for _ <- 1..8, do: (fn -> {:ok, p} = :rpc.call(bs, :gen_server, :start, [:ph_bench_server, :echo, []]); p end).()
Bench.compare("client_nodes_8_x_1_caller", "calls/s", pairs, {ph_os, bs_os, 10_000},
  fn -> ManyNodes.run(peers, ph_echos, 1_250) end,
  fn -> ManyNodes.run(peers, beam_echos, 1_250) end)
ManyNodes.stop(peers)

# Calls about a millisecond apart, one caller: what an idle-ish server
# costs per call (a busy poll that waits for nothing shows here).
Bench.compare("spaced_calls_1ms", "calls/s", rounds, {ph_os, bs_os, 300},
  fn -> 300 * 1_000_000 / Bench.timed(fn -> CallLoop.spaced(ph_echo, 300) end) end,
  fn -> 300 * 1_000_000 / Bench.timed(fn -> CallLoop.spaced(beam_echo, 300) end) end)

# ONLY=calls (bench/ab_calls.sh): the call scenarios above and nothing else.
if System.get_env("ONLY") == "calls", do: System.halt(0)

# 200k sends per round, as the scenario is defined: ROUNDS pairs.
Bench.compare("one_way_200k_sends", "msgs/s", rounds, {ph_os, bs_os, 200_000},
  fn -> Bench.one_way(ph_counter, 200_000) end,
  fn -> Bench.one_way(beam_counter, 200_000) end)

# The hub: get_pid from the registry vs a gen_server answering from ETS. Both
# are called by registered name, as ProcessHub users call their hub.
{:ok, _} = GenServer.call({:my_hub, ph}, {:start_child, %{id: "c1", start: {:counter, :start_link, [0]}}, []})
get_pid = fn target -> fn -> for _ <- 1..5_000, do: true = is_pid(GenServer.call(target, {:get_pid, "c1"})) end end
Bench.compare("hub_get_pid", "calls/s", pairs, {ph_os, bs_os, 5_000},
  fn -> 5_000 * 1_000_000 / Bench.timed(get_pid.({:my_hub, ph})) end,
  fn -> 5_000 * 1_000_000 / Bench.timed(get_pid.({:ph_bench_registry, bs})) end)

# The hub: 100k children with one awaitable start_children. The first round
# of each side (cold: the heaps grow) gives the memory per child and is not
# timed into the result; then rounds alternate and the medians are reported.
n = 100_000
{_, ph_bytes} = HubBench.phnode_start(ph, ph_os, n)
{_, b_bytes} = HubBench.beam_start(n)
{ph_runs, b_runs} =
  Enum.reduce(1..rounds, {[], []}, fn _, {ps, bs} ->
    {ph_ms, _} = HubBench.phnode_start(ph, ph_os, n)
    {b_ms, _} = HubBench.beam_start(n)
    {[ph_ms | ps], [b_ms | bs]}
  end)
ph_ms = Bench.median(ph_runs)
b_ms = Bench.median(b_runs)
IO.puts(
  ~s({"scenario": "hub_start_100k_children", "phnode_ms": #{round(ph_ms)}, "beam_ms": #{round(b_ms)}, ) <>
    ~s("speedup": #{Float.round(b_ms / ph_ms, 1)}, "phnode_bytes_per_child": #{ph_bytes}, ) <>
    ~s("beam_bytes_per_child": #{b_bytes}, "beam": "DynamicSupervisor + Registry on one node", ) <>
    ~s("phnode_rounds_ms": #{inspect(Enum.map(ph_runs, &round/1))}, "beam_rounds_ms": #{inspect(Enum.map(b_runs, &round/1))}})
)
