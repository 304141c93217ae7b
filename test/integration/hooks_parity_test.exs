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
end
