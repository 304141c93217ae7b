# The centralized_load_balancer distribution strategy, from Elixir over the
# distribution: 4 phnodes with a 300 ms push_interval, one made busy (crasher
# workers sleeping in calls keep its schedulers occupied), then 3,000 children
# started through another member while the leader is killed: the busy member
# gets clearly fewer children, every start succeeds, the next-longest-running
# member becomes the leader. Also the errors of a bad configuration.
# Run by test/integration/run.sh.
Code.require_file("support/ph_test.exs", __DIR__)
Code.require_file("support/hub_cluster.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 120_000
)

defmodule PhNode.LoadBalancerTest do
  use ExUnit.Case, async: false

  @ticktime 2
  @push 300

  defp hub(n), do: {:my_hub, n.node}
  defp wait_until(fun, ms, pause \\ 100), do: PhTest.wait_until(fun, ms, pause)

  defp config(json), do: PhTest.HubCluster.config_file("lb", json)

  defp lb_config(extra \\ "") do
    config(~s({"distribution_strategy": {"type": "centralized_load_balancer", "push_interval": #{@push},
               "max_history_size": 30, "weight_decay_factor": 0.9#{extra}}}))
  end

  defp start(cfg, extra \\ []),
    do: PhTest.HubCluster.start(cfg, ["--schedulers", "2" | extra], ticktime: @ticktime)

  defp lb(n), do: GenServer.call(hub(n), :load_balancer, 5_000)

  defp members_are(nodes) do
    Enum.all?(nodes, &(length(GenServer.call(hub(&1), {:nodes, []})) == length(nodes) - 1))
  end

  # Keeps every scheduler of node busy: calls that sleep in 4 crashers.
  defp make_busy(n) do
    for _ <- 1..4 do
      {:ok, pid} = GenServer.call({:phnode, n.node}, {:spawn, :crasher, [], []})

      spawn_link(fn ->
        Stream.repeatedly(fn -> GenServer.call(pid, {:sleep, 100}, :infinity) end) |> Stream.run()
      end)
    end
  end

  defp counts(n) do
    GenServer.call(hub(n), :registry_dump, 30_000)
    |> Enum.flat_map(fn {_, {_, nps, _}} -> Enum.map(nps, &elem(&1, 0)) end)
    |> Enum.frequencies()
  end

  test "a busy member gets fewer children; the leader is the longest-running; a killed leader is replaced" do
    cfg = lb_config()
    # started one after the other: a runs longest, then b
    a = start(cfg)
    rest = for _ <- 1..3, do: start(cfg, ["--join", Atom.to_string(a.node)])
    [b, c, d] = rest
    nodes = [a | rest]
    assert wait_until(fn -> members_are(nodes) end, 15_000)

    # every member agrees on the leader and holds its scoreboard of all four
    assert wait_until(
             fn ->
               Enum.all?(nodes, fn n ->
                 %{leader: l, scores: s} = lb(n)
                 l == a.node and map_size(s) == 4
               end)
             end,
             10_000
           ),
           inspect(Enum.map(nodes, &lb/1))

    make_busy(c)

    assert wait_until(
             fn ->
               %{scores: s} = lb(b)
               s[c.node] > 0.2 and Enum.all?([a, b, d], &(s[&1.node] < s[c.node] - 0.15))
             end,
             20_000,
             200
           ),
           inspect(lb(b))

    # 3,000 children through b in batches; the leader is killed after a third
    batches = for i <- 1..30, do: for(j <- 1..100, do: "lb#{i}_#{j}")

    for {ids, i} <- Enum.with_index(batches, 1) do
      specs = for id <- ids, do: %{id: id, start: {:counter, :start_link, [0]}}

      assert {:ok, %{status: :ok, errors: []}} =
               GenServer.call(hub(b), {:start_children, specs, [awaitable: true, timeout: 20_000]}, 30_000),
             "batch #{i}"

      if i == 10 do
        PhTest.kill_node(a)
        # the members see it go; the next starts run before the new leader's scoreboard
        assert wait_until(fn -> members_are([b, c, d]) end, 10_000)
      end
    end

    # b, the next-longest-running, leads within a push_interval or so, and its
    # scoreboard (without a) reaches every member
    assert wait_until(
             fn ->
               Enum.all?([b, c, d], fn n ->
                 %{leader: l, scores: s} = lb(n)
                 l == b.node and map_size(s) == 3 and not Map.has_key?(s, a.node)
               end)
             end,
             5_000
           ),
           inspect(Enum.map([b, c, d], &lb/1))

    assert PhTest.wait_log(b, "load balancer: the leader is #{b.node} (this node)", 5_000)

    # every child runs once, on b, c or d (a's were restarted by capacity); c has clearly fewer
    assert wait_until(fn -> Enum.sum(Map.values(counts(b))) == 3000 end, 15_000), inspect(counts(b))
    cnt = counts(b)
    assert Map.keys(cnt) |> Enum.sort() == Enum.sort([b.node, c.node, d.node]), inspect(cnt)
    assert cnt[c.node] < 0.8 * min(cnt[b.node], cnt[d.node]), inspect(cnt)
    for n <- [c, d], do: assert(counts(n) == cnt)
  end

  test "a bad configuration stops phnode with one clear line" do
    dist = ~s("distribution_strategy": {"type": "centralized_load_balancer")

    cases = [
      {~s({#{dist}}, "redundancy_strategy": {"type": "replication", "replication_factor": 2}}),
       "runs one copy of each child"},
      {~s({#{dist}, "push_interval": 10}}), "distribution_strategy.push_interval"},
      {~s({#{dist}, "weight_decay_factor": 1.5}}), "distribution_strategy.weight_decay_factor"},
      {~s({#{dist}, "max_history_size": 0}}), "distribution_strategy.max_history_size"},
      {~s({#{dist}, "nodeup_redistribution": 3}}), "nodeup_redistribution must be true or false"},
      {~s({#{dist}, "bogus": 1}}), ~s(unknown option "bogus")}
    ]

    for {json, expect} <- cases do
      {out, status} =
        System.cmd(
          PhTest.phnode(),
          ["--name", "bad_lb_#{System.unique_integer([:positive])}@127.0.0.1", "--cookie", "x", "--config", config(json)],
          stderr_to_stdout: true
        )

      assert status != 0, "#{json}: exited 0"
      assert out =~ expect, "#{json}: #{out}"
    end
  end

  test "malformed and foreign load balancer messages are logged and dropped" do
    cfg = lb_config()
    a = start(cfg)
    b = start(cfg, ["--join", Atom.to_string(a.node)])
    assert wait_until(fn -> members_are([a, b]) end, 15_000)
    assert wait_until(fn -> match?(%{leader: l, scores: %{}} when l == a.node, lb(b)) and map_size(lb(b).scores) == 2 end, 10_000)
    offset = PhTest.log_size(b)

    bad = [
      {:"$ph_hub", :lb_report, a.node, :garbage},
      {:"$ph_hub", :lb_report, a.node, {0, :none}},
      {:"$ph_hub", :lb_report, a.node, {1, {1, 2, 3}}},
      {:"$ph_hub", :lb_scores, a.node, [:bad]},
      {:"$ph_hub", :lb_scores, a.node, [{b.node, 5000}]},
      {:"$ph_hub", :lb_scores, a.node, :not_a_list},
      # not the leader, and not a member: ignored
      {:"$ph_hub", :lb_scores, b.node, [{a.node, 1000}]},
      {:"$ph_hub", :lb_scores, :"nobody@127.0.0.1", [{a.node, 1000}]},
      {:"$ph_hub", :lb_report, :"nobody@127.0.0.1", {1, :none}},
      {:"$ph_hub", :lb_report},
      {:"$ph_hub", :lb_tick, :extra}
    ]

    for m <- bad, do: send({:my_hub, b.node}, m)
    assert PhTest.wait_log(b, "a malformed report from #{a.node}; dropped", 5_000, offset)
    assert PhTest.wait_log(b, "a malformed scoreboard from #{a.node}; dropped", 5_000, offset)
    assert PhTest.wait_log(b, "a scoreboard from #{a.node} that is not a list; dropped", 5_000, offset)

    # still working: the leader's next scoreboards are taken, starts succeed
    assert %{leader: l} = lb(b)
    assert l == a.node
    assert wait_until(fn -> map_size(lb(b).scores) == 2 and lb(b).scores[a.node] < 1.0 end, 5_000)
    specs = for i <- 1..200, do: %{id: "m#{i}", start: {:counter, :start_link, [0]}}
    assert {:ok, %{status: :ok, errors: []}} = GenServer.call(hub(b), {:start_children, specs, [awaitable: true]}, 30_000)
    assert PhTest.alive?(a) and PhTest.alive?(b)

    # nodeup_redistribution false (the default): a newcomer takes none of them
    c = start(cfg, ["--join", Atom.to_string(a.node)])
    assert wait_until(fn -> members_are([a, b, c]) end, 15_000)
    assert wait_until(fn -> Enum.sum(Map.values(counts(c))) == 200 end, 10_000)
    Process.sleep(1_000)
    assert counts(c)[c.node] == nil, inspect(counts(c))
    assert Enum.sum(Map.values(counts(a))) == 200
  end

  test "nodeup_redistribution: a newcomer gets its share of the running children, each still runs once" do
    cfg = lb_config(~s(, "nodeup_redistribution": true))
    a = start(cfg)
    [b, c] = for _ <- 1..2, do: start(cfg, ["--join", Atom.to_string(a.node)])
    assert wait_until(fn -> members_are([a, b, c]) end, 15_000)
    specs = for i <- 1..900, do: %{id: "r#{i}", start: {:counter, :start_link, [0]}}
    assert {:ok, %{status: :ok, errors: []}} = GenServer.call(hub(b), {:start_children, specs, [awaitable: true]}, 30_000)
    pids = fn n -> GenServer.call(hub(n), :registry_dump, 30_000) |> Map.new(fn {id, {_, nps, _}} -> {id, nps} end) end
    # an awaited start answers once the children run, not once every
    # registry has their rows: the registries agree first
    assert wait_until(fn -> map_size(pids.(a)) == 900 and pids.(a) == pids.(b) and pids.(b) == pids.(c) end, 15_000)
    before = pids.(a)

    d = start(cfg, ["--join", Atom.to_string(a.node)])
    nodes = [a, b, c, d]
    assert wait_until(fn -> members_are(nodes) end, 15_000)

    # about a quarter moves to d (ColdSwap: started there, stopped where it ran); the rest keep their pids
    assert wait_until(
             fn ->
               cnt = counts(d)
               Enum.sum(Map.values(cnt)) == 900 and (cnt[d.node] || 0) > 120 and
                 Enum.all?(nodes, &(counts(&1) == cnt))
             end,
             15_000
           ),
           inspect(Enum.map(nodes, &counts/1))

    after_join = pids.(d)
    for n <- nodes, do: assert(pids.(n) == after_join)

    # (a child moved to d and sent back by d, whose scoreboard placed it
    # elsewhere while the old copy was still listed, came back with a new pid)
    for {id, [{node, _}] = nps} <- after_join, node != d.node,
        do: assert(before[id] == nps, "#{id} moved between old members or restarted: #{inspect(before[id])} -> #{inspect(nps)}")

    # nothing keeps moving once the join is over
    Process.sleep(1_000)
    assert pids.(a) == after_join
  end

  test "the load_balancer request on another strategy" do
    n = start(config(~s({"distribution_strategy": {"type": "consistent_hashing"}})))
    assert {:error, {:not_supported, :distribution_strategy}} = lb(n)
  end
end
