# Migration benchmark: hot_swap (state handed over) against cold_swap, same
# run, fresh phnodes for every round.
#  - join: 3 phnodes run 30k counters, each holding a value; a 4th joins.
#    Time from starting the 4th until every child it now owns runs there,
#    nothing runs twice and every registry counts 30k; then the values are
#    checked (hot_swap: all intact; cold_swap: the moved ones start at 0).
#  - leave: 4 phnodes run 40k counters (about 10k each); one gets SIGTERM.
#    Time until its process exited, the 3 survivors run all 40k once and
#    every registry counts 40k; then the values are checked.
#   elixir --name ... --cookie COOKIE bench/migration.exs PHNODE COOKIE SUFFIX PIDDIR TMPDIR
Code.require_file("../test/integration/support/ring.exs", __DIR__)
[phnode, cookie, suffix, piddir, tmp] = System.argv()

defmodule MB do
  def now, do: System.monotonic_time(:millisecond)
  def hub(n), do: {:my_hub, n}
  def count(n), do: GenServer.call(hub(n), :replica_count, 120_000)
  def local(n), do: length(GenServer.call(hub(n), {:process_list, :local}, 120_000))

  def spawn_node(phnode, cookie, name, cfg, join, piddir) do
    args =
      ["--name", Atom.to_string(name), "--cookie", cookie, "--log-level", "warning",
       "--no-beam-discovery", "--config", cfg] ++ if(join, do: ["--join", Atom.to_string(join)], else: [])

    port = Port.open({:spawn_executable, phnode}, [:exit_status, args: args])
    {:os_pid, os} = Port.info(port, :os_pid)
    File.write!(Path.join(piddir, "#{name}.pid"), "#{os}\n")
    {name, os, port}
  end

  def until(f, what, t0 \\ now()) do
    ok =
      try do
        f.()
      catch
        :exit, _ -> false
      end

    cond do
      ok -> :ok
      now() - t0 > 180_000 -> raise "timed out waiting for #{what}"
      true -> Process.sleep(5); until(f, what, t0)
    end
  end

  def formed(nodes) do
    until(fn -> Enum.all?(nodes, fn n -> length(GenServer.call(hub(n), {:nodes, []})) == length(nodes) - 1 end) end,
          "the cluster to form")
  end

  def value(i), do: i * 7 + 1

  # starts n counters through the first node and gives each its value
  def load(nodes, n, prefix) do
    specs = for i <- 1..n, do: %{id: "#{prefix}#{i}", start: {:counter, :start_link, [0]}}
    {:ok, %{status: :ok, started: started}} =
      GenServer.call(hub(hd(nodes)), {:start_children, specs, [awaitable: true, timeout: 120_000]}, :infinity)

    started
    |> Task.async_stream(fn {"" <> id, [{_, pid}]} ->
      i = id |> String.trim_leading(prefix) |> String.to_integer()
      GenServer.call(pid, {:add, value(i)})
    end, max_concurrency: 32, ordered: false)
    |> Stream.run()

    until(fn -> Enum.all?(nodes, &(count(&1) == n)) end, "the start")
  end

  # how many children hold their value, looked up on node
  def intact(node, prefix) do
    GenServer.call(hub(node), :registry_dump, 120_000)
    |> Task.async_stream(fn {id, {_, [{_, pid}], _}} ->
      i = id |> String.trim_leading(prefix) |> String.to_integer()
      GenServer.call(pid, :get) == value(i)
    end, max_concurrency: 32, ordered: false)
    |> Enum.count(fn {:ok, ok} -> ok end)
  end

  def stop_all(started) do
    for {_, os, _} <- started, do: System.cmd("kill", ["-9", "#{os}"], stderr_to_stdout: true)
    Process.sleep(200)
  end
end

cold = Path.join(tmp, "mig_cold.json")
hot = Path.join(tmp, "mig_hot.json")
File.write!(cold, ~s({"migration_strategy": {"type": "cold_swap"}}))
File.write!(hot, ~s({"migration_strategy": {"type": "hot_swap", "handover": true}}))
rounds = String.to_integer(System.get_env("ROUNDS", "3"))
join_n = String.to_integer(System.get_env("MIG_JOIN_CHILDREN", "30000"))
leave_n = String.to_integer(System.get_env("MIG_LEAVE_CHILDREN", "40000"))

node_name = fn tag, i -> :"mig#{tag}#{i}_#{suffix}@127.0.0.1" end

