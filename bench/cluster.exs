# Cluster benchmarks: 3 phnodes vs 3 BEAM nodes with pg, same run.
#   elixir --name ... --cookie ... bench/cluster.exs PH1 PH2 PH3 OSPID1,OSPID2,OSPID3 BEAM1 BEAM2 BEAM3 PHNODE COOKIE PIDDIR
# PG=0 leaves the BEAM side out (for profiling phnode alone); N sets the
# number of children (100,000).
[p1, p2, p3, os_pids, b1, b2, b3, phnode, cookie, piddir] = System.argv()
[p1, p2, p3, b1, b2, b3] = Enum.map([p1, p2, p3, b1, b2, b3], &String.to_atom/1)
phs = [p1, p2, p3]
ph_os = String.split(os_pids, ",")
p3_os = Enum.at(ph_os, 2)
with_pg = System.get_env("PG", "1") != "0"

defmodule CB do
  def rss_kb(os_pid) do
    [kb] = Regex.run(~r/VmRSS:\s+(\d+) kB/, File.read!("/proc/#{os_pid}/status"), capture: :all_but_first)
    String.to_integer(kb)
  end

  # {CPU ms (user + system), minor page faults} of an OS process so far
  def cpu(os_pid) do
    f = File.read!("/proc/#{os_pid}/stat") |> String.split(") ") |> List.last() |> String.split(" ")
    tick = 10
    {(String.to_integer(Enum.at(f, 11)) + String.to_integer(Enum.at(f, 12))) * tick, String.to_integer(Enum.at(f, 7))}
  end

  # CPU ms of all the OS processes together
  def cpu_sum(os_pids), do: os_pids |> Enum.map(&elem(cpu(&1), 0)) |> Enum.sum()

  def count(n), do: GenServer.call({:my_hub, n}, :registry_count, 60_000)

  def wait_all(nodes, want) do
    if Enum.all?(nodes, &(count(&1) == want)), do: :ok, else: (Process.sleep(2); wait_all(nodes, want))
  end

  def now, do: System.monotonic_time(:millisecond)

  # bench/hub_cluster.sh PERF_PHASE=...: perf records only while phase runs
  def perf(cmd, phase) do
    ctl = System.get_env("PERF_CTL")
    if ctl && System.get_env("PERF_PHASE") == phase do
      {_, 0} = System.cmd("sh", ["-c", "echo #{cmd} > #{ctl} && read _ < #{System.get_env("PERF_ACK")}"])
    end
    :ok
  end
end

for n <- phs, do: :pong = Node.ping(n)
# wait for the hub cluster to form
Stream.repeatedly(fn -> Process.sleep(50); length(GenServer.call({:my_hub, p1}, {:nodes, []})) end)
|> Enum.find(&(&1 == 2))

# 100k children with one awaitable call, until every registry has them. A
# first round of each side warms up (not counted); then rounds alternate and
# the medians are reported. Each round ends (untimed) with all children
# stopped, or all pg members gone, on every node.
n = String.to_integer(System.get_env("N", "100000"))
rounds = String.to_integer(System.get_env("ROUNDS", "3"))
if with_pg do
  for b <- [b2, b3], do: true = Node.connect(b)
  true = Node.connect(b1)
end

# Each round returns {start ms, stop ms}: the start until every registry
# holds all n, the stop (one call) until every registry is empty.
ph_round = fn r ->
  specs = for i <- 1..n, do: %{id: "c#{r}_#{i}", start: {:counter, :start_link, [0]}}
  c0 = CB.cpu_sum(ph_os)
  if r == rounds, do: CB.perf("enable", "start")
  t0 = CB.now()
  {:ok, %{status: :ok}} = GenServer.call({:my_hub, p1}, {:start_children, specs, [awaitable: true, timeout: 60_000]}, :infinity)
  CB.wait_all(phs, n)
  ms = CB.now() - t0
  if r == rounds, do: CB.perf("disable", "start")
  c1 = CB.cpu_sum(ph_os)
  # the memory round: after the start's big buffers went back (each node
  # keeps freed ones for reuse for 1 s: BIGBUF_KEEP_MS)
  if r == 0, do: Process.sleep(1_100)
  rss = Enum.map(ph_os, &CB.rss_kb/1)
  ids = for i <- 1..n, do: "c#{r}_#{i}"
  if r == rounds, do: CB.perf("enable", "stop")
  t1 = CB.now()
  {:ok, _} = GenServer.call({:my_hub, p1}, {:stop_children, ids, []}, :infinity)
  CB.wait_all(phs, 0)
  stop_ms = CB.now() - t1
  if r == rounds, do: CB.perf("disable", "stop")
  # the children's exits may still be arriving: CPU until the nodes are quiet
  Process.sleep(300)
  {ms, stop_ms, rss, c1 - c0, CB.cpu_sum(ph_os) - c1}
