# Migration: the HotSwap strategy from Elixir over the distribution. A
# moved child's state goes from its old copy to its new one (joins and
# graceful leaves), the old copy stops once it handed over, every child
# runs exactly once on its ring owner afterwards, and members killed in the
# middle of a handover leave neither zero nor two copies. Also ProcessHub's
# §14 item 32 (ColdSwap with replication, peers restarted). Run by
# test/integration/run.sh.
Code.require_file("support/ph_test.exs", __DIR__)
Code.require_file("support/ring.exs", __DIR__)
Code.require_file("support/hub_cluster.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 240_000
)

defmodule PhNode.HotSwapTest do
  use ExUnit.Case, async: false
  alias PhTest.Ring
  import PhTest.HubCluster, only: [hub: 1, join: 2, wait_members: 1, cluster: 2, dump: 1]

  defp wait_until(fun, ms, pause \\ 200), do: PhTest.wait_until(fun, ms, pause)

  defp config(json), do: PhTest.HubCluster.config_file("hot", json)

  defp hot(opts \\ "") do
    config(~s({"migration_strategy": {"type": "hot_swap", "handover": true#{opts}}}))
  end

  defp counters(ids), do: for(id <- ids, do: %{id: id, start: {:counter, :start_link, [0]}})

  defp start_awaited(n, specs, opts \\ []) do
    assert {:ok, %{status: :ok}} =
             GenServer.call(
               hub(n),
               {:start_children, specs, [awaitable: true, timeout: 60_000] ++ opts},
               90_000
             )
  end

  defp running(live) do
    live
    |> Enum.map(fn n -> GenServer.call(hub(n), {:which_children, []}) |> elem(1) |> length() end)
    |> Enum.sum()
  end

  # Every id in every registry exactly once, identical, on its ring owner
  # among live, with exactly one process per id running across the nodes;
  # check.(id, pid) for each (nil when it is not to be checked).
  defp problems(live, ids, check) do
    ring = Ring.new(Enum.map(live, & &1.node))
    dumps = Enum.map(live, &dump/1)
    [d | _] = dumps

    cond do
      Enum.any?(dumps, &(&1 != d)) ->
        {:registries_differ, Enum.map(dumps, &map_size/1)}

      Enum.sort(Map.keys(d)) != Enum.sort(ids) ->
        {:ids, map_size(d), length(ids)}

      (r = running(live)) != length(ids) ->
        {:running, r, length(ids)}

      true ->
        bad =
          Enum.flat_map(ids, fn id ->
            {_, nps, _} = d[id]
            want = Ring.key_nodes(ring, id, 1)

            case nps do
              [{node, pid}] when [node] == want ->
                if check == nil or check.(id, pid), do: [], else: [{id, :state}]

              _ ->
                [{id, :placed, nps, want}]
            end
          end)

        if bad == [], do: :ok, else: {:bad, length(bad), Enum.take(bad, 3)}
    end
  end

  defp assert_settled(live, ids, check \\ nil, ms \\ 60_000) do
    deadline = PhTest.now_ms() + ms
    result = settle(live, ids, check, deadline)
    assert result == :ok, "after #{inspect(Enum.map(live, & &1.node))}: #{inspect(result)}"
  end

  defp settle(live, ids, check, deadline) do
    case problems(live, ids, check) do
      :ok ->
        :ok

      other ->
        if PhTest.now_ms() > deadline do
          other
        else
          Process.sleep(300)
          settle(live, ids, check, deadline)
        end
    end
  end

  # The value each counter was given: its number times 7, added after the
  # start (init alone would give 0).
  defp value(id), do: (id |> String.trim_leading("c") |> String.to_integer()) * 7

  defp give_values(n, ids) do
    d = dump(n)

    for id <- ids do
      {_, [{_, pid}], _} = d[id]
      assert GenServer.call(pid, {:add, value(id)}) == value(id)
    end
  end

  defp counter_ok(id, pid), do: GenServer.call(pid, :get) == value(id)

  defp ids(n, prefix \\ "c"), do: for(i <- 1..n, do: "#{prefix}#{i}")

  test "join: 1,000 counters keep their values on their new owners, each runs once" do
    cfg = hot()
    [a | _] = nodes = cluster(cfg, 3)
    ids = ids(1000)
    start_awaited(a, counters(ids))
    assert_settled(nodes, ids)
    give_values(a, ids)
    d = join(cfg, a)
    wait_members(nodes ++ [d])
    assert_settled(nodes ++ [d], ids, &counter_ok/2)
    moved = dump(a) |> Enum.count(fn {_, {_, [{node, _}], _}} -> node == d.node end)
    assert moved > 100, "only #{moved} children moved to the newcomer"
    refute PhTest.log(d) =~ "no state within"
  end

  test "SIGTERM: 1,000 kv maps and their metadata are intact on the survivors" do
    cfg = hot()
    [a, b | _] = nodes = cluster(cfg, 4)
    ids = ids(1000, "k")
    specs = for id <- ids, do: %{id: id, start: {:kv, :start_link, []}}
    start_awaited(a, specs, metadata: %{tag: "maps", owner: "test"})
    assert_settled(nodes, ids)
    d = dump(a)

    for id <- ids, {_, [{_, pid}], _} = d[id], k <- 1..10 do
      :ok = GenServer.call(pid, {:put, k, {id, k}})
    end

    on_b = Enum.count(d, fn {_, {_, [{node, _}], _}} -> node == b.node end)
    assert on_b > 50
    t0 = PhTest.now_ms()
    assert PhTest.stop_node(b, 60_000) == {:ok, 0}
    took = PhTest.now_ms() - t0
    # the bound: migr_base_timeout + child_migration_timeout + retention
    assert took < 30_000, "the leaving node took #{took} ms"
    live = List.delete(nodes, b)

    check = fn id, pid ->
      Enum.all?(1..10, fn k -> GenServer.call(pid, {:get, k}) == {:ok, {id, k}} end)
    end

    assert_settled(live, ids, check)

    for {_, {_, _, meta}} <- dump(a),
        do: assert(meta == %{tag: "maps", owner: "test"})

    assert PhTest.log(b) =~ "hand their state to their new owners"
  end

  test "SIGTERM, and one of the new owners is killed during the leave: each child runs once" do
    cfg = hot()
    [a, b, c, d] = nodes = cluster(cfg, 4)
    ids = ids(1000)
    start_awaited(a, counters(ids))
    assert_settled(nodes, ids)
    give_values(a, ids)
    before = dump(a)
    on_b = for {id, {_, [{node, _}], _}} <- before, node == b.node, do: id
    assert length(on_b) > 50
    off = PhTest.log_size(b)
    {_, 0} = System.cmd("kill", ["-TERM", "#{b.os_pid}"])
    assert PhTest.wait_log(b, "leaving the hub cluster", 10_000, off)
    PhTest.kill_node(c)
    assert PhTest.wait_exit(b, 60_000) != :timeout
    live = [a, d]
    # every child once, on its owner among the survivors; the values of the
    # children that lived on a or d, or moved from b to a or d (c's death
    # changes no other owner), are intact
    after_ring = Ring.new(Enum.map([a, c, d], & &1.node))
    c_node = c.node

    keeps = fn id ->
      case before[id] do
        {_, [{node, _}], _} when node in [a.node, d.node] -> true
        {_, [{node, _}], _} when node == b.node -> Ring.key_nodes(after_ring, id, 1) != [c_node]
        _ -> false
      end
    end

    assert_settled(live, ids, fn id, pid -> not keeps.(id) or counter_ok(id, pid) end)
  end

  test "a worker without handover callbacks moves as a cold start, the others keep their state" do
    cfg = hot()
    [a | _] = nodes = cluster(cfg, 2)
    ids = ids(400)
    echoes = for i <- 1..200, do: "e#{i}"
    start_awaited(a, counters(ids) ++ for(id <- echoes, do: %{id: id, start: {:echo, :start_link, []}}))
    assert_settled(nodes, ids ++ echoes)
    give_values(a, ids)
    c = join(cfg, a)
    wait_members(nodes ++ [c])
    check = fn id, pid -> String.starts_with?(id, "e") or counter_ok(id, pid) end
    assert_settled(nodes ++ [c], ids ++ echoes, check)
    logs = Enum.map_join(nodes, &PhTest.log/1)
    assert logs =~ "the state cannot be handed over (no prepare_handover_state)"
    # the new copies did not wait out handover_data_wait for a state that never comes
    refute PhTest.log(c) =~ "no state within"
  end

  test "replication 2: each moving replica hands over to the one that replaces it" do
    cfg =
      config(
        ~s({"migration_strategy": {"type": "hot_swap", "handover": true}, ) <>
          ~s("redundancy_strategy": {"type": "replication", "replication_factor": 2}})
      )

    [a | _] = nodes = cluster(cfg, 3)
    ids = ids(600)
    start_awaited(a, counters(ids))

    assert wait_until(fn -> Enum.all?(nodes, &(GenServer.call(hub(&1), :replica_count) == 1200)) end,
             30_000)

    # every replica holds the child's value
    for {id, {_, nps, _}} <- dump(a), {_, pid} <- nps,
        do: assert(GenServer.call(pid, {:add, value(id)}) == value(id))

    d = join(cfg, a)
    live = nodes ++ [d]
    wait_members(live)
    ring = Ring.new(Enum.map(live, & &1.node))

    settled = fn ->
      dumps = Enum.map(live, &dump/1)
      dd = hd(dumps)

      Enum.all?(dumps, &(&1 == dd)) and map_size(dd) == 600 and running(live) == 1200 and
        Enum.all?(dd, fn {id, {_, nps, _}} ->
          Enum.sort(Enum.map(nps, &elem(&1, 0))) == Enum.sort(Ring.key_nodes(ring, id, 2))
        end)
    end

    assert wait_until(settled, 60_000, 300)
    moved = dump(a) |> Enum.count(fn {_, {_, nps, _}} -> Enum.any?(nps, &(elem(&1, 0) == d.node)) end)
    assert moved > 100

    for {id, {_, nps, _}} <- dump(a), {node, pid} <- nps do
      assert GenServer.call(pid, :get) == value(id), "#{id} on #{node} lost its value"
    end
  end

  test "handover false: the old copies stop after a join (ProcessHub leaves them running)" do
    cfg = config(~s({"migration_strategy": {"type": "hot_swap", "handover": false}}))
    [a | _] = nodes = cluster(cfg, 2)
    ids = ids(600)
    start_awaited(a, counters(ids))
    assert_settled(nodes, ids)
    c = join(cfg, a)
    wait_members(nodes ++ [c])
    # without handover a moved child starts afresh, but it runs once
    assert_settled(nodes ++ [c], ids)
  end

  test "confirm_handover: the confirmations end the migration's wait before retention" do
    cfg = hot(~s(, "confirm_handover": true, "retention": 120000))
    [a | _] = nodes = cluster(cfg, 2)
    ids = ids(600)
    start_awaited(a, counters(ids))
    assert_settled(nodes, ids)
    give_values(a, ids)
    c = join(cfg, a)
    wait_members(nodes ++ [c])
    # old copies stop once confirmed: long before the 120 s retention
    assert_settled(nodes ++ [c], ids, &counter_ok/2, 30_000)
    refute PhTest.log(a) =~ "not confirmed within retention"
  end

  test "a newcomer killed mid-handover: every child runs exactly once afterwards" do
    cfg = hot(~s(, "handover_data_wait": 3000))
    [a | _] = nodes = cluster(cfg, 3)
    ids = ids(3000)
    start_awaited(a, counters(ids))
    assert_settled(nodes, ids)
    give_values(a, ids)
    d = join(cfg, a)
    assert wait_until(fn -> d.node in GenServer.call(hub(a), {:nodes, []}) end, 15_000, 5)
    PhTest.kill_node(d)
    assert_settled(nodes, ids)
    # what did not reach the newcomer kept its state
    d0 = dump(a)

    kept =
      Enum.count(ids, fn id ->
        {_, [{_, pid}], _} = d0[id]
        counter_ok(id, pid)
      end)

    assert kept >= 2000, "only #{kept} of 3000 kept their state"
  end

  test "an old owner killed mid-handover: every child runs exactly once afterwards" do
    cfg = hot()
    [a, b, c] = cluster(cfg, 3)
    ids = ids(3000)
    start_awaited(a, counters(ids))
    assert_settled([a, b, c], ids)
    give_values(a, ids)
    d = join(cfg, a)
    assert wait_until(fn -> d.node in GenServer.call(hub(b), {:nodes, []}) end, 15_000, 5)
    PhTest.kill_node(b)
    assert_settled([a, c, d], ids)
  end

  # ProcessHub §14 item 32: ColdSwap with replication 2, the peers' hubs
  # stopped, 1,000 children started on the remaining node, the peers
  # started again: the migrations are registered, every child on its 2
  # ring nodes.
  test "cold_swap with replication 2: peers stopped and restarted, migrations registered" do
    cfg =
      config(
        ~s({"migration_strategy": {"type": "cold_swap"}, ) <>
          ~s("redundancy_strategy": {"type": "replication", "replication_factor": 2}})
      )

    [a, b, c] = cluster(cfg, 3)
    assert PhTest.stop_node(b, 30_000) == {:ok, 0}
    assert PhTest.stop_node(c, 30_000) == {:ok, 0}
    assert wait_until(fn -> GenServer.call(hub(a), {:nodes, []}) == [] end, 10_000)
    ids = ids(1000)
    start_awaited(a, counters(ids))
    b2 = join(cfg, a)
    c2 = join(cfg, a)
    live = [a, b2, c2]
    wait_members(live)
    ring = Ring.new(Enum.map(live, & &1.node))

    placed = fn ->
      dumps = Enum.map(live, &dump/1)

      Enum.all?(dumps, &(&1 == hd(dumps))) and map_size(hd(dumps)) == 1000 and
        Enum.all?(hd(dumps), fn {id, {_, nps, _}} ->
          Enum.sort(Enum.map(nps, &elem(&1, 0))) == Enum.sort(Ring.key_nodes(ring, id, 2))
        end) and running(live) == 2000
    end

    assert wait_until(placed, 60_000, 300)
  end
end
