# Hooks and API entries as ProcessHub has them (issue 18): every hook at
# ProcessHub's moment with its data (processhub-behaviour.md §5.2-5.3), M/F/A
# handlers awaited in priority order with the alter hook's answer used, the
# lock, and the API entries of §3 that were missing. Each test failed before
# the change it covers.
#
# Run by test/integration/run.sh.
Code.require_file("support/ph_test.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 120_000
)

# M/F/A hook handlers: applied on this (the test) node by its rex.
defmodule HookFns do
  # child_data_alter_hook: the counter starts at 41 and the metadata says so
  def alter(%{child_spec: %{start: {m, f, _}} = cs, metadata: meta} = d) do
    %{d | child_spec: %{cs | start: {m, f, [41]}}, metadata: Map.put(meta, :altered, true)}
  end

  def crash(_data), do: raise("a crashing hook handler")

  # tells `to` it runs, then blocks until released (or gives up after 20 s)
  def block(to, tag, data) do
    send(to, {:blocked, tag, self()})

    receive do
      :release -> data
    after
      20_000 -> data
    end
  end

  # reports after a pause: a lower-priority handler must still come second
  def report_late(to, tag, data) do
    Process.sleep(300)
    send(to, {:mfa, tag, data})
    :ok
  end

  def report(to, tag, data) do
    send(to, {:mfa, tag, data})
    :ok
  end
end

