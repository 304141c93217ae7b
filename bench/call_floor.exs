# The floor of a BEAM caller's call rate (issue 15): one Elixir node calls,
# 5,000 calls a round by pid, from one sequential caller and from CONC (8)
# callers at once, the BEAM echo server, phnode's
# echo worker and bench/call_floor.c (a C node that does nothing but answer)
# in its sleeping and its spinning mode, the order rotating each round. Two
# kinds of call: GenServer.call, and a raw call (the same request sent with
# a plain reference as its tag, the reply received: no monitor). A C node
# on erl_interface does not advertise DFLAG_DIST_MONITOR, so the caller's
# node sends it no MONITOR_P / DEMONITOR_P even for GenServer.call; phnode
# and the BEAM server get them. Raw calls give every server the same
# traffic. Prints one JSON object: per kind and server the median rate, the
# median of its rounds' ratios to the BEAM server's round beside it, and
# its CPU per call.
#
# A third scenario has MANY_NODES (8) client nodes call at once, one
# sequential caller each, each its own worker (8 echo workers on phnode and
# on the BEAM server), and the poll-mode floor (one process, every
# connection in one poll()), which is what the sleep and spin modes, serving
# one connection at a time, cannot be.
#
#   elixir --name ... --cookie ... bench/call_floor.exs BEAM PHNODE FLOOR_SLEEP FLOOR_SPIN FLOOR_POLL OSPIDS ROUNDS
#   (OSPIDS: the five servers' OS pids, comma-separated, in that order)
[bs, ph, fsleep, fspin, fpoll, os_pids, rounds] = System.argv()
[bs, ph, fsleep, fspin, fpoll] = Enum.map([bs, ph, fsleep, fspin, fpoll], &String.to_atom/1)
[bs_os, ph_os, fsleep_os, fspin_os, fpoll_os] = String.split(os_pids, ",")
os = [bs_os, ph_os, fsleep_os, fspin_os]
rounds = String.to_integer(rounds)
Code.require_file("cpu_lib.exs", __DIR__)
Code.require_file("many_nodes.exs", __DIR__)

defmodule Floor do
  def call(:gen, target, i), do: GenServer.call(target, i)
  def call(:raw, target, i), do: CallLoop.raw_call(target, i)

  # {calls/s, server CPU us per call} of fun, which makes calls calls
  def measure(os_pid, calls, fun) do
    c0 = BenchCPU.cpu_us(os_pid)
    t0 = System.monotonic_time(:microsecond)
    fun.()
    us = System.monotonic_time(:microsecond) - t0
    {calls * 1_000_000 / us, (BenchCPU.cpu_us(os_pid) - c0) / calls}
  end

  # n calls by conc callers at once, each calling in sequence (conc 1: one
  # sequential caller)
  def round(kind, target, os_pid, n, conc \\ 1) do
    per = div(n, conc)

    calls = fn -> for i <- 1..per, do: ^i = call(kind, target, i) end

    measure(os_pid, per * conc, fn ->
      if conc == 1,
        do: calls.(),
        else: 1..conc |> Enum.map(fn _ -> Task.async(calls) end) |> Task.await_many(60_000)
    end)
  end

  # the servers in round r's order: each goes first in turn
  def rotate(servers, r) do
    k = rem(r, length(servers))
    Enum.drop(servers, k) ++ Enum.take(servers, k)
  end

  def median(xs), do: xs |> Enum.sort() |> Enum.at(div(length(xs), 2))

  # One JSON line: per server the median rate, the median of its rounds'
  # ratios to the BEAM server's round beside it, and its CPU per call.
  # runs: one map per round, server name => {calls/s, CPU us per call}.
  def report(scenario, calls_per_round, names, runs) do
    parts =
      for name <- names do
        rates = Enum.map(runs, &elem(&1[name], 0))
        ratio = median(Enum.map(runs, &(elem(&1[name], 0) / elem(&1[:beam], 0))))
        cpu = median(Enum.map(runs, &elem(&1[name], 1)))
        ~s("#{name}": {"calls_per_s": #{round(median(rates))}, "ratio_to_beam": #{Float.round(ratio, 2)}, ) <>
          ~s("cpu_us_per_call": #{Float.round(cpu, 1)}, "rounds": #{inspect(Enum.map(rates, &round/1))}})
      end

    IO.puts(~s({"scenario": "#{scenario}", "calls_per_round": #{calls_per_round}, ) <> Enum.join(parts, ", ") <> "}")
  end
end

{:ok, ph_echo} = GenServer.call({:phnode, ph}, {:spawn, :echo, [], []})
targets = [
  beam: :rpc.call(bs, :erlang, :whereis, [:ph_bench_echo]),
  phnode: ph_echo,
  floor_sleep: GenServer.call({:floor, fsleep}, :pid),
  floor_spin: GenServer.call({:floor, fspin}, :pid)
]
servers = Enum.zip(targets, os) |> Enum.map(fn {{name, pid}, o} -> {name, pid, o} end)
n = 5_000
kinds = [:gen, :raw]
# callers at once in the concurrent scenarios (CONC; 0 leaves them out)
conc = String.to_integer(System.get_env("CONC", "8"))
cases = for c <- Enum.uniq([1, conc]), c > 0, kind <- kinds, do: {kind, c}
# warm-up
for {kind, c} <- cases, {_, pid, o} <- servers, do: Floor.round(kind, pid, o, 1_000, c)

runs =
  for r <- 1..rounds, {kind, c} <- cases do
    {{kind, c}, Map.new(Floor.rotate(servers, r), fn {name, pid, o} -> {name, Floor.round(kind, pid, o, n, c)} end)}
  end

for {kind, c} = kc <- cases do
  runs = for {^kc, run} <- runs, do: run
  name = if kind == :gen, do: "call_floor", else: "raw_call_floor"
  name = if c == 1, do: "sequential_" <> name, else: "concurrent_#{c}_callers_" <> name
  Floor.report(name, div(n, c) * c, Enum.map(servers, &elem(&1, 0)), runs)
end

# MANY_NODES client nodes, one sequential caller each (0 leaves it out)
k = String.to_integer(System.get_env("MANY_NODES", "8"))

if k > 0 do
  peers = ManyNodes.start(k)
  ph_echos = for _ <- 1..k, do: elem(GenServer.call({:phnode, ph}, {:spawn, :echo, [], []}), 1)
  beam_echos = for _ <- 1..k, do: elem(:rpc.call(bs, :gen_server, :start, [:ph_bench_server, :echo, []]), 1)
  poll_pid = GenServer.call({:floor, fpoll}, :pid)
  many = [beam: {beam_echos, bs_os}, phnode: {ph_echos, ph_os}, floor_poll: {List.duplicate(poll_pid, k), fpoll_os}]
  per = div(n, k)

  many_round = fn loop, {workers, o} ->
    Floor.measure(o, per * k, fn -> ManyNodes.run(peers, workers, per, loop) end)
  end

  for loop <- [:run, :run_raw], {_, w} <- many, do: many_round.(loop, w)

  for loop <- [:run, :run_raw] do
    runs =
      for r <- 1..rounds do
        Map.new(Floor.rotate(many, r), fn {name, w} -> {name, many_round.(loop, w)} end)
      end

    name = if loop == :run, do: "client_nodes_#{k}_x_1_caller_call_floor", else: "client_nodes_#{k}_x_1_caller_raw_call_floor"
    Floor.report(name, per * k, Keyword.keys(many), runs)
  end

  ManyNodes.stop(peers)
end
