# Placement at scale: 10k children started through one node of a 3-node hub
# cluster each run on their ConsistentHashing owner, computed here by an
# independent Elixir model of the ring (support/ring.exs, checked against
# every entry of test/data/ring_vectors.json); after a kill -9 every child
# runs on its owner in the ring of the survivors. Run by test/integration/run.sh.
Code.require_file("support/ph_test.exs", __DIR__)
Code.require_file("support/ring.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 60_000
)

defmodule PhNode.RingOwnerTest do
  use ExUnit.Case, async: false

  alias PhTest.Ring

  @ticktime 2
  @children 10_000
  @vectors Path.expand("../data/ring_vectors.json", __DIR__)

  defp start(args), do: PhTest.start_node(ticktime: @ticktime, args: args)

  defp members(n), do: GenServer.call({:my_hub, n.node}, {:nodes, []}) |> Enum.sort()
  defp count(n), do: GenServer.call({:my_hub, n.node}, :registry_count, 30_000)
  defp dump(n), do: GenServer.call({:my_hub, n.node}, :registry_dump, 30_000)

  defp global(n),
    do: GenServer.call({:my_hub, n.node}, {:process_list, :global}, 30_000) |> Enum.sort()

  defp local(n), do: GenServer.call({:my_hub, n.node}, {:process_list, :local}, 30_000)

  defp wait_until(fun, ms, pause \\ 50), do: PhTest.wait_until(fun, ms, pause)

  # Every row of the dump has one copy, on its ring owner, with a pid of
  # that node. Returns the rows that are wrong (at most 10, for messages).
  defp misplaced(dump, ring) do
    dump
    |> Enum.reject(fn
      {cid, {_spec, [{n, pid}], _meta}} -> n == Ring.owner(ring, cid) and node(pid) == n
      _ -> false
    end)
    |> Enum.take(10)
    |> Enum.map(fn {cid, {_, nps, _}} -> {cid, nps, owner: Ring.owner(ring, cid)} end)
  end

  # What the nodes actually run (their local lists): every child exactly once,
  # on its owner.
  defp assert_runs_once_on_owner(nodes, ring, cids) do
    running = for n <- nodes, {cid, pid} <- local(n), do: {cid, n.node, pid}

    assert length(running) == length(cids),
           "#{length(running)} running children, want #{length(cids)}"

    assert running |> Enum.map(&elem(&1, 0)) |> Enum.sort() == Enum.sort(cids)

    wrong =
      for {cid, n, pid} <- running,
          n != Ring.owner(ring, cid) or node(pid) != n,
          do: {cid, n, pid}

    assert wrong == [], "running off their owner: #{inspect(Enum.take(wrong, 10))}"
  end

  test "the Elixir ring model matches every ring vector" do
    # term_to_binary of this OTP encodes atoms as OTP 25 did only up to OTP 25
    if String.to_integer(List.to_string(:erlang.system_info(:otp_release))) <= 25 do
      for t <- [{0, :"a@127.0.0.1"}, {255, :"ph_1@127.0.0.1"}, "c42", :my_child, "ünïcödé"],
          do: assert(Ring.encode(t) == :erlang.term_to_binary(t), inspect(t))
    end

    {checked, bad} = Ring.check_vectors(@vectors)
    assert checked >= 2000

    assert bad == [],
           "#{length(bad)} of #{checked} vectors differ, e.g. #{inspect(Enum.take(bad, 3))}"
  end

  @tag timeout: 180_000
  test "10k children run on their ring owners, before and after a kill -9" do
    {_, []} = Ring.check_vectors(@vectors)

    a = start([])
    on_exit(fn -> if PhTest.alive?(a), do: PhTest.kill_node(a) end)
    b = start(["--join", Atom.to_string(a.node)])
    on_exit(fn -> if PhTest.alive?(b), do: PhTest.kill_node(b) end)
    c = start(["--join", Atom.to_string(b.node)])
    on_exit(fn -> if PhTest.alive?(c), do: PhTest.kill_node(c) end)
    all = [a, b, c]

    assert wait_until(
             fn ->
               Enum.all?(all, fn n ->
                 members(n) == Enum.sort(for m <- all, m != n, do: m.node)
               end)
             end,
             10_000
           ),
           "members: #{inspect(for n <- all, do: {n.node, members(n)})}"

    ring = Ring.new(Enum.map(all, & &1.node))
    cids = for i <- 1..@children, do: "c#{i}"
    specs = for cid <- cids, do: %{id: cid, start: {:echo, :start_link, []}}

    # the ring spreads 10k children over every node
    per_node = Enum.frequencies_by(cids, &Ring.owner(ring, &1))
    assert map_size(per_node) == 3

    t0 = PhTest.now_ms()

    assert {:ok, %{status: :ok, started: started, errors: []}} =
             GenServer.call(
               {:my_hub, a.node},
               {:start_children, specs, [awaitable: true, timeout: 60_000]},
               120_000
             )

    t_start = PhTest.now_ms() - t0
    assert length(started) == @children
    assert started |> Enum.map(&elem(&1, 0)) |> Enum.sort() == Enum.sort(cids)
    wrong = for {cid, [{n, _}]} = s <- started, n != Ring.owner(ring, cid), do: s
    assert wrong == [], "started off their owner: #{inspect(Enum.take(wrong, 10))}"

    # every node's copy of the registry holds them all, identical everywhere
    assert wait_until(fn -> Enum.all?(all, &(count(&1) == @children)) end, 30_000, 100),
           "registry counts: #{inspect(for n <- all, do: {n.node, count(n)})}"

    da = dump(a)
    assert map_size(da) == @children
    assert misplaced(da, ring) == []
    assert dump(b) == da
    assert dump(c) == da
    ga = global(a)
    assert length(ga) == @children
    assert global(b) == ga and global(c) == ga
    assert_runs_once_on_owner(all, ring, cids)

    # the children answer where the registry says they run
    for cid <- Enum.take_random(cids, 30) do
      {_, [{_, pid}], _} = da[cid]
      assert GenServer.call(pid, {:hello, cid}) == {:hello, cid}
    end

    # kill -9 b: its children start again on their owners in the ring of a
    # and c; the others keep their pids
    t1 = PhTest.now_ms()
    PhTest.kill_node(b)
    survivors = [a, c]
    ring2 = Ring.new([a.node, c.node])

    for cid <- cids do
      old = Ring.owner(ring, cid)
      if old != b.node, do: assert(Ring.owner(ring2, cid) == old, "the model moved #{cid}")
    end

    settled = fn ->
      if Enum.all?(survivors, &(count(&1) == @children)) do
        d = dump(a)
        map_size(d) == @children and misplaced(d, ring2) == [] and dump(c) == d
      else
        false
      end
    end

    assert wait_until(settled, 30_000, 200),
           "after the kill: counts #{inspect(for n <- survivors, do: {n.node, count(n)})}, " <>
             "misplaced on a #{inspect(misplaced(dump(a), ring2))}, on c #{inspect(misplaced(dump(c), ring2))}"

    t_failover = PhTest.now_ms() - t1

    da2 = dump(a)
    assert dump(c) == da2
    assert global(a) == global(c)
    assert_runs_once_on_owner(survivors, ring2, cids)

    pids = for {_, {_, [{_, pid}], _}} <- da2, do: pid
    assert length(Enum.uniq(pids)) == @children

    for {cid, {_, [{n, pid}], _}} <- da, n != b.node do
      assert {_, [{^n, ^pid}], _} = da2[cid]
    end

    moved = for {cid, {_, [{n, _}], _}} <- da, n == b.node, do: cid
    assert length(moved) == per_node[b.node]

    for cid <- Enum.take_random(moved, 30) do
      {_, [{_, pid}], _} = da2[cid]
      assert GenServer.call(pid, {:hello, cid}) == {:hello, cid}
    end

    IO.puts(
      "\n  #{@children} children: start_children #{t_start} ms " <>
        "(#{inspect(Map.new(per_node, fn {n, k} -> {n |> Atom.to_string() |> String.split("@") |> hd(), k} end))}), " <>
        "failover of #{length(moved)} after kill -9 settled in #{t_failover} ms"
    )
  end
end
