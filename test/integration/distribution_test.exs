# Distribution strategies other than ConsistentHashing, from Elixir over the
# distribution: a user-defined strategy loaded from a shared object named in
# the config (test/sample_strategy/by_name.c), and the errors of a bad one.
# Run by test/integration/run.sh.
Code.require_file("support/ph_test.exs", __DIR__)
Code.require_file("support/hub_cluster.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 120_000
)

defmodule PhNode.DistributionTest do
  use ExUnit.Case, async: false

  import PhTest.HubCluster, only: [hub: 1, start: 1, start: 2, cluster: 2]

  defp wait_until(fun, ms, pause \\ 100), do: PhTest.wait_until(fun, ms, pause)

  defp strategy_lib do
    System.get_env("PH_STRATEGY_LIB") ||
      Path.join([Path.dirname(PhTest.phnode()), "test", "libby_name_strategy.so"])
  end

  defp config(distribution) do
    PhTest.HubCluster.config_file("dist", ~s({"distribution_strategy": #{distribution}}))
  end

  # by_name's rule, recomputed: names sorted, sum of the id's bytes mod count
  defp by_name(id, nodes) do
    sorted = nodes |> Enum.map(&Atom.to_string/1) |> Enum.sort()
    sum = id |> :binary.bin_to_list() |> Enum.sum()
    sorted |> Enum.at(rem(sum, length(sorted))) |> String.to_atom()
  end

  defp misplaced(live, ids) do
    names = Enum.map(live, & &1.node)
    dump = GenServer.call(hub(hd(live)), :registry_dump, 30_000)

    bad =
      for id <- ids,
          {_, nps, _} = Map.get(dump, id, {nil, [], nil}),
          Enum.map(nps, &elem(&1, 0)) != [by_name(id, names)],
          do: {id, nps, by_name(id, names)}

    {map_size(dump), bad}
  end

  test "a strategy from a shared object places every child; a kill re-places by the same rule" do
    if not File.exists?(strategy_lib()), do: flunk("#{strategy_lib()} not built (make)")
    cfg = config(~s({"type": "by_name", "library": "#{strategy_lib()}"}))
    [a, b, c] = cluster(cfg, 3)
    ids = for i <- 1..300, do: "n#{i}"
    specs = for id <- ids, do: %{id: id, start: {:counter, :start_link, [0]}}

    assert {:ok, %{status: :ok, errors: []}} =
             GenServer.call(hub(b), {:start_children, specs, [awaitable: true]}, 30_000)

    assert wait_until(fn -> misplaced([a, b, c], ids) == {300, []} end, 10_000),
           inspect(misplaced([a, b, c], ids), limit: 5)

    # every node sees the same placement
    for n <- [b, c], do: assert(GenServer.call(hub(n), :registry_dump) == GenServer.call(hub(a), :registry_dump))
    PhTest.kill_node(c)

    assert wait_until(fn -> misplaced([a, b], ids) == {300, []} end, 15_000),
           inspect(misplaced([a, b], ids), limit: 5)
  end

  test "a bad distribution strategy stops phnode with one clear line" do
    cases = [
      {~s({"type": "no_such_strategy"}), ~s(no strategy of type "no_such_strategy")},
      {~s({"type": "by_name", "library": "/nonexistent/lib.so"}), "cannot load /nonexistent/lib.so"},
      {~s({"type": "other_name", "library": "#{strategy_lib()}"}), ~s(implements type "by_name")},
      {~s({"type": "by_name", "library": "#{strategy_lib()}", "reverse": 3}), "distribution_strategy.reverse"}
    ]

    for {dist, expect} <- cases do
      {out, status} =
        System.cmd(PhTest.phnode(), ["--name", "bad_dist_#{System.unique_integer([:positive])}@127.0.0.1",
                                     "--cookie", "x", "--config", config(dist)], stderr_to_stdout: true)

      assert status != 0, "#{dist}: exited 0"
      assert out =~ expect, "#{dist}: #{out}"
    end
  end

  test "guided: children land exactly on their mapped nodes, never move on a join, leave with their node" do
    cfg = config(~s({"type": "guided"}))
    [a, b, c, d] = nodes = cluster(cfg, 4)
    names = Enum.map(nodes, & &1.node)
    ids = for i <- 1..1000, do: "g#{i}"
    mapping = Map.new(Enum.with_index(ids), fn {id, i} -> {id, [Enum.at(names, rem(i * 7, 4))]} end)
    specs = for id <- ids, do: %{id: id, start: {:counter, :start_link, [0]}}

    assert {:ok, %{status: :ok, errors: []}} =
             GenServer.call(hub(b), {:start_children, specs, [awaitable: true, child_mapping: mapping]}, 30_000)

    placed = fn n ->
      GenServer.call(hub(n), :registry_dump, 30_000)
      |> Map.new(fn {id, {_, nps, _}} -> {id, nps} end)
    end

    assert wait_until(fn -> Enum.all?(nodes, &(map_size(placed.(&1)) == 1000)) end, 10_000)
    before = placed.(a)
    for id <- ids do
      assert [{n, _}] = before[id]
      assert n == hd(mapping[id]), "#{id} runs on #{n}, its mapping says #{inspect(mapping[id])}"
    end
    for n <- [b, c, d], do: assert(placed.(n) == before)

    # a 5th node joins: nothing moves, every pid stays
    e = start(cfg, ["--join", Atom.to_string(a.node)])
    assert wait_until(fn -> length(GenServer.call(hub(e), {:nodes, []})) == 4 end, 10_000)
    assert wait_until(fn -> map_size(placed.(e)) == 1000 end, 10_000)
    Process.sleep(1_000)
    changed = fn now -> for {id, nps} <- before, now[id] != nps, do: {id, nps, now[id]} end
    assert changed.(placed.(a)) == []
    assert changed.(placed.(e)) == []

    # d dies: its children leave the registry everywhere (no other node is mapped)
    on_d = for {id, [{n, _}]} <- before, n == d.node, do: id
    assert on_d != []
    PhTest.kill_node(d)
    left = Map.drop(before, on_d)
    assert wait_until(fn -> Enum.all?([a, b, c, e], &(placed.(&1) == left)) end, 15_000),
           inspect(Enum.map([a, b, c, e], &map_size(placed.(&1))))

    # stopping them all empties every registry
    assert {:ok, %{status: :ok}} =
             GenServer.call(hub(c), {:stop_children, Map.keys(left), [awaitable: true]}, 30_000)

    assert wait_until(fn -> Enum.all?([a, b, c, e], &(placed.(&1) == %{})) end, 10_000)
  end

  test "guided: ProcessHub's errors for a missing or bad child_mapping" do
    cfg = config(~s({"type": "guided"}))
    a = start(cfg)
    spec = %{id: "x", start: {:counter, :start_link, [0]}}
    call = fn opts -> GenServer.call(hub(a), {:start_children, [spec], [awaitable: true] ++ opts}) end
    assert call.([]) == {:error, :missing_child_mapping}
    assert call.(child_mapping: [{"x", [a.node]}]) == {:error, :invalid_child_mapping}
    assert call.(child_mapping: %{"y" => [a.node]}) == {:error, :child_mapping_mismatch}
    assert call.(child_mapping: %{"x" => [a.node, a.node]}) == {:error, :child_replication_mismatch}
    assert GenServer.call(hub(a), :registry_dump) == %{}

    # mapped to a node that is not a member: not started, reported
    assert {:ok, %{status: :error, started: [], errors: [{"x", _, :no_node}]}} =
             call.(child_mapping: %{"x" => [:"nobody@127.0.0.1"]})

    assert {:ok, %{status: :ok, started: [{"x", [{n, _}]}]}} = call.(child_mapping: %{"x" => [a.node]})
    assert n == a.node
  end
end
