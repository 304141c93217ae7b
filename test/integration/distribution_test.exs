# Distribution strategies other than ConsistentHashing, from Elixir over the
# distribution: a user-defined strategy loaded from a shared object named in
# the config (test/sample_strategy/by_name.c), and the errors of a bad one.
# Run by test/integration/run.sh.
Code.require_file("support/ph_test.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 120_000
)

defmodule PhNode.DistributionTest do
  use ExUnit.Case, async: false

  @ticktime 2

  defp hub(n), do: {:my_hub, n.node}
  defp wait_until(fun, ms, pause \\ 100), do: PhTest.wait_until(fun, ms, pause)

  defp strategy_lib do
    System.get_env("PH_STRATEGY_LIB") ||
      Path.join([Path.dirname(PhTest.phnode()), "test", "libby_name_strategy.so"])
  end

  defp config(distribution) do
    path = Path.join(PhTest.tmp_dir(), "dist_#{System.unique_integer([:positive])}.json")
    File.write!(path, ~s({"distribution_strategy": #{distribution}}))
    path
  end

  defp start(cfg, extra \\ []) do
    n = PhTest.start_node(ticktime: @ticktime, args: ["--config", cfg | extra])
    on_exit(fn -> if PhTest.alive?(n), do: PhTest.kill_node(n) end)
    n
  end

  defp cluster(cfg, count) do
    first = start(cfg)
    rest = for _ <- 2..count, do: start(cfg, ["--join", Atom.to_string(first.node)])
    nodes = [first | rest]

    assert wait_until(
             fn -> Enum.all?(nodes, &(length(GenServer.call(hub(&1), {:nodes, []})) == count - 1)) end,
             15_000
           )

    nodes
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
end