join_round = fn mode, cfg, r ->
  tag = "j#{mode}#{r}"
  [n1 | _] = names = for i <- 1..3, do: node_name.(tag, i)
  started = for {n, i} <- Enum.with_index(names), do: MB.spawn_node(phnode, cookie, n, cfg, if(i > 0, do: n1), piddir)
  for n <- names, do: MB.until(fn -> Node.ping(n) == :pong end, "#{n}")
  MB.formed(names)
  MB.load(names, join_n, "j")
  n4 = node_name.(tag, 4)
  all = names ++ [n4]
  ring = PhTest.Ring.new(all)
  want = Enum.count(1..join_n, fn i -> PhTest.Ring.owner(ring, "j#{i}") == n4 end)
  t0 = MB.now()
  s4 = MB.spawn_node(phnode, cookie, n4, cfg, n1, piddir)
  MB.until(fn -> Node.ping(n4) == :pong end, "#{n4}")

  MB.until(fn ->
    MB.local(n4) == want and Enum.sum(Enum.map(all, &MB.local/1)) == join_n and
      Enum.all?(all, &(MB.count(&1) == join_n))
  end, "the join's moves")

  ms = MB.now() - t0
  kept = MB.intact(n1, "j")
  MB.stop_all([s4 | started])
  IO.puts(:stderr, "join #{mode} round #{r}: #{ms} ms, #{want} moved, #{kept}/#{join_n} values intact")
  {ms, want, kept}
end

leave_round = fn mode, cfg, r ->
  tag = "l#{mode}#{r}"
  [n1, n2 | _] = names = for i <- 1..4, do: node_name.(tag, i)
  started = for {n, i} <- Enum.with_index(names), do: MB.spawn_node(phnode, cookie, n, cfg, if(i > 0, do: n1), piddir)
  for n <- names, do: MB.until(fn -> Node.ping(n) == :pong end, "#{n}")
  MB.formed(names)
  MB.load(names, leave_n, "l")
  on_n2 = MB.local(n2)
  survivors = names -- [n2]
  {_, os2, port2} = Enum.find(started, fn {n, _, _} -> n == n2 end)
  t0 = MB.now()
  System.cmd("kill", ["-TERM", "#{os2}"])
  receive do
    {^port2, {:exit_status, _}} -> :ok
  after
    120_000 -> raise "the leaving node did not exit"
  end

  MB.until(fn ->
    Enum.sum(Enum.map(survivors, &MB.local/1)) == leave_n and
      Enum.all?(survivors, &(MB.count(&1) == leave_n))
  end, "the leave")

  ms = MB.now() - t0
  kept = MB.intact(n1, "l")
  MB.stop_all(started)
  IO.puts(:stderr, "leave #{mode} round #{r}: #{ms} ms, #{on_n2} on the leaving node, #{kept}/#{leave_n} values intact")
  {ms, on_n2, kept}
end

lists = fn l -> inspect(l, charlists: :as_lists) end
median = fn l -> l |> Enum.sort() |> Enum.at(div(length(l), 2)) end

for {scenario, fun, n} <- [{"join", join_round, join_n}, {"graceful_leave", leave_round, leave_n}] do
  runs =
    for r <- 1..rounds, mode <- [:cold, :hot] do
      {mode, fun.(mode, if(mode == :hot, do: hot, else: cold), r)}
    end

  res = fn mode -> for {^mode, x} <- runs, do: x end
  c = median.(Enum.map(res.(:cold), &elem(&1, 0)))
  h = median.(Enum.map(res.(:hot), &elem(&1, 0)))
  {_, moved, _} = hd(res.(:hot))

  IO.puts(
    ~s({"scenario": "migration_#{scenario}", "children": #{n}, "moved": #{moved}, ) <>
      ~s("cold_swap_ms": #{c}, "hot_swap_ms": #{h}, "hot_over_cold": #{Float.round(h / max(c, 1), 2)}, ) <>
      ~s("cold_swap_intact": #{lists.(Enum.map(res.(:cold), &elem(&1, 2)))}, ) <>
      ~s("hot_swap_intact": #{lists.(Enum.map(res.(:hot), &elem(&1, 2)))}, ) <>
      ~s("cold_swap_rounds_ms": #{lists.(Enum.map(res.(:cold), &elem(&1, 0)))}, ) <>
      ~s("hot_swap_rounds_ms": #{lists.(Enum.map(res.(:hot), &elem(&1, 0)))}})
  )
end
