# Cluster benchmarks: 3 phnodes vs 3 BEAM nodes with pg, same run.
#   elixir --name ... --cookie ... bench/cluster.exs PH1 PH2 PH3 PH3_OSPID BEAM1 BEAM2 BEAM3 PHNODE COOKIE PIDDIR
[p1, p2, p3, p3_os, b1, b2, b3, phnode, cookie, piddir] = System.argv()
[p1, p2, p3, b1, b2, b3] = Enum.map([p1, p2, p3, b1, b2, b3], &String.to_atom/1)
phs = [p1, p2, p3]

defmodule CB do
  def count(n), do: GenServer.call({:my_hub, n}, :registry_count, 60_000)

  def wait_all(nodes, want) do
    if Enum.all?(nodes, &(count(&1) == want)), do: :ok, else: (Process.sleep(2); wait_all(nodes, want))
  end

  def now, do: System.monotonic_time(:millisecond)
end

for n <- phs, do: :pong = Node.ping(n)
# wait for the hub cluster to form
Stream.repeatedly(fn -> Process.sleep(50); length(GenServer.call({:my_hub, p1}, {:nodes, []})) end)
|> Enum.find(&(&1 == 2))

# 100k children with one awaitable call, until every registry has them. A
# first round of each side warms up (not counted); then rounds alternate and
# the medians are reported. Each round ends (untimed) with all children
# stopped, or all pg members gone, on every node.
n = 100_000
rounds = String.to_integer(System.get_env("ROUNDS", "3"))
for b <- [b2, b3], do: true = Node.connect(b)
true = Node.connect(b1)

ph_round = fn r ->
  specs = for i <- 1..n, do: %{id: "c#{r}_#{i}", start: {:counter, :start_link, [0]}}
  t0 = CB.now()
  {:ok, %{status: :ok}} = GenServer.call({:my_hub, p1}, {:start_children, specs, [awaitable: true, timeout: 60_000]}, :infinity)
  CB.wait_all(phs, n)
  ms = CB.now() - t0
  {:ok, _} = GenServer.call({:my_hub, p1}, {:stop_children, (for i <- 1..n, do: "c#{r}_#{i}"), []}, :infinity)
  CB.wait_all(phs, 0)
  ms
end

pg_round = fn -> :erpc.call(b1, :ph_bench_pg, :joins, [n, [b2, b3]], :infinity) end

_ = ph_round.(0)
_ = pg_round.()
{ph_runs, pg_runs} =
  Enum.reduce(1..rounds, {[], []}, fn r, {ps, gs} -> {[ph_round.(r) | ps], [pg_round.() | gs]} end)
median = fn xs -> xs |> Enum.sort() |> Enum.at(div(length(xs), 2)) end
ph_ms = median.(ph_runs)
pg_ms = median.(pg_runs)
IO.puts(~s({"scenario": "cluster_start_100k_3_nodes", "phnode_ms": #{ph_ms}, "phnode_children_per_s": #{div(n * 1000, max(ph_ms, 1))}, "pg_ms": #{pg_ms}, "pg_joins_per_s": #{div(n * 1000, max(pg_ms, 1))}, "ratio": #{Float.round(pg_ms / max(ph_ms, 1), 2)}, "phnode_rounds_ms": #{inspect(ph_runs)}, "pg_rounds_ms": #{inspect(pg_runs)}}))

# kill -9 of a node holding ~10k children: until all run again and every registry agrees
m = 30_000
specs = for i <- 1..m, do: %{id: "k#{i}", start: {:counter, :start_link, [0]}}
{:ok, %{status: :ok, started: started}} = GenServer.call({:my_hub, p1}, {:start_children, specs, [awaitable: true]}, :infinity)
CB.wait_all(phs, m)
on_p3 = Enum.count(started, fn {_, [{node, _}]} -> node == p3 end)
t0 = CB.now()
System.cmd("kill", ["-9", p3_os])
local = fn node -> length(GenServer.call({:my_hub, node}, {:process_list, :local}, 60_000)) end
wait_recovered = fn f ->
  ok = CB.count(p1) == m and CB.count(p2) == m and local.(p1) + local.(p2) == m
  if ok, do: :ok, else: (Process.sleep(2); f.(f))
end
wait_recovered.(wait_recovered)
IO.puts(~s({"scenario": "failover_kill9", "children_on_killed_node": #{on_p3}, "recovery_ms": #{CB.now() - t0}}))

# a node joins a cluster running 30k children: until the moves are done and
# the registries agree (the new node's local share stops growing and every
# node counts all children)
p4 = String.to_atom("phc4_" <> (p1 |> Atom.to_string() |> String.split("_", parts: 2) |> List.last()))
t0 = CB.now()
port = Port.open({:spawn_executable, phnode},
                 [args: ["--name", Atom.to_string(p4), "--cookie", cookie, "--log-level", "warning", "--join", Atom.to_string(p1)]])
{:os_pid, os_pid} = Port.info(port, :os_pid)
File.write!(Path.join(piddir, "p4.pid"), "#{os_pid}\n")
wait_joined = fn f ->
  ok =
    try do
      l4 = local.(p4)
      l4 > 0 and l4 + local.(p1) + local.(p2) == m and CB.count(p4) == m and CB.count(p1) == m
    catch
      :exit, _ -> false
    end
  if ok, do: :ok, else: (Process.sleep(5); f.(f))
end
wait_joined.(wait_joined)
IO.puts(~s({"scenario": "join_redistribution", "children": #{m}, "moved_to_new_node": #{local.(p4)}, "until_agreed_ms": #{CB.now() - t0}, "note": "includes starting the new phnode"}))
System.cmd("kill", ["-TERM", "#{os_pid}"])
