# Hub tests: a BEAM node drives phnode's hub (the `hub_id` registered process)
# exactly as documented in docs/api.md, section "The hub". The semantics follow
# ProcessHub (/work/shared/docs/processhub-behaviour.md); where they differ the
# API doc wins. Every case of processhub-behaviour.md §14 that applies to a
# single node is here, marked "§14.N".
#
# Run by test/integration/run.sh as
#   elixir --name t_SUFFIX@127.0.0.1 --cookie COOKIE --erl "-kernel net_ticktime 2" \
#          test/integration/hub_test.exs
Code.require_file("support/ph_test.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 60_000
)

defmodule PhNode.HubTest do
  use ExUnit.Case, async: false

  @ticktime 2
  @call_timeout 10_000

  setup_all do
    unless Node.alive?() do
      raise "the test node is not distributed: run through test/integration/run.sh"
    end

    # the shared node: default configuration, so the hub is `my_hub`
    ph = PhTest.start_node(ticktime: @ticktime, worker_lib: true, args: ["--schedulers", "2"])
    on_exit(fn -> PhTest.stop_node(ph) end)
    %{ph: ph, node: ph.node, hub: {:my_hub, ph.node}}
  end

  # --- helpers ----------------------------------------------------------------------

  defp call(server, request, timeout \\ @call_timeout),
    do: GenServer.call(server, request, timeout)

  # a call that never raises (for on_exit clean-ups)
  defp safe_call(server, request) do
    GenServer.call(server, request, 5000)
  catch
    :exit, _ -> :exit
  end

  defp cid(prefix), do: PhTest.unique_atom("c_" <> prefix)
  defp bid(prefix), do: "b_#{prefix}_#{System.unique_integer([:positive, :monotonic])}"

  defp spec(id, module \\ :counter, args \\ [0], extra \\ []) do
    Map.merge(%{id: id, start: {module, :start_link, args}}, Map.new(extra))
  end

  defp start_await(hub, specs, opts \\ []),
    do: call(hub, {:start_children, specs, Keyword.put(opts, :awaitable, true)})

  defp stop_await(hub, ids, opts \\ []),
    do: call(hub, {:stop_children, ids, Keyword.put(opts, :awaitable, true)})

  # Starts specs (awaitable) and requires full success; returns %{cid => pid}.
  defp start_ok!(hub, specs, opts \\ []) do
    {_, node} = hub

    case start_await(hub, specs, opts) do
      {:ok, %{status: :ok, errors: [], started: started, rollback: false}} ->
        assert length(started) == length(specs), inspect(started)

        Map.new(started, fn
          {c, [{^node, pid}]} when is_pid(pid) -> {c, pid}
          other -> flunk("unexpected started entry #{inspect(other)}")
        end)

      other ->
        flunk("start of #{inspect(specs)} -> #{inspect(other)}")
    end
  end

  defp start_one!(hub, spec, opts \\ []) do
    %{id: id} = spec
    Map.fetch!(start_ok!(hub, [spec], opts), id)
  end

  # polls fun until it returns something other than nil/false; nil on timeout
  defp wait_until(fun, timeout \\ 5000) do
    deadline = PhTest.now_ms() + timeout
    do_wait_until(fun, deadline)
  end

  defp do_wait_until(fun, deadline) do
    case fun.() do
      v when v in [nil, false] ->
        if PhTest.now_ms() > deadline do
          nil
        else
          Process.sleep(20)
          do_wait_until(fun, deadline)
        end

      v ->
        v
    end
  end

  # waits until cid's registered pid is a pid other than old; returns it (or nil)
  defp wait_new_pid(hub, c, old, timeout \\ 5000) do
    wait_until(
      fn ->
        case call(hub, {:get_pid, c}) do
          pid when is_pid(pid) and pid != old -> pid
          _ -> nil
        end
      end,
      timeout
    )
  end

  defp wait_unregistered(hub, c, timeout \\ 5000) do
    wait_until(fn -> call(hub, {:child_lookup, c}) == nil end, timeout)
  end

  defp dead?(pid) do
    ref = Process.monitor(pid)

    receive do
      {:DOWN, ^ref, :process, ^pid, _} -> true
    after
      2000 ->
        Process.demonitor(ref, [:flush])
        false
    end
  end

  # every key of expected has the same value in got (the hub may add keys)
  defp assert_spec(got, expected) do
    assert is_map(got), "spec #{inspect(got)} is not a map"

    for {k, v} <- expected do
      assert Map.get(got, k) == v,
             "spec key #{inspect(k)}: #{inspect(Map.get(got, k))} != #{inspect(v)} in #{inspect(got)}"
    end
  end

  # registers a pid handler (cancelled on exit); returns its id
  defp hook!(hub, key, opts \\ []) do
    id = Keyword.get_lazy(opts, :id, fn -> PhTest.unique_atom("h") end)
    handler = %{id: id, pid: Keyword.get(opts, :pid, self()), p: Keyword.get(opts, :p, 0)}
    assert call(hub, {:register_hook_handlers, key, [handler]}) == :ok
    on_exit(fn -> safe_call(hub, {:cancel_hook_handlers, key, [id]}) end)
    id
  end

  # a bad input: the whole request refused, or one per-child {:bad_spec, _} error;
  # nil if so, else a description of the problem
  defp bad_spec_problem(res, node, what) do
    case res do
      {:error, _} ->
        nil

      {:ok, %{status: :error, started: [], errors: [{_, ^node, {:bad_spec, _}}]}} ->
        nil

      other ->
        "#{what}: expected {:error, _} or one {:bad_spec, _} error, got #{inspect(other)}"
    end
  end

  # --- tiny JSON encoder (Elixir 1.14 has no JSON module) ----------------------------

  def json(true), do: "true"
  def json(false), do: "false"
  def json(nil), do: "null"
  def json(v) when is_atom(v), do: json(Atom.to_string(v))
  def json(v) when is_binary(v), do: inspect(v, printable_limit: :infinity)
  def json(v) when is_integer(v) or is_float(v), do: to_string(v)
  def json(v) when is_list(v), do: "[" <> Enum.map_join(v, ",", &json/1) <> "]"

  def json(v) when is_map(v),
    do: "{" <> Enum.map_join(v, ",", fn {k, x} -> json(to_string(k)) <> ":" <> json(x) end) <> "}"

  defp write_config(map_or_text) do
    text = if is_binary(map_or_text), do: map_or_text, else: json(map_or_text)
    path = Path.join(PhTest.tmp_dir(), "hub_cfg_#{System.unique_integer([:positive])}.json")
    File.write!(path, text)
    path
  end

  # a phnode started with a config file (stopped on exit)
  defp start_config_node(config) do
    path = write_config(config)
    ph = PhTest.start_node(ticktime: @ticktime, args: ["--schedulers", "2", "--config", path])
    on_exit(fn -> if PhTest.alive?(ph), do: PhTest.stop_node(ph) end)
    ph
  end

  defp json_spec(id, module, args, extra \\ %{}) do
    Map.merge(
      %{"id" => id, "start" => %{"module" => module, "function" => "start_link", "args" => args}},
      extra
    )
  end

  # ===================================================================================
  # §14 edge cases, one node
  # ===================================================================================

  describe "ProcessHub §14 edge cases (single node)" do
    test "§14.1 start_children with [] -> {:error, :no_children}", %{hub: hub} do
      assert call(hub, {:start_children, [], []}) == {:error, :no_children}
      assert call(hub, {:start_children, [], [awaitable: true]}) == {:error, :no_children}
      assert call(hub, :is_alive) == true
    end

    test "§14.2 awaitable: false -> :start_initiated / :stop_initiated, and it happens",
         %{hub: hub, node: node} do
      c = cid("init")
      assert call(hub, {:start_children, [spec(c, :counter, [3])], []}) == {:ok, :start_initiated}
      pid = wait_until(fn -> call(hub, {:get_pid, c}) end)
      assert is_pid(pid), "#{inspect(c)} never appeared in the registry"
      assert node(pid) == node
      assert GenServer.call(pid, :get) == 3

      assert call(hub, {:start_children, [spec(cid("init2"))], [awaitable: false]}) ==
               {:ok, :start_initiated}

      ref = Process.monitor(pid)
      assert call(hub, {:stop_children, [c], []}) == {:ok, :stop_initiated}
      assert_receive {:DOWN, ^ref, :process, ^pid, _}, 5000
      assert wait_unregistered(hub, c), "#{inspect(c)} still registered after stop"
      assert call(hub, {:get_pid, c}) == nil
    end

    test "§14.3 starting an id already in the registry -> {:error, {:already_started, [id]}}",
         %{hub: hub} do
      a = cid("dup_atom")
      b = bid("dup_str")
      pa = start_one!(hub, spec(a))
      pb = start_one!(hub, spec(b, :echo, []))

      for id <- [a, b] do
        assert call(hub, {:start_children, [spec(id)], [awaitable: true]}) ==
                 {:error, {:already_started, [id]}}

        assert call(hub, {:start_children, [spec(id)], []}) ==
                 {:error, {:already_started, [id]}}

        assert call(hub, {:start_child, spec(id), [awaitable: true]}) ==
                 {:error, {:already_started, [id]}}
      end

      # the whole call is refused: the new id of a mixed batch is not started either
      fresh = cid("dup_fresh")

      assert call(hub, {:start_children, [spec(fresh), spec(a)], [awaitable: true]}) ==
               {:error, {:already_started, [a]}}

      assert call(hub, {:child_lookup, fresh}) == nil

      # the originals are untouched
      assert call(hub, {:get_pid, a}) == pa
      assert call(hub, {:get_pid, b}) == pb
      assert GenServer.call(pa, :get) == 0
    end

    test "§14.4 check_existing: false on a running id -> per-child {:already_started, pid}",
         %{hub: hub, node: node} do
      c = cid("chk")
      pid = start_one!(hub, spec(c, :counter, [1]))

      assert {:ok, res} = start_await(hub, [spec(c, :counter, [2])], check_existing: false)

      assert %{status: :error, started: [], errors: [{^c, ^node, {:already_started, ^pid}}]} = res

      assert res.rollback == false
      # the registry still has the first one, with its state
      assert call(hub, {:get_pids, c}) == [pid]
      assert GenServer.call(pid, :get) == 1
    end

    test "§14.5 the same spec twice in one call -> started once, one already_started error",
         %{hub: hub, node: node} do
      c = cid("twice")
      s = spec(c, :counter, [4])
      assert {:ok, res} = start_await(hub, [s, s])

      assert %{status: :error, started: [{^c, [{^node, pid}]}], errors: [{^c, ^node, err}]} = res

      assert err == {:already_started, pid}
      assert call(hub, {:get_pids, c}) == [pid]
      assert GenServer.call(pid, :get) == 4
    end

    # Deviation from ProcessHub (§14.6 gives :error with :node_receive_timeout): on
    # one node every result is local and immediate, so timeout: 0 changes nothing.
    test "§14.6 timeout: 0 on a single node -> the child starts, status :ok",
         %{hub: hub, node: node} do
      c = cid("t0")
      assert {:ok, res} = start_await(hub, [spec(c)], timeout: 0)
      assert %{status: :ok, started: [{^c, [{^node, pid}]}], errors: []} = res
      assert call(hub, {:get_pid, c}) == pid

      # await_timeout is accepted too
      c2 = cid("at")
      assert {:ok, %{status: :ok}} = start_await(hub, [spec(c2)], await_timeout: 1)
      assert is_pid(call(hub, {:get_pid, c2}))
    end

    test "§14.7 unknown module -> per-child {:unknown_module, m}; failures listed individually",
         %{hub: hub, node: node} do
      [x, y, ok] = [cid("unk1"), cid("unk2"), cid("unk_ok")]

      assert {:ok, res} =
               start_await(hub, [
                 spec(x, :no_such_module, []),
                 spec(ok, :counter, [1]),
                 spec(y, :another_missing_module, [1])
               ])

      assert res.status == :error
      assert res.rollback == false
      assert [{^ok, [{^node, pid}]}] = res.started
      assert is_pid(pid)

      assert Enum.sort(res.errors) ==
               Enum.sort([
                 {x, node, {:unknown_module, :no_such_module}},
                 {y, node, {:unknown_module, :another_missing_module}}
               ])

      assert call(hub, {:child_lookup, x}) == nil
      assert call(hub, {:child_lookup, y}) == nil
      assert call(hub, {:get_pid, ok}) == pid
    end

    test "§14.8 on_failure: :rollback -> status :error, 1 error, rollback true, registry empty",
         %{hub: hub, node: node} do
      [good, bad] = [cid("rb_good"), cid("rb_bad")]

      assert {:ok, res} =
               start_await(hub, [spec(good, :counter, [1]), spec(bad, :counter, ["x"])],
                 on_failure: :rollback
               )

      assert %{status: :error, rollback: true, errors: [{^bad, ^node, reason}]} = res
      # the reason counter's init refused the args with
      assert reason == {:bad_args, ["x"]}
      assert [{^good, [{^node, gpid}]}] = res.started
      assert is_pid(gpid)

      assert call(hub, {:child_lookup, good}) == nil
      assert call(hub, {:child_lookup, bad}) == nil
      assert call(hub, {:get_pids, good}) == []
      refute Map.has_key?(call(hub, :registry_dump), good)
      assert dead?(gpid), "the rolled-back child #{inspect(gpid)} is still alive"

      # without a failure, rollback changes nothing
      ok = cid("rb_fine")

      assert {:ok, %{status: :ok, rollback: false}} =
               start_await(hub, [spec(ok)], on_failure: :rollback)

      assert is_pid(call(hub, {:get_pid, ok}))
    end

    test "§14.8 on_failure: :rollback without awaitable -> :start_initiated, nothing left",
         %{hub: hub} do
      [good, bad] = [cid("rbn_good"), cid("rbn_bad")]

      assert call(
               hub,
               {:start_children, [spec(good, :counter, [1]), spec(bad, :no_such_module_rb, [])],
                [on_failure: :rollback]}
             ) == {:ok, :start_initiated}

      assert wait_until(fn ->
               call(hub, {:child_lookup, good}) == nil and call(hub, {:child_lookup, bad}) == nil
             end),
             "rollback without awaitable left #{inspect(call(hub, {:child_lookup, good}))}"

      Process.sleep(100)
      assert call(hub, {:child_lookup, good}) == nil
    end

    # §14.9 (stray messages vs Future.await) and §14.10 (Future.await input checks)
    # do not apply: the hub delivers results in the call's reply, there is no Future.

    test "§14.11 awaitable stop: unknown id -> :not_found at once; existing id -> stopped",
         %{hub: hub, node: node} do
      unknown = cid("never_started")
      {ms, res} = PhTest.timed_call(hub, {:stop_children, [unknown], [awaitable: true]}, 5000)

      assert {:ok, {:ok, %{status: :error, stopped: [], errors: [{^unknown, ^node, :not_found}]}}} =
               res

      assert ms < 2000, "stop of an unknown id took #{ms} ms"

      c = cid("stop_me")
      pid = start_one!(hub, spec(c))
      assert {:ok, %{status: :ok, stopped: [{^c, [^node]}], errors: []}} = stop_await(hub, [c])
      assert call(hub, {:child_lookup, c}) == nil
      assert dead?(pid)

      # mixed: one known, one unknown
      k = cid("stop_known")
      start_one!(hub, spec(k))

      assert {:ok,
              %{status: :error, stopped: [{^k, [^node]}], errors: [{^unknown, ^node, :not_found}]}} =
               stop_await(hub, [k, unknown])

      assert call(hub, {:child_lookup, k}) == nil
    end

    test "§14.12 string (binary) ids: start, lookup, stop", %{hub: hub, node: node} do
      s1 = bid("str")
      s2 = bid("str")
      pids = start_ok!(hub, [spec(s1, :counter, [10]), spec(s2, :kv, [])])
      p1 = pids[s1]
      assert GenServer.call(p1, :get) == 10
      assert call(hub, {:get_pid, s1}) == p1
      assert {spec1, [{^node, ^p1}]} = call(hub, {:child_lookup, s1})
      assert_spec(spec1, %{id: s1, start: {:counter, :start_link, [10]}})
      # the atom with the same name is a different id
      assert call(hub, {:get_pid, String.to_atom(s1)}) == nil

      assert {:ok, %{status: :ok, stopped: stopped, errors: []}} = stop_await(hub, [s1, s2])
      assert Enum.sort(stopped) == Enum.sort([{s1, [node]}, {s2, [node]}])
      assert call(hub, {:child_lookup, s1}) == nil
      assert call(hub, {:child_lookup, s2}) == nil

      # and it can be started again under the same id
      p1b = start_one!(hub, spec(s1, :counter, [11]))
      assert p1b != p1
      assert GenServer.call(p1b, :get) == 11
    end

    test "unicode and long ids come back exactly as given", %{hub: hub, node: node} do
      n = System.unique_integer([:positive])
      ua = :"ünïcödé_атом_#{n}"
      ub = "ключ_🔑_#{n}"
      long = String.duplicate("l", 5000) <> "_#{n}"
      hook!(hub, :registry_pid_insert_hook)
      pids = start_ok!(hub, [spec(ua), spec(ub), spec(long)])
      assert Map.keys(pids) |> Enum.sort() == Enum.sort([ua, ub, long])

      for id <- [ua, ub, long] do
        pid = pids[id]
        assert_receive {:process_hub, :registry_pid_insert_hook, {^id, [{^node, ^pid}]}}, 5000
        assert call(hub, {:get_pid, id}) == pid
        assert {sp, [{^node, ^pid}]} = call(hub, {:child_lookup, id})
        assert sp.id == id
        assert {id, [{node, pid}]} in call(hub, {:process_list, :global})
        assert {id, pid} in call(hub, {:process_list, :local})
        assert Map.has_key?(call(hub, :registry_dump), id)
        {^node, kids} = call(hub, {:which_children, []})
        assert {id, pid, :worker, [:counter]} in kids
      end

      # a restart keeps the id intact too
      Process.exit(pids[ua], :kill)
      assert is_pid(wait_new_pid(hub, ua, pids[ua]))

      assert {:ok, %{status: :ok, stopped: stopped}} = stop_await(hub, [ua, ub, long])
      assert Enum.sort(stopped) == Enum.sort([{ua, [node]}, {ub, [node]}, {long, [node]}])
      for id <- [ua, ub, long], do: assert(call(hub, {:child_lookup, id}) == nil)
    end

    test "§14.13 lookups of an unknown id -> nil / [] / nil", %{hub: hub} do
      u = cid("unknown")
      assert call(hub, {:child_lookup, u}) == nil
      assert call(hub, {:child_lookup, u, [with_metadata: true]}) == nil
      assert call(hub, {:get_pids, u}) == []
      assert call(hub, {:get_pid, u}) == nil
      assert call(hub, {:get_pid, "unknown binary id"}) == nil
      refute Map.has_key?(call(hub, :registry_dump), u)
    end

    test "§14.14 metadata given at start comes back from registry_dump and child_lookup",
         %{hub: hub, node: node} do
      [a, b] = [cid("meta_a"), bid("meta_b")]

      meta = %{
        "k" => [1, 2.5, "v"],
        :tag => "meta_#{System.unique_integer([:positive])}",
        :n => %{x: {1, :two}}
      }

      pids = start_ok!(hub, [spec(a), spec(b, :echo, [])], metadata: meta)

      dump = call(hub, :registry_dump)
      assert is_map(dump)

      for id <- [a, b] do
        pid = pids[id]
        assert {sp, [{^node, ^pid}], ^meta} = Map.fetch!(dump, id)
        assert_spec(sp, %{id: id})

        assert {sp2, [{^node, ^pid}], ^meta} =
                 call(hub, {:child_lookup, id, [with_metadata: true]})

        assert sp2 == sp
        assert {^sp, [{^node, ^pid}]} = call(hub, {:child_lookup, id})
      end

      # no metadata option -> %{}
      d = cid("meta_default")
      dp = start_one!(hub, spec(d))
      assert {_, [{^node, ^dp}], %{} = m} = call(hub, {:child_lookup, d, [with_metadata: true]})
      assert m == %{}
    end

    test "§14.15 is_alive -> true; a hub name that is not running -> :noproc",
         %{hub: hub, node: node} do
      assert call(hub, :is_alive) == true
      assert {_, {:exit, {:noproc, _}}} = PhTest.timed_call({:no_such_hub, node}, :is_alive, 5000)
    end

    test "§14.16 nodes on a single node -> [] and [node] with :include_local",
         %{hub: hub, node: node} do
      assert call(hub, {:nodes, []}) == []
      assert call(hub, {:nodes, [:include_local]}) == [node]
    end

    # ProcessHub flips them by manual lock / toggle_quorum_failure; nothing in the API
    # does that on one node, so both stay false.
    test "§14.17 is_locked and is_partitioned -> false", %{hub: hub} do
      assert call(hub, :is_locked) == false
      assert call(hub, :is_partitioned) == false
      start_one!(hub, spec(cid("lockcheck")))
      assert call(hub, :is_locked) == false
      assert call(hub, :is_partitioned) == false
    end

    test "§14.18 hook ids: duplicates refused, unknown cancels ok, a cancelled hook stops firing",
         %{hub: hub, node: node} do
      key = :registry_pid_insert_hook
      id = hook!(hub, key)

      # the same id again, alone or in a batch
      dup = %{id: id, pid: self(), p: 0}

      assert call(hub, {:register_hook_handlers, key, [dup]}) ==
               {:error, :failed_to_register_some_handlers}

      other = PhTest.unique_atom("h_other")
      on_exit(fn -> safe_call(hub, {:cancel_hook_handlers, key, [other]}) end)

      assert call(hub, {:register_hook_handlers, key, [dup, %{id: other, pid: self(), p: 0}]}) ==
               {:error, :failed_to_register_some_handlers}

      # duplicates within one batch
      twin = PhTest.unique_atom("h_twin")
      on_exit(fn -> safe_call(hub, {:cancel_hook_handlers, key, [twin]}) end)

      assert call(
               hub,
               {:register_hook_handlers, key,
                [%{id: twin, pid: self(), p: 0}, %{id: twin, pid: self(), p: 1}]}
             ) == {:error, :failed_to_register_some_handlers}

      # cancel whatever the failed batches may have registered, so exactly `id` is left
      assert call(hub, {:cancel_hook_handlers, key, [other, twin]}) == :ok

      # cancelling unknown ids, or under an unknown key, is fine
      assert call(hub, {:cancel_hook_handlers, key, [:no_such_handler, "nor_this"]}) == :ok
      assert call(hub, {:cancel_hook_handlers, :no_such_hook_key, [id]}) == :ok
      assert call(hub, {:cancel_hook_handlers, key, []}) == :ok

      # exactly one message per event (the refused duplicate did not register)
      c1 = cid("hk1")
      p1 = start_one!(hub, spec(c1))
      assert_receive {:process_hub, ^key, {^c1, [{^node, ^p1}]}}, 5000
      refute_receive {:process_hub, ^key, {^c1, _}}, 300

      # cancelled: no more messages
      assert call(hub, {:cancel_hook_handlers, key, [id]}) == :ok
      c2 = cid("hk2")
      start_one!(hub, spec(c2))
      refute_receive {:process_hub, ^key, {^c2, _}}, 500

      # and the id is free again
      assert call(hub, {:register_hook_handlers, key, [%{id: id, pid: self(), p: 0}]}) == :ok
      c3 = cid("hk3")
      p3 = start_one!(hub, spec(c3))
      assert_receive {:process_hub, ^key, {^c3, [{^node, ^p3}]}}, 5000
    end

    test "§14.19 transient child exiting :normal / :shutdown / {:shutdown, _} leaves the registry",
         %{hub: hub, node: node} do
      hook!(hub, :registry_pid_remove_hook)

      for reason <- [:normal, :shutdown, {:shutdown, :done}] do
        c = cid("tr")
        pid = start_one!(hub, spec(c, :crasher, [], restart: :transient))
        ref = Process.monitor(pid)
        assert GenServer.call(pid, {:stop, reason}) == :ok
        assert_receive {:DOWN, ^ref, :process, ^pid, ^reason}, 5000
        assert_receive {:process_hub, :registry_pid_remove_hook, {^c, [^node]}}, 5000
        assert wait_unregistered(hub, c), "#{inspect(c)} (#{inspect(reason)}) still registered"
        assert call(hub, {:get_pids, c}) == []
        {^node, kids} = call(hub, {:which_children, []})
        refute Enum.any?(kids, &match?({^c, _, _, _}, &1)), "#{inspect(c)} still supervised"
        # not restarted behind our back
        Process.sleep(100)
        assert call(hub, {:child_lookup, c}) == nil
        # the id can be used again
        start_one!(hub, spec(c, :crasher, [], restart: :transient))
      end
    end

    test "§14.20 100 children killed with Process.exit(pid, :error) -> all restarted, one pid-update hook each" do
      # its own node: 100 restarts at once must stay within the restart intensity
      ph = start_config_node(%{"dsup_max_restarts" => 1000, "dsup_max_seconds" => 5})
      node = ph.node
      hub = {:my_hub, node}
      hook!(hub, :child_process_pid_update_hook)

      ids = for i <- 1..100, do: "k#{i}"
      specs = for {id, i} <- Enum.with_index(ids), do: spec(id, :counter, [i])
      old = start_ok!(hub, specs)
      assert map_size(old) == 100

      # change the state so that the restart is visible
      for {_, pid} <- old, do: GenServer.cast(pid, {:add, 1000})
      for {_, pid} <- old, do: assert(GenServer.call(pid, :get) >= 1000)

      refs = for {_, pid} <- old, do: {Process.monitor(pid), pid}
      for {_, pid} <- old, do: Process.exit(pid, :error)

      for {ref, pid} <- refs do
        assert_receive {:DOWN, ^ref, :process, ^pid, :error}, 5000
      end

      # ProcessHub passes {node, new_pid}
      updates =
        for _ <- 1..100 do
          receive do
            {:process_hub, :child_process_pid_update_hook, {^node, p}} -> p
          after
            10_000 -> flunk("pid update hooks: fewer than 100 arrived")
          end
        end

      new_pids = call(hub, {:process_list, :local}) |> Enum.map(fn {_, p} -> p end)
      assert Enum.sort(updates) == Enum.sort(new_pids)
      refute_receive {:process_hub, :child_process_pid_update_hook, _}, 300

      list = call(hub, {:process_list, :global})
      assert length(list) == 100

      for {id, i} <- Enum.with_index(ids) do
        assert [{^node, new}] = :proplists.get_value(id, list)
        assert new != old[id], "#{id} kept its old pid"
        # restarted from its spec: the initial value again
        assert GenServer.call(new, :get) == i
        assert call(hub, {:get_pid, id}) == new
      end

      assert call(hub, :is_alive) == true
    end
  end

  # ===================================================================================
  # the request table of docs/api.md
  # ===================================================================================

  describe "requests" do
    test "a big batch (started on two threads) gives the same results in the same order",
         %{hub: hub, node: node} do
      p = "big#{System.unique_integer([:positive])}_"
      running = "#{p}running"
      running_pid = start_one!(hub, spec(running))
      # 6000 children: ok ones, bad specs, unknown modules, init errors,
      # an id already running here and ids repeated within the batch
      specs =
        for i <- 1..6000 do
          cond do
            i == 10 -> %{start: {:counter, :start_link, [0]}}
            i == 20 -> spec("#{p}1")
            i == 30 -> spec(running)
            rem(i, 1000) == 7 -> spec("#{p}#{i}", :no_such_module)
            rem(i, 1000) == 8 -> spec("#{p}#{i}", :counter, [:not_an_integer])
            i == 5999 -> spec("#{p}8", :counter, [1])
            true -> spec("#{p}#{i}")
          end
        end

      {:ok, res} = start_await(hub, specs, check_existing: false)
      assert res.status == :error and res.rollback == false
      ok_ids = for %{id: id, start: {:counter, _, [n]}} <- specs, is_integer(n), id != running, do: id
      ok_ids = Enum.uniq(ok_ids) -- ["#{p}8"]
      assert Enum.map(res.started, &elem(&1, 0)) == ok_ids
      assert Enum.all?(res.started, fn {_, [{^node, pid}]} -> is_pid(pid) end)
      pids = Map.new(res.started, fn {id, [{_, pid}]} -> {id, pid} end)
      errors = res.errors
      assert length(errors) == 1 + 1 + 1 + 6 + 6 + 1
      # in the batch's order
      p1 = pids["#{p}1"]

      assert [
               {p7, ^node, {:unknown_module, :no_such_module}},
               {p8, ^node, {:bad_args, [:not_an_integer]}},
               {:undefined, ^node, {:bad_spec, _}},
               {p1_dup, ^node, {:already_started, ^p1}},
               {^running, ^node, {:already_started, ^running_pid}} | _
             ] = errors

      assert {p7, p8, p1_dup} == {"#{p}7", "#{p}8", "#{p}1"}
      assert Enum.count(errors, &match?({_, _, {:unknown_module, :no_such_module}}, &1)) == 6
      assert Enum.count(errors, &match?({_, _, {:bad_args, [:not_an_integer]}}, &1)) == 7
      # a repeat of an id whose start failed fails the same way
      assert List.last(errors) == {"#{p}8", node, {:bad_args, [:not_an_integer]}}
      assert call(hub, {:get_pid, "#{p}1"}) == pids["#{p}1"]
      assert GenServer.call(pids["#{p}6000"], :get) == 0
      assert call(hub, :registry_count) >= length(ok_ids) + 1
      {:ok, _} = stop_await(hub, [running | ok_ids])
    end

    test "registry_changed_at: counts row changes and stamps the last one; reads change nothing", %{hub: hub} do
      {n0, _} = call(hub, :registry_changed_at)
      t0 = System.os_time(:millisecond)
      c = cid("changed_at")
      {:ok, %{status: :ok}} = call(hub, {:start_child, spec(c, :counter, [1]), [awaitable: true]})
      t1 = System.os_time(:millisecond)
      assert {n1, at} = call(hub, :registry_changed_at)
      assert n1 > n0 and is_integer(at) and at >= t0 and at <= t1, inspect({n0, n1, at, t0, t1})
      assert is_pid(call(hub, {:get_pid, c}))
      assert call(hub, :registry_changed_at) == {n1, at}
      {:ok, %{status: :ok}} = call(hub, {:stop_child, c, [awaitable: true]})
      assert {n2, at2} = call(hub, :registry_changed_at)
      assert n2 > n1 and at2 >= at
    end

    test "start_child / stop_child (single forms)", %{hub: hub, node: node} do
      c = cid("single")
      assert {:ok, res} = call(hub, {:start_child, spec(c, :counter, [7]), [awaitable: true]})
      assert %{status: :ok, started: [{^c, [{^node, pid}]}], errors: [], rollback: false} = res
      assert GenServer.call(pid, :get) == 7

      assert call(hub, {:stop_child, c, [awaitable: true]}) ==
               {:ok, %{status: :ok, stopped: [{c, [node]}], errors: []}}

      assert call(hub, {:child_lookup, c}) == nil

      c2 = cid("single_async")
      assert call(hub, {:start_child, spec(c2), []}) == {:ok, :start_initiated}
      pid2 = wait_until(fn -> call(hub, {:get_pid, c2}) end)
      assert is_pid(pid2)
      assert call(hub, {:stop_child, c2, []}) == {:ok, :stop_initiated}
      assert wait_unregistered(hub, c2)

      u = cid("single_unknown")

      assert call(hub, {:stop_child, u, [awaitable: true]}) ==
               {:ok, %{status: :error, stopped: [], errors: [{u, node, :not_found}]}}
    end

    test "process_list :global and :local", %{hub: hub, node: node} do
      [a, b] = [cid("pl_a"), bid("pl_b")]
      pids = start_ok!(hub, [spec(a), spec(b, :kv, [])])
      global = call(hub, {:process_list, :global})
      assert is_list(global)
      assert {a, [{node, pids[a]}]} in global
      assert {b, [{node, pids[b]}]} in global
      # one entry per id
      assert length(Enum.uniq_by(global, &elem(&1, 0))) == length(global)

      local = call(hub, {:process_list, :local})
      assert is_list(local)
      assert {a, pids[a]} in local
      assert {b, pids[b]} in local
      assert length(local) == length(global)

      stop_await(hub, [a])
      refute Enum.any?(call(hub, {:process_list, :global}), &match?({^a, _}, &1))
      refute Enum.any?(call(hub, {:process_list, :local}), &match?({^a, _}, &1))
    end

    test "child_lookup with and without metadata; get_pid / get_pids", %{hub: hub, node: node} do
      c = cid("lk")
      s = spec(c, :counter, [2], restart: :transient, shutdown: 3000)
      pid = start_one!(hub, s, metadata: %{tag: "lk_tag", owner: :me})

      assert {sp, [{^node, ^pid}]} = call(hub, {:child_lookup, c})
      assert_spec(sp, s)

      assert {^sp, [{^node, ^pid}], %{tag: "lk_tag", owner: :me}} =
               call(hub, {:child_lookup, c, [with_metadata: true]})

      assert {^sp, [{^node, ^pid}]} = call(hub, {:child_lookup, c, [with_metadata: false]})
      assert {^sp, [{^node, ^pid}]} = call(hub, {:child_lookup, c, []})
      assert call(hub, {:get_pid, c}) == pid
      assert call(hub, {:get_pids, c}) == [pid]
    end

    test "1000 children in one call: all registered, then all stopped", %{hub: hub, node: node} do
      prefix = bid("big")
      ids = for i <- 1..1000, do: "#{prefix}_#{i}"

      {us, pids} =
        :timer.tc(fn ->
          start_ok!(hub, Enum.map(ids, &spec(&1, :echo, [])), metadata: %{tag: prefix})
        end)

      assert map_size(pids) == 1000
      assert length(Enum.uniq(Map.values(pids))) == 1000
      assert length(call(hub, {:tag_query, prefix})) == 1000
      local = Map.new(call(hub, {:process_list, :local}))
      for id <- ids, do: assert(local[id] == pids[id])
      {^node, kids} = call(hub, {:which_children, []})
      kid_ids = MapSet.new(kids, &elem(&1, 0))
      assert Enum.all?(ids, &MapSet.member?(kid_ids, &1))

      assert {:ok, %{status: :ok, stopped: stopped, errors: []}} = stop_await(hub, ids)
      assert length(stopped) == 1000
      assert call(hub, {:tag_query, prefix}) == []
      dump = call(hub, :registry_dump)
      refute Enum.any?(ids, &Map.has_key?(dump, &1))
      assert us < 20_000_000
    end

    test "churn: 10 rounds of 500 starts and stops leave the registry as it was",
         %{hub: hub} do
      before = map_size(call(hub, :registry_dump))
      prefix = bid("churn")

      for r <- 1..10 do
        ids = for i <- 1..500, do: "#{prefix}_#{r}_#{i}"
        pids = start_ok!(hub, Enum.map(ids, &spec(&1, :echo, [])))
        assert map_size(pids) == 500
        assert call(hub, {:get_pid, "#{prefix}_#{r}_250"}) == pids["#{prefix}_#{r}_250"]
        assert {:ok, %{status: :ok, errors: []}} = stop_await(hub, ids)
      end

      assert map_size(call(hub, :registry_dump)) == before
      assert length(call(hub, {:process_list, :local})) == before
      {_, kids} = call(hub, {:which_children, []})
      assert length(kids) == before
      # ids of the first round can be used again
      p = start_one!(hub, spec("#{prefix}_1_1", :counter, [6]))
      assert GenServer.call(p, :get) == 6
    end

    test "large terms in args, spec and metadata", %{hub: hub, node: node} do
      c = bid("large")
      big = :crypto.strong_rand_bytes(1_000_000)
      meta = %{tag: "large", blob: big, list: Enum.to_list(1..10_000)}
      s = spec(c, :echo, [big, Enum.to_list(1..10_000)])
      pid = start_one!(hub, s, metadata: meta)
      assert GenServer.call(pid, :ping) == :ping
      assert {sp, [{^node, ^pid}], ^meta} = call(hub, {:child_lookup, c, [with_metadata: true]})
      assert sp.start == s.start
      assert {^sp, [{^node, ^pid}], ^meta} = Map.fetch!(call(hub, :registry_dump), c)
      assert {:ok, %{status: :ok}} = stop_await(hub, [c])
    end

    test "concurrent callers: distinct ids all start; one id raced by 20 callers starts once",
         %{hub: hub, node: node} do
      prefix = bid("conc")

      results =
        1..20
        |> Enum.map(fn t ->
          Task.async(fn ->
            specs = for i <- 1..25, do: spec("#{prefix}_#{t}_#{i}", :counter, [i])
            start_await(hub, specs)
          end)
        end)
        |> Task.await_many(30_000)

      for r <- results, do: assert({:ok, %{status: :ok, errors: []}} = r)

      assert length(
               Enum.filter(
                 call(hub, {:process_list, :local}),
                 &String.starts_with?(to_string(elem(&1, 0)), prefix)
               )
             ) == 500

      race = bid("race")

      outcomes =
        1..20
        |> Enum.map(fn _ -> Task.async(fn -> start_await(hub, [spec(race, :echo, [])]) end) end)
        |> Task.await_many(30_000)

      winners = for {:ok, %{status: :ok, started: [{^race, [{^node, p}]}]}} <- outcomes, do: p
      assert [winner] = winners, inspect(outcomes)

      for o <- outcomes, not match?({:ok, %{status: :ok}}, o) do
        assert o == {:error, {:already_started, [race]}} or
                 match?(
                   {:ok,
                    %{
                      status: :error,
                      started: [],
                      errors: [{^race, ^node, {:already_started, _}}]
                    }},
                   o
                 ),
               inspect(o)
      end

      assert call(hub, {:get_pids, race}) == [winner]
    end

    test "registry_dump", %{hub: hub, node: node} do
      [a, b] = [cid("rd_a"), bid("rd_b")]
      pids = start_ok!(hub, [spec(a, :counter, [1]), spec(b, :echo, [:x])], metadata: %{k: 1})
      dump = call(hub, :registry_dump)
      assert is_map(dump)
      assert {sa, [{^node, pa}], %{k: 1}} = dump[a]
      assert pa == pids[a]
      assert_spec(sa, %{id: a, start: {:counter, :start_link, [1]}})
      assert {sb, [{^node, pb}], %{k: 1}} = dump[b]
      assert pb == pids[b]
      assert_spec(sb, %{id: b, start: {:echo, :start_link, [:x]}})
      # every value has the documented shape
      for {id, v} <- dump do
        assert {%{}, [{_, p} | _], %{}} = v, "#{inspect(id)} => #{inspect(v)}"
        assert is_pid(p)
      end

      assert map_size(dump) == length(call(hub, {:process_list, :global}))
    end

    test "tag_query", %{hub: hub, node: node} do
      tag = "tq_#{System.unique_integer([:positive])}"
      [a, b, c] = [cid("tq_a"), bid("tq_b"), cid("tq_c")]
      pids = start_ok!(hub, [spec(a), spec(b)], metadata: %{tag: tag, extra: 1})
      start_ok!(hub, [spec(c)], metadata: %{tag: tag <> "_other"})

      got = call(hub, {:tag_query, tag})

      assert Enum.sort(got) ==
               Enum.sort([{a, [{node, pids[a]}]}, {b, [{node, pids[b]}]}])

      assert call(hub, {:tag_query, "tq_nothing_has_this_tag"}) == []
      stop_await(hub, [a])
      assert call(hub, {:tag_query, tag}) == [{b, [{node, pids[b]}]}]
    end

    test "which_children local and :global", %{hub: hub, node: node} do
      [a, b] = [cid("wc_a"), bid("wc_b")]
      pids = start_ok!(hub, [spec(a, :counter, [1]), spec(b, :kv, [])])
      assert {^node, kids} = call(hub, {:which_children, []})
      assert is_list(kids)
      assert {a, pids[a], :worker, [:counter]} in kids
      assert {b, pids[b], :worker, [:kv]} in kids

      for k <- kids, do: assert(match?({_, p, :worker, [m]} when is_pid(p) and is_atom(m), k))

      assert [{^node, gkids}] = call(hub, {:which_children, [:global]})
      assert {a, pids[a], :worker, [:counter]} in gkids
    end

    test "nodes", %{hub: hub, node: node} do
      assert call(hub, {:nodes, []}) == []
      assert call(hub, {:nodes, [:include_local]}) == [node]
    end

    test "unknown requests -> {:error, {:unknown_request, request}}", %{hub: hub} do
      for req <- [:bogus, {:bogus, 1}, {:bogus_request, :a, :b}, "is_alive", [:is_alive]] do
        assert call(hub, req) == {:error, {:unknown_request, req}}, inspect(req)
      end

      assert call(hub, :is_alive) == true
    end

    test "metadata applies to every child of the call; tag feeds tag_query",
         %{hub: hub, node: node} do
      tag = bid("mt")
      ids = for i <- 1..5, do: "#{tag}_#{i}"
      pids = start_ok!(hub, Enum.map(ids, &spec(&1, :echo, [])), metadata: %{tag: tag})

      for id <- ids do
        assert {_, [{^node, p}], %{tag: ^tag}} =
                 call(hub, {:child_lookup, id, [with_metadata: true]})

        assert p == pids[id]
      end

      assert length(call(hub, {:tag_query, tag})) == 5
    end

    test "child_mapping is accepted as a map of lists, refused otherwise", %{hub: hub, node: node} do
      c = cid("cm")

      assert {:ok, %{status: :ok}} = start_await(hub, [spec(c)], child_mapping: %{c => [node]})

      bad = cid("cm_bad")
      res = start_await(hub, [spec(bad)], child_mapping: [{bad, [node]}])
      assert match?({:error, _}, res), inspect(res)
      assert call(hub, {:child_lookup, bad}) == nil
    end

    test "the log line of a failed start names a long id in full", %{ph: ph, hub: hub} do
      id =
        "long_failing_id_" <>
          String.duplicate("z", 140) <> "_#{System.unique_integer([:positive])}"

      off = PhTest.log_size(ph)

      assert {:ok, %{status: :error, errors: [{^id, _, {:unknown_module, :nope_long}}]}} =
               start_await(hub, [spec(id, :nope_long, [])])

      assert PhTest.wait_log(ph, "long_failing_id_", 3000, off), "no log line for the failure"

      line =
        PhTest.log_since(ph.log, off)
        |> String.split("\n")
        |> Enum.find(&String.contains?(&1, "long_failing_id_"))

      assert String.contains?(line, id), "the log line does not name #{id} in full:\n#{line}"

      assert String.contains?(line, "{unknown_module,nope_long}"),
             "the log line does not give the reason:\n#{line}"
    end

    test "disable_logging: a failed start is logged unless disabled", %{ph: ph, hub: hub} do
      c = cid("logged_failure")
      off = PhTest.log_size(ph)
      assert {:ok, %{status: :error}} = start_await(hub, [spec(c, :no_such_module_logged, [])])

      assert PhTest.wait_log(ph, Atom.to_string(c), 3000, off),
             "no log line naming #{c} after a failed start"

      q = cid("quiet_failure")
      off = PhTest.log_size(ph)

      assert {:ok, %{status: :error}} =
               start_await(hub, [spec(q, :no_such_module_quiet, [])], disable_logging: true)

      Process.sleep(300)
      refute String.contains?(PhTest.log_since(ph.log, off), Atom.to_string(q))
    end
  end

  # ===================================================================================
  # bad input
  # ===================================================================================

  describe "bad input" do
    test "bad child specs -> {:error, _} or a per-child {:bad_spec, _}; nothing registered",
         %{hub: hub, node: node} do
      ok_start = {:counter, :start_link, [1]}
      c = cid("bad")

      bad = [
        {"no id", %{start: ok_start}},
        {"pid id", %{id: self(), start: ok_start}},
        {"integer id", %{id: 42, start: ok_start}},
        {"tuple id", %{id: {:a, 1}, start: ok_start}},
        {"start not a tuple", %{id: c, start: :counter}},
        {"start a 2-tuple", %{id: c, start: {:counter, :start_link}}},
        {"start module not an atom", %{id: c, start: {"counter", :start_link, [1]}}},
        {"unknown restart", %{id: c, start: ok_start, restart: :sometimes}},
        {"bad shutdown", %{id: c, start: ok_start, shutdown: :later}},
        {"spec not a map", :not_a_map}
      ]

      before = Map.keys(call(hub, :registry_dump))

      problems =
        Enum.flat_map(bad, fn {what, s} ->
          res = call(hub, {:start_children, [s], []})

          [
            bad_spec_problem(start_await(hub, [s]), node, what),
            bad_spec_problem(
              call(hub, {:start_child, s, [awaitable: true]}),
              node,
              what <> " (start_child)"
            ),
            # not awaitable: either refused or :start_initiated, and nothing starts
            if(res == {:ok, :start_initiated} or match?({:error, _}, res),
              do: nil,
              else: "#{what} (not awaitable): #{inspect(res)}"
            )
          ]
        end)
        |> Enum.reject(&is_nil/1)

      assert problems == [], Enum.join(problems, "\n")

      Process.sleep(200)
      assert call(hub, {:child_lookup, c}) == nil
      assert call(hub, {:get_pid, 42}) == nil
      assert Map.keys(call(hub, :registry_dump)) -- before == []

      # still serving
      assert call(hub, :is_alive) == true
      good = cid("after_bad")
      assert GenServer.call(start_one!(hub, spec(good, :counter, [5])), :get) == 5
    end

    test "a bad spec in a batch is a per-child {:bad_spec, spec} error; the others start",
         %{hub: hub, node: node} do
      [good, b] = [cid("mix_good"), cid("mix_bad")]
      bad_spec = %{id: b, start: {:counter, :start_link, [1]}, restart: :sometimes}
      assert {:ok, res} = start_await(hub, [spec(good), bad_spec])

      assert %{status: :error, started: [{^good, [{^node, pid}]}], errors: [{^b, ^node, err}]} =
               res

      assert err == {:bad_spec, bad_spec}
      assert call(hub, {:get_pid, good}) == pid
      assert call(hub, {:child_lookup, b}) == nil
    end

    test "malformed requests -> {:error, _}; the hub keeps serving", %{hub: hub} do
      c = cid("malformed")
      s = spec(c)

      bad = [
        {:start_children, s, []},
        {:start_children, :not_a_list, []},
        {:start_children, [s], :not_a_list},
        {:start_children, [s], [:not_a_keyword]},
        {:start_children, [s], %{awaitable: true}},
        {:start_child, s, :not_a_list},
        {:stop_children, :not_a_list, []},
        {:stop_children, [c], :not_a_list},
        {:stop_child, c, :not_a_list},
        {:register_hook_handlers, :registry_pid_insert_hook, :not_a_list},
        {:register_hook_handlers, :registry_pid_insert_hook, [:not_a_handler]},
        {:register_hook_handlers, :registry_pid_insert_hook, [%{id: :no_pid_nor_mfa}]},
        {:cancel_hook_handlers, :registry_pid_insert_hook, :not_a_list},
        {:start_children},
        {:start_children, [s]},
        {:start_children, [s], [], :extra},
        {:start_children, [s], [awaitable: :yes]},
        {:start_children, [s], [timeout: -1]},
        {:start_children, [s], [metadata: :not_a_map]},
        {:start_children, [s], [on_failure: :explode]},
        {:start_children, [s], [child_mapping: :not_a_map]},
        {:process_list, :everywhere}
      ]

      # all of them, then one assertion listing every wrong answer
      wrong =
        for req <- bad,
            {ms, res} = PhTest.timed_call(hub, req, 5000),
            not match?({:ok, {:error, _}}, res),
            do: "request #{inspect(req, limit: 8)} -> #{inspect(res)} after #{ms} ms"

      assert wrong == [], Enum.join(wrong, "\n")

      # not calls at all
      send(hub, :garbage)
      send(hub, {:"$gen_call", :not_a_from, :is_alive})
      GenServer.cast(hub, :garbage_cast)
      refute_receive _, 300

      assert call(hub, {:child_lookup, c}) == nil
      assert call(hub, :is_alive) == true
      assert {:ok, %{status: :ok}} = start_await(hub, [s])
    end
  end

  # ===================================================================================
  # supervision
  # ===================================================================================

  describe "supervision" do
    test "stopping a child shuts it down (reason :shutdown); its pid is then :noproc",
         %{hub: hub, node: node} do
      c = cid("term")
      pid = start_one!(hub, spec(c, :counter, [9]))
      assert GenServer.call(pid, {:add, 1}) == 10
      ref = Process.monitor(pid)
      assert {:ok, %{status: :ok, stopped: [{^c, [^node]}]}} = stop_await(hub, [c])
      assert_receive {:DOWN, ^ref, :process, ^pid, :shutdown}, 5000
      assert {_, {:exit, {:noproc, _}}} = PhTest.timed_call(pid, :get, 5000)
      # not restarted: stopping is not a crash
      Process.sleep(200)
      assert call(hub, {:child_lookup, c}) == nil
    end

    test "an awaitable stop answers after the child is gone, even when it is busy",
         %{hub: hub, node: node} do
      c = cid("busy")
      pid = start_one!(hub, spec(c, :crasher, [], shutdown: 100))
      # the sleep may complete (and reply) before the exit signal is handled
      busy =
        Task.async(fn ->
          try do
            GenServer.call(pid, {:sleep, 800}, 5000)
          catch
            :exit, reason -> {:exit, reason}
          end
        end)

      Process.sleep(50)
      t0 = PhTest.now_ms()
      stopper = Task.async(fn -> stop_await(hub, [c]) end)
      # the hub is not blocked meanwhile
      Process.sleep(100)
      {ms, alive} = PhTest.timed_call(hub, :is_alive, 5000)
      assert alive == {:ok, true}
      assert ms < 300, "the hub took #{ms} ms to answer while a stop was pending"
      assert {:ok, %{status: :ok, stopped: [{^c, [^node]}]}} = Task.await(stopper, 10_000)
      elapsed = PhTest.now_ms() - t0
      # the child is dead when the reply arrives
      ref = Process.monitor(pid)
      assert_receive {:DOWN, ^ref, :process, ^pid, :noproc}, 2000
      assert elapsed >= 500, "stop answered after #{elapsed} ms, before the busy child could exit"
      Task.await(busy)
      assert call(hub, {:child_lookup, c}) == nil
    end

    test "shutdown: :brutal_kill kills the child (reason :killed)", %{hub: hub, node: node} do
      c = cid("brutal")
      pid = start_one!(hub, spec(c, :counter, [1], shutdown: :brutal_kill))
      assert {sp, _} = call(hub, {:child_lookup, c})
      assert sp.shutdown == :brutal_kill
      ref = Process.monitor(pid)
      assert {:ok, %{status: :ok, stopped: [{^c, [^node]}]}} = stop_await(hub, [c])
      assert_receive {:DOWN, ^ref, :process, ^pid, :killed}, 5000
      assert call(hub, {:child_lookup, c}) == nil
    end

    test "permanent (also the default): restarted after a crash and after :normal; registry and hooks follow",
         %{hub: hub, node: node} do
      hook!(hub, :child_process_pid_update_hook)
      hook!(hub, :registry_pid_insert_hook)

      # no restart key: :permanent
      c = cid("perm")
      pid = start_one!(hub, spec(c, :crasher, []))
      assert_receive {:process_hub, :registry_pid_insert_hook, {^c, [{^node, ^pid}]}}, 5000

      assert {:boom, _} = catch_exit(GenServer.call(pid, {:crash, :boom}))
      new = wait_new_pid(hub, c, pid)
      assert is_pid(new), "#{inspect(c)} was not restarted"
      assert_receive {:process_hub, :child_process_pid_update_hook, {^node, ^new}}, 5000
      assert_receive {:process_hub, :registry_pid_insert_hook, {^c, [{^node, ^new}]}}, 5000
      assert call(hub, {:get_pids, c}) == [new]
      assert {_, [{^node, ^new}]} = call(hub, {:child_lookup, c})
      assert {^node, kids} = call(hub, {:which_children, []})
      assert {c, new, :worker, [:crasher]} in kids

      # spec and metadata survive the restart
      assert {sp, [{^node, ^new}], %{}} = call(hub, {:child_lookup, c, [with_metadata: true]})
      assert_spec(sp, %{id: c, start: {:crasher, :start_link, []}})

      # a permanent child that stops :normal is restarted too
      assert GenServer.call(new, {:stop, :normal}) == :ok
      newer = wait_new_pid(hub, c, new)
      assert is_pid(newer), "permanent #{inspect(c)} not restarted after :normal"
      assert_receive {:process_hub, :child_process_pid_update_hook, {^node, ^newer}}, 5000
      assert GenServer.call(newer, {:sleep, 0}) == :ok
    end

    test "transient: restarted after an abnormal exit", %{hub: hub, node: node} do
      c = bid("trans")
      pid = start_one!(hub, spec(c, :counter, [3], restart: :transient))
      assert GenServer.call(pid, {:add, 1}) == 4
      Process.exit(pid, :some_error)
      new = wait_new_pid(hub, c, pid)
      assert is_pid(new), "transient #{c} not restarted after an abnormal exit"
      assert GenServer.call(new, :get) == 3
      assert {_, [{^node, ^new}]} = call(hub, {:child_lookup, c})
    end

    test "temporary: never restarted, leaves the registry", %{hub: hub, node: node} do
      hook!(hub, :registry_pid_remove_hook)
      c = cid("temp")
      pid = start_one!(hub, spec(c, :crasher, [], restart: :temporary))
      assert {:bang, _} = catch_exit(GenServer.call(pid, {:crash, :bang}))
      assert_receive {:process_hub, :registry_pid_remove_hook, {^c, [^node]}}, 5000
      assert wait_unregistered(hub, c)
      Process.sleep(200)
      assert call(hub, {:get_pid, c}) == nil
      {^node, kids} = call(hub, {:which_children, []})
      refute Enum.any?(kids, &match?({^c, _, _, _}, &1))
    end

    test "dsup_max_restarts 0: a crashed permanent child is never restarted" do
      ph = start_config_node(%{"dsup_max_restarts" => 0})
      node = ph.node
      hub = {:my_hub, node}
      pid = start_one!(hub, spec("never", :counter, [1], restart: :permanent))
      Process.exit(pid, :kill)

      assert wait_unregistered(hub, "never"),
             "still registered: #{inspect(call(hub, {:child_lookup, "never"}))}"

      assert call(hub, :is_alive) == true
    end

    test "a child from a --worker-lib module (greeter) is supervised like the bundled ones",
         %{hub: hub, node: node} do
      c = cid("greeter")
      pid = start_one!(hub, spec(c, :greeter, []))
      assert GenServer.call(pid, {:hello, "hub"}) == {:hello, "hub", :from_library}
      {^node, kids} = call(hub, {:which_children, []})
      assert {c, pid, :worker, [:greeter]} in kids
      Process.exit(pid, :kill)
      new = wait_new_pid(hub, c, pid)
      assert is_pid(new)
      assert GenServer.call(new, {:hello, 1}) == {:hello, 1, :from_library}
      assert {:ok, %{status: :ok}} = stop_await(hub, [c])
    end

    # docs/api.md "Supervision": more than dsup_max_restarts restarts within
    # dsup_max_seconds -> the crashing child is not restarted and leaves the registry;
    # the healthy children keep running (OTP would restart the whole supervisor).
    test "restart intensity exceeded (3 in 5 s): the hub survives, the crashing child leaves" do
      ph = start_config_node(%{"dsup_max_restarts" => 3, "dsup_max_seconds" => 5})
      node = ph.node
      hub = {:my_hub, node}
      hook!(hub, :registry_pid_remove_hook)
      c = "boom"
      start_one!(hub, spec(c, :crasher, [], restart: :permanent))
      bystander = start_one!(hub, spec("bystander", :counter, [1]))
      assert GenServer.call(bystander, {:add, 1}) == 2
      off = PhTest.log_size(ph)

      # crash it until it is gone (at most 6 times)
      crashes =
        Enum.reduce_while(1..6, 0, fn _, n ->
          case safe_call(hub, {:get_pid, c}) do
            pid when is_pid(pid) ->
              catch_exit(GenServer.call(pid, {:crash, :again}, 2000))

              wait_until(fn ->
                case call(hub, {:get_pid, c}) do
                  ^pid -> nil
                  _ -> true
                end
              end)

              {:cont, n + 1}

            _ ->
              {:halt, n}
          end
        end)

      # 3 restarts allowed; the 4th crash is not restarted
      assert crashes == 4, "#{crashes} crashes until the child was given up"
      assert_receive {:process_hub, :registry_pid_remove_hook, {"boom", [^node]}}, 2000
      assert call(hub, {:child_lookup, c}) == nil
      assert PhTest.wait_log(ph, "restart intensity exceeded", 3000, off)
      # the healthy child was left alone
      assert call(hub, {:get_pid, "bystander"}) == bystander
      assert GenServer.call(bystander, :get) == 2
      assert PhTest.alive?(ph), "phnode exited:\n" <> PhTest.log_tail(ph.log)
      assert call(hub, :is_alive) == true
      assert is_list(call(hub, {:process_list, :global}))
      assert is_map(call(hub, :registry_dump))
      assert {^node, _} = call(hub, {:which_children, []})

      # the registry matches reality (after a moment): every registered pid is alive
      stale = fn ->
        for {id, [{^node, pid}]} <- call(hub, {:process_list, :global}),
            not match?({_, {:ok, _}}, PhTest.timed_call(pid, {:sleep, 0}, 2000)),
            do: {id, pid}
      end

      wait_until(fn -> stale.() == [] end, 3000)
      assert stale.() == [], "registered pids that are dead: #{inspect(stale.())}"

      # still starts children
      fresh = start_one!(hub, spec("after_intensity", :counter, [42]))
      assert GenServer.call(fresh, :get) == 42
    end
  end

  # ===================================================================================
  # hook data
  # ===================================================================================

  describe "hooks" do
    test "registry_pid_insert_hook and registry_pid_remove_hook", %{hub: hub, node: node} do
      hook!(hub, :registry_pid_insert_hook)
      hook!(hub, :registry_pid_remove_hook)
      [a, b] = [cid("hi_a"), bid("hi_b")]
      pids = start_ok!(hub, [spec(a), spec(b)])
      assert_receive {:process_hub, :registry_pid_insert_hook, {^a, [{^node, pa}]}}, 5000
      assert_receive {:process_hub, :registry_pid_insert_hook, {^b, [{^node, pb}]}}, 5000
      assert pa == pids[a] and pb == pids[b]
      refute_receive {:process_hub, :registry_pid_insert_hook, {^a, _}}, 200

      assert {:ok, %{status: :ok}} = stop_await(hub, [a, b])
      assert_receive {:process_hub, :registry_pid_remove_hook, {^a, [^node]}}, 5000
      assert_receive {:process_hub, :registry_pid_remove_hook, {^b, [^node]}}, 5000
      refute_receive {:process_hub, :registry_pid_remove_hook, {^a, _}}, 200
    end

    test "pre_children_start_hook", %{hub: hub, node: node} do
      hook!(hub, :pre_children_start_hook)
      c = cid("pre")
      s = spec(c, :counter, [1])
      meta = %{tag: "pre_tag"}
      start_one!(hub, s, metadata: meta)

      assert_receive {:process_hub, :pre_children_start_hook, data}, 5000
      assert %{children: children, start_opts: opts} = data
      assert is_list(opts)
      assert [child] = Enum.filter(children, &(&1.child_id == c))

      assert %{hub_id: :my_hub, nodes: [^node], child_id: ^c, child_spec: cs, metadata: ^meta} =
               child

      assert_spec(cs, s)
    end

    test "post_children_start_hook: [{cid, result, pid | nil, nodes}]", %{hub: hub, node: node} do
      hook!(hub, :post_children_start_hook)
      [good, bad] = [cid("post_ok"), cid("post_bad")]

      assert {:ok, %{status: :error, started: [{^good, [{^node, pid}]}]}} =
               start_await(hub, [spec(good), spec(bad, :no_such_module_post, [])])

      assert_receive {:process_hub, :post_children_start_hook, data}, 5000
      assert is_list(data)

      assert Enum.sort(data) ==
               Enum.sort([
                 {good, {:ok, pid}, pid, [node]},
                 {bad, {:error, {:unknown_module, :no_such_module_post}}, nil, [node]}
               ])
    end

    test "process_startups_hook: [%{cid, pid}]", %{hub: hub} do
      hook!(hub, :process_startups_hook)
      [a, b] = [cid("ps_a"), bid("ps_b")]
      pids = start_ok!(hub, [spec(a), spec(b)])
      assert_receive {:process_hub, :process_startups_hook, data}, 5000
      assert is_list(data)
      assert length(data) == 2

      got =
        Map.new(data, fn
          %{cid: c, pid: p} -> {c, p}
          other -> flunk("process_startups_hook entry #{inspect(other)}")
        end)

      assert got == pids
    end

    test "child_process_pid_update_hook: {node, new_pid} after a supervised restart (ProcessHub's data)",
         %{hub: hub, node: node} do
      hook!(hub, :child_process_pid_update_hook)
      c = cid("pu")
      pid = start_one!(hub, spec(c))
      Process.exit(pid, :kill)
      assert_receive {:process_hub, :child_process_pid_update_hook, {^node, new}}, 5000
      assert call(hub, {:get_pid, c}) == new
      assert is_pid(new) and new != pid
      refute_receive {:process_hub, :child_process_pid_update_hook, {_, ^new}}, 300
    end

    test "mfa handler: applied on the registering node through rex, :_ replaced by the data",
         %{hub: hub, node: node} do
      name = PhTest.unique_atom("hook_sink")
      Process.register(self(), name)
      id = PhTest.unique_atom("h_mfa")
      key = :registry_pid_insert_hook
      handler = %{id: id, m: :erlang, f: :send, a: [name, :_], p: 5}
      assert call(hub, {:register_hook_handlers, key, [handler]}) == :ok
      on_exit(fn -> safe_call(hub, {:cancel_hook_handlers, key, [id]}) end)

      c = cid("mfa")
      pid = start_one!(hub, spec(c))
      assert_receive {^c, [{^node, ^pid}]}, 5000

      assert call(hub, {:cancel_hook_handlers, key, [id]}) == :ok
      c2 = cid("mfa2")
      start_one!(hub, spec(c2))
      refute_receive {^c2, _}, 500
    end

    test "a handler whose pid is dead does not disturb the hub", %{hub: hub, node: node} do
      dead = spawn(fn -> :ok end)
      ref = Process.monitor(dead)
      assert_receive {:DOWN, ^ref, :process, ^dead, _}
      hook!(hub, :registry_pid_insert_hook, pid: dead)
      hook!(hub, :registry_pid_insert_hook, p: 1)
      key = :registry_pid_insert_hook
      # an mfa handler that fails on this node (undefined function), and one without p
      bad_id = PhTest.unique_atom("h_badmfa")
      nop_id = PhTest.unique_atom("h_nop")
      on_exit(fn -> safe_call(hub, {:cancel_hook_handlers, key, [bad_id, nop_id]}) end)

      assert call(
               hub,
               {:register_hook_handlers, key,
                [%{id: bad_id, m: :no_such_module_h, f: :nope, a: [:_], p: 9}]}
             ) ==
               :ok

      assert call(
               hub,
               {:register_hook_handlers, key, [%{id: nop_id, m: :erlang, f: :is_atom, a: [:_]}]}
             ) == :ok

      c = cid("deadh")
      pid = start_one!(hub, spec(c))
      assert_receive {:process_hub, :registry_pid_insert_hook, {^c, [{^node, ^pid}]}}, 5000
      assert call(hub, :is_alive) == true
    end
  end

  # ===================================================================================
  # configuration
  # ===================================================================================

  describe "C hook handlers" do
    test "a C child_data_alter_hook handler rewrites a child's spec before it starts" do
      # the sample library registers the handler only with this variable set
      ph = PhTest.start_node(ticktime: @ticktime, worker_lib: true, env: [{"PH_SAMPLE_ALTER_HOOK", "1"}])
      on_exit(fn -> PhTest.kill_node(ph) end)
      hub = {:my_hub, ph.node}
      pids = start_ok!(hub, [spec("alter_one", :counter, [1]), spec("plain_one", :counter, [1])])
      # the handler gave alter_* children the args [42]; the others are as given
      assert GenServer.call(pids["alter_one"], :get) == 42
      assert GenServer.call(pids["plain_one"], :get) == 1
      {%{start: {:counter, :start_link, [42]}}, _} = call(hub, {:child_lookup, "alter_one"})
      # a big batch with the handler is started on one thread, still altered
      big = for i <- 1..5000, do: spec("alter_b#{i}", :counter, [i])
      started = start_ok!(hub, big)
      assert GenServer.call(started["alter_b4999"], :get) == 42
    end
  end

  describe "configuration" do
    test "hub_id and static child_specs from --config: all running before the first answer" do
      hub_name = "hub_cfg_#{System.unique_integer([:positive])}"

      counters =
        for i <- 1..20, do: json_spec("s#{i}", "counter", [i], %{"restart" => "permanent"})

      specs =
        [
          json_spec("c1", "counter", [5], %{"restart" => "permanent", "shutdown" => 5000}),
          json_spec(
            "e1",
            "echo",
            [1, 2.5, "s", [1, "x"], %{"a" => 1, "b" => [true, false]}, true, false, nil],
            %{"restart" => "transient", "shutdown" => 1000}
          ),
          json_spec("t1", "crasher", [], %{"restart" => "temporary", "shutdown" => "brutal_kill"})
        ] ++ counters

      ph = start_config_node(%{"hub_id" => hub_name, "child_specs" => specs})
      node = ph.node
      hub = {String.to_atom(hub_name), node}

      # the very first request to the hub
      list = call(hub, {:process_list, :global})
      ids = ["c1", "e1", "t1" | Enum.map(1..20, &"s#{&1}")]
      assert Enum.sort(Enum.map(list, &elem(&1, 0))) == Enum.sort(ids)

      for {id, entry} <- list do
        assert [{^node, pid}] = entry, "#{id}: #{inspect(entry)}"
        assert is_pid(pid)
      end

      # the default name is not registered on this node
      assert {_, {:exit, {:noproc, _}}} = PhTest.timed_call({:my_hub, node}, :is_alive, 5000)
      assert call(hub, :is_alive) == true

      c1 = call(hub, {:get_pid, "c1"})
      assert GenServer.call(c1, :get) == 5
      assert GenServer.call(call(hub, {:get_pid, "s7"}), :get) == 7

      assert {sp, [{^node, _}]} = call(hub, {:child_lookup, "e1"})
      assert sp.id == "e1"
      assert sp.restart == :transient
      assert sp.shutdown == 1000
      assert {:echo, :start_link, args} = sp.start
      assert [1, 2.5, "s", [1, "x"], %{"a" => 1, "b" => [true, false]}, true, false, null] = args
      assert null in [nil, :null], "JSON null became #{inspect(null)}"

      assert {c1spec, _} = call(hub, {:child_lookup, "c1"})

      assert_spec(c1spec, %{
        id: "c1",
        start: {:counter, :start_link, [5]},
        restart: :permanent,
        shutdown: 5000
      })

      assert {t1spec, _} = call(hub, {:child_lookup, "t1"})
      assert t1spec.restart == :temporary
      assert t1spec.shutdown == :brutal_kill

      assert {^node, kids} = call(hub, {:which_children, []})
      assert length(kids) == 23

      # static children are supervised like the others
      Process.exit(c1, :kill)
      new = wait_new_pid(hub, "c1", c1)
      assert is_pid(new)
      assert GenServer.call(new, :get) == 5

      # and the hub works as usual
      assert call(hub, {:start_children, [spec("c1", :echo, [])], [awaitable: true]}) ==
               {:error, {:already_started, ["c1"]}}

      assert GenServer.call(start_one!(hub, spec("dyn", :counter, [8])), :get) == 8
    end

    test "hooks from the config file: M/F/A handlers run on the given node, static children included" do
      sink = PhTest.unique_atom("cfg_sink")
      Process.register(self(), sink)
      me = Atom.to_string(node())

      handler = fn id, p ->
        %{
          "id" => id,
          "node" => me,
          "m" => "erlang",
          "f" => "send",
          "a" => [":#{sink}", "_"],
          "p" => p
        }
      end

      ph =
        start_config_node(%{
          "child_specs" => [json_spec("st1", "counter", [1])],
          "hooks" => %{
            "registry_pid_insert_hook" => [handler.("cfg_ins", 3)],
            "registry_pid_remove_hook" => [Map.delete(handler.("cfg_rem", 0), "p")]
          }
        })

      node = ph.node
      hub = {:my_hub, node}
      st1 = call(hub, {:get_pid, "st1"})
      assert is_pid(st1)

      d1 = start_one!(hub, spec("d1", :echo, []))
      assert_receive {"d1", [{^node, ^d1}]}, 5000
      assert {:ok, %{status: :ok}} = stop_await(hub, ["d1"])
      assert_receive {"d1", [^node]}, 5000

      # a config handler is cancelled like any other (its id is the JSON string)
      assert call(hub, {:cancel_hook_handlers, :registry_pid_insert_hook, ["cfg_ins"]}) == :ok
      start_one!(hub, spec("d2", :echo, []))
      refute_receive {"d2", _}, 500
      # and its id is free again
      assert call(
               hub,
               {:register_hook_handlers, :registry_pid_insert_hook,
                [%{id: "cfg_ins", pid: self(), p: 0}]}
             ) == :ok

      # the static child's registration was hooked too (checked last: the message,
      # if it came, has been waiting in the mailbox since start-up)
      assert_received {"st1", [{^node, ^st1}]},
                      "no registry_pid_insert_hook for the static child st1; log:\n" <>
                        PhTest.log_tail(ph.log, 10)
    end

    test "a static child that cannot start: phnode exits 2 and the log names it" do
      specs = [
        json_spec("fine", "counter", [1]),
        json_spec("static_bad_child", "no_such_static_module", [])
      ]

      path = write_config(%{"child_specs" => specs})
      n = "#{PhTest.unique_name("badstatic")}@127.0.0.1"
      args = ["--name", n, "--cookie", PhTest.cookie(), "--config", path]
      {out, status} = PhTest.cmd(PhTest.phnode(), args, timeout: 10_000)
      assert status == 2, "status #{inspect(status)}:\n#{out}"
      assert String.contains?(out, "static_bad_child"), out
      refute String.contains?(out, "ready: node="), out
    end

    test "SIGTERM: hub children stop with :shutdown, coordinator_shutdown_hook fires" do
      ph = start_config_node(%{"hub_id" => "hub_term_#{System.unique_integer([:positive])}"})
      [hub_name] = Regex.run(~r/hub_term_\d+/, File.read!(Enum.at(ph.args, -1)))
      hub = {String.to_atom(hub_name), ph.node}
      hook!(hub, :coordinator_shutdown_hook)
      pids = start_ok!(hub, for(i <- 1..3, do: spec("t#{i}", :counter, [i])))
      refs = for {_, pid} <- pids, do: {Process.monitor(pid), pid}
      assert PhTest.stop_node(ph) == {:ok, 0}

      for {ref, pid} <- refs do
        assert_receive {:DOWN, ^ref, :process, ^pid, reason}, 5000
        assert reason == :shutdown, "#{inspect(pid)} went down with #{inspect(reason)}"
      end

      assert_receive {:process_hub, :coordinator_shutdown_hook, _}, 1000
    end

    test "config errors in the hub fields: exit status 2, one message naming the field" do
      n = "#{PhTest.unique_name("badhub")}@127.0.0.1"
      ok = json_spec("x", "counter", [1])

      cases = [
        {%{"hub_bogus_field" => 1}, "hub_bogus_field"},
        {%{"hub_id" => 5}, "hub_id"},
        {%{"hub_id" => ["a"]}, "hub_id"},
        {%{"child_specs" => "x"}, "child_specs"},
        {%{"child_specs" => [Map.put(ok, "colour", "red")]}, "colour"},
        {%{"child_specs" => [Map.put(ok, "restart", 7)]}, "restart"},
        {%{"child_specs" => [Map.delete(ok, "id")]}, "id"},
        {%{"child_specs" => [Map.put(ok, "start", "counter")]}, "start"},
        {%{"child_specs" => [put_in(ok, ["start", "modul"], "counter")]}, "modul"},
        {%{"child_specs" => [put_in(ok, ["start", "module"], 5)]}, "module"},
        {%{"child_specs" => [put_in(ok, ["start", "function"], 5)]}, "function"},
        {%{"child_specs" => [Map.put(ok, "shutdown", "soon")]}, "shutdown"},
        {%{"hooks" => []}, "hooks"},
        {%{"hooks" => %{"registry_pid_insert_hook" => [%{"id" => "h"}]}},
         "registry_pid_insert_hook"},
        {%{"hooks" => %{"registry_pid_insert_hook" => %{"id" => "h"}}},
         "registry_pid_insert_hook"},
        {%{
           "hooks" => %{
             "registry_pid_insert_hook" => [
               %{
                 "id" => "h",
                 "node" => "a@b",
                 "m" => "erlang",
                 "f" => "send",
                 "a" => [],
                 "colour" => 1
               }
             ]
           }
         }, "colour"},
        {%{
           "hooks" => %{
             "registry_pid_insert_hook" => [
               %{"id" => "h", "node" => "no_at_sign", "m" => "erlang", "f" => "send", "a" => []}
             ]
           }
         }, "registry_pid_insert_hook"},
        {%{"dsup_max_restarts" => "x"}, "dsup_max_restarts"},
        {%{"dsup_max_seconds" => -1}, "dsup_max_seconds"}
      ]

      failures =
        Enum.flat_map(cases, fn {cfg, field} ->
          path = write_config(cfg)
          args = ["--name", n, "--cookie", PhTest.cookie(), "--config", path]
          {out, status} = PhTest.cmd(PhTest.phnode(), args, timeout: 4000, only_stderr: true)
          msg_lines = Regex.scan(~r/^phnode: .*$/m, out)

          problem =
            cond do
              status == :timeout ->
                "did not exit within 4 s (it started)"

              status != 2 ->
                "exited #{status}, expected 2"

              length(msg_lines) != 1 ->
                "expected one 'phnode: ...' line, got #{length(msg_lines)}"

              not String.contains?(out, field) ->
                "the message does not name #{field}"

              true ->
                nil
            end

          if problem,
            do: ["config #{json(cfg)}: #{problem}\n#{out}"],
            else: []
        end)

      assert failures == [], Enum.join(failures, "\n")
    end
  end
end
