# Partition tolerance (docs/strategies.md, docs/cluster.md "Splits"), on real
# network partitions: phnodes in network namespaces of their own
# (support/netns.exs, support/netns.sh), links cut with blackhole routes
# inside those namespaces and healed again; the invariant of a quiet
# cluster checked after every heal (support/cluster_check.exs).
#
#   - toggle_quorum_failure / _success, partition mode on one node (§14 17)
#   - bad partition configs
#   - majority_quorum: initial_cluster_size above the cluster, reset_cluster_size
#   - static_quorum 3, startup_confirm: partitioned at start, healed by joins;
#     5 nodes, 2,000 children, 2 cut off: they stop theirs, the 3 restart them;
#     heal: every child once (§14 29)
#   - dynamic_quorum 70 %: one node lost is fine, the second partitions; the
#     down-log reaches a node that joins then (§14 30)
#   - majority_quorum on 5 nodes survives losing 2 (§14 31)
#   - divergence 2|2 with 500 new children on each side, 250 ids on both:
#     never partitioned, after the heal every id once on its owner, every
#     resolution reported by conflict_resolved_hook (§14 28)
#   - a stop made during a split reaches a node restarted meanwhile and the
#     copies handed to it at the heal; an id started again after it stays,
#     or during the split: it runs once
#   - a short chaos run (5 nodes, rf 2, kill -9 / restart / SIGTERM / cut /
#     heal, starts and stops between, during splits too); PH_NET_CHAOS_FAULTS (default 12) and
#     PH_NET_CHAOS_CHILDREN (default 1000) make it the long one (make chaos:
#     100 faults, 10,000 children); PH_NET_CHAOS_SEED replays a run.
#
# Without root or ip netns the namespace tests are skipped with the reason.
Code.require_file("support/ph_test.exs", __DIR__)
Code.require_file("support/ring.exs", __DIR__)
Code.require_file("support/cluster_check.exs", __DIR__)
Code.require_file("support/netns.exs", __DIR__)
PhTest.init()

netns_missing = PhTest.Netns.unavailable()

if netns_missing do
  IO.puts("partition_test: network namespace tests SKIPPED: #{netns_missing}")
end

# PH_PART_ONLY=tag,tag runs only the tests with those tags (one_node,
# configs, majority_start, static, dynamic, majority, divergence,
# net_chaos); PH_NET_CHAOS_ONLY=1 is PH_PART_ONLY=net_chaos.
only =
  if System.get_env("PH_NET_CHAOS_ONLY") in ["1", "true"],
    do: "net_chaos",
    else: System.get_env("PH_PART_ONLY", "")

{excluded, included} =
  case String.split(only, ",", trim: true) do
    [] -> {[], []}
    tags -> {[:test], Enum.map(tags, &String.to_atom/1)}
  end

excluded = if netns_missing, do: [:netns | excluded], else: excluded

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 300_000,
  exclude: excluded,
  include: included
)

