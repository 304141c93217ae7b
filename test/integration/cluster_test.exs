# Hub cluster membership: phnodes with the same hub_id find each other
# through --join seeds and each other's member lists, and notice when a
# member dies (kill -9) or leaves (SIGTERM). Run by test/integration/run.sh.
Code.require_file("support/ph_test.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 60_000
)

defmodule PhNode.ClusterTest do
  use ExUnit.Case, async: false

  @ticktime 2

  defp members(n), do: GenServer.call({:my_hub, n.node}, {:nodes, []}) |> Enum.sort()

  defp wait_until(fun, ms, pause \\ 50), do: PhTest.wait_until(fun, ms, pause)

  defp start(args), do: PhTest.start_node(ticktime: @ticktime, args: args)

  # n phnodes, the others joined to the first, killed at the end; returns
  # once each lists all the others as members.
  defp cluster(n) do
    first = start([])
    rest = for _ <- 2..n, do: start(["--join", Atom.to_string(first.node)])
    nodes = [first | rest]
    for x <- nodes, do: on_exit(fn -> if PhTest.alive?(x), do: PhTest.kill_node(x) end)
    assert wait_until(fn -> Enum.all?(nodes, &(length(members(&1)) == n - 1)) end, 10_000)
    nodes
  end

  test "members find each other through a chain of seeds, and notice deaths and leaves" do
    a = start([])
    on_exit(fn -> if PhTest.alive?(a), do: PhTest.kill_node(a) end)

    hook_keys = [:pre_cluster_join_hook, :post_cluster_join_hook, :pre_cluster_leave_hook, :post_cluster_leave_hook]

    for key <- hook_keys do
      assert :ok ==
               GenServer.call({:my_hub, a.node}, {:register_hook_handlers, key, [%{id: :t, pid: self()}]})
    end

    b = start(["--join", Atom.to_string(a.node)])
    on_exit(fn -> if PhTest.alive?(b), do: PhTest.kill_node(b) end)
    c = start(["--join", Atom.to_string(b.node)])
    on_exit(fn -> if PhTest.alive?(c), do: PhTest.kill_node(c) end)

    # c only knows b, but learns a from b's member list
    assert wait_until(
             fn ->
               members(a) == Enum.sort([b.node, c.node]) and members(b) == Enum.sort([a.node, c.node]) and
                 members(c) == Enum.sort([a.node, b.node])
             end,
             10_000
           ),
           "members: a #{inspect(members(a))}, b #{inspect(members(b))}, c #{inspect(members(c))}"

    assert GenServer.call({:my_hub, a.node}, {:nodes, [:include_local]}) |> Enum.sort() ==
             Enum.sort([a.node, b.node, c.node])

    bn = b.node
    cn = c.node
    assert_receive {:process_hub, :pre_cluster_join_hook, ^bn}, 5000
    assert_receive {:process_hub, :post_cluster_join_hook, ^bn}, 5000
    assert_receive {:process_hub, :post_cluster_join_hook, ^cn}, 5000

    # kill -9: the connection closes, the others drop the member at once
    t0 = PhTest.now_ms()
    PhTest.kill_node(c)
    assert wait_until(fn -> members(a) == [b.node] and members(b) == [a.node] end, 5_000)
    assert PhTest.now_ms() - t0 < 3_000
    assert_receive {:process_hub, :pre_cluster_leave_hook, ^cn}, 5000
    assert_receive {:process_hub, :post_cluster_leave_hook, ^cn}, 5000

    # SIGTERM: b says goodbye
    assert PhTest.stop_node(b) == {:ok, 0}
    assert wait_until(fn -> members(a) == [] end, 3_000)
    assert_receive {:process_hub, :post_cluster_leave_hook, ^bn}, 5000

    # a restarted member rejoins through its seed
    c2 = PhTest.start_node(name: c.alive, ticktime: @ticktime, args: ["--join", Atom.to_string(a.node)])
    on_exit(fn -> if PhTest.alive?(c2), do: PhTest.kill_node(c2) end)
    assert wait_until(fn -> members(a) == [c2.node] and members(c2) == [a.node] end, 10_000)
  end

  defp dump(n), do: GenServer.call({:my_hub, n.node}, :registry_dump)

  test "registries are synchronised: starts, stops, late joiners, dead members" do
    a = start([])
    on_exit(fn -> if PhTest.alive?(a), do: PhTest.kill_node(a) end)
    b = start(["--join", Atom.to_string(a.node)])
    on_exit(fn -> if PhTest.alive?(b), do: PhTest.kill_node(b) end)
    c = start(["--join", Atom.to_string(a.node)])
    on_exit(fn -> if PhTest.alive?(c), do: PhTest.kill_node(c) end)
    assert wait_until(fn -> length(members(a)) == 2 and length(members(c)) == 2 end, 10_000)

    specs = for i <- 1..300, do: %{id: "s#{i}", start: {:counter, :start_link, [i]}, restart: :transient}
    assert {:ok, %{status: :ok, started: started}} =
             GenServer.call({:my_hub, a.node}, {:start_children, specs, [awaitable: true, metadata: %{tag: :sync}]})
    assert length(started) == 300

    # children are placed on their ring owners: every member runs some
    hosts = started |> Enum.map(fn {_, [{n, _}]} -> n end) |> Enum.uniq() |> Enum.sort()
    assert hosts == Enum.sort([a.node, b.node, c.node])

    # every node's copy is the same
    assert wait_until(fn -> map_size(dump(b)) == 300 and map_size(dump(c)) == 300 end, 5_000)
    assert dump(a) == dump(b)
    assert dump(a) == dump(c)
    assert length(GenServer.call({:my_hub, c.node}, {:tag_query, :sync})) == 300

    # lookups on any node reach children running anywhere
    pid = GenServer.call({:my_hub, c.node}, {:get_pid, "s42"})
    assert node(pid) in [a.node, b.node, c.node]
    assert GenServer.call(pid, :get) == 42

    # a restart (new pid) reaches every copy
    Process.exit(pid, :boom)
    assert wait_until(fn -> GenServer.call({:my_hub, b.node}, {:get_pid, "s42"}) not in [pid, nil] end, 5_000)
    assert dump(a) == dump(b)

    # a stop asked of b is done where the children run and leaves every copy
    assert {:ok, %{status: :ok}} = GenServer.call({:my_hub, b.node}, {:stop_children, ["s1", "s2"], [awaitable: true]})
    assert wait_until(fn -> Enum.all?([a, b, c], &(map_size(dump(&1)) == 298)) end, 5_000)
    assert GenServer.call({:my_hub, a.node}, {:get_pid, "s1"}) == nil

    # a transient child that stops normally leaves every copy
    {:ok, %{status: :ok}} =
      GenServer.call({:my_hub, a.node}, {:start_child, %{id: "cr", start: {:crasher, :start_link, []}, restart: :transient}, [awaitable: true]})
    assert wait_until(fn -> GenServer.call({:my_hub, c.node}, {:get_pid, "cr"}) != nil end, 5_000)
    cr = GenServer.call({:my_hub, c.node}, {:get_pid, "cr"})
    assert GenServer.call(cr, {:stop, :normal}) == :ok
    assert wait_until(fn -> GenServer.call({:my_hub, c.node}, {:get_pid, "cr"}) == nil end, 5_000)

    # a late joiner gets the whole registry
    d = start(["--join", Atom.to_string(c.node)])
    on_exit(fn -> if PhTest.alive?(d), do: PhTest.kill_node(d) end)
    # (the children d now owns move there meanwhile: wait for the moves too)
    assert wait_until(fn -> map_size(dump(d)) == 298 and dump(d) == dump(a) end, 10_000)

    # a member killed: its children run again on the others, every copy agrees
    on_a = dump(a) |> Enum.count(fn {_, {_, nps, _}} -> Keyword.has_key?(nps, a.node) end)
    assert on_a > 0
    PhTest.kill_node(a)
    assert wait_until(
             fn ->
               Enum.all?([b, c, d], &(map_size(dump(&1)) == 298)) and dump(b) == dump(c) and
                 dump(b) == dump(d) and
                 not Enum.any?(dump(b), fn {_, {_, nps, _}} -> Keyword.has_key?(nps, a.node) end)
             end,
             5_000
           )
  end

  # 12,000 children: the asked node splits them by owner on two threads
  # (placement.c, SPLIT_PARALLEL_MIN 8192); 1,000 at a time, on one.
  test "a big start split on two threads places, refuses and keeps order as a small one" do
    [a, b, c] = cluster(3)
    n = 12_000
    specs = for i <- 1..n, do: %{id: "big#{i}", start: {:counter, :start_link, [i]}}

    # ids already running, in both halves of the list: the whole call is
    # refused and names exactly those, in the list's order
    taken = ["big7", "big5000", "big11999"]
    pre = for id <- taken, do: Enum.find(specs, &(&1.id == id))
    {:ok, %{status: :ok}} = GenServer.call({:my_hub, b.node}, {:start_children, pre, [awaitable: true]})
    assert {:error, {:already_started, ^taken}} =
             GenServer.call({:my_hub, a.node}, {:start_children, specs, [awaitable: true]}, 30_000)
    assert wait_until(fn -> Enum.all?([a, b, c], &(map_size(dump(&1)) == 3)) end, 5_000)
    {:ok, _} = GenServer.call({:my_hub, b.node}, {:stop_children, taken, [awaitable: true]})
    assert wait_until(fn -> Enum.all?([a, b, c], &(map_size(dump(&1)) == 0)) end, 5_000)

    # the big start: every child once, on its ring owner, every node a share
    {:ok, r} = GenServer.call({:my_hub, a.node}, {:start_children, specs, [awaitable: true]}, 30_000)
    assert r.status == :ok and length(r.started) == n
    assert wait_until(fn -> Enum.all?([a, b, c], &(map_size(dump(&1)) == n)) end, 10_000)
    big = for {cid, {node, _}} <- placement(a), into: %{}, do: {cid, node}
    assert big == for({cid, {node, _}} <- placement(c), into: %{}, do: {cid, node})
    assert big |> Map.values() |> Enum.uniq() |> length() == 3

    # the same ids in small starts (one thread each) land where they did
    {:ok, _} = GenServer.call({:my_hub, a.node}, {:stop_children, Enum.map(specs, & &1.id), [awaitable: true]}, 30_000)
    assert wait_until(fn -> Enum.all?([a, b, c], &(map_size(dump(&1)) == 0)) end, 10_000)
    for part <- Enum.chunk_every(specs, 1_000) do
      {:ok, %{status: :ok}} = GenServer.call({:my_hub, a.node}, {:start_children, part, [awaitable: true]}, 30_000)
    end
    assert wait_until(fn -> map_size(dump(b)) == n end, 10_000)
    assert big == for({cid, {node, _}} <- placement(b), into: %{}, do: {cid, node})
  end

  test "starts from any node: one copy per id, remote errors collected" do
    [a, b, c] = cluster(3)

    # the same 200 ids started concurrently through two nodes: each runs once
    specs = for i <- 1..200, do: %{id: "r#{i}", start: {:counter, :start_link, [i]}}
    opts = [awaitable: true, check_existing: false]
    t1 = Task.async(fn -> GenServer.call({:my_hub, a.node}, {:start_children, specs, opts}, 30_000) end)
    t2 = Task.async(fn -> GenServer.call({:my_hub, b.node}, {:start_children, specs, opts}, 30_000) end)
    {:ok, r1} = Task.await(t1, 30_000)
    {:ok, r2} = Task.await(t2, 30_000)
    assert length(r1.started) + length(r2.started) == 200
    assert length(r1.errors) + length(r2.errors) == 200
    assert Enum.all?(r1.errors ++ r2.errors, &match?({_, _, {:already_started, _}}, &1))
    assert wait_until(fn -> Enum.all?([a, b, c], &(map_size(dump(&1)) == 200)) end, 5_000)
    assert Enum.all?(dump(c), fn {_, {_, nps, _}} -> length(nps) == 1 end)

    # per-child errors come back from whichever node owns the child
    bad = for i <- 1..30, do: %{id: "bad#{i}", start: {:no_such_module, :start_link, []}}
    {:ok, r} = GenServer.call({:my_hub, c.node}, {:start_children, bad, [awaitable: true]})
    assert r.status == :error and r.started == [] and length(r.errors) == 30
    error_nodes = r.errors |> Enum.map(fn {_, n, {:unknown_module, :no_such_module}} -> n end) |> Enum.uniq()
    assert length(error_nodes) > 1

    # rollback across nodes: nothing of the call survives
    mixed = (for i <- 1..30, do: %{id: "ok#{i}", start: {:counter, :start_link, [0]}}) ++ [%{id: "broken", start: {:counter, :start_link, ["x"]}}]
    {:ok, rr} = GenServer.call({:my_hub, a.node}, {:start_children, mixed, [awaitable: true, on_failure: :rollback]})
    assert rr.rollback == true and rr.status == :error
    assert wait_until(fn -> Enum.all?([a, b, c], fn n -> Enum.all?(1..30, &(GenServer.call({:my_hub, n.node}, {:get_pid, "ok#{&1}"}) == nil)) end) end, 5_000)
  end

  # cid => {node, pid}
  defp placement(n) do
    for {cid, {_, [{node, pid}], _}} <- dump(n), into: %{}, do: {cid, {node, pid}}
  end

  test "failover on kill -9, redistribution on join, handover on graceful leave" do
    [a, b, c] = cluster(3)

    for key <- [:pre_nodes_redistribution_hook, :post_nodes_redistribution_hook, :children_migrated_hook] do
      :ok = GenServer.call({:my_hub, a.node}, {:register_hook_handlers, key, [%{id: :t, pid: self()}]})
    end

    specs = for i <- 1..600, do: %{id: "m#{i}", start: {:counter, :start_link, [i]}}
    {:ok, %{status: :ok}} = GenServer.call({:my_hub, b.node}, {:start_children, specs, [awaitable: true]})
    assert wait_until(fn -> map_size(dump(a)) == 600 and dump(a) == dump(c) end, 5_000)
    before = placement(a)

    # kill -9: c's children run again on a and b; nobody else moved
    PhTest.kill_node(c)
    assert wait_until(
             fn ->
               p = placement(a)
               map_size(p) == 600 and p == placement(b) and
                 Enum.all?(p, fn {_, {n, _}} -> n in [a.node, b.node] end)
             end,
             5_000
           )
    after_kill = placement(a)
    for {cid, {n, pid}} <- before, n != c.node, do: assert(after_kill[cid] == {n, pid}, "#{cid} moved")
    moved = for {cid, {n, _}} <- before, n == c.node, do: cid
    assert moved != []
    cn = c.node
    assert_receive {:process_hub, :pre_nodes_redistribution_hook, {:nodedown, ^cn}}, 5000
    assert_receive {:process_hub, :post_nodes_redistribution_hook, {:nodedown, ^cn}}, 5000
    # the restarted children work (fresh state from their spec)
    {_, pid} = after_kill[hd(moved)]
    assert is_integer(GenServer.call(pid, :get))

    # a fourth node joins: only children whose owner is now d move, all to d
    d = start(["--join", Atom.to_string(b.node)])
    on_exit(fn -> if PhTest.alive?(d), do: PhTest.kill_node(d) end)
    assert wait_until(
             fn ->
               p = placement(a)
               map_size(p) == 600 and Enum.any?(p, fn {_, {n, _}} -> n == d.node end) and
                 p == placement(d) and p == placement(b)
             end,
             10_000
           )
    Process.sleep(300)
    dn = d.node
    assert_receive {:process_hub, :pre_nodes_redistribution_hook, {:nodeup, ^dn}}, 5000
    assert_receive {:process_hub, :post_nodes_redistribution_hook, {:nodeup, ^dn}}, 5000
    assert_receive {:process_hub, :children_migrated_hook, {^dn, [{%{id: _}, _meta} | _]}}, 5000
    after_join = placement(a)
    assert after_join == placement(d)
    for {cid, {n, pid}} <- after_kill do
      case after_join[cid] do
        {^n, ^pid} -> :ok
        {new, _} -> assert new == d.node, "#{cid} moved from #{n} to #{new}, not to the new node"
      end
    end

    # graceful leave of b: its children are started on the others before b
    # exits (each survivor confirms after starting its share), none lost
    on_b = for {cid, {n, _}} <- after_join, n == b.node, do: cid
    assert on_b != []
    assert PhTest.stop_node(b) == {:ok, 0}
    running = Enum.flat_map([a, d], fn n -> GenServer.call({:my_hub, n.node}, {:process_list, :local}) end)
    running_ids = MapSet.new(running, fn {cid, _} -> cid end)
    assert Enum.all?(on_b, &MapSet.member?(running_ids, &1)), "some of b's children were not running when b exited"
    assert length(running) == 600
    assert PhTest.wait_log(b, "leaving the hub cluster; 2 member(s) take over our children", 1_000)
    assert wait_until(
             fn ->
               p = placement(a)
               map_size(p) == 600 and p == placement(d) and
                 Enum.all?(p, fn {_, {n, _}} -> n in [a.node, d.node] end)
             end,
             10_000
           )
  end

  test "a start placed on a node that does not own the child goes on to the owner" do
    [a, b] = cluster(2)
    :ok = GenServer.call({:my_hub, a.node}, {:register_hook_handlers, :forwarded_migration_hook, [%{id: :t, pid: self()}]})

    # find ids the ring gives to b, then free them again
    specs = for i <- 1..40, do: %{id: "w#{i}", start: {:counter, :start_link, [i]}}
    {:ok, %{status: :ok}} = GenServer.call({:my_hub, a.node}, {:start_children, specs, [awaitable: true]})
    on_b = for {cid, {n, _}} <- placement(a), n == b.node, do: cid
    on_a = for {cid, {n, _}} <- placement(a), n == a.node, do: cid
    assert on_b != [] and on_a != []
    {:ok, _} = GenServer.call({:my_hub, a.node}, {:stop_children, Enum.map(specs, & &1.id), [awaitable: true]})
    assert wait_until(fn -> dump(a) == %{} and dump(b) == %{} end, 5_000)

    # a placement message as a member with a different ring would send it:
    # one child owned by b, one owned by a, both sent to a
    [fb | _] = on_b
    [fa | _] = on_a
    fwd = [%{id: fb, start: {:counter, :start_link, [7]}}, %{id: fa, start: {:counter, :start_link, [8]}}]
    ref = make_ref()
    an = a.node
    bn = b.node
    send({:my_hub, a.node}, {:"$ph_hub", :start, ref, self(), fwd, [metadata: %{tag: "fw"}]})
    # first the notice that b answers too, then both answers
    assert_receive {:"$ph_hub", :start_forwarded, ^ref, ^an, [^bn]}, 5_000
    assert_receive {:"$ph_hub", :start_result, ^ref, ^an, {:ok, %{status: :ok, started: [{^fa, [{^an, _}]}]}}}, 5_000
    assert_receive {:"$ph_hub", :start_result, ^ref, ^bn, {:ok, %{status: :ok, started: [{^fb, [{^bn, _}]}]}}}, 5_000
    assert_receive {:process_hub, :forwarded_migration_hook, [{^bn, [%{child_id: ^fb, nodes: [^bn], metadata: %{tag: "fw"}}]}]}, 5_000
    assert wait_until(fn -> placement(a) == placement(b) and map_size(placement(a)) == 2 end, 5_000)
    assert {^bn, _} = placement(a)[fb]

    # a forwarded start is never forwarded again: it starts where it lands
    ref2 = make_ref()
    other = on_b |> Enum.at(1)
    send({:my_hub, a.node}, {:"$ph_hub", :start, ref2, self(), [%{id: other, start: {:counter, :start_link, [1]}}], [forwarded: true]})
    assert_receive {:"$ph_hub", :start_result, ^ref2, ^an, {:ok, %{status: :ok, started: [{^other, [{^an, _}]}]}}}, 5_000
    refute_received {:"$ph_hub", :start_forwarded, ^ref2, _, _}
  end

  test "hubs find each other through a BEAM node connected to both" do
    cfg = Path.join(PhTest.tmp_dir(), "discover_#{System.unique_integer([:positive])}.json")
    hub = :"disc_#{System.unique_integer([:positive])}"
    File.write!(cfg, ~s({"hub_id": "#{hub}", "hubs_discover_interval": 300}))
    # neither knows the other; this test node talks to both
    a = PhTest.start_node(ticktime: @ticktime, args: ["--config", cfg], beam_discovery: true)
    on_exit(fn -> if PhTest.alive?(a), do: PhTest.kill_node(a) end)
    b = PhTest.start_node(ticktime: @ticktime, args: ["--config", cfg], beam_discovery: true)
    on_exit(fn -> if PhTest.alive?(b), do: PhTest.kill_node(b) end)
    # a third one with discovery off stays alone although it is seen too
    c = PhTest.start_node(ticktime: @ticktime, args: ["--config", cfg])
    on_exit(fn -> if PhTest.alive?(c), do: PhTest.kill_node(c) end)
    nodes = fn n -> GenServer.call({hub, n.node}, {:nodes, []}) |> Enum.sort() end
    assert wait_until(fn -> nodes.(a) == Enum.sort([b.node, c.node]) and nodes.(b) == Enum.sort([a.node, c.node]) end, 10_000),
           "a: #{inspect(nodes.(a))}, b: #{inspect(nodes.(b))}"
    # c was greeted by a and b, so it is a member too: discovery is one-sided
    assert nodes.(c) == Enum.sort([a.node, b.node])
    {:ok, %{status: :ok}} =
      GenServer.call({hub, a.node}, {:start_children, [%{id: :x, start: {:echo, :start_link, []}}], [awaitable: true]})
    assert wait_until(fn -> GenServer.call({hub, b.node}, {:get_pid, :x}) != nil end, 5_000)
  end

  test "malformed and unexpected hub messages are ignored; the cluster keeps working" do
    [a, b] = cluster(2)
    specs = for i <- 1..20, do: %{id: "g#{i}", start: {:counter, :start_link, [i]}}
    {:ok, %{status: :ok}} = GenServer.call({:my_hub, a.node}, {:start_children, specs, [awaitable: true]})
    assert wait_until(fn -> map_size(dump(a)) == 20 and dump(a) == dump(b) end, 5_000)
    before = dump(a)

    bn = b.node
    garbage = [
      {:"$ph_hub"},
      {:"$ph_hub", :hello},
      {:"$ph_hub", :hello, :not_a_pid, [:x]},
      {:"$ph_hub", :welcome, :not_a_pid, :not_a_list},
      {:"$ph_hub", :leave, self(), []},
      {:"$ph_hub", :leave_done, self(), []},
      {:"$ph_hub", :registered, bn, :not_a_list},
      {:"$ph_hub", :registered, bn, [{:too, :short}, 42, {"g1", :spec, :not_a_pid, %{}}]},
      {:"$ph_hub", :registered, :"nobody@nowhere", [{"zz", %{}, self(), %{}}]},
      {:"$ph_hub", :unregistered, bn, [1, 2.0, {}]},
      {:"$ph_hub", :repair, bn, "not a list"},
      {:"$ph_hub", :repair, bn, [{:bad}]},
      {:"$ph_hub", :stop, bn, :nope},
      {:"$ph_hub", :stop, bn, ["g1"]},
      {:"$ph_hub", :stop, bn, ["g1"], :not_a_stamp},
      {:"$ph_hub", :stop_late, bn, :nope},
      {:"$ph_hub", :stop_late, bn, [{"g1", 0}, {"g2", -5}, {"g3"}, :x, {1.5, 7}]},
      {:"$ph_hub", :stop_await, make_ref(), bn, ["g1"]},
      {:"$ph_hub", :start, :not_a_ref, self(), :not_a_list, :not_opts},
      {:"$ph_hub", :start, make_ref(), self(), [%{no_id: true}, 7], [timeout: -1]},
      {:"$ph_hub", :start_result, make_ref(), bn, {:ok, %{started: [1, 2]}}},
      {:"$ph_hub", :start_forwarded, make_ref(), bn, [:x, 3]},
      {:"$ph_hub", :start_timeout, make_ref()},
      {:"$ph_hub", :unknown_kind, 1, 2, 3},
      {make_ref(), [:"x@y"]},
      :just_an_atom
    ]

    for m <- garbage, do: send({:my_hub, a.node}, m)
    # the bad start answered with an error result to us; nothing else came back
    assert_receive {:"$ph_hub", :start_result, _, _, {:error, {:bad_option, {:timeout, -1}}}}, 5_000

    # still alive, still members, registries untouched, and it works
    assert GenServer.call({:my_hub, a.node}, :is_alive) == true
    assert members(a) == [b.node] and members(b) == [a.node]
    assert dump(a) == before and dump(b) == before
    {:ok, %{status: :ok}} =
      GenServer.call({:my_hub, a.node}, {:start_child, %{id: "after", start: {:counter, :start_link, [0]}}, [awaitable: true]})
    assert wait_until(fn -> map_size(dump(b)) == 21 end, 5_000)
  end

  test "two members leaving at the same time: the third runs every child" do
    [a, b, c] = cluster(3)
    specs = for i <- 1..300, do: %{id: "two#{i}", start: {:counter, :start_link, [i]}}
    {:ok, %{status: :ok}} = GenServer.call({:my_hub, a.node}, {:start_children, specs, [awaitable: true]})
    assert wait_until(fn -> map_size(dump(c)) == 300 end, 5_000)

    # SIGTERM to both at once: each hands what its ring gives the other to c
    System.cmd("kill", ["-TERM", to_string(a.os_pid), to_string(b.os_pid)])
    assert PhTest.wait_exit(a, 20_000) == {:ok, 0}
    assert PhTest.wait_exit(b, 20_000) == {:ok, 0}
    cn = c.node
    assert wait_until(
             fn ->
               p = placement(c)
               members(c) == [] and map_size(p) == 300 and Enum.all?(p, fn {_, {n, _}} -> n == cn end) and
                 length(GenServer.call({:my_hub, cn}, {:process_list, :local})) == 300
             end,
             10_000
           ),
           "c runs #{length(GenServer.call({:my_hub, cn}, {:process_list, :local}))} of 300"
  end

  test "a child the joining owner cannot start keeps running where it was" do
    # a loads the sample library (module greeter); b, joining later, does not
    a = PhTest.start_node(ticktime: @ticktime, worker_lib: true)
    on_exit(fn -> if PhTest.alive?(a), do: PhTest.kill_node(a) end)
    specs = for i <- 1..60, do: %{id: "gr#{i}", start: {:greeter, :start_link, []}}
    {:ok, %{status: :ok}} = GenServer.call({:my_hub, a.node}, {:start_children, specs, [awaitable: true]})
    # counters in 12 starts with 12 different metadata: more groups than one move batch holds
    for g <- 0..11 do
      counters = for i <- 1..5, do: %{id: "ct#{g * 5 + i}", start: {:counter, :start_link, [i]}}
      {:ok, %{status: :ok}} =
        GenServer.call({:my_hub, a.node}, {:start_children, counters, [awaitable: true, metadata: %{tag: "g#{g}"}]})
    end
    b = start(["--join", Atom.to_string(a.node)])
    on_exit(fn -> if PhTest.alive?(b), do: PhTest.kill_node(b) end)
    assert wait_until(fn -> members(a) == [b.node] and members(b) == [a.node] end, 10_000)

    # the counters b owns move; every greeter stays on a (b has no such module)
    local = fn n -> GenServer.call({:my_hub, n.node}, {:process_list, :local}) |> Enum.map(&elem(&1, 0)) end
    assert wait_until(
             fn ->
               la = local.(a)
               lb = local.(b)
               Enum.all?(1..60, &("gr#{&1}" in la)) and lb != [] and
                 Enum.all?(lb, &String.starts_with?(&1, "ct")) and length(la) + length(lb) == 120 and
                 dump(a) == dump(b)
             end,
             10_000
           ),
           "a runs #{length(local.(a))}, b runs #{length(local.(b))}"
    assert PhTest.wait_log(a, "could not start on #{b.node} and keep running here", 5_000)
    # moved children kept their metadata
    assert length(GenServer.call({:my_hub, b.node}, {:tag_query, "g3"})) == 5
  end

  test "a move the joining owner answers too late is undone there: each child runs once" do
    # b's starts take 40 ms per child (slow_start): its share of 30 takes longer
    # than migr_base_timeout, so a gives up waiting, keeps the children, and
    # has b stop what it starts late; every retry goes the same way
    cfg = Path.join(PhTest.tmp_dir(), "late_move_#{System.unique_integer([:positive])}.json")
    File.write!(cfg, ~s({"migr_base_timeout": 300}))
    a = PhTest.start_node(ticktime: @ticktime, worker_lib: true, args: ["--config", cfg])
    on_exit(fn -> if PhTest.alive?(a), do: PhTest.kill_node(a) end)
    specs = for i <- 1..30, do: %{id: "sl#{i}", start: {:slow_start, :start_link, [40]}}
    {:ok, %{status: :ok}} =
      GenServer.call({:my_hub, a.node}, {:start_children, specs, [awaitable: true]}, 10_000)
    before = GenServer.call({:my_hub, a.node}, {:process_list, :local}) |> Map.new()

    b = PhTest.start_node(ticktime: @ticktime, worker_lib: true,
                          args: ["--config", cfg, "--join", Atom.to_string(a.node)])
    on_exit(fn -> if PhTest.alive?(b), do: PhTest.kill_node(b) end)
    assert wait_until(fn -> members(a) == [b.node] and members(b) == [a.node] end, 10_000)
    assert PhTest.wait_log(a, "did not answer a move", 5_000)
    # a moves them again, but only after a pause that doubles while b keeps
    # answering late (b's late copies register at a and must not re-plan the
    # move at once: a slow b got the same children about every 0.4 s, so b
    # ran them most of the time, and under load the check below never saw
    # it without them)
    assert PhTest.wait_log(a, "(moved again in 200 ms)", 5_000)
    assert PhTest.wait_log(a, "(moved again in 400 ms)", 5_000)

    local = fn n -> GenServer.call({:my_hub, n.node}, {:process_list, :local}) |> Map.new() end
    assert wait_until(
             fn ->
               local.(b) == %{} and local.(a) == before and dump(a) == dump(b) and
                 Enum.all?(dump(a), fn {_, {_, nps, _}} -> Keyword.keys(nps) == [a.node] end)
             end,
             10_000
           ),
           "a runs #{map_size(local.(a))} (same pids: #{local.(a) == before}), b runs #{map_size(local.(b))}, " <>
             "dumps agree: #{dump(a) == dump(b)}, rows: #{inspect(dump(a) |> Enum.map(fn {k, {_, nps, _}} -> {k, Keyword.keys(nps)} end) |> Enum.take(5))}"
  end

  test "periodic repair fixes a lost registry update" do
    cfg = Path.join(PhTest.tmp_dir(), "repair_#{System.unique_integer([:positive])}.json")
    File.write!(cfg, ~s({"synchronization_strategy": {"type": "pubsub", "sync_interval": 700}}))
    a = start(["--config", cfg])
    on_exit(fn -> if PhTest.alive?(a), do: PhTest.kill_node(a) end)
    # b loses its first two registry updates (test-only switch)
    b = PhTest.start_node(ticktime: @ticktime, args: ["--config", cfg, "--join", Atom.to_string(a.node)],
                          env: [{"PHNODE_TEST_DROP_SYNC", "2"}])
    on_exit(fn -> if PhTest.alive?(b), do: PhTest.kill_node(b) end)
    assert wait_until(fn -> members(a) == [b.node] and members(b) == [a.node] end, 10_000)

    # started through b: the children b owns are announced in an update that is dropped
    specs = for i <- 1..100, do: %{id: "q#{i}", start: {:counter, :start_link, [i]}}
    {:ok, %{status: :ok}} = GenServer.call({:my_hub, b.node}, {:start_children, specs, [awaitable: true]})
    on_b = dump(b) |> Enum.count(fn {_, {_, nps, _}} -> Keyword.has_key?(nps, b.node) end)
    assert on_b > 0
    assert PhTest.wait_log(b, "dropped a registry update", 5_000)
    # then a stop on b whose update is dropped too: a keeps a stale row
    {:ok, _} = GenServer.call({:my_hub, b.node}, {:stop_children, ["q1", "q2", "q3"], [awaitable: true]})

    # the repair (every 700 ms) makes both copies agree
    assert wait_until(fn -> dump(a) == dump(b) end, 5_000),
           "a has #{map_size(dump(a))} rows, b #{map_size(dump(b))}"
    assert map_size(dump(a)) == 97
  end

  test "the ring's atom encoding is configurable; a bad value is refused" do
    cfg = Path.join(PhTest.tmp_dir(), "otp26_#{System.unique_integer([:positive])}.json")
    File.write!(cfg, ~s({"distribution_strategy": {"type": "consistent_hashing", "atom_encoding": "otp26"}}))
    a = start(["--config", cfg])
    on_exit(fn -> if PhTest.alive?(a), do: PhTest.kill_node(a) end)
    assert {:ok, %{status: :ok}} =
             GenServer.call({:my_hub, a.node}, {:start_child, %{id: :x, start: {:echo, :start_link, []}}, [awaitable: true]})

    bad = Path.join(PhTest.tmp_dir(), "otp27_#{System.unique_integer([:positive])}.json")
    File.write!(bad, ~s({"distribution_strategy": {"type": "consistent_hashing", "atom_encoding": "otp27"}}))
    {out, status} = System.cmd(PhTest.phnode(), ["--name", "bad_enc_#{System.unique_integer([:positive])}@127.0.0.1", "--cookie", "x", "--config", bad], stderr_to_stdout: true)
    assert status == 2
    assert out =~ "distribution_strategy.atom_encoding"
  end

  test "a hub with another hub_id is not a member" do
    a = start([])
    on_exit(fn -> if PhTest.alive?(a), do: PhTest.kill_node(a) end)
    cfg = Path.join(PhTest.tmp_dir(), "other_hub_#{System.unique_integer([:positive])}.json")
    File.write!(cfg, ~s({"hub_id": "other_hub"}))
    o = start(["--config", cfg, "--join", Atom.to_string(a.node)])
    on_exit(fn -> if PhTest.alive?(o), do: PhTest.kill_node(o) end)
    Process.sleep(1_000)
    assert members(a) == []
    assert GenServer.call({:other_hub, o.node}, {:nodes, []}) == []
  end
end