end

pg_round = fn -> if with_pg, do: :erpc.call(b1, :ph_bench_pg, :joins, [n, [b2, b3]], :infinity), else: 0 end

# Memory per child on each node: resident-set growth from the fresh node to
# holding the warm-up round's n children (registry row on every node, child
# record and worker on the owner; on the asked node also the request and
# reply buffers malloc keeps), read once the big buffers the nodes keep for
# reuse for a second after the start went back.
rss0 = Enum.map(ph_os, &CB.rss_kb/1)
cpu0 = Enum.map(ph_os, &CB.cpu/1)
{cold_start_ms, cold_stop_ms, rss1, _, _} = ph_round.(0)
cpu1 = Enum.map(ph_os, &CB.cpu/1)
bytes_per_child = Enum.zip_with(rss0, rss1, fn a, b -> div((b - a) * 1024, n) end)
cold_cpu = Enum.zip_with(cpu0, cpu1, fn {c0, f0}, {c1, f1} -> [c1 - c0, f1 - f0] end)
IO.puts(~s({"scenario": "cluster_cold_round", "children": #{n}, "start_ms": #{cold_start_ms}, "stop_ms": #{cold_stop_ms}, "cpu_ms_and_minor_faults_by_node": #{inspect(cold_cpu)}}))
_ = pg_round.()
cpu2 = Enum.map(ph_os, &CB.cpu/1)
{ph_runs, pg_runs} =
  Enum.reduce(1..rounds//1, {[], []}, fn r, {ps, gs} -> {[ph_round.(r) | ps], [pg_round.() | gs]} end)
# in round order
{ph_runs, pg_runs} = {Enum.reverse(ph_runs), Enum.reverse(pg_runs)}
cpu3 = Enum.map(ph_os, &CB.cpu/1)
warm_cpu = Enum.zip_with(cpu2, cpu3, fn {c0, _}, {c1, _} -> div(c1 - c0, max(rounds, 1)) end)
IO.puts(~s({"scenario": "cluster_warm_rounds_cpu", "children": #{n}, "cpu_ms_per_round_by_node": #{inspect(warm_cpu)}, "note": "start and stop"}))
median = fn xs -> xs |> Enum.sort() |> Enum.at(div(length(xs), 2)) end
start_runs = Enum.map(ph_runs, &elem(&1, 0))
stop_runs = Enum.map(ph_runs, &elem(&1, 1))
ph_ms = median.(start_runs)
stop_ms = median.(stop_runs)
pg_ms = median.(pg_runs)
IO.puts(~s({"scenario": "cluster_start_100k_3_nodes", "children": #{n}, "phnode_ms": #{ph_ms}, "phnode_children_per_s": #{div(n * 1000, max(ph_ms, 1))}, "pg_ms": #{pg_ms}, "pg_joins_per_s": #{div(n * 1000, max(pg_ms, 1))}, "ratio": #{Float.round(pg_ms / max(ph_ms, 1), 2)}, "phnode_rounds_ms": #{inspect(start_runs)}, "pg_rounds_ms": #{inspect(pg_runs)}}))
IO.puts(~s({"scenario": "cluster_stop_100k_3_nodes", "children": #{n}, "phnode_ms": #{stop_ms}, "stop_over_start": #{Float.round(stop_ms / max(ph_ms, 1), 2)}, "phnode_rounds_ms": #{inspect(stop_runs)}}))
IO.puts(~s({"scenario": "cluster_cpu_3_nodes", "children": #{n}, "start_cpu_ms": #{median.(Enum.map(ph_runs, &elem(&1, 3)))}, "stop_cpu_ms": #{median.(Enum.map(ph_runs, &elem(&1, 4)))}, "start_rounds_cpu_ms": #{inspect(Enum.map(ph_runs, &elem(&1, 3)))}, "stop_rounds_cpu_ms": #{inspect(Enum.map(ph_runs, &elem(&1, 4)))}, "note": "CPU of the 3 phnodes summed; stop until 300 ms after the registries are empty"}))
IO.puts(~s({"scenario": "cluster_memory_per_child", "children": #{n}, "bytes_per_child_by_node": #{inspect(bytes_per_child)}, "note": "first node is the asked one"}))

# kill -9 of a node holding a third of the children, until the two survivors
# run all again and every registry agrees; then a new node joins them, until
# its share (about a third) has moved and every registry agrees. ROUNDS such
# cycles: the first kills the third of the original nodes, each later one the
# node that joined in the cycle before, so every cycle starts from the same
# shape (3 nodes, n children) and the figures are medians, not one sample.
m = n
specs = for i <- 1..m, do: %{id: "k#{i}", start: {:counter, :start_link, [0]}}
{:ok, %{status: :ok}} = GenServer.call({:my_hub, p1}, {:start_children, specs, [awaitable: true]}, :infinity)
CB.wait_all(phs, m)
survivors_os = Enum.take(ph_os, 2)
# (a build without :local_count answers an error: then the whole list)
local = fn node ->
  case GenServer.call({:my_hub, node}, :local_count, 60_000) do
    k when is_integer(k) -> k
    _ -> length(GenServer.call({:my_hub, node}, {:process_list, :local}, 60_000))
  end
end
# each phase starts 300 ms after the one before ended (its last exits and
# re-plans done), untimed
kill_round = fn victim_os, victim, last? ->
  Process.sleep(300)
  on_victim = local.(victim)
  kc0 = CB.cpu_sum(survivors_os)
  if last?, do: CB.perf("enable", "kill")
  t0 = CB.now()
  System.cmd("kill", ["-9", victim_os])
  wait_recovered = fn f ->
    ok = CB.count(p1) == m and CB.count(p2) == m and local.(p1) + local.(p2) == m
    if ok, do: :ok, else: (Process.sleep(2); f.(f))
  end
  wait_recovered.(wait_recovered)
  ms = CB.now() - t0
  if last?, do: CB.perf("disable", "kill")
  %{ms: ms, cpu: CB.cpu_sum(survivors_os) - kc0, on_victim: on_victim}
end
suffix = p1 |> Atom.to_string() |> String.split("_", parts: 2) |> List.last()
join_round = fn c, last? ->
  p4 = String.to_atom("phc4j#{c}_" <> suffix)
  Process.sleep(300)
  jc0 = CB.cpu_sum(survivors_os)
  if last?, do: CB.perf("enable", "join")
  t0 = CB.now()
  port = Port.open({:spawn_executable, phnode},
                   [args: ["--name", Atom.to_string(p4), "--cookie", cookie, "--log-level", "warning", "--join", Atom.to_string(p1)]])
  {:os_pid, os_pid} = Port.info(port, :os_pid)
  File.write!(Path.join(piddir, "p4j#{c}.pid"), "#{os_pid}\n")
  # until the new node's local share stops growing and every node counts all
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
  ms = CB.now() - t0
  if last?, do: CB.perf("disable", "join")
  cpu = CB.cpu_sum(survivors_os) - jc0 + CB.cpu_sum(["#{os_pid}"])
  {%{ms: ms, cpu: cpu, moved: local.(p4)}, {"#{os_pid}", p4}}
end
cycles = max(rounds, 1)
{kills, joins, {last_os, _}} =
  Enum.reduce(1..cycles, {[], [], {p3_os, p3}}, fn c, {ks, js, {victim_os, victim}} ->
    k = kill_round.(victim_os, victim, c == cycles)
    # gone: its pid file must not make the cleanup kill whatever reuses the pid
    if c > 1, do: File.rm(Path.join(piddir, "p4j#{c - 1}.pid"))
    {j, newcomer} = join_round.(c, c == cycles)
    {[k | ks], [j | js], newcomer}
  end)
{kills, joins} = {Enum.reverse(kills), Enum.reverse(joins)}
# the last newcomer: stopped, and its pid file removed once it is gone
System.cmd("kill", ["-TERM", last_os])
Enum.find(1..500, fn _ -> Process.sleep(10); not File.exists?("/proc/#{last_os}") end) &&
  File.rm(Path.join(piddir, "p4j#{cycles}.pid"))
pick = fn rs, key -> Enum.map(rs, &Map.fetch!(&1, key)) end
IO.puts(~s({"scenario": "failover_kill9", "children": #{m}, "children_on_killed_node": #{inspect(pick.(kills, :on_victim), charlists: :as_lists)}, "recovery_ms": #{median.(pick.(kills, :ms))}, "survivors_cpu_ms": #{median.(pick.(kills, :cpu))}, "rounds_ms": #{inspect(pick.(kills, :ms), charlists: :as_lists)}, "rounds_cpu_ms": #{inspect(pick.(kills, :cpu), charlists: :as_lists)}}))
IO.puts(~s({"scenario": "join_redistribution", "children": #{m}, "moved_to_new_node": #{inspect(pick.(joins, :moved), charlists: :as_lists)}, "until_agreed_ms": #{median.(pick.(joins, :ms))}, "cpu_ms_3_nodes": #{median.(pick.(joins, :cpu))}, "rounds_ms": #{inspect(pick.(joins, :ms), charlists: :as_lists)}, "rounds_cpu_ms": #{inspect(pick.(joins, :cpu), charlists: :as_lists)}, "note": "includes starting the new phnode"}))
