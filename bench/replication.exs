# Replication benchmark: 100k children with rf 3 on 5 phnodes against the
# same start with rf 1 on 5 other phnodes, same run: the time from the
# awaitable start until every node's registry lists every replica
# (replica_count = rf x 100k on each). Goal: rf 3 within 3x the rf-1 time.
#   elixir --name ... --cookie ... bench/replication.exs RF1_NODES RF3_NODES
# (each a comma-separated list of 5 node names, the hub cluster formed; the
# nodes run with --no-beam-discovery, or this client would introduce the two
# clusters to each other)
[rf1, rf3] = Enum.map(System.argv(), fn l -> l |> String.split(",") |> Enum.map(&String.to_atom/1) end)

defmodule RB do
  def replicas(n), do: GenServer.call({:my_hub, n}, :replica_count, 120_000)

  # until every node lists want replicas; gives up after 5 minutes
  def wait(nodes, want, t0 \\ now()) do
    counts = Enum.map(nodes, &replicas/1)

    cond do
      Enum.all?(counts, &(&1 == want)) -> :ok
      now() - t0 > 300_000 -> raise "replicas #{inspect(counts)}, want #{want} on each"
      true -> Process.sleep(5); wait(nodes, want, t0)
    end
  end

  def now, do: System.monotonic_time(:millisecond)

  def formed(nodes) do
    Enum.all?(nodes, fn n -> length(GenServer.call({:my_hub, n}, {:nodes, []})) == length(nodes) - 1 end)
  end
end

for n <- rf1 ++ rf3, do: :pong = Node.ping(n)
Stream.repeatedly(fn -> Process.sleep(50); RB.formed(rf1) and RB.formed(rf3) end) |> Enum.find(& &1)

n = String.to_integer(System.get_env("REPL_CHILDREN", "100000"))
rounds = String.to_integer(System.get_env("ROUNDS", "3"))

round = fn nodes, rf, r ->
  ids = for i <- 1..n, do: "rb#{rf}_#{r}_#{i}"
  specs = for id <- ids, do: %{id: id, start: {:counter, :start_link, [0]}}
  t0 = RB.now()
  # REPL_AWAIT=false: a start not awaited, so the time is the cluster's
  # alone (the awaited result lists every replica, 300k entries for the
  # client to decode with rf 3)
  if System.get_env("REPL_AWAIT", "true") == "true" do
    {:ok, %{status: :ok}} =
      GenServer.call({:my_hub, hd(nodes)}, {:start_children, specs, [awaitable: true, timeout: 120_000]}, :infinity)
  else
    {:ok, :start_initiated} = GenServer.call({:my_hub, hd(nodes)}, {:start_children, specs, []}, :infinity)
  end

  answered = RB.now() - t0
  RB.wait(nodes, rf * n)
  ms = RB.now() - t0
  IO.puts(:stderr, "rf #{rf} round #{r}: #{ms} ms (answered after #{answered} ms)")
  {:ok, _} = GenServer.call({:my_hub, hd(nodes)}, {:stop_children, ids, []}, :infinity)
  RB.wait(nodes, 0)
  ms
end

_ = round.(rf1, 1, 0)
_ = round.(rf3, 3, 0)
{r1, r3} =
  Enum.reduce(1..rounds, {[], []}, fn r, {a, b} -> {[round.(rf1, 1, r) | a], [round.(rf3, 3, r) | b]} end)
median = fn xs -> xs |> Enum.sort() |> Enum.at(div(length(xs), 2)) end
m1 = median.(r1)
m3 = median.(r3)
IO.puts(~s({"scenario": "replication_rf3_vs_rf1_5_nodes", "awaited": #{System.get_env("REPL_AWAIT", "true")}, "children": #{n}, "rf1_ms": #{m1}, "rf3_ms": #{m3}, "ratio_rf3_over_rf1": #{Float.round(m3 / max(m1, 1), 2)}, "goal": "<= 3", "rf1_rounds_ms": #{inspect(r1, charlists: :as_lists)}, "rf3_rounds_ms": #{inspect(r3, charlists: :as_lists)}}))
