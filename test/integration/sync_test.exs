# Synchronization strategies (docs/strategies.md): Gossip and PubSub on 6
# phnodes. 10,000 children started and stopped through different members
# leave every registry identical; with Gossip no node sends one registry
# change to more than `recipients` members (the hub's sync-sent counter,
# scraped from /metrics); a member that lost its updates is repaired by the
# gossip rounds; malformed gossip messages are dropped.
# Run by test/integration/run.sh.
Code.require_file("support/ph_test.exs", __DIR__)
Code.require_file("support/hub_cluster.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 120_000
)

defmodule PhNode.SyncTest do
  use ExUnit.Case, async: false

  # generous: the test is about synchronization, not failure detection, on a busy machine
  @ticktime 10

  defp hub(n), do: {:my_hub, n.node}
  defp wait_until(fun, ms, pause \\ 100), do: PhTest.wait_until(fun, ms, pause)

  defp config(sync),
    do: PhTest.HubCluster.config_file("sync", ~s({"synchronization_strategy": #{sync}}))

  # count nodes on loopback, each with its /metrics port; env per index
  defp cluster(cfg, count, env \\ %{}) do
    start = fn i, extra ->
      port = PhTest.free_port()

      n =
        PhTest.start_node(
          ticktime: @ticktime,
          args: ["--config", cfg, "--metrics-port", "#{port}" | extra],
          env: Map.get(env, i, [])
        )

      on_exit(fn -> if PhTest.alive?(n), do: PhTest.kill_node(n) end)
      Map.put(n, :metrics_port, port)
    end

    first = start.(1, [])
    nodes = [first | for(i <- 2..count, do: start.(i, ["--join", Atom.to_string(first.node)]))]

    assert wait_until(
             fn -> Enum.all?(nodes, &(length(GenServer.call(hub(&1), {:nodes, []})) == count - 1)) end,
             20_000
           ),
           "the #{count} nodes did not form a hub cluster"

    nodes
  end

  # a row's {node, pid} list is a set: compared sorted
  defp dump(n), do: PhTest.HubCluster.dump(n)

  defp identical?(nodes, size) do
    [d | rest] = Enum.map(nodes, &dump/1)
    map_size(d) == size and Enum.all?(rest, &(&1 == d))
  end

  defp sent(n),
    do: trunc(PhTest.metric(PhTest.scrape(n.metrics_port), ~s(phnode_hub_sync_messages_total{direction="sent"})))

  defp specs(prefix, range),
    do: for(i <- range, do: %{id: "#{prefix}#{i}", start: {:counter, :start_link, [i]}})

  # One registry change at a time (a child started through nodes[i]): how
  # many members each node sent it to, once every registry has it.
  defp sends_per_change(nodes, count) do
    for i <- 1..count do
      before = Enum.map(nodes, &sent/1)
      via = Enum.at(nodes, rem(i, length(nodes)))
      id = "one_#{i}"

      {:ok, %{status: :ok}} =
        GenServer.call(hub(via), {:start_child, %{id: id, start: {:counter, :start_link, [i]}}, [awaitable: true]})

      assert wait_until(fn -> Enum.all?(nodes, &Map.has_key?(dump(&1), id)) end, 10_000)
      Process.sleep(200)
      Enum.zip_with(Enum.map(nodes, &sent/1), before, &(&1 - &2))
    end
  end

  defp many_started_and_stopped(nodes, extra) do
    # 10,000 children, 2,000 through each of five members
    for {n, k} <- Enum.zip(Enum.take(nodes, 5), 0..4) do
      {:ok, %{status: :ok}} =
        GenServer.call(hub(n), {:start_children, specs("g", (k * 2000 + 1)..(k * 2000 + 2000)), [awaitable: true, timeout: 60_000]}, 90_000)
    end

    assert wait_until(fn -> identical?(nodes, 10_000 + extra) end, 30_000),
           "registries differ after the starts: #{inspect(Enum.map(nodes, &map_size(dump(&1))))}"

    # stopped through the other members, 2,500 each
    for {n, k} <- Enum.zip(Enum.reverse(nodes) |> Enum.take(4), 0..3) do
      ids = for i <- (k * 2500 + 1)..(k * 2500 + 2500), do: "g#{i}"
      {:ok, _} = GenServer.call(hub(n), {:stop_children, ids, [awaitable: true, timeout: 60_000]}, 90_000)
    end

    assert wait_until(fn -> identical?(nodes, extra) end, 30_000),
           "registries differ after the stops: #{inspect(Enum.map(nodes, &map_size(dump(&1))))}"
  end

  test "gossip on 6 nodes: each change goes to at most `recipients` members per node; 10k starts and stops converge" do
    # no repair during the test: what converges, converged by gossip
    nodes = cluster(config(~s({"type": "gossip", "sync_interval": 60000, "recipients": 3})), 6)
    deltas = sends_per_change(nodes, 6)

    for d <- deltas do
      assert Enum.max(d) <= 3, "a node sent one change to more than 3 members: #{inspect(d)}"
      assert Enum.sum(d) >= 5, "the change did not reach every member: #{inspect(d)}"
    end

    many_started_and_stopped(nodes, 6)
  end

  test "pubsub on 6 nodes: a change goes to every member; 10k starts and stops converge" do
    nodes = cluster(config(~s({"type": "pubsub", "sync_interval": 60000})), 6)

    for d <- sends_per_change(nodes, 3) do
      assert Enum.sort(d) == [0, 0, 0, 0, 0, 5], "pubsub sends: #{inspect(d)}"
    end

    many_started_and_stopped(nodes, 3)
  end

  test "gossip repair mends a member that lost its updates; malformed gossip is dropped" do
    cfg = config(~s({"type": "gossip", "sync_interval": 700, "recipients": 2, "restricted_init": true}))
    # the fourth node loses its first two registry updates (test-only switch)
    nodes = cluster(cfg, 4, %{4 => [{"PHNODE_TEST_DROP_SYNC", "2"}]})
    [a, b, _c, d] = nodes

    {:ok, %{status: :ok}} =
      GenServer.call(hub(d), {:start_children, specs("q", 1..100), [awaitable: true]})

    assert PhTest.wait_log(d, "dropped a registry update", 5_000)
    {:ok, _} = GenServer.call(hub(d), {:stop_children, ["q1", "q2", "q3"], [awaitable: true]})

    assert wait_until(fn -> identical?(nodes, 97) end, 10_000),
           "registries differ: #{inspect(Enum.map(nodes, &map_size(dump(&1))))}"

    # malformed and unexpected gossip, some naming a member as the relay
    before = dump(a)
    r = make_ref()

    for msg <- [
          {:"$ph_hub", :gossip_update, b.node, r, b.node, 1, [1, 2], [], {[], []}},
          {:"$ph_hub", :gossip_update, b.node, r, b.node, 1, [], [], :not_a_tuple},
          {:"$ph_hub", :gossip_update, b.node, r, b.node, 1, [], [], {[{:x, :y, self(), %{}}], [:bad]}},
          {:"$ph_hub", :gossip_update, :"stranger@127.0.0.1", r, b.node, 2, [], [], {[], ["q50"]}},
          {:"$ph_hub", :gossip_sync, b.node, make_ref(), b.node, 0, [], [], [{b.node, 1, 2, 3, [:junk]}]},
          {:"$ph_hub", :gossip_sync, b.node, make_ref(), b.node, 0, [], [], :junk},
          {:"$ph_hub", :gossip_seq, :"stranger@127.0.0.1", 5},
          {:"$ph_hub", :gossip_seq, b.node, -1},
          {:"$ph_hub", :gossip_update, b.node},
          {:"$ph_hub", :gossip_nonsense, b.node, 1}
        ] do
      send(hub(a), msg)
    end

    Process.sleep(300)
    assert dump(a) == before
    {:ok, %{status: :ok}} = GenServer.call(hub(b), {:start_child, %{id: "after", start: {:echo, :start_link, []}}, [awaitable: true]})
    assert wait_until(fn -> identical?(nodes, 98) end, 10_000)
    assert PhTest.alive?(a)
  end

  test "a bad gossip option stops phnode with one line" do
    for {sync, text} <- [
          {~s({"type": "gossip", "recipients": 0}), "synchronization_strategy.recipients"},
          {~s({"type": "gossip", "restricted_init": "yes"}), "synchronization_strategy.restricted_init"},
          {~s({"type": "pubsub", "recipients": 3}), "synchronization_strategy.recipients"},
          {~s({"type": "rumor"}), "synchronization_strategy"}
        ] do
      {out, status} =
        System.cmd(PhTest.phnode(), ["--name", "bad_sync_#{System.unique_integer([:positive])}@127.0.0.1", "--cookie", "x", "--config", config(sync)],
          stderr_to_stdout: true
        )

      assert status == 2, out
      assert out =~ text
    end
  end
end
