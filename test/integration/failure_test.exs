# Failure paths of the hub: an owner that does not answer an awaitable start
# in time (frozen with SIGSTOP), an owner that dies while a start waits for it,
# children that ignore their shutdown (killed after `shutdown` ms), and a
# joining node that never answers the moves sent to it.
# Run by test/integration/run.sh.
#
# Freezes are kept well under net_ticktime (2 s, here and on the test node):
# a peer silent for longer is dropped, which is a different failure.
Code.require_file("support/ph_test.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 60_000
)

defmodule PhNode.FailureTest do
  use ExUnit.Case, async: false

  @ticktime 2

  # --- helpers ----------------------------------------------------------------------

  defp start(args \\ []), do: PhTest.start_for_test(ticktime: @ticktime, args: args)

  # a 2-node hub cluster: b joined a (args for both)
  defp cluster(args \\ []) do
    a = start(args)
    b = start(args ++ ["--join", Atom.to_string(a.node)])
    # a SIGSTOPped node must not stay frozen if the test fails half way
    on_exit(fn -> System.cmd("kill", ["-CONT", to_string(b.os_pid)], stderr_to_stdout: true) end)
    assert wait_until(fn -> members(a) == [b.node] and members(b) == [a.node] end, 10_000)
    {a, b}
  end

  # SIGSTOP / SIGCONT to a phnode (its own pid: PhTest execs it)
  defp signal(%PhTest{os_pid: os_pid}, sig) do
    case System.cmd("kill", ["-#{sig}", to_string(os_pid)], stderr_to_stdout: true) do
      {_, 0} -> :ok
      other -> flunk("kill -#{sig} #{os_pid}: #{inspect(other)}")
    end
  end

  defp hub(n), do: {:my_hub, n.node}
  defp members(n), do: GenServer.call(hub(n), {:nodes, []}) |> Enum.sort()
  defp count(n), do: GenServer.call(hub(n), :registry_count)
  defp dump(n), do: GenServer.call(hub(n), :registry_dump)

  defp wait_until(fun, ms, pause \\ 50), do: PhTest.wait_until(fun, ms, pause)

  defp specs(prefix, n),
    do: for(i <- 1..n, do: %{id: "#{prefix}#{i}", start: {:counter, :start_link, [i]}})

  defp ids(specs), do: Enum.map(specs, & &1.id)

  # the ids of started entries, all of them running on node
  defp started_on!(started, node) do
    for {cid, nps} <- started do
      assert [{^node, pid}] = nps
      assert is_pid(pid) and node(pid) == node
      cid
    end
  end

  # --- a start across the cluster: the owner does not answer ---------------------------

  describe "awaitable start, owner frozen" do
    test "an owner that does not answer within timeout gives {:undefined, node, :node_receive_timeout}; the cluster recovers" do
      {a, b} = cluster()
      an = a.node
      bn = b.node
      sp = specs("t", 20)

      :ok = signal(b, "STOP")
      {ms, res} =
        PhTest.timed_call(hub(a), {:start_children, sp, [awaitable: true, timeout: 500]}, 5_000)

      :ok = signal(b, "CONT")

      assert {:ok, {:ok, %{status: :error, started: started, errors: errors, rollback: false}}} =
               res

      # one error for the silent node (not one per child), no child id
      assert errors == [{:undefined, bn, :node_receive_timeout}]
      assert ms >= 500 and ms < 1_500, "the reply came after #{ms} ms (timeout 500)"
      # a's share started; b's share (at least one child of 20) is not reported
      on_a = started_on!(started, an)
      late = ids(sp) -- on_a
      assert late != [], "every child was placed on a; nothing was asked of b"
      assert on_a != [], "every child was placed on b"

      # b was not dropped (the freeze was shorter than net_ticktime)
      assert members(a) == [bn] and members(b) == [an]

      # the timeout cancels nothing: b starts its share when it runs again
      # (ProcessHub: "the child may still start"), and both copies agree
      assert wait_until(fn -> count(a) == 20 and count(b) == 20 end, 5_000),
             "registry counts a=#{count(a)} b=#{count(b)}"

      assert dump(a) == dump(b)

      for cid <- late do
        pid = GenServer.call(hub(a), {:get_pid, cid})
        assert is_pid(pid) and node(pid) == bn, "#{cid}: #{inspect(pid)}"
        assert is_integer(GenServer.call(pid, :get))
      end

      # healthy: a new start through b reaches both nodes and is complete
      sp2 = specs("u", 20)

      assert {:ok, %{status: :ok, errors: [], started: started2}} =
               GenServer.call(hub(b), {:start_children, sp2, [awaitable: true, timeout: 5_000]})

      assert length(started2) == 20
      assert started2 |> Enum.map(fn {_, [{n, _}]} -> n end) |> Enum.uniq() |> Enum.sort() ==
               Enum.sort([an, bn])

      assert wait_until(fn -> count(a) == 40 and count(b) == 40 end, 5_000)

      refute PhTest.log(a) =~ "not responding"
    end

    # After the rollback reply, the owner that answered late still starts its
    # share; the asking hub stops those children when their start_result comes.

    test "rollback after a timeout also stops what the late owner starts afterwards" do
      {a, b} = cluster()
      sp = specs("r", 20)

      :ok = signal(b, "STOP")

      {_ms, res} =
        PhTest.timed_call(
          hub(a),
          {:start_children, sp, [awaitable: true, timeout: 500, on_failure: :rollback]},
          5_000
        )

      :ok = signal(b, "CONT")

      assert {:ok, {:ok, %{status: :error, rollback: true, errors: errors}}} = res
      assert errors == [{:undefined, b.node, :node_receive_timeout}]
      # give b time to run its (late) share
      Process.sleep(1_000)

      assert wait_until(fn -> count(a) == 0 and count(b) == 0 end, 5_000),
             "left running after the rollback: #{inspect(Map.keys(dump(a)))}"
    end
  end

  # --- a member cut off, a leave unanswered --------------------------------------------

  # --- an awaited stop and the members' registries --------------------------------------

  describe "awaitable stop, a member frozen or killed" do
    # Once an awaited stop returns, no registry holds the rows any more: a
    # node lost right after could otherwise restart children the caller was
    # told are stopped (one holding a row whose node it loses restarts it).
    test "it returns only once every member dropped the rows, and at once when a member dies" do
      {a, b} = cluster()
      sp = specs("q", 30)
      assert {:ok, %{status: :ok}} = GenServer.call(hub(a), {:start_children, sp, [awaitable: true]})
      assert wait_until(fn -> count(a) == 30 and count(b) == 30 end, 5_000)

      # only a's own children are asked: the rows a stops locally, that b
      # holds too, are what b must drop before the stop returns
      on_a = for {cid, _pid} <- GenServer.call(hub(a), {:process_list, :local}), do: cid
      assert on_a != [], "every child was placed on b"
      {first, second} = Enum.split(on_a, div(length(on_a), 2))

      :ok = signal(b, "STOP")
      task = Task.async(fn -> GenServer.call(hub(a), {:stop_children, first, [awaitable: true]}, 15_000) end)
      # b cannot have confirmed: the stop is still waiting (b frozen well
      # under net_ticktime, so it stays a member)
      assert Task.yield(task, 400) == nil, "the stop returned while b still held the rows"
      :ok = signal(b, "CONT")
      assert {:ok, %{status: :ok, stopped: stopped}} = Task.await(task, 15_000)
      assert Enum.sort(Enum.map(stopped, &elem(&1, 0))) == Enum.sort(first)
      # read-your-stops on every member, with no wait
      held = dump(b)
      assert Enum.filter(first, &Map.has_key?(held, &1)) == []

      # the stop's timeout answers without b, naming it
      third = Enum.take(second, 2)
      second = second -- third
      :ok = signal(b, "STOP")
      {ms, res} = PhTest.timed_call(hub(a), {:stop_children, third, [awaitable: true, timeout: 300]}, 5_000)
      :ok = signal(b, "CONT")
      assert {:ok, {:ok, %{status: :error, stopped: stopped, errors: errors}}} = res
      assert errors == [{:undefined, b.node, :node_receive_timeout}]
      assert Enum.sort(Enum.map(stopped, &elem(&1, 0))) == Enum.sort(third)
      assert ms >= 300, "the reply came after #{ms} ms (timeout 300)"
      # b gets the stop all the same once it runs again
      assert wait_until(fn -> Enum.filter(third, &Map.has_key?(dump(b), &1)) == [] end, 5_000)

      # a member that dies while the stop waits for it: the stop answers
      # when a loses it (the connection closes), not after a timeout
      :ok = signal(b, "STOP")
      task = Task.async(fn -> GenServer.call(hub(a), {:stop_children, second, [awaitable: true]}, 15_000) end)
      assert Task.yield(task, 200) == nil
      PhTest.kill_node(b)
      assert {:ok, %{status: :ok, stopped: stopped}} = Task.await(task, 15_000)
      assert Enum.sort(Enum.map(stopped, &elem(&1, 0))) == Enum.sort(second)
      assert Enum.filter(second, &Map.has_key?(dump(a), &1)) == []
    end
  end

  describe "a member cut off (silent, not closed)" do
    test "is dropped after net_ticktime, its children run on the survivor; when it is back, each child runs once" do
      cfg = Path.join(PhTest.tmp_dir(), "cut_#{System.unique_integer([:positive])}.json")
      File.write!(cfg, ~s({"hubs_discover_interval": 500}))
      {a, b} = cluster(["--config", cfg])
      sp = specs("cut", 60)
      {:ok, %{status: :ok, started: started}} =
        GenServer.call(hub(a), {:start_children, sp, [awaitable: true]})
      on_b = for {cid, [{n, _}]} <- started, n == b.node, do: cid
      assert on_b != []
      assert wait_until(fn -> count(b) == 60 end, 5_000)

      # b goes silent: no close, only the tick timeout tells
      :ok = signal(b, "STOP")
      t0 = PhTest.now_ms()
      assert wait_until(fn -> members(a) == [] end, 4 * @ticktime * 1000),
             "a still lists #{inspect(members(a))}"
      dropped_after = PhTest.now_ms() - t0
      assert dropped_after >= @ticktime * 1000 - 500, "dropped after #{dropped_after} ms"
      local_a = fn -> GenServer.call(hub(a), {:process_list, :local}) |> Enum.map(&elem(&1, 0)) end
      assert wait_until(fn -> length(local_a.()) == 60 end, 5_000)
      assert Enum.all?(on_b, &(&1 in local_a.()))

      # b is back: the two halves meet again, each child ends up running once, on its owner
      :ok = signal(b, "CONT")
      assert wait_until(fn -> members(a) == [b.node] and members(b) == [a.node] end, 15_000)

      placed = fn ->
        la = GenServer.call(hub(a), {:process_list, :local})
        lb = GenServer.call(hub(b), {:process_list, :local})
        {Enum.map(la, &elem(&1, 0)), Enum.map(lb, &elem(&1, 0))}
      end

      assert wait_until(
               fn ->
                 {la, lb} = placed.()
                 length(la) + length(lb) == 60 and MapSet.disjoint?(MapSet.new(la), MapSet.new(lb)) and
                   dump(a) == dump(b) and count(a) == 60
               end,
               15_000
             ),
             "after the heal: #{inspect(placed.())}"
    end
  end

  describe "graceful leave, a member silent" do
    test "the leaver waits migr_base_timeout for a confirmation that does not come, then exits" do
      cfg = Path.join(PhTest.tmp_dir(), "leave_#{System.unique_integer([:positive])}.json")
      File.write!(cfg, ~s({"migr_base_timeout": 800}))
      {a, b} = cluster(["--config", cfg])
      {:ok, %{status: :ok}} = GenServer.call(hub(a), {:start_children, specs("lv", 20), [awaitable: true]})

      # b cannot answer: a's leave waits its 800 ms, then a stops anyway
      :ok = signal(b, "STOP")
      t0 = PhTest.now_ms()
      assert PhTest.stop_node(a) == {:ok, 0}
      waited = PhTest.now_ms() - t0
      assert waited >= 800 and waited < 1_900, "a took #{waited} ms to leave"
      assert PhTest.log(a) =~ "did not all confirm our leave in 800 ms"

      # b, back, finds a gone and runs every child
      :ok = signal(b, "CONT")
      assert wait_until(fn -> members(b) == [] and count(b) == 20 end, 10_000)
      assert length(GenServer.call(hub(b), {:process_list, :local})) == 20
    end
  end

  describe "a joining node that never answers a move" do
    test "the children stay where they were; when it dies, each still runs once, there" do
      # on b every slow_start init takes 20 s (PH_SAMPLE_SLOW_START_MS), so its
      # hub is stuck in the first moved child; a waits migr_base_timeout
      # (300 ms) for the answer, keeps its children, and b is killed before it
      # ever answers
      cfg = Path.join(PhTest.tmp_dir(), "no_answer_#{System.unique_integer([:positive])}.json")
      File.write!(cfg, ~s({"migr_base_timeout": 300}))
      a = PhTest.start_for_test(ticktime: @ticktime, worker_lib: true, args: ["--config", cfg])
      sp = for i <- 1..20, do: %{id: "na#{i}", start: {:slow_start, :start_link, [1]}}
      {:ok, %{status: :ok}} = GenServer.call(hub(a), {:start_children, sp, [awaitable: true]})
      before = GenServer.call(hub(a), {:process_list, :local}) |> Map.new()

      b = PhTest.start_for_test(ticktime: @ticktime, worker_lib: true,
                                args: ["--config", cfg, "--join", Atom.to_string(a.node)],
                                env: [{"PH_SAMPLE_SLOW_START_MS", "20000"}])
      assert PhTest.wait_log(a, "did not answer a move in 300 ms", 10_000)
      PhTest.kill_node(b)

      assert wait_until(fn -> members(a) == [] end, 10_000)
      assert GenServer.call(hub(a), {:process_list, :local}) |> Map.new() == before
      assert Enum.all?(dump(a), fn {_, {_, nps, _}} -> Keyword.keys(nps) == [a.node] end)
    end
  end

  # --- a start across the cluster: the owner dies meanwhile ----------------------------

  describe "awaitable start, owner killed" do
    test "an owner killed while the start waits gives {:undefined, node, :node_down} at once; its share is lost" do
      {a, b} = cluster()
      an = a.node
      bn = b.node
      sp = specs("k", 20)

      :ok = signal(b, "STOP")

      task =
        Task.async(fn ->
          PhTest.timed_call(hub(a), {:start_children, sp, [awaitable: true, timeout: 20_000]}, 30_000)
        end)

      # a has started its own share (and sent b its part) before b dies
      assert wait_until(fn -> count(a) > 0 end, 3_000)
      Process.sleep(100)
      assert Task.yield(task, 0) == nil, "the start answered before b was killed"

      t_kill = PhTest.now_ms()
      PhTest.kill_node(b)
      {_ms, res} = Task.await(task, 30_000)
      after_kill = PhTest.now_ms() - t_kill

      assert {:ok, {:ok, %{status: :error, started: started, errors: errors, rollback: false}}} =
               res

      assert errors == [{:undefined, bn, :node_down}]
      # the connection closes with the process: no wait for the timeout (20 s)
      assert after_kill < 3_000, "the reply came #{after_kill} ms after the kill"

      on_a = started_on!(started, an)
      lost = ids(sp) -- on_a
      assert lost != [] and on_a != []
      assert wait_until(fn -> members(a) == [] end, 3_000)

      # a's children run; b's share was never started or registered anywhere,
      # so the failover has nothing to restart: those children are simply lost
      # (the caller learns only {:undefined, b, :node_down}, not which ids).
      Process.sleep(500)
      assert count(a) == length(on_a)
      assert Enum.sort(Map.keys(dump(a))) == Enum.sort(on_a)

      for cid <- on_a do
        pid = GenServer.call(hub(a), {:get_pid, cid})
        assert node(pid) == an and is_integer(GenServer.call(pid, :get))
      end

      for cid <- lost, do: assert(GenServer.call(hub(a), {:get_pid, cid}) == nil)

      # the survivor works alone; the lost ids can be started again (now owned by a)
      assert {:ok, %{status: :ok, errors: [], started: again}} =
               GenServer.call(hub(a), {:start_children, Enum.filter(sp, &(&1.id in lost)), [awaitable: true]})

      assert Enum.sort(started_on!(again, an)) == Enum.sort(lost)
      assert count(a) == 20
    end
  end

  # --- shutdown: children that ignore it -----------------------------------------------

  describe "shutdown timeout" do
    setup do
      ph = start()
      %{ph: ph, hub: hub(ph), node: ph.node}
    end

    defp start_one!(hub, node, spec) do
      id = spec.id

      assert {:ok, %{status: :ok, errors: [], started: [{^id, [{^node, pid}]}]}} =
               GenServer.call(hub, {:start_child, spec, [awaitable: true]})

      pid
    end

    defp crasher(id, args, extra),
      do: Map.merge(%{id: id, start: {:crasher, :start_link, args}}, Map.new(extra))

    test "crasher [:trap_exit] traps exits and ignores them; other args are refused", %{ph: ph, hub: hub, node: node} do
      pid = PhTest.spawn_worker!(ph, :crasher, [:trap_exit])
      ref = Process.monitor(pid)
      Process.exit(pid, :boom)
      Process.exit(pid, :shutdown)
      assert GenServer.call(pid, :ignored_exits) == 2
      refute_received {:DOWN, ^ref, _, _, _}
      Process.exit(pid, :kill)
      assert_receive {:DOWN, ^ref, :process, ^pid, :killed}, 2_000

      # [] as before: not trapping, an exit signal ends it
      plain = PhTest.spawn_worker!(ph, :crasher, [])
      ref = Process.monitor(plain)
      assert GenServer.call(plain, :ignored_exits) == 0
      Process.exit(plain, :boom)
      assert_receive {:DOWN, ^ref, :process, ^plain, :boom}, 2_000

      for bad <- [[:nope], :trap_exit, [:trap_exit, :trap_exit], 42] do
        assert GenServer.call({:phnode, node}, {:spawn, :crasher, bad, []}) ==
                 {:error, {:bad_args, bad}}
      end

      assert {:ok, %{status: :error, started: [], errors: [{"bad", ^node, {:bad_args, [:nope]}}]}} =
               GenServer.call(hub, {:start_child, crasher("bad", [:nope], []), [awaitable: true]})
    end

    test "a child that ignores its shutdown is killed after shutdown ms", %{hub: hub, node: node} do
      pid = start_one!(hub, node, crasher("trap", [:trap_exit], shutdown: 300))
      ref = Process.monitor(pid)

      {ms, res} =
        PhTest.timed_call(hub, {:stop_children, ["trap"], [awaitable: true]}, 10_000)

      assert res == {:ok, {:ok, %{status: :ok, stopped: [{"trap", [node]}], errors: []}}}
      assert ms >= 300 and ms < 2_000, "the stop answered after #{ms} ms (shutdown 300)"
      # dead when the stop answers: killed, not stopped
      assert_receive {:DOWN, ^ref, :process, ^pid, :killed}, 2_000
      assert GenServer.call(hub, {:child_lookup, "trap"}) == nil
      assert GenServer.call(hub, :registry_count) == 0
      # not restarted: a stop is not a crash
      Process.sleep(200)
      assert GenServer.call(hub, {:process_list, :local}) == []

      # the same child without trapping stops at once, with :shutdown
      pid = start_one!(hub, node, crasher("plain", [], shutdown: 3_000))
      ref = Process.monitor(pid)

      {ms, res} =
        PhTest.timed_call(hub, {:stop_children, ["plain"], [awaitable: true]}, 10_000)

      assert {:ok, {:ok, %{status: :ok}}} = res
      assert ms < 1_500, "a plain child took #{ms} ms to stop (shutdown 3000)"
      assert_receive {:DOWN, ^ref, :process, ^pid, :shutdown}, 2_000
      assert GenServer.call(hub, :registry_count) == 0
    end

    test "shutdown: :brutal_kill kills a trapping child at once", %{hub: hub, node: node} do
      pid = start_one!(hub, node, crasher("brutal", [:trap_exit], shutdown: :brutal_kill))
      ref = Process.monitor(pid)

      {ms, res} =
        PhTest.timed_call(hub, {:stop_children, ["brutal"], [awaitable: true]}, 10_000)

      assert res == {:ok, {:ok, %{status: :ok, stopped: [{"brutal", [node]}], errors: []}}}
      assert ms < 1_000, "a brutal kill took #{ms} ms"
      assert_receive {:DOWN, ^ref, :process, ^pid, :killed}, 2_000
      assert GenServer.call(hub, {:child_lookup, "brutal"}) == nil
      assert GenServer.call(hub, :registry_count) == 0
    end

    # One stop batch arms one shutdown timer per distinct shutdown time (hub/stop.c);
    # past four distinct times a child gets a timer of its own. Every trapping child
    # is still killed after its own shutdown, and a plain one stops at once.
    test "one stop of many children with different shutdown times kills each trapping one", %{hub: hub, node: node} do
      shutdowns = [100, 200, 300, 400, 500, 600, 100, 300]
      trapping =
        for {ms, i} <- Enum.with_index(shutdowns) do
          pid = start_one!(hub, node, crasher("t#{i}", [:trap_exit], shutdown: ms))
          {pid, Process.monitor(pid)}
        end
      plain = start_one!(hub, node, crasher("p", [], shutdown: 5_000))
      plain_ref = Process.monitor(plain)
      assert GenServer.call(hub, :local_count) == length(shutdowns) + 1
      assert GenServer.call(hub, :local_count) == length(GenServer.call(hub, {:process_list, :local}))

      ids = ["p" | for(i <- 0..(length(shutdowns) - 1), do: "t#{i}")]
      {ms, res} = PhTest.timed_call(hub, {:stop_children, ids, [awaitable: true]}, 10_000)
      assert {:ok, {:ok, %{status: :ok, errors: []}}} = res
      assert ms >= 600, "the stop answered after #{ms} ms (the longest shutdown is 600)"
      assert_receive {:DOWN, ^plain_ref, :process, ^plain, :shutdown}, 2_000
      for {pid, ref} <- trapping, do: assert_receive({:DOWN, ^ref, :process, ^pid, :killed}, 2_000)
      assert GenServer.call(hub, :registry_count) == 0
      assert GenServer.call(hub, :local_count) == 0
    end

    # phnode's SIGTERM ends every process with :shutdown whether it traps exits
    # or not (hub/runtime/runtime.c runtime_shutdown): no child holds the node up for
    # its `shutdown` ms, and the DOWN leaves before the connections close.
    test "SIGTERM ends a trapping child at once, with :shutdown", %{ph: ph, hub: hub, node: node} do
      pid = start_one!(hub, node, crasher("last", [:trap_exit], shutdown: 3_000))
      ref = Process.monitor(pid)
      # signals between two processes keep their order: once this call is
      # answered the monitor is in place (else the SIGTERM can win the race
      # and the DOWN says :noproc, rightly)
      assert GenServer.call(pid, :ignored_exits) == 0
      t0 = PhTest.now_ms()
      assert PhTest.stop_node(ph) == {:ok, 0}
      elapsed = PhTest.now_ms() - t0
      assert_receive {:DOWN, ^ref, :process, ^pid, :shutdown}, 2_000
      assert elapsed < 2_000, "phnode took #{elapsed} ms to stop"
    end

    # OTP's send_after never fires early, nor do phnode's timers: a stop never
    # answers before the child's shutdown time.

    test "a shutdown timeout never fires early", %{hub: hub, node: node} do
      for i <- 1..60 do
        id = "early#{i}"
        start_one!(hub, node, crasher(id, [:trap_exit], shutdown: 50))

        {ms, res} =
          PhTest.timed_call(hub, {:stop_children, [id], [awaitable: true]}, 10_000)

        assert {:ok, {:ok, %{status: :ok}}} = res
        assert ms >= 50, "stop #{i} answered after #{ms} ms (shutdown 50)"
      end
    end
  end
end