defmodule PhNode.HooksParityTest do
  use ExUnit.Case, async: false

  @ticktime 2

  defp call(server, request, timeout \\ 15_000), do: GenServer.call(server, request, timeout)

  defp start(cfg_json, extra \\ []) do
    cfg = Path.join(PhTest.tmp_dir(), "hooks_#{System.unique_integer([:positive])}.json")
    File.write!(cfg, cfg_json)

    n =
      PhTest.start_node(
        ticktime: @ticktime,
        worker_lib: true,
        args: ["--config", cfg] ++ Keyword.get(extra, :args, [])
      )

    on_exit(fn -> if PhTest.alive?(n), do: PhTest.kill_node(n) end)
    n
  end

  defp hub(n), do: {:my_hub, n.node}
  defp uid(p), do: "#{p}_#{System.unique_integer([:positive, :monotonic])}"
  defp spec(id, args \\ [0]), do: %{id: id, start: {:counter, :start_link, args}}

  defp mfa(id, f, a, p \\ 0), do: %{id: id, m: HookFns, f: f, a: a, p: p}

  defp register!(n, key, handlers),
    do: assert(call(hub(n), {:register_hook_handlers, key, handlers}) == :ok)

  defp members(n), do: call(hub(n), {:nodes, []})

  defp wait_until(fun, ms), do: PhTest.wait_until(fun, ms)

  describe "M/F/A handlers are called and awaited" do
    test "child_data_alter_hook: the M/F/A handler's answer is what starts and is stored" do
      a = start(~s({"hook_timeout": 10000}))
      register!(a, :child_data_alter_hook, [mfa(:alt, :alter, [:_])])
      id = uid("alt")

      {:ok, %{status: :ok, started: [{^id, [{_, pid}]}]}} =
        call(hub(a), {:start_child, spec(id), [awaitable: true]})

      assert GenServer.call(pid, :get) == 41
      {%{start: {:counter, :start_link, [41]}}, _, meta} =
        call(hub(a), {:child_lookup, id, [with_metadata: true]})

      assert meta[:altered] == true
      # not awaited: the same
      id2 = uid("alt2")
      {:ok, :start_initiated} = call(hub(a), {:start_child, spec(id2), []})
      assert wait_until(fn -> call(hub(a), {:get_pid, id2}) != nil end, 10_000)
      assert GenServer.call(call(hub(a), {:get_pid, id2}), :get) == 41
    end

    test "a crashing handler is logged and skipped; one that does not answer is skipped after hook_timeout" do
      a = start(~s({"hook_timeout": 400}))
      register!(a, :child_data_alter_hook, [mfa(:boom, :crash, [:_], 10), mfa(:slow, :block, [self(), :slow, :_], 5)])
      id = uid("skip")

      {:ok, %{status: :ok, started: [{^id, [{_, pid}]}]}} =
        call(hub(a), {:start_child, spec(id, [7]), [awaitable: true]})

      assert_receive {:blocked, :slow, _}, 5000
      # neither handler changed anything
      assert GenServer.call(pid, :get) == 7
      assert PhTest.wait_log(a, "child_data_alter_hook handler boom", 5000)
      assert PhTest.wait_log(a, "did not answer", 5000)
    end

    test "the hub answers other requests while it waits for a handler" do
      a = start(~s({"hook_timeout": 30000}))
      register!(a, :child_data_alter_hook, [mfa(:hold, :block, [self(), :hold, :_])])
      id = uid("hold")
      me = self()
      starter = spawn(fn -> send(me, {:started, call(hub(a), {:start_child, spec(id), [awaitable: true, timeout: 25_000]}, 30_000)}) end)
      assert_receive {:blocked, :hold, handler}, 10_000
      # the hub is not stalled: queries answer while the handler holds the start
      assert call(hub(a), :registry_count, 5000) == 0
      assert call(hub(a), {:get_pid, id}, 5000) == nil
      refute_received {:started, _}
      send(handler, :release)
      assert_receive {:started, {:ok, %{status: :ok, started: [{^id, _}]}}}, 10_000
      assert Process.alive?(starter) == false
    end

    test "priorities hold across handler kinds: a pid handler after a slower M/F/A one of higher priority" do
      a = start(~s({"hook_timeout": 10000}))
      register!(a, :registry_pid_insert_hook, [
        %{id: :pid_low, pid: self(), p: 1},
        mfa(:mfa_high, :report_late, [self(), :high, :_], 10),
        mfa(:mfa_lowest, :report, [self(), :lowest, :_], 0)
      ])

      id = uid("prio")
      {:ok, _} = call(hub(a), {:start_child, spec(id), [awaitable: true]})
      got = for _ <- 1..3, do: receive(do: (m -> m), after: (10_000 -> :none))

      assert [{:mfa, :high, {^id, _}}, {:process_hub, :registry_pid_insert_hook, {^id, _}},
              {:mfa, :lowest, {^id, _}}] = got
    end
  end

  # --- the API entries -------------------------------------------------------------

  describe "API" do
    test "async_wait: ProcessHub's formatted result; start_child gives the first entry" do
      a = start("{}")
      node = a.node
      id = uid("aw")
      assert {:ok, {^id, [{^node, pid}]}} =
               call(hub(a), {:start_child, spec(id), [async_wait: true]})
      assert is_pid(pid)
      ids = [uid("aw1"), uid("aw2")]
      assert {:ok, started} = call(hub(a), {:start_children, Enum.map(ids, &spec/1), [async_wait: true]})
      assert Enum.sort(for {c, [{^node, _}]} <- started, do: c) == Enum.sort(ids)
      bad = uid("awbad")
      assert {:error, {{^bad, ^node, {:unknown_module, :nope}}, []}} =
               call(hub(a), {:start_child, %{id: bad, start: {:nope, :start_link, []}}, [async_wait: true, disable_logging: true]})
      ok2 = uid("awok")
      assert {:error, {[{^bad, ^node, _}], [{^ok2, _}]}, :rollback} =
               call(hub(a), {:start_children, [spec(ok2), %{id: bad, start: {:nope, :start_link, []}}],
                             [async_wait: true, on_failure: :rollback, disable_logging: true]})
      assert {:ok, [{^id, [^node]}]} = call(hub(a), {:stop_children, [id], [async_wait: true]})
      # an error of the whole call passes through, as format/1 does
      assert {:error, {:already_started, _}} = call(hub(a), {:start_children, [spec(hd(ids))], [async_wait: true]})
      assert {:error, {:bad_option, {:async_wait, 3}}} = call(hub(a), {:start_child, spec(uid("x")), [async_wait: 3]})
    end

    test "explicit nils are accepted as ProcessHub keeps them; the default timeout stays under GenServer.call's" do
      a = start(~s({"hook_timeout": 30000}))
      id = uid("nil")
      assert {:ok, %{status: :ok, started: [{^id, _}]}} =
               call(hub(a), {:start_child, spec(id), [awaitable: true, timeout: nil, await_timeout: nil, check_existing: nil]})
      # an owner that does not answer in time (its start waits for a held alter
      # handler): with every default, GenServer.call's 5 s is not reached
      register!(a, :child_data_alter_hook, [mfa(:hold, :block, [self(), :hold, :_])])
      slow = uid("slow")
      result = GenServer.call(hub(a), {:start_child, spec(slow), [awaitable: true]})
      node = a.node
      assert {:ok, %{status: :error, errors: [{_, ^node, :node_receive_timeout}]}} = result
      assert_receive {:blocked, :hold, handler}, 5000
      send(handler, :release)
    end

    test "promote_to_node, is_locked, stop and is_alive" do
      a = start("{}")
      node = a.node
      assert call(hub(a), {:promote_to_node, node}) == :ok
      assert call(hub(a), {:promote_to_node, :other@host}) == {:error, {:node_name_fixed, node}}
      assert call(hub(a), :is_locked) == false
      register!(a, :coordinator_shutdown_hook, [%{id: :sd, pid: self()}])
      id = uid("st")
      {:ok, %{started: [{^id, [{_, pid}]}]}} = call(hub(a), {:start_child, spec(id), [awaitable: true]})
      ref = Process.monitor(pid)
      assert call({:phnode, node}, {:is_alive, :my_hub}) == true
      assert call({:phnode, node}, {:is_alive, :no_such_hub}) == false
      assert call({:phnode, node}, {:stop, :my_hub}) == :ok
      assert_receive {:process_hub, :coordinator_shutdown_hook, :shutdown}, 5000
      assert_receive {:DOWN, ^ref, :process, ^pid, _}, 5000
      assert call({:phnode, node}, {:is_alive, :my_hub}) == false
      assert call({:phnode, node}, {:stop, :my_hub}) == {:error, :not_alive}
      # the node itself is still up
      assert call({:phnode, node}, :modules) |> is_list()
    end
  end

  # --- hooks at ProcessHub's moments with its data --------------------------------

  describe "cluster hooks" do
    test "a join: lock, post_cluster_join_hook before the redistribution, unlock; children_migrated_hook once moved" do
      a = start(~s({"hook_timeout": 30000}))
      me = self()

      for key <- [:priority_state_updated_hook, :post_cluster_join_hook, :pre_nodes_redistribution_hook,
                  :post_nodes_redistribution_hook, :children_migrated_hook] do
        register!(a, key, [%{id: :t, pid: me}])
      end

      specs = for i <- 1..40, do: spec("j#{i}_#{System.unique_integer([:positive])}")
      {:ok, %{status: :ok}} = call(hub(a), {:start_children, specs, [awaitable: true]})
      # the unlock waits for the redistribution hooks' handlers: held here
      register!(a, :post_nodes_redistribution_hook, [mfa(:hold, :block, [me, :post_nodes, :_], -1)])
      b = start("{}", args: ["--join", Atom.to_string(a.node)])
      bn = b.node
      assert_receive {:blocked, :post_nodes, handler}, 10_000
      assert call(hub(a), :is_locked) == true
      send(handler, :release)
      assert wait_until(fn -> call(hub(a), :is_locked) == false end, 10_000)

      got = collect(6, 10_000)
      assert [
               {:process_hub, :priority_state_updated_hook, {10, %{reset_after: 60000, local_priority_set: true}}},
               {:process_hub, :post_cluster_join_hook, ^bn},
               {:process_hub, :pre_nodes_redistribution_hook, {:nodeup, ^bn}},
               {:process_hub, :post_nodes_redistribution_hook, {:nodeup, ^bn}} | rest
             ] = got
      # the moves are done when b answers (here while the unlock was held):
      # after the redistribution hooks, in the order the events happened
      assert {:process_hub, :priority_state_updated_hook, {0, %{}}} in rest
      assert [{^bn, [{%{id: _}, %{}} | _]}] = for {:process_hub, :children_migrated_hook, d} <- rest, do: d
    end

    test "which_children :global: one entry per hub node; pid update hook on every node with {node, pid}" do
      a = start("{}")
      b = start("{}", args: ["--join", Atom.to_string(a.node)])
      assert wait_until(fn -> members(a) == [b.node] and members(b) == [a.node] end, 10_000)
      register!(a, :child_process_pid_update_hook, [%{id: :t, pid: self()}])
      specs = for i <- 1..30, do: spec("w#{i}_#{System.unique_integer([:positive])}")
      {:ok, %{status: :ok}} = call(hub(a), {:start_children, specs, [awaitable: true]})
      assert wait_until(fn -> call(hub(a), :registry_count) == 30 end, 10_000)
      wc = call(hub(a), {:which_children, [:global]}) |> Enum.sort()
      assert [{n1, k1}, {n2, k2}] = wc
      assert Enum.sort([n1, n2]) == Enum.sort([a.node, b.node])
      assert length(k1) + length(k2) == 30
      on_b = call(hub(b), {:process_list, :local})
      assert [{cid, pid} | _] = on_b
      assert {cid, pid, :worker, [:counter]} in Map.new(wc)[b.node]
      # a child on b restarts: a's hook gets {b, new_pid}
      Process.exit(pid, :kill)
      bn = b.node
      assert_receive {:process_hub, :child_process_pid_update_hook, {^bn, new}}, 10_000
      assert is_pid(new) and new != pid
      assert wait_until(fn -> call(hub(a), {:get_pid, cid}) == new end, 5000)
    end

    test "failover restarts fire the start hooks; coordinator_shutdown_hook runs before the leave is announced" do
      a = start("{}")
      b = start(~s({"hook_timeout": 30000}), args: ["--join", Atom.to_string(a.node)])
      assert wait_until(fn -> members(a) == [b.node] and members(b) == [a.node] end, 10_000)
      for key <- [:pre_children_start_hook, :post_children_start_hook, :process_startups_hook],
          do: register!(a, key, [%{id: :t, pid: self()}])
      specs = for i <- 1..30, do: spec("f#{i}_#{System.unique_integer([:positive])}")
      {:ok, %{status: :ok}} = call(hub(b), {:start_children, specs, [awaitable: true]})
      on_b = call(hub(b), {:process_list, :local}) |> Enum.map(&elem(&1, 0)) |> Enum.sort()
      assert on_b != []
      flush_hooks()
      # b leaves gracefully; its shutdown hook holds the leave
      register!(b, :coordinator_shutdown_hook, [mfa(:hold, :block, [self(), :shutdown, :_])])
      System.cmd("kill", ["-TERM", to_string(b.os_pid)])
      assert_receive {:blocked, :shutdown, handler}, 10_000
      # not announced yet: a still counts b as a member
      assert members(a) == [b.node]
      send(handler, :release)
      assert wait_until(fn -> members(a) == [] end, 15_000)
      assert_receive {:process_hub, :pre_children_start_hook, %{children: children, start_opts: _}}, 10_000
      assert Enum.sort(for c <- children, do: c.child_id) == on_b
      assert_receive {:process_hub, :post_children_start_hook, post}, 10_000
      assert Enum.sort(for {c, {:ok, _}, _, _} <- post, do: c) == on_b
      assert_receive {:process_hub, :process_startups_hook, ups}, 10_000
      assert Enum.sort(for %{cid: c} <- ups, do: c) == on_b
    end

    test "replication: insert hook per new copy, pre_children_redistribution_hook on join and leave" do
      # a short sync_interval: the replica of a child that ran before the join
      # is started by the periodic pass
      cfg = ~s({"redundancy_strategy": {"type": "replication", "replication_factor": 2},
                "synchronization_strategy": {"type": "pubsub", "sync_interval": 300}})
      a = start(cfg)
      register!(a, :registry_pid_insert_hook, [%{id: :t, pid: self()}])
      register!(a, :pre_children_redistribution_hook, [%{id: :t, pid: self()}])
      id = uid("r")
      {:ok, %{status: :ok}} = call(hub(a), {:start_child, spec(id), [awaitable: true]})
      an = a.node
      assert_receive {:process_hub, :registry_pid_insert_hook, {^id, [{^an, pa}]}}, 5000
      b = start(cfg, args: ["--join", Atom.to_string(a.node)])
      bn = b.node
      assert_receive {:process_hub, :pre_children_redistribution_hook, {entries, {:up, ^bn}}}, 10_000
      assert {^id, nodes, [pid: ^pa]} = List.keyfind(entries, id, 0)
      assert Enum.sort(nodes) == Enum.sort([an, bn])
      # b's replica: the new copy only (bulk_insert's diff)
      assert_receive {:process_hub, :registry_pid_insert_hook, {^id, [{^bn, pb}]}}, 10_000
      assert is_pid(pb)
      PhTest.kill_node(b)
      assert_receive {:process_hub, :pre_children_redistribution_hook, {down, {:down, ^bn}}}, 10_000
      assert {^id, [^an], []} = List.keyfind(down, id, 0)
    end

    test "scoreboard_updated fires on the load balancer's leader with {previous_scoreboard, node}" do
      cfg = ~s({"distribution_strategy": {"type": "centralized_load_balancer", "push_interval": 200}})
      a = start(cfg)
      register!(a, :scoreboard_updated, [%{id: :t, pid: self()}])
      b = start(cfg, args: ["--join", Atom.to_string(a.node)])
      register!(b, :scoreboard_updated, [%{id: :t, pid: self()}])
      nodes = [a.node, b.node]
      assert_receive {:process_hub, :scoreboard_updated, {board, from}}, 10_000
      assert is_map(board) and from in nodes
      assert_receive {:process_hub, :scoreboard_updated, {board2, _}}, 10_000
      assert is_map(board2)
    end
  end

  defp collect(n, ms) do
    for _ <- 1..n do
      receive do
        {:process_hub, _, _} = m -> m
      after
        ms -> :none
      end
    end
  end

  defp flush_hooks do
    receive do
      {:process_hub, _, _} -> flush_hooks()
    after
      200 -> :ok
    end
  end
end
