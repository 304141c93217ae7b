# Redundancy: the Replication strategy from Elixir over the distribution.
# Every child runs on the first replication_factor nodes of its ring walk
# (checked against the independent ring model in support/ring.exs), exactly
# one replica is active (ProcessHub's master_node rule, recomputed here),
# every replica was told its role, and all of it holds again after members
# die or join. Run by test/integration/run.sh.
Code.require_file("support/ph_test.exs", __DIR__)
Code.require_file("support/ring.exs", __DIR__)
Code.require_file("support/hub_cluster.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 180_000
)

defmodule PhNode.ReplicationTest do
  use ExUnit.Case, async: false
  alias PhTest.Ring

  import PhTest.HubCluster, only: [hub: 1, start: 2, cluster: 2]

  defp config(redundancy) do
    PhTest.HubCluster.config_file("repl", ~s({"redundancy_strategy": #{json(redundancy)}}))
  end

  defp json(map) when is_map(map) do
    "{" <> Enum.map_join(map, ", ", fn {k, v} -> ~s("#{k}": #{json(v)}) end) <> "}"
  end

  defp json(v) when is_binary(v), do: ~s("#{v}")
  defp json(v) when is_integer(v), do: Integer.to_string(v)

  # ProcessHub's master_node: sort the nodes, sum of the id's code points
  # modulo their count.
  defp master(id, nodes) do
    sorted = Enum.sort(nodes)
    sum = id |> String.to_charlist() |> Enum.sum()
    Enum.at(sorted, rem(sum, length(sorted)))
  end

  # Every child on exactly its rf ring nodes among live, one registry
  # everywhere; with modes, every replica's :mode is its role.
  defp placement_problems(live, ids, rf, modes?) do
    ring = Ring.new(Enum.map(live, & &1.node))
    # a row's {node, pid} list is a set: compared sorted
    dumps =
      Enum.map(live, fn n ->
        GenServer.call(hub(n), :registry_dump, 30_000)
        |> Map.new(fn {id, {spec, nps, meta}} -> {id, {spec, Enum.sort(nps), meta}} end)
      end)

    [dump | _] = dumps

    cond do
      Enum.any?(dumps, &(&1 != dump)) ->
        {:registries_differ, Enum.map(dumps, &map_size/1)}

      Enum.sort(Map.keys(dump)) != Enum.sort(ids) ->
        {:ids, map_size(dump), length(ids)}

      true ->
        bad =
          Enum.flat_map(ids, fn id ->
            {_, nps, _} = dump[id]
            want = Ring.key_nodes(ring, id, rf) |> Enum.sort()
            have = nps |> Enum.map(&elem(&1, 0)) |> Enum.sort()

            cond do
              have != want ->
                [{id, :placed, have, want}]

              modes? ->
                active = master(id, want)

                wrong =
                  for {node, pid} <- nps,
                      (mode = GenServer.call(pid, :mode)) !=
                        if(node == active, do: :active, else: :passive),
                      do: {node, mode}

                if wrong == [], do: [], else: [{id, :modes, wrong, active}]

              true ->
                []
            end
          end)

        if bad == [], do: :ok, else: {:bad, length(bad), Enum.take(bad, 3)}
    end
  end

  defp assert_placed(live, ids, rf, modes?) do
    deadline = PhTest.now_ms() + 30_000
    result = wait_placed(live, ids, rf, modes?, deadline)
    assert result == :ok, "after #{inspect(Enum.map(live, & &1.node))}: #{inspect(result)}"
  end

  defp wait_placed(live, ids, rf, modes?, deadline) do
    case placement_problems(live, ids, rf, modes?) do
      :ok ->
        :ok

      other ->
        if PhTest.now_ms() > deadline do
          other
        else
          Process.sleep(300)
          wait_placed(live, ids, rf, modes?, deadline)
        end
    end
  end

  defp specs(ids), do: for(id <- ids, do: %{id: id, start: {:counter, :start_link, [0]}})

  test "rf 3 active_passive on 5 nodes: 3 replicas on the ring nodes, one active; after two kills too" do
    cfg =
      config(%{
        "type" => "replication",
        "replication_factor" => 3,
        "replication_model" => "active_passive",
        "redundancy_signal" => "all"
      })

    [a, b, c, d, e] = cluster(cfg, 5)
    ids = for i <- 1..1000, do: "r#{i}"

    assert {:ok, %{status: :ok, errors: [], started: started}} =
             GenServer.call(hub(a), {:start_children, specs(ids), [awaitable: true, timeout: 30_000]}, 60_000)

    # one entry per child, with every replica
    assert length(started) == 1000
    assert Enum.all?(started, fn {_id, nps} -> length(nps) == 3 end)
    assert_placed([a, b, c, d, e], ids, 3, true)

    # get_pid: the copy of the asked node if it runs one, else the active one
    ring = Ring.new(Enum.map([a, b, c, d, e], & &1.node))

    for id <- Enum.take(ids, 50) do
      owners = Ring.key_nodes(ring, id, 3)
      pid = GenServer.call(hub(a), {:get_pid, id})
      want = if a.node in owners, do: a.node, else: master(id, owners)
      assert node(pid) == want
      assert length(GenServer.call(hub(b), {:get_pids, id})) == 3
    end

    PhTest.kill_node(b)
    assert_placed([a, c, d, e], ids, 3, true)
    PhTest.kill_node(d)
    assert_placed([a, c, e], ids, 3, true)

    # a stop reaches every replica
    assert {:ok, %{status: :ok}} =
             GenServer.call(hub(c), {:stop_children, Enum.take(ids, 100), [awaitable: true]})

    assert_placed([a, c, e], Enum.drop(ids, 100), 3, true)
  end

  test "cluster_size on 4 nodes, then a 5th joins: every child runs on every node" do
    cfg = config(%{"type" => "replication", "replication_factor" => "cluster_size"})
    [a | _] = nodes = cluster(cfg, 4)
    ids = for i <- 1..200, do: "cs#{i}"

    assert {:ok, %{status: :ok, errors: []}} =
             GenServer.call(hub(a), {:start_children, specs(ids), [awaitable: true]}, 60_000)

    assert_placed(nodes, ids, 4, false)
    e = start(cfg, ["--join", Atom.to_string(a.node)])
    assert_placed(nodes ++ [e], ids, 5, false)
  end

  test "a bad redundancy_strategy is refused with the field named" do
    bad = config(%{"type" => "replication", "replication_model" => "sideways"})

    {out, status} =
      System.cmd(PhTest.phnode(), ["--name", "bad_repl_#{System.unique_integer([:positive])}@127.0.0.1",
                                   "--cookie", "x", "--config", bad], stderr_to_stdout: true)

    assert status != 0
    assert out =~ "redundancy_strategy.replication_model"
  end
end
