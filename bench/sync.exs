# bench/sync.sh's client: for each synchronization strategy, 6 phnodes (type
# name port triples on the command line). Messages per registry change: 30
# single starts one after the other, each awaited until every registry has
# it, the sync-sent counters of all 6 nodes summed (and the most one node
# sent). Convergence: 10k children in one start_children through a member
# that owns about a sixth of them, until every node's cluster gauge shows
# all of them; then they are stopped. ROUNDS rounds each, interleaved.
rounds = String.to_integer(System.get_env("ROUNDS", "3"))

clusters =
  System.argv()
  |> Enum.chunk_every(3)
  |> Enum.group_by(fn [t, _, _] -> t end, fn [_, n, p] -> {String.to_atom(n), String.to_integer(p)} end)

scrape = fn port ->
  {:ok, s} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false], 5_000)
  :ok = :gen_tcp.send(s, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
  recv = fn recv, acc ->
    case :gen_tcp.recv(s, 0, 5_000) do
      {:ok, d} -> recv.(recv, acc <> d)
      {:error, :closed} -> acc
    end
  end
  body = recv.(recv, "")
  :gen_tcp.close(s)
  body
end

metric = fn port, re ->
  case Regex.run(re, scrape.(port)) do
    [_, v] -> v |> Float.parse() |> elem(0) |> trunc()
    nil -> 0
  end
end

sent = fn port -> metric.(port, ~r/^phnode_hub_sync_messages_total\{direction="sent"\} ([0-9.e+]+)/m) end
cluster_rows = fn port -> metric.(port, ~r/^phnode_hub_children\{scope="cluster"\} ([0-9.e+]+)/m) end
wait = fn wait, f, deadline ->
  cond do
    f.() -> true
    System.monotonic_time(:millisecond) > deadline -> false
    true -> Process.sleep(5); wait.(wait, f, deadline)
  end
end

for {_t, nodes} <- clusters do
  [{first, _} | _] = nodes
  ok = wait.(wait, fn ->
    Enum.all?(nodes, fn {n, _} ->
      Node.connect(n) and match?(l when length(l) == 5, (try do GenServer.call({:my_hub, n}, {:nodes, []}) catch _, _ -> [] end))
    end)
  end, System.monotonic_time(:millisecond) + 30_000)
  ok || raise "cluster of #{first} did not form"
end

per_change = fn nodes, round ->
  ports = Enum.map(nodes, &elem(&1, 1))
  before = Enum.map(ports, sent)
  deltas =
    for i <- 1..30 do
      b = Enum.map(ports, sent)
      {via, _} = Enum.at(nodes, rem(i, 6))
      id = "m#{round}_#{i}"
      {:ok, %{status: :ok}} = GenServer.call({:my_hub, via}, {:start_child, %{id: id, start: {:counter, :start_link, [i]}}, [awaitable: true]})
      true = wait.(wait, fn -> Enum.all?(nodes, fn {n, _} -> match?({_, _}, GenServer.call({:my_hub, n}, {:child_lookup, id})) end) end, System.monotonic_time(:millisecond) + 10_000)
      Process.sleep(50)
      Enum.zip_with(Enum.map(ports, sent), b, &(&1 - &2))
    end
  total = Enum.sum(Enum.map(ports, sent)) - Enum.sum(before)
  {total / 30, deltas |> Enum.map(&Enum.max/1) |> Enum.max()}
end

converge = fn nodes, round ->
  [{via, _} | _] = nodes
  base = Enum.map(nodes, fn {_, p} -> cluster_rows.(p) end) |> Enum.max()
  specs = for i <- 1..10_000, do: %{id: "c#{round}_#{i}", start: {:counter, :start_link, [i]}}
  t0 = System.monotonic_time(:microsecond)
  {:ok, %{status: :ok}} = GenServer.call({:my_hub, via}, {:start_children, specs, [awaitable: true, timeout: 60_000]}, 90_000)
  true = wait.(wait, fn -> Enum.all?(nodes, fn {_, p} -> cluster_rows.(p) >= base + 10_000 end) end, System.monotonic_time(:millisecond) + 60_000)
  ms = (System.monotonic_time(:microsecond) - t0) / 1000
  {:ok, _} = GenServer.call({:my_hub, via}, {:stop_children, Enum.map(specs, & &1.id), [awaitable: true, timeout: 60_000]}, 90_000)
  true = wait.(wait, fn -> Enum.all?(nodes, fn {_, p} -> cluster_rows.(p) <= base end) end, System.monotonic_time(:millisecond) + 60_000)
  ms
end

results =
  for round <- 1..rounds, {type, nodes} <- Enum.sort(clusters) do
    {msgs, max_node} = per_change.(nodes, round)
    ms = converge.(nodes, round)
    {type, msgs, max_node, ms}
  end

by = Enum.group_by(results, &elem(&1, 0))
median = fn l -> Enum.at(Enum.sort(l), div(length(l), 2)) end
summary = for {type, rs} <- by, into: %{} do
  {type, %{msgs_per_change: median.(Enum.map(rs, &elem(&1, 1))), max_per_node_per_change: Enum.max(Enum.map(rs, &elem(&1, 2))), converge_10k_ms: median.(Enum.map(rs, &elem(&1, 3)))}}
end
g = summary["gossip"]
p = summary["pubsub"]
fmt = fn x -> :erlang.float_to_binary(x / 1, decimals: 1) end
for {type, rs} <- Enum.sort(by), {_, msgs, maxn, ms} <- rs do
  IO.puts(~s({"scenario": "sync_round", "type": "#{type}", "msgs_per_change": #{fmt.(msgs)}, "max_per_node_per_change": #{maxn}, "converge_10k_ms": #{fmt.(ms)}}))
end
IO.puts(~s({"scenario": "sync_6_nodes", "pubsub": {"msgs_per_change": #{fmt.(p.msgs_per_change)}, "max_per_node_per_change": #{p.max_per_node_per_change}, "converge_10k_ms": #{fmt.(p.converge_10k_ms)}}, "gossip": {"msgs_per_change": #{fmt.(g.msgs_per_change)}, "max_per_node_per_change": #{g.max_per_node_per_change}, "converge_10k_ms": #{fmt.(g.converge_10k_ms)}}, "gossip_over_pubsub": {"msgs": #{:erlang.float_to_binary(g.msgs_per_change / p.msgs_per_change, decimals: 2)}, "converge": #{:erlang.float_to_binary(g.converge_10k_ms / p.converge_10k_ms, decimals: 2)}}}))
