# The node's own processes are supervised (issue 14, defect 2): killing the
# hub, the phnode service or net_kernel restarts it (logged at error level);
# a killed hub's children keep running and the new hub re-adopts them.
# Run by test/integration/run.sh.
Code.require_file("support/ph_test.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 120_000
)

defmodule PhNode.SupervisionTest do
  use ExUnit.Case, async: false

  defp start(opts \\ []), do: PhTest.start_for_test(opts)

  defp whereis(n, name), do: GenServer.call({:phnode, n.node}, {:whereis, name})

  defp spec(id, module, args), do: %{id: id, start: {module, :start_link, args}}

  # ms until fun returns true (polling every 10 ms), or :timeout after ms_max
  defp time_until(fun, ms_max) do
    t0 = System.monotonic_time(:millisecond)

    case PhTest.wait_until(fn -> safe(fun) end, ms_max, 10) do
      true -> System.monotonic_time(:millisecond) - t0
      _ -> :timeout
    end
  end

  defp safe(fun) do
    fun.()
  catch
    :exit, _ -> false
  end

  test "a killed hub is restarted at once, re-adopts its running children and supervises them" do
    n = start()
    hub = {:my_hub, n.node}

    {:ok, %{status: :ok}} =
      GenServer.call(
        hub,
        {:start_children,
         [spec("e1", :echo, []), spec("k1", :crasher, [:trap_exit]), spec("c1", :counter, [5])],
         [awaitable: true, metadata: %{tag: "sup"}]}
      )

    e1 = GenServer.call(hub, {:get_pid, "e1"})
    k1 = GenServer.call(hub, {:get_pid, "k1"})
    c1 = GenServer.call(hub, {:get_pid, "c1"})
    assert GenServer.call(c1, {:add, 1}) == 6
    old_hub = whereis(n, :my_hub)
    assert is_pid(old_hub)
    off = PhTest.log_size(n)

    Process.exit(old_hub, :kill)
    ms = time_until(fn -> GenServer.call(hub, {:get_pid, "e1"}) == e1 end, 5000)
    IO.puts("requests answered #{inspect(ms)} ms after the kill")
    assert is_integer(ms) and ms < 1000
    new_hub = whereis(n, :my_hub)
    assert is_pid(new_hub) and new_hub != old_hub
    assert PhTest.wait_log(n, "[error] supervisor: my_hub exited: killed; restarting it", 5000, off)

    # the same processes, with their state: re-adopted, not restarted
    assert GenServer.call(hub, {:get_pid, "k1"}) == k1
    assert GenServer.call(hub, {:get_pid, "c1"}) == c1
    assert GenServer.call(c1, :get) == 6
    assert GenServer.call(e1, :hello) == :hello
    assert GenServer.call(hub, :registry_count) == 3
    assert [{"c1", _}, {"e1", _}, {"k1", _}] = GenServer.call(hub, {:tag_query, "sup"}) |> Enum.sort()

    # and supervised by the new hub: a crash restarts the child
    ref = Process.monitor(e1)
    Process.exit(e1, :boom)
    assert_receive {:DOWN, ^ref, :process, _, :boom}, 5000

    assert PhTest.wait_until(
             fn ->
               p = GenServer.call(hub, {:get_pid, "e1"})
               is_pid(p) and p != e1
             end,
             5000
           )

    # stopping works, the trapping child included (it is killed after its shutdown)
    assert {:ok, %{status: :ok}} =
             GenServer.call(hub, {:stop_children, ["k1", "c1"], [awaitable: true]}, 15_000)

    assert GenServer.call(hub, {:get_pid, "k1"}) == nil
    # new children start as before
    assert {:ok, %{status: :ok}} =
             GenServer.call(hub, {:start_child, spec("e2", :echo, []), [awaitable: true]})

    # and SIGTERM stops the node promptly (no wait for members that do not exist)
    t0 = System.monotonic_time(:millisecond)
    PhTest.stop_node(n)
    assert System.monotonic_time(:millisecond) - t0 < 10_000
  end

  # A batch of 4096 children or more is started on two threads (the hub's
  # helper thread, hub/helper.c); a hub that ends stops that thread, and the
  # restarted hub's next big batch must get a new one, not wait for the old.
  test "after a restart the hub starts big batches on two threads again" do
    n = start()
    hub = {:my_hub, n.node}
    big = fn tag -> for i <- 1..5_000, do: spec("#{tag}#{i}", :counter, [i]) end

    {:ok, %{status: :ok, started: s1}} =
      GenServer.call(hub, {:start_children, big.("a"), [awaitable: true]}, 30_000)

    assert length(s1) == 5_000
    old_hub = whereis(n, :my_hub)
    off = PhTest.log_size(n)
    Process.exit(old_hub, :kill)
    assert PhTest.wait_log(n, "[error] supervisor: my_hub exited: killed; restarting it", 5000, off)
    assert is_integer(time_until(fn -> GenServer.call(hub, :registry_count) == 5_000 end, 10_000))

    {:ok, %{status: :ok, started: s2}} =
      GenServer.call(hub, {:start_children, big.("b"), [awaitable: true]}, 30_000)

    assert length(s2) == 5_000
    assert GenServer.call(hub, :registry_count) == 10_000
    # and once more: the thread the last batch started serves the next
    {:ok, %{status: :ok}} =
      GenServer.call(hub, {:start_children, big.("c"), [awaitable: true]}, 30_000)
  end

  test "the phnode service and net_kernel are restarted when killed" do
    n = start()
    for name <- [:phnode, :net_kernel] do
      old = whereis(n, name)
      assert is_pid(old)
      off = PhTest.log_size(n)
      Process.exit(old, :kill)

      ms =
        time_until(
          fn ->
            case name do
              :phnode -> is_list(GenServer.call({:phnode, n.node}, :modules, 500))
              :net_kernel -> :net_adm.ping(n.node) == :pong and whereis(n, :net_kernel) != old
            end
          end,
          5000
        )

      IO.puts("#{name} answered #{inspect(ms)} ms after the kill")
      assert is_integer(ms) and ms < 1000
      assert PhTest.wait_log(n, "[error] supervisor: #{name} exited: killed; restarting it", 5000, off)
      assert whereis(n, name) != old
    end
  end

  test "in a hub cluster a killed hub rejoins and every child runs once" do
    a = start()
    b = start(args: ["--join", Atom.to_string(a.node)])
    ha = {:my_hub, a.node}
    hb = {:my_hub, b.node}

    assert PhTest.wait_until(fn -> GenServer.call(ha, {:nodes, []}) == [b.node] end, 15_000)
    ids = for i <- 1..40, do: "cl#{i}"

    {:ok, %{status: :ok}} =
      GenServer.call(ha, {:start_children, Enum.map(ids, &spec(&1, :echo, [])), [awaitable: true]}, 15_000)

    Process.exit(whereis(a, :my_hub), :kill)

    once = fn ->
      la = GenServer.call(ha, {:process_list, :local}) |> Enum.map(&elem(&1, 0))
      lb = GenServer.call(hb, {:process_list, :local}) |> Enum.map(&elem(&1, 0))

      Enum.sort(la ++ lb) == Enum.sort(ids) and
        GenServer.call(ha, :registry_count) == 40 and GenServer.call(hb, :registry_count) == 40 and
        GenServer.call(ha, {:nodes, []}) == [b.node] and GenServer.call(hb, {:nodes, []}) == [a.node]
    end

    assert PhTest.wait_until(fn -> safe(once) end, 20_000)

    for id <- ids do
      pid = GenServer.call(hb, {:get_pid, id})
      assert GenServer.call(pid, id) == id
    end
  end
end