defmodule PhNode.PartitionTest do
  use ExUnit.Case, async: false

  alias PhTest.{ClusterCheck, Netns}

  @ticktime 2

  # --- helpers ----------------------------------------------------------------------

  defp hub(n), do: {:my_hub, n.node}
  defp call(n, req, t \\ 30_000), do: GenServer.call(hub(n), req, t)

  defp safe(fun, default) do
    fun.()
  catch
    :exit, _ -> default
  end

  defp wait_until(fun, ms, pause \\ 100), do: PhTest.wait_until(fun, ms, pause)

  defp config(extra) do
    path = Path.join(PhTest.tmp_dir(), "part_#{System.unique_integer([:positive])}.json")
    File.write!(path, extra)
    path
  end

  defp cfg(partition, more \\ "") do
    config(~s({"partition_tolerance_strategy": #{partition}, "hubs_discover_interval": 1000#{more}}))
  end

  defp start_local(cfg_path, extra \\ []) do
    n = PhTest.start_node(ticktime: @ticktime, args: ["--config", cfg_path | extra])
    on_exit(fn -> if PhTest.alive?(n), do: PhTest.kill_node(n) end)
    n
  end

  defp start_ns(net, i, cfg_path, extra \\ [], opts \\ []) do
    n = Netns.start_node(net, i, [ticktime: @ticktime, args: ["--config", cfg_path | extra]] ++ opts)
    on_exit(fn -> if PhTest.alive?(n), do: PhTest.kill_node(n) end)
    n
  end

  defp with_net(count) do
    net = Netns.up(count)
    on_exit(fn -> Netns.down(net) end)
    net
  end

  # nodes in namespaces 1..count, each joined to the first
  defp ns_cluster(net, count, cfg_path, extra \\ []) do
    first = start_ns(net, 1, cfg_path, extra)
    rest = for i <- 2..count, do: start_ns(net, i, cfg_path, extra ++ ["--join", Atom.to_string(first.node)])
    nodes = [first | rest]
    assert_members(nodes)
    nodes
  end

  defp members(n), do: call(n, {:nodes, []}, 10_000) |> Enum.sort()

  defp assert_members(nodes, ms \\ 20_000) do
    assert wait_until(
             fn ->
               Enum.all?(nodes, fn n ->
                 safe(fn -> members(n) end, nil) == Enum.sort(for m <- nodes, m != n, do: m.node)
               end)
             end,
             ms
           ),
           "members: #{inspect(for n <- nodes, do: {n.node, safe(fn -> members(n) end, :no_answer)})}"
  end

  defp partitioned?(n), do: safe(fn -> call(n, :is_partitioned, 10_000) end, :no_answer)

  defp assert_partitioned(nodes, want, ms \\ 15_000) do
    assert wait_until(fn -> Enum.all?(nodes, &(partitioned?(&1) == want)) end, ms),
           "is_partitioned (want #{want}): #{inspect(for n <- nodes, do: {n.node, partitioned?(n)})}"
  end

  defp specs(ids), do: for(id <- ids, do: %{id: id, start: {:counter, :start_link, [0]}})
  defp ids(prefix, n, from \\ 1), do: for(i <- from..(from + n - 1), do: "#{prefix}#{i}")

  defp start_all!(n, ids) do
    assert {:ok, %{status: :ok, errors: [], started: started}} =
             call(n, {:start_children, specs(ids), [awaitable: true, timeout: 60_000]}, 120_000)

    assert length(started) == length(ids)
  end

  defp check!(live, expected, opts \\ []) do
    ClusterCheck.check_cluster!(live, expected, Keyword.put_new(opts, :timeout, 30_000))
  end

  defp local(n), do: call(n, {:process_list, :local})

  # every hook message of key received so far
  defp drain(key, acc \\ []) do
    receive do
      {:process_hub, ^key, data} -> drain(key, [data | acc])
    after
      0 -> Enum.reverse(acc)
    end
  end

  defp hook!(n, key) do
    id = PhTest.unique_atom("h")
    assert call(n, {:register_hook_handlers, key, [%{id: id, pid: self(), p: 0}]}) == :ok
  end

  # --- one node ----------------------------------------------------------------------

  @tag :one_node
  test "toggle_quorum_failure / _success: partition mode and back (§14 17)" do
    n = start_local(cfg(~s({"type": "divergence"})))
    cids = ids("t", 20)
    start_all!(n, cids)
    old = Map.new(local(n))
    assert map_size(old) == 20
    for k <- [:pre_partition_hook, :post_partition_hook, :priority_state_updated_hook], do: hook!(n, k)

    assert call(n, :is_partitioned) == false
    assert call(n, :is_locked) == false
    assert call(n, :toggle_quorum_success) == {:error, :not_partitioned}
    assert call(n, :toggle_quorum_failure) == :ok
    assert call(n, :toggle_quorum_failure) == {:error, :already_partitioned}
    assert call(n, :is_partitioned) == true
    assert call(n, :is_locked) == true

    # children stopped, the registry kept, starts and stops refused
    assert wait_until(fn -> Enum.all?(Map.values(old), &(not alive_pid?(&1))) end, 5_000)
    assert map_size(call(n, :registry_dump)) == 20
    assert call(n, {:start_child, %{id: "new", start: {:counter, :start_link, [0]}}, []}) ==
             {:error, :partitioned}
    assert call(n, {:stop_child, "t1", []}) == {:error, :partitioned}
    assert {:partitioned, %{type: :divergence}} = call(n, :partition_state)

    node = n.node
    assert_receive {:process_hub, :pre_partition_hook, {:partitioned, [^node]}}, 5_000
    assert_receive {:process_hub, :priority_state_updated_hook, {10, %{local_priority_set: true}}}, 5_000
    assert_receive {:process_hub, :post_partition_hook, {:partitioned, [^node]}}, 5_000

    # back: every child again, with a fresh pid the registry shows
    assert call(n, :toggle_quorum_success) == :ok
    assert call(n, :is_partitioned) == false
    assert_receive {:process_hub, :post_partition_hook, {:healed, [^node]}}, 5_000
    assert_receive {:process_hub, :priority_state_updated_hook, {0, %{}}}, 5_000

    assert wait_until(fn -> map_size(Map.new(local(n))) == 20 end, 10_000)
    new = Map.new(local(n))
    for {cid, pid} <- new, do: assert(pid != old[cid])
    check!([n], cids)
    assert call(n, {:reset_cluster_size, 3}) == {:error, {:not_supported, :divergence}}
  end

  defp alive_pid?(pid) do
    GenServer.call(pid, :get, 2_000)
    true
  catch
    :exit, _ -> false
  end

  @tag :configs
  test "bad partition_tolerance_strategy configs are refused with the field named" do
    for {json, text} <- [
          {~s({"type": "static_quorum"}), "partition_tolerance_strategy.quorum_size"},
          {~s({"type": "static_quorum", "quorum_size": 0}), "partition_tolerance_strategy.quorum_size"},
          {~s({"type": "dynamic_quorum", "quorum_size": 101}), "partition_tolerance_strategy.quorum_size"},
          {~s({"type": "dynamic_quorum", "quorum_size": 50, "threshold_time": -1}),
           "partition_tolerance_strategy.threshold_time"},
          {~s({"type": "majority_quorum", "quorum_size": 3}), "partition_tolerance_strategy.quorum_size"},
          {~s({"type": "majority_quorum", "track_max_size": 1}), "partition_tolerance_strategy.track_max_size"},
          {~s({"type": "static_quorum", "quorum_size": 2, "startup_confirm": "yes"}),
           "partition_tolerance_strategy.startup_confirm"},
          {~s({"type": "split_brain"}), "partition_tolerance_strategy"}
        ] do
      {out, status} =
        System.cmd(
          PhTest.phnode(),
          ["--name", "bad_part_#{System.unique_integer([:positive])}@127.0.0.1", "--cookie", "x",
           "--config", config(~s({"partition_tolerance_strategy": #{json}}))],
          stderr_to_stdout: true
        )

      assert status == 2, "#{json}: #{out}"
      assert out =~ text, "#{json}: #{out}"
    end
  end

  @tag :majority_start
  test "majority_quorum: initial_cluster_size 5 starts partitioned; reset_cluster_size heals" do
    n = start_local(cfg(~s({"type": "majority_quorum", "initial_cluster_size": 5})))
    assert call(n, :is_partitioned) == true
    assert {:partitioned, %{max_seen: 5, quorum: 3, nodes: 1}} = call(n, :partition_state)
    assert call(n, {:start_child, %{id: "m1", start: {:counter, :start_link, [0]}}, []}) ==
             {:error, :partitioned}

    assert call(n, {:reset_cluster_size, 0}) |> elem(0) == :error
    assert call(n, {:reset_cluster_size, 1}) == :ok
    assert call(n, :is_partitioned) == false
    assert {:ok, %{max_seen: 1, quorum: 1}} = call(n, :partition_state)
    start_all!(n, ["m1"])
    assert call(n, {:reset_cluster_size, 3}) == :ok
    assert call(n, :is_partitioned) == true
  end

  # --- real cuts ---------------------------------------------------------------------

  @tag :netns
  @tag :static
  test "static_quorum 3: startup_confirm, then 5 nodes with 2,000 children and 2 cut off (§14 29)" do
    net = with_net(5)
    c = cfg(~s({"type": "static_quorum", "quorum_size": 3, "startup_confirm": true}))
    a = start_ns(net, 1, c)
    b = start_ns(net, 2, c, ["--join", Atom.to_string(a.node)])
    assert_members([a, b])
    # below the quorum from the start
    assert_partitioned([a, b], true)
    rest = for i <- 3..5, do: start_ns(net, i, c, ["--join", Atom.to_string(a.node)])
    nodes = [a, b | rest]
    assert_members(nodes)
    assert_partitioned(nodes, false)

    cids = ids("s", 2_000)
    start_all!(a, cids)
    check!(nodes, cids)

    [n1, n2, n3, n4, n5] = nodes
    Netns.split(net, [1, 2, 3], [4, 5])
    assert_members([n1, n2, n3])
    assert_members([n4, n5])
    assert_partitioned([n4, n5], true)
    assert_partitioned([n1, n2, n3], false)
    # the cut-off pair stopped theirs and refuses work; the 3 run everything
    # (their registries still name them: rows are kept, with the stopped pids)
    for n <- [n4, n5] do
      assert wait_until(fn -> local(n) |> Enum.take_random(30) |> Enum.all?(fn {_, p} -> not alive_pid?(p) end) end, 10_000)
    end

    assert call(n4, {:start_child, %{id: "late", start: {:counter, :start_link, [0]}}, []}) ==
             {:error, :partitioned}

    check!([n1, n2, n3], cids)
    more = ids("s", 100, 2_001)
    start_all!(n2, more)

    t0 = PhTest.now_ms()
    Netns.heal_all(net)
    assert_members(nodes)
    assert_partitioned(nodes, false)
    %{waited_ms: ms, held_at: held_at} = check!(nodes, cids ++ more)
    # held_at: the end of the first snapshot that passed (an upper bound)
    IO.puts("    static_quorum: invariant held #{held_at - t0} ms after the heal (check #{ms} ms)")
  end

  @tag :netns
  @tag :dynamic
  test "dynamic_quorum 70 %: one loss is fine, the second partitions; the down-log reaches a newcomer (§14 30)" do
    net = with_net(6)
    c = cfg(~s({"type": "dynamic_quorum", "quorum_size": 70, "threshold_time": 3600}))
    nodes = ns_cluster(net, 5, c)
    [n1, n2, n3, n4, _n5] = nodes
    cids = ids("d", 300)
    start_all!(n1, cids)
    check!(nodes, cids)

    Netns.split(net, [1, 2, 3, 4], [5])
    assert_members([n1, n2, n3, n4])
    # 4 up, 1 down: 80 % >= 70 %
    Process.sleep(500)
    assert_partitioned([n1, n2, n3, n4], false)
    check!([n1, n2, n3, n4], cids)

    Netns.split(net, [1, 2, 3], [4])
    assert_members([n1, n2, n3])
    # 3 up, 2 down: 60 % < 70 %
    assert_partitioned([n1, n2, n3], true)

    # a newcomer gets the log of the node it joins (the longer one wins)
    n6 = start_ns(net, 6, c, ["--join", Atom.to_string(n1.node)])
    assert_members([n1, n2, n3, n6])

    assert wait_until(
             fn ->
               match?({_, %{down_log: [_, _]}}, safe(fn -> call(n6, :partition_state) end, nil))
             end,
             10_000
           ),
           inspect(safe(fn -> call(n6, :partition_state) end, nil))

    Netns.heal_all(net)
    all = nodes ++ [n6]
    assert_members(all)
    assert_partitioned(all, false, 20_000)
    check!(all, cids)
  end

  @tag :netns
  @tag :majority
  test "majority_quorum: 5 nodes keep their quorum with 2 cut off, the 2 do not (§14 31)" do
    net = with_net(5)
    c = cfg(~s({"type": "majority_quorum"}))
    nodes = ns_cluster(net, 5, c)
    [n1, n2, n3, n4, n5] = nodes
    assert {:ok, %{max_seen: 5, quorum: 3}} = call(n1, :partition_state)
    cids = ids("m", 300)
    start_all!(n3, cids)
    check!(nodes, cids)

    Netns.split(net, [1, 2, 3], [4, 5])
    assert_members([n4, n5])
    assert_members([n1, n2, n3])
    assert_partitioned([n4, n5], true)
    assert_partitioned([n1, n2, n3], false)
    check!([n1, n2, n3], cids)

    Netns.heal_all(net)
    assert_members(nodes)
    assert_partitioned(nodes, false)
    check!(nodes, cids)
  end

  @tag :netns
  @tag :divergence
  test "divergence: stops cut off on their way or made during the split reach the other side at the heal" do
    net = with_net(3)
    c = cfg(~s({"type": "divergence"}))
    nodes = ns_cluster(net, 3, c)
    [n1, n2, n3] = nodes
    keep = ids("k", 50)
    gone = ids("g", 100)
    left = ids("l", 40)
    right = ids("r", 40)
    start_all!(n1, keep ++ gone ++ left ++ right)
    check!(nodes, keep ++ gone ++ left ++ right)

    # the stop leaves n1 as the cut begins: n2 and n3 never get it, and
    # the answer comes when n1 has lost them (it does not wait forever)
    Netns.split(net, [1], [2, 3])
    assert {:ok, %{status: :ok, stopped: stopped}} =
             call(n1, {:stop_children, gone, [awaitable: true, timeout: 60_000]}, 90_000)
    assert Enum.sort(Enum.map(stopped, &elem(&1, 0))) == Enum.sort(gone)
    assert_members([n2, n3])
    # the other side still runs them (and restarted n1's share: divergence)
    check!([n2, n3], keep ++ gone ++ left ++ right)
    check!([n1], keep ++ left ++ right)

    # stops during the split, one on each side
    assert {:ok, %{status: :ok}} = call(n1, {:stop_children, left, [awaitable: true]})
    assert {:ok, %{status: :ok}} = call(n3, {:stop_children, right, [awaitable: true]})
    check!([n1], keep ++ right)
    check!([n2, n3], keep ++ gone ++ left)

    Netns.heal_all(net)
    assert_members(nodes)
    # each side sends its stops to the other's nodes as they are members
    # again: only keep is left
    check!(nodes, keep)
    assert PhTest.log(n1) =~ "missed the stop of"
  end

  # A stop made on the left during a split; the left's n1 is killed and
  # comes back under its name (it never saw the stop); at the heal n3's
  # copies go, those it hands to n1b too. again: ids of the stop started
  # again, during the split (within_split) or after the heal.
  defp stop_during_split(within_split) do
    net = with_net(3)
    c = cfg(~s({"type": "divergence"}))
    [n1, n2, n3] = nodes = ns_cluster(net, 3, c)
    keep = ids("k", 40)
    gone = ids("s", 150)
    again = Enum.take(gone, 25)
    start_all!(n1, keep ++ gone)
    check!(nodes, keep ++ gone)

    Netns.split(net, [1, 2], [3])
    assert_members([n1, n2])
    assert_members([n3])
    # divergence: each side runs every child
    check!([n1, n2], keep ++ gone)
    check!([n3], keep ++ gone)

    # stopped on the left: kept there for n3, which still runs its copies
    assert {:ok, %{status: :ok}} = call(n2, {:stop_children, gone, [awaitable: true]})
    check!([n1, n2], keep)

    # n1 dies and comes back under its name while the split lasts: it
    # never saw the stop; n2 gives it every stop it keeps when it joins
    PhTest.kill_node(n1)
    n1b = start_ns(net, 1, c, ["--join", Atom.to_string(n2.node)], name: n1.alive)
    assert_members([n1b, n2])
    check!([n1b, n2], keep)

    if within_split do
      start_all!(n1b, again)
      check!([n1b, n2], keep ++ again)
    end

    # at the heal n3 hands n1b the copies n1b owns (or gets the stop
    # first): the stopped ones go wherever they went
    Netns.heal_all(net)
    nodes = [n1b, n2, n3]
    assert_members(nodes)

    if within_split do
      check!(nodes, keep ++ again)
    else
      check!(nodes, keep)
      # started again after the stop (its tombs still there): a new line
      start_all!(n1b, again)
      check!(nodes, keep ++ again)
    end

    assert PhTest.log(n2) =~ "missed the stop of"
  end

  @tag :netns
  @tag :divergence
  test "divergence: a stop made during a split reaches a node restarted meanwhile and the copies handed to it at the heal; an id started again after it stays" do
    stop_during_split(false)
  end

  # The same, with the ids started again during the split. The heal's
  # conflict keeps the owner's copy, the new line's or the old one; a stop
  # passed on to where a copy moves is a kept stop there too, so the new
  # line's copy is not stopped by it (before: 1-11 of 25 ids lost in 5 of
  # 10 runs at load 6-12).
  @tag :netns
  @tag :divergence
  test "divergence: an id stopped and started again on one side of a split runs once after the heal" do
    stop_during_split(true)
  end

  @tag :netns
  @tag :divergence
  test "divergence 2|2: 500 new children each side, 250 ids on both; one copy each after the heal (§14 28)" do
    net = with_net(4)
    c = cfg(~s({"type": "divergence"}))
    nodes = ns_cluster(net, 4, c)
    [n1, n2, n3, n4] = nodes
    before = ids("b", 200)
    start_all!(n1, before)
    check!(nodes, before)
    for n <- nodes, do: hook!(n, :conflict_resolved_hook)

    Netns.split(net, [1, 2], [3, 4])
    assert_members([n1, n2])
    assert_members([n3, n4])
    # both halves keep working
    assert_partitioned(nodes, false)
    check!([n1, n2], before)
    check!([n3, n4], before)

    left = ids("o", 500, 1)
    right = ids("o", 500, 251)
    start_all!(n1, left)
    start_all!(n4, right)
    both = MapSet.intersection(MapSet.new(left), MapSet.new(right))
    # pids of the copies of the ids both sides started
    pids_left = Map.new(call(n1, :registry_dump), fn {cid, {_, nps, _}} -> {cid, nps} end)
    pids_right = Map.new(call(n3, :registry_dump), fn {cid, {_, nps, _}} -> {cid, nps} end)

    t0 = PhTest.now_ms()
    Netns.heal_all(net)
    assert_members(nodes)
    all = before ++ Enum.uniq(left ++ right)
    %{dump: dump, held_at: held_at} = check!(nodes, all)
    IO.puts("    divergence: invariant held #{held_at - t0} ms after the heal")
    assert_partitioned(nodes, false)

    # each doubled id: the surviving copy is one of the two, and every
    # stopped copy was reported with the survivor
    reports = drain(:conflict_resolved_hook)

    for cid <- both do
      {_, [{_, survivor}], _} = dump[cid]
      assert survivor in (Enum.map(pids_left[cid], &elem(&1, 1)) ++ Enum.map(pids_right[cid], &elem(&1, 1)))
    end

    reported = for {cid, {_, surv}, [{_, stopped}]} <- reports, do: {cid, surv, stopped}
    assert reported != []

    # (an id started on one side only can be reported too: while the halves
    # meet member by member, a move made under one view can find the copy
    # another view's move already started; the report must still be true)
    for {cid, surv, stopped} <- reported do
      assert Map.has_key?(dump, cid), "conflict reported for unknown #{inspect(cid)}"
      {_, [{_, now}], _} = dump[cid]
      assert now == surv, "#{cid}: hook says #{inspect(surv)} survived, registry #{inspect(now)}"
      assert stopped != surv
    end
  end

  # --- chaos on real cuts -----------------------------------------------------------

  @faults String.to_integer(System.get_env("PH_NET_CHAOS_FAULTS") || "12")
  @children String.to_integer(System.get_env("PH_NET_CHAOS_CHILDREN") || "1000")
  # The bound on convergence after the last fault (ms; the cluster is whole
  # again then: the last heal or restart), asserted
  # only when set: `make chaos` sets 5000 (issue 13's figure); the short run
  # in `make test` reports the time without failing on it (a loaded host).
  @converge_ms (case System.get_env("PH_NET_CHAOS_CONVERGE_MS") do
                  s when s in [nil, ""] -> nil
                  s -> String.to_integer(s)
                end)

  @tag :netns
  @tag :net_chaos
  @tag timeout: 300_000 + @faults * 20_000
  test "chaos: kill -9, restart, SIGTERM, cut, heal on 5 nodes with rf 2 (PH_NET_CHAOS_SEED replays)" do
    seed =
      case System.get_env("PH_NET_CHAOS_SEED") do
        s when s in [nil, ""] -> :rand.uniform(1_000_000_000)
        s -> String.to_integer(s)
      end

    replay = "PH_NET_CHAOS_SEED=#{seed} PH_NET_CHAOS_FAULTS=#{@faults} PH_NET_CHAOS_CHILDREN=#{@children}"
    IO.puts("\n  net chaos: #{replay}")
    Process.put(:log, [])

    try do
      net_chaos(seed)
    rescue
      e ->
        history = Process.get(:log) |> Enum.reverse() |> Enum.join("\n    ")
        reraise RuntimeError, [message: "net chaos failed; replay with #{replay}\n    #{history}\n" <> Exception.message(e)], __STACKTRACE__
    end
  end

  # each line stamped with the wall clock (UTC, as phnode's logs) to line
  # the run up with the node logs
  defp note(text) do
    text = (DateTime.utc_now() |> DateTime.to_time() |> Time.to_string() |> String.slice(0, 12)) <> " " <> text
    Process.put(:log, [text | Process.get(:log, [])])
    if System.get_env("PH_NET_CHAOS_VERBOSE"), do: IO.puts("    " <> text)
  end

  defp short(n), do: n.node |> Atom.to_string() |> String.split("@") |> hd()

  defp net_chaos(seed) do
    :rand.seed(:exsss, {seed, seed, seed})
    net = with_net(5)
    c = cfg(~s({"type": "divergence"}), ~s(, "redundancy_strategy": {"type": "replication", "replication_factor": 2}))
    nodes = ns_cluster(net, 5, c)
    cids = ids("x", @children)
    start_all!(hd(nodes), cids)
    check!(nodes, cids, rf: 2)
    slots = Map.new(Enum.with_index(nodes, 1), fn {n, i} -> {i, n} end)

    st = %{slots: slots, down: MapSet.new(), split: nil, expected: MapSet.new(cids), unsure: MapSet.new(),
           next: @children + 1, last_heal: nil, last_fault: nil, counts: %{}, cut_started: [],
           split_stops: [], watcher: watch_changes(nodes)}

    t0 = PhTest.now_ms()

    st =
      Enum.reduce(1..@faults, st, fn i, st ->
        st = fault(i, st, net, c)
        st = work(st)
        Process.sleep(200 + :rand.uniform(800))
        st
      end)

    # the end: every node back (each joins a node of its side), then the
    # cut healed last, so that the heal is the last fault when there is a
    # cut; then the quiet period. Convergence is timed from the moment the
    # cluster is whole again: the last fault (that heal, the last restart,
    # or the loop's last fault when the cluster was whole already).
    st = Enum.reduce(MapSet.to_list(st.down), st, fn i, st -> restart(st, i, net, c) end)
    st = if st.split, do: (note("final heal"); do_heal(st, net)), else: st
    whole = st.last_fault
    note("the cluster is whole again (every node up, every cut healed) since #{PhTest.now_ms() - whole} ms")
    live = live_nodes(st)
    assert_members(live, 30_000)
    note("members agree (#{PhTest.now_ms() - whole} ms)")

    %{waited_ms: ms, dump: dump, held_at: held_at, snap_from: snap_from, confirmed: {c_from, c_to}} =
      check!(live, st.expected, rf: 2, optional: MapSet.to_list(st.unsure), timeout: 60_000, trace: &note/1)

    # When it converged: the last change of any node's registry (what it
    # reported to a subscription) before one of the two passing snapshots
    # when none came while that snapshot was taken (it then saw the state
    # that change left, unchanged since); else the first snapshot's end (an
    # upper bound). The check's polling interval is not in the figure.
    seen = watched(st.watcher) |> Enum.filter(fn {t, _, _} -> t >= whole end)
    changes = Enum.map(seen, &elem(&1, 0))

    quiet_before = fn from, to ->
      if Enum.any?(changes, &(&1 >= from and &1 <= to)),
        do: nil,
        else: Enum.max([whole | Enum.filter(changes, &(&1 < from))])
    end

    converged =
      Enum.min(Enum.reject([held_at, quiet_before.(snap_from, held_at), quiet_before.(c_from, c_to)], &is_nil/1))

    # the changes seen while the passing snapshots were taken (examples:
    # the first three and the last five)
    in_windows =
      for {t, node, what} <- Enum.reverse(seen),
          (t >= snap_from and t <= held_at) or (t >= c_from and t <= c_to) do
        {t, node, what}
      end

    per_second = seen |> Enum.frequencies_by(fn {t, _, _} -> div(t - whole, 1000) end) |> Enum.sort()
    note("  registry changes per second after the cluster was whole: #{inspect(per_second, limit: 40)}")

    (Enum.take(in_windows, 3) ++ Enum.take(Enum.drop(in_windows, 3), -5))
    |> Enum.each(fn {t, node, what} -> note("  change at #{t - whole} ms on #{node}: #{inspect(what, limit: 8)}") end)

    # What the phnodes themselves recorded: the wall-clock time of the last
    # change of each registry (:registry_changed_at; the namespaces share
    # the host's clock). The watcher's figure above is when the test node
    # received the changes, which lags when the test node itself is
    # starved (its dumps took 10 s at load 10); the nodes' own record does
    # not, and it also counts a change made after the checker's snapshots.
    whole_wall = System.os_time(:millisecond) - (PhTest.now_ms() - whole)

    last_changes =
      for n <- live do
        {_count, at} = call(n, :registry_changed_at, 10_000)
        {short(n), if(is_integer(at), do: at - whole_wall, else: nil)}
      end

    note("  last registry change on each node (ms after the cluster was whole): #{inspect(last_changes)}")
    note("  the watcher's figure: #{converged - whole} ms")
    converged = whole + max(0, last_changes |> Enum.map(&(elem(&1, 1) || 0)) |> Enum.max())

    since_heal = converged - (st.last_heal || t0)
    since_whole = converged - whole

    note(
      "converged #{since_whole} ms after the cluster was whole (the nodes' last registry change; the watcher saw #{length(changes)} change messages; " <>
        "snapshots #{snap_from - whole}..#{held_at - whole} and #{c_from - whole}..#{c_to - whole} ms)"
    )

    IO.puts(
      "    net chaos: #{@faults} faults #{inspect(st.counts)} in #{div(PhTest.now_ms() - t0, 1000)} s; " <>
        "#{map_size(dump)} children rf 2; converged #{since_whole} ms after the last fault " <>
        "(#{since_heal} ms after the last heal; invariant confirmed after #{ms} ms of checking)"
    )

    if @converge_ms do
      assert since_whole <= @converge_ms,
             "converged #{since_whole} ms after the last fault, more than #{@converge_ms} ms"
    end
  end

  # A process subscribed to every node's registry (docs/api.md, "Registry
  # subscription"; a node restarted is added) noting when a :changes
  # message changed what a node's registry holds (the rows and their
  # {node, pid}s).
  defp watch_changes(live) do
    # high priority: a change is stamped when it arrives, not when the
    # checker's decoding of five registry dumps lets the watcher run
    pid = spawn_link(fn -> Process.flag(:priority, :high); watch_loop(%{}, %{}, []) end)
    for n <- live, do: watch_add(pid, n)
    pid
  end

  defp watch_add(pid, n) do
    ref = make_ref()
    send(pid, {:add, self(), ref, n})

    receive do
      {^ref, :ok} -> :ok
    after
      60_000 -> flunk("the registry watcher did not subscribe to #{n.node}")
    end
  end

  defp watch_loop(refs, rows, times) do
    receive do
      {:add, from, tag, n} ->
        # a node back under its name: what it held before is gone
        rows = Map.reject(rows, fn {{node, _}, _} -> node == n.node end)
        refs = Map.reject(refs, fn {_, node} -> node == n.node end)
        {:ok, ref} = GenServer.call(hub(n), {:subscribe_registry, self()}, 30_000)
        send(from, {tag, :ok})
        watch_loop(Map.put(refs, ref, n.node), rows, times)

      {:phnode_registry, ref, _seq, kind, puts, gone} ->
        case Map.fetch(refs, ref) do
          {:ok, node} ->
            items = Enum.map(puts, fn {cid, nps, _spec, _meta} -> {:put, cid, nps} end) ++ Enum.map(gone, &{:delete, &1})
            {rows, changed} = Enum.reduce(items, {rows, false}, &watch_item(node, &1, &2))
            times = if kind == :changes and changed, do: [{PhTest.now_ms(), node, changed} | times], else: times
            watch_loop(refs, rows, times)

          :error ->
            watch_loop(refs, rows, times)
        end

      {:report, from} ->
        send(from, {:changes, self(), times})

      other ->
        # a subscription message of another shape: the timing would be
        # wrong without a word (it was, once), so the test stops here
        raise "registry watcher: unexpected message #{inspect(other, limit: 5)}"
    end
  end

  defp watch_item(node, {:put, cid, nps}, {rows, changed}) do
    v = Enum.sort(nps)
    was = Map.get(rows, {node, cid})
    if was == v, do: {rows, changed}, else: {Map.put(rows, {node, cid}, v), changed || {cid, was, v}}
  end

  defp watch_item(node, {:delete, cid}, {rows, changed}) do
    if Map.has_key?(rows, {node, cid}),
      do: {Map.delete(rows, {node, cid}), changed || {cid, Map.get(rows, {node, cid}), :deleted}},
      else: {rows, changed}
  end


  defp watched(pid) do
    send(pid, {:report, self()})

    receive do
      {:changes, ^pid, times} -> times
    after
      30_000 -> flunk("the registry watcher did not report")
    end
  end

  defp live_nodes(st), do: for({i, n} <- Enum.sort(st.slots), not MapSet.member?(st.down, i), do: n)
  defp live_idx(st), do: for({i, _} <- Enum.sort(st.slots), not MapSet.member?(st.down, i), do: i)

  defp count(st, kind), do: %{st | counts: Map.update(st.counts, kind, 1, &(&1 + 1)), last_fault: PhTest.now_ms()}

  defp fault(i, st, net, c) do
    live = live_idx(st)
    choices =
      if(length(live) > 3, do: [:kill, :kill, :term], else: []) ++
        if(MapSet.size(st.down) > 0, do: [:restart, :restart], else: []) ++
        if(st.split == nil and length(live) >= 3, do: [:cut, :cut], else: []) ++
        if(st.split != nil, do: [:heal, :heal, :heal], else: [])

    case Enum.random(choices) do
      :kill ->
        v = Enum.random(live)
        note("#{i}: kill -9 #{short(st.slots[v])}")
        PhTest.kill_node(st.slots[v])
        count(%{lose_side(st, v) | down: MapSet.put(st.down, v)}, :kill)

      :term ->
        v = Enum.random(live)
        note("#{i}: SIGTERM #{short(st.slots[v])}")
        res = PhTest.stop_node(st.slots[v], 30_000)
        note("   -> #{inspect(res)}")
        count(%{lose_side(st, v) | down: MapSet.put(st.down, v)}, :sigterm)

      :restart ->
        count(restart(st, Enum.random(MapSet.to_list(st.down)), net, c), :restart)

      :cut ->
        k = 1 + :rand.uniform(length(live) - 2)
        left = Enum.take_random(live, k - 1 + 1) |> Enum.sort()
        left = if length(left) == length(live), do: tl(left), else: left
        right = live -- left
        note("#{i}: cut #{inspect(left)} | #{inspect(right)}")
        Netns.split(net, left, right)
        count(%{st | split: {left, right}}, :cut)

      :heal ->
        note("#{i}: heal")
        count(do_heal(st, net), :heal)
    end
  end

  # Children started during a split ran only on the nodes of the side that
  # started them (rf 2 within that side): when one of those nodes goes
  # down, their copies may all be gone (a one-node side, or the side's
  # last other node gone too): they become optional, not expected.
  # A stop made during a split is kept, for the other side, by the node
  # that made it (and the nodes of its side that had noticed the cut:
  # not known here): when that node goes down before the cluster is
  # merged again, the stop may be lost with it (docs/cluster.md), and the
  # children it stopped become optional.
  defp lose_side(st, v) do
    lost =
      for {side, cids} <- st.cut_started, v in side, reduce: MapSet.new() do
        acc -> MapSet.union(acc, cids)
      end

    lost = MapSet.intersection(lost, st.expected)
    if MapSet.size(lost) > 0, do: note("   #{MapSet.size(lost)} child(ren) started on that side during a split become optional")
    {forgotten, kept} = Enum.split_with(st.split_stops, fn {via, _} -> via == v end)
    stopped = for {_, cids} <- forgotten, reduce: MapSet.new(), do: (acc -> MapSet.union(acc, cids))
    if MapSet.size(stopped) > 0, do: note("   #{MapSet.size(stopped)} child(ren) stopped through it during the split become optional")

    %{st | expected: MapSet.difference(st.expected, lost), unsure: st.unsure |> MapSet.union(lost) |> MapSet.union(stopped),
           split_stops: kept}
  end

  defp do_heal(st, net) do
    Netns.heal_all(net)
    now = PhTest.now_ms()
    %{st | split: nil, last_heal: now, last_fault: now}
  end

  # a node of a slot comes back under its name, joining a live node on its side
  defp restart(st, i, net, c) do
    old = st.slots[i]
    seeds = live_idx(st) |> Enum.reject(fn j -> st.split && cut_between?(st.split, i, j) end)
    join = if seeds == [], do: [], else: ["--join", Atom.to_string(st.slots[Enum.random(seeds)].node)]
    note("restart #{short(old)} #{inspect(join)}")
    n = start_ns(net, i, c, join, name: old.alive)
    watch_add(st.watcher, n)
    %{st | slots: Map.put(st.slots, i, n), down: MapSet.delete(st.down, i), last_fault: PhTest.now_ms()}
  end

  defp merged?(live) do
    Enum.all?(live, fn n -> safe(fn -> members(n) end, nil) == Enum.sort(for m <- live, m != n, do: m.node) end)
  end

  defp cut_between?({l, r}, i, j), do: (i in l and j in r) or (i in r and j in l)

  defp side_started(%{split: nil} = st, _via, _ok), do: st

  defp side_started(%{split: {left, right}} = st, via, ok) do
    {i, _} = Enum.find(st.slots, fn {_, n} -> n == via end)
    side = if i in left, do: left, else: right
    %{st | cut_started: [{side, ok} | st.cut_started]}
  end

  # starts and stops anywhere, during splits too, except while a healed
  # cluster is still merging. A stop made on one side of a split reaches
  # the other side's nodes at the heal, and a node restarted meanwhile and
  # the copies handed to it (docs/cluster.md, "Stops made during a split").
  defp work(st) do
    live = live_nodes(st)
    merged = merged?(live)
    # a stop made during a split is delivered once the cluster is merged
    st = if st.split == nil and merged, do: %{st | split_stops: []}, else: st

    Enum.reduce(1..(1 + :rand.uniform(2)), st, fn _, st ->
      via = Enum.random(live)
      may_stop = st.split != nil or merged

      if :rand.uniform(3) > 1 or not may_stop or MapSet.size(st.expected) == 0 do
        k = :rand.uniform(50)
        new = for j <- st.next..(st.next + k - 1), do: "x#{j}"
        st = %{st | next: st.next + k}

        res = safe(fn -> call(via, {:start_children, specs(new), [awaitable: true, timeout: 10_000]}, 20_000) end, :no_reply)

        case res do
          {:ok, %{started: started}} ->
            ok = MapSet.new(started, &elem(&1, 0))
            note("  start #{k} via #{short(via)}: #{MapSet.size(ok)} ok")
            st = side_started(st, via, ok)
            %{st | expected: MapSet.union(st.expected, ok), unsure: MapSet.union(st.unsure, MapSet.difference(MapSet.new(new), ok))}

          other ->
            note("  start #{k} via #{short(via)}: #{inspect(other, limit: 5)}")
            %{st | unsure: MapSet.union(st.unsure, MapSet.new(new))}
        end
      else
        k = min(:rand.uniform(50), MapSet.size(st.expected))
        victims = st.expected |> Enum.sort() |> Enum.take_random(k)
        res = safe(fn -> call(via, {:stop_children, victims, [awaitable: true, timeout: 10_000]}, 20_000) end, :no_reply)

        gone =
          case res do
            {:ok, %{stopped: stopped}} -> MapSet.new(stopped, &elem(&1, 0))
            _ -> MapSet.new()
          end

        note("  stop #{k} via #{short(via)}#{if st.split, do: " (split)", else: ""}: #{MapSet.size(gone)} ok")
        rest = MapSet.difference(MapSet.new(victims), gone)
        {i, _} = Enum.find(st.slots, fn {_, n} -> n == via end)
        split_stops = if st.split, do: [{i, gone} | st.split_stops], else: st.split_stops
        %{st | expected: st.expected |> MapSet.difference(gone) |> MapSet.difference(rest), unsure: MapSet.union(st.unsure, rest),
               split_stops: split_stops}
      end
    end)
  end
end
