# The worker side of HotSwap's handover protocol, driven step by step from
# a BEAM test process that plays the other copy (and the hub): the old copy
# hands its state over and forwards what reaches it afterwards (calls keep
# their From), a cancel makes it serve again; the new copy defers every
# message until its state, a "no state" answer or its timeout, then replays
# them in order. Each step is a message the test sends, so none of it
# depends on timing. Run by test/integration/run.sh.
Code.require_file("support/ph_test.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 60_000
)

defmodule PhNode.HandoverTest do
  use ExUnit.Case, async: false

  setup_all do
    n = PhTest.start_node(ticktime: 4)
    on_exit(fn -> if PhTest.alive?(n), do: PhTest.kill_node(n) end)
    %{n: n}
  end

  defp spawn_worker(n, module, args) do
    assert {:ok, pid} = GenServer.call({:phnode, n.node}, {:spawn, module, args, []})
    pid
  end

  defp ask_state(old, cid, opts),
    do: send(old, {:process_hub, :send_handover_state, self(), cid, opts})

  # A call made from another process, so the test process stays free to
  # play the copy the call is forwarded to.
  defp call_async(pid, request), do: Task.async(fn -> GenServer.call(pid, request, 10_000) end)

  defp unanswered?(task), do: Task.yield(task, 300) == nil

  # A call sent as a message from this process: its reply comes back as
  # {ref, reply}.
  defp raw_call(pid, request) do
    ref = make_ref()
    send(pid, {:"$gen_call", {self(), ref}, request})
    ref
  end

  test "the old copy hands its state over, then forwards calls with their From and casts", %{n: n} do
    old = spawn_worker(n, :counter, [10])
    assert GenServer.call(old, {:add, 5}) == 15
    ask_state(old, "c1", retention_receiver: self(), confirm_handover: false)

    assert_receive {:process_hub, :handover, "c1", {15, opts}}, 5_000
    assert opts[:retention_receiver] == self()
    assert_receive {:process_hub, :retention_handled, "c1"}, 5_000

    # A call to the old pid now reaches the new copy (this process), which
    # answers the caller directly.
    task = call_async(old, :get)
    assert_receive {:"$gen_call", from, :get}, 5_000
    GenServer.reply(from, :answered_by_new_copy)
    assert Task.await(task) == :answered_by_new_copy

    GenServer.cast(old, {:add, 1})
    assert_receive {:"$gen_cast", {:add, 1}}, 5_000
    send(old, :plain)
    assert_receive :plain, 5_000

    # The new copy is gone: the old one serves again, with its own state
    # (the forwarded cast never reached it).
    send(old, {:"$ph_handover", :cancel})
    assert GenServer.call(old, :get) == 15
  end

  test "asked twice, the first handover stands", %{n: n} do
    old = spawn_worker(n, :counter, [3])
    off = PhTest.log_size(n)
    ask_state(old, "c2", [])
    assert_receive {:process_hub, :handover, "c2", {3, []}}, 5_000
    ask_state(old, "c2", [])
    assert PhTest.wait_log(n, "asked for its state twice", 5_000, off)
    refute_receive {:process_hub, :handover, "c2", _}, 200
  end

  test "a worker without handover callbacks says no state comes, and still forwards", %{n: n} do
    old = spawn_worker(n, :echo, [])
    off = PhTest.log_size(n)
    ask_state(old, "c3", retention_receiver: self())
    assert_receive {:"$ph_handover", :unavailable, "c3"}, 5_000
    assert_receive {:process_hub, :retention_handled, "c3"}, 5_000
    assert PhTest.wait_log(n, "no prepare_handover_state", 5_000, off)
    send(old, :after)
    assert_receive :after, 5_000
  end

  test "the new copy defers every message until its state, then replays them in order", %{n: n} do
    new = spawn_worker(n, :counter, [0])
    # every message from this process, so their order is the order sent
    send(new, {:"$ph_handover", :await, "c4", 30_000})
    GenServer.cast(new, {:add, 1})
    first = raw_call(new, :get)
    GenServer.cast(new, {:add, 2})
    second = raw_call(new, :get)
    refute_receive {^first, _}, 300
    refute_receive {^second, _}, 0

    opts = [confirm_handover: true, confirmation_receiver: self()]
    send(new, {:process_hub, :handover, "c4", {100, opts}})
    assert_receive {:process_hub, :handover_confirmed, "c4"}, 5_000
    # the adopted 100, then the deferred casts and calls in the order sent
    assert_receive {^first, 101}, 5_000
    assert_receive {^second, 103}, 5_000
    assert GenServer.call(new, :get) == 103
  end

  test "a state that comes after the wait ended is dropped", %{n: n} do
    new = spawn_worker(n, :counter, [7])
    off = PhTest.log_size(n)
    send(new, {:"$ph_handover", :await, "c5", 30_000})
    task = call_async(new, :get)
    assert unanswered?(task)
    send(new, {:"$ph_handover", :unavailable, "c5"})
    assert Task.await(task) == 7

    send(new, {:process_hub, :handover, "c5", {99, []}})
    assert PhTest.wait_log(n, "came after the wait ended; dropped", 5_000, off)
    assert GenServer.call(new, :get) == 7
  end

  test "no state within the wait: the new copy serves with its fresh state", %{n: n} do
    new = spawn_worker(n, :counter, [5])
    off = PhTest.log_size(n)
    send(new, {:"$ph_handover", :await, "c6", 200})
    assert GenServer.call(new, :get, 10_000) == 5
    assert PhTest.wait_log(n, "no state within 200 ms; serving with a fresh state", 5_000, off)
  end

  test "a state the worker refuses keeps the fresh one", %{n: n} do
    new = spawn_worker(n, :counter, [4])
    off = PhTest.log_size(n)
    send(new, {:"$ph_handover", :await, "c7", 30_000})
    send(new, {:process_hub, :handover, "c7", {:not_a_number, []}})
    assert GenServer.call(new, :get) == 4
    assert PhTest.wait_log(n, "alter_handover_state refused the state", 5_000, off)
  end

  test "malformed handover messages are ordinary messages to the worker", %{n: n} do
    w = spawn_worker(n, :counter, [1])
    send(w, {:"$ph_handover", :await, "c8", -5})
    send(w, {:"$ph_handover", :bogus})
    send(w, {:process_hub, :handover})
    assert GenServer.call(w, :get) == 1
  end
end
