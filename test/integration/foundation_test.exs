# Foundation tests: a BEAM node talks to a phnode C node exactly as it would to
# another BEAM node. Run by test/integration/run.sh as
#   elixir --name t_SUFFIX@127.0.0.1 --cookie COOKIE --erl "-kernel net_ticktime 2" \
#          test/integration/foundation_test.exs
Code.require_file("support/ph_test.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 60_000
)

# Runs on client nodes started with :peer (its object code is sent there;
# plain Erlang calls only, Elixir is not loaded there): rounds of n casts
# {:add, 1} to a counter, then a call :get, which the worker must answer
# after all of them when the connection's frames are handled in order.
# Returns what each :get saw, last round first.
{:module, OrderLoop, order_loop_bin, _} =
  defmodule OrderLoop do
    def run(_counter, _n, 0, acc), do: acc

    def run(counter, n, rounds, acc) do
      casts(counter, n)
      run(counter, n, rounds - 1, [:gen_server.call(counter, :get, 60_000) | acc])
    end

    defp casts(_counter, 0), do: :ok

    defp casts(counter, k) do
      :gen_server.cast(counter, {:add, 1})
      casts(counter, k - 1)
    end
  end

:persistent_term.put(:order_loop_bin, order_loop_bin)

defmodule PhNode.FoundationTest do
  use ExUnit.Case, async: false
  import PhTest, only: [spawn_worker!: 2, spawn_worker!: 3, spawn_worker!: 4, timed_call: 3]

  @ticktime 2
  # 3 x net_ticktime, plus a little
  @idle_ms 6_500

  setup_all do
    unless Node.alive?() do
      raise "the test node is not distributed: run through test/integration/run.sh"
    end

    ph = PhTest.start_node(worker_lib: true, ticktime: @ticktime, args: ["--schedulers", "2"])
    on_exit(fn -> PhTest.stop_node(ph) end)
    %{ph: ph, node: ph.node}
  end

  defp crash_call(server, reason) do
    catch_exit(GenServer.call(server, {:crash, reason}, 5000))
  end

  # --- calls, casts, sends ------------------------------------------------------

  describe "GenServer.call / cast / send" do
    test "call by pid returns the reply (echo, counter, kv spawned without a name)", %{ph: ph} do
      echo = spawn_worker!(ph, :echo)
      assert is_pid(echo)
      assert node(echo) == ph.node
      term = {:hello, [1, 2.5, "bin", %{a: [:b]}, {}, -12_345_678_901_234_567_890], self()}
      assert GenServer.call(echo, term) == term
      assert GenServer.call(echo, :x) == :x

      counter = spawn_worker!(ph, :counter, [5])
      assert GenServer.call(counter, :get) == 5
      assert GenServer.call(counter, {:add, 3}) == 8
      assert GenServer.call(counter, {:add, -10}) == -2
      assert GenServer.call(counter, :get) == -2

      kv = spawn_worker!(ph, :kv)
      assert GenServer.call(kv, {:get, :a}) == :not_found
      assert GenServer.call(kv, {:put, :a, 1}) == :ok
      assert GenServer.call(kv, {:put, {:k, "2"}, %{"v" => [1, 2, 3]}}) == :ok
      assert GenServer.call(kv, {:put, :a, :one}) == :ok
      assert GenServer.call(kv, {:get, :a}) == {:ok, :one}
      assert GenServer.call(kv, {:get, {:k, "2"}}) == {:ok, %{"v" => [1, 2, 3]}}
      assert Enum.sort(GenServer.call(kv, :keys)) == Enum.sort([:a, {:k, "2"}])
    end

    test "call by {name, node} returns the reply (echo, counter, kv spawned with name:)",
         %{ph: ph, node: node} do
      [e, c, k] = for p <- ~w(echo counter kv), do: PhTest.unique_atom("named_" <> p)
      echo = spawn_worker!(ph, :echo, [], name: e)
      counter = spawn_worker!(ph, :counter, [100], name: c)
      kv = spawn_worker!(ph, :kv, [], name: k)

      assert GenServer.call({e, node}, {:ping, 1}) == {:ping, 1}
      assert GenServer.call(echo, :by_pid) == :by_pid

      assert GenServer.call({c, node}, :get) == 100
      assert GenServer.call({c, node}, {:add, 1}) == 101
      # the name and the pid are the same process
      assert GenServer.call(counter, :get) == 101

      assert GenServer.call({k, node}, {:put, "key", "value"}) == :ok
      assert GenServer.call(kv, {:get, "key"}) == {:ok, "value"}
      assert GenServer.call({k, node}, :keys) == ["key"]
    end

    test "GenServer.cast arrives (by pid and by name)", %{ph: ph, node: node} do
      name = PhTest.unique_atom("cast_counter")
      counter = spawn_worker!(ph, :counter, [10], name: name)
      assert GenServer.cast(counter, {:add, 5}) == :ok
      assert GenServer.cast({name, node}, {:add, 2}) == :ok
      # an unknown cast is ignored, the worker lives on
      assert GenServer.cast(counter, :unknown_cast) == :ok
      assert GenServer.call(counter, :get) == 17
    end

    test "send arrives (redundancy_signal, by pid and by name)", %{ph: ph, node: node} do
      name = PhTest.unique_atom("signal_counter")
      counter = spawn_worker!(ph, :counter, [0], name: name)
      assert GenServer.call(counter, :mode) == :undefined
      send(counter, {:process_hub, :redundancy_signal, :active})
      assert GenServer.call(counter, :mode) == :active
      send({name, node}, {:process_hub, :redundancy_signal, :passive})
      assert GenServer.call({name, node}, :mode) == :passive
      # an unrelated message is ignored
      send(counter, :some_other_message)
      assert GenServer.call(counter, :mode) == :passive
    end
  end

  # --- the phnode service -----------------------------------------------------------

  describe "the phnode registered process" do
    test ":modules lists the bundled modules and greeter", %{node: node} do
      mods = GenServer.call({:phnode, node}, :modules)
      assert is_list(mods)
      for m <- [:echo, :counter, :kv, :crasher, :greeter], do: assert(m in mods, inspect(mods))
      # system modules are not spawnable worker modules
      refute :phnode in mods, inspect(mods)
      refute :net_kernel in mods, inspect(mods)
    end

    test "spawn of an unknown module", %{node: node} do
      assert GenServer.call({:phnode, node}, {:spawn, :nope, [], []}) ==
               {:error, {:unknown_module, :nope}}
    end

    test "bad args to counter -> {:error, _}", %{ph: ph, node: node} do
      assert {:error, reason} = GenServer.call({:phnode, node}, {:spawn, :counter, "x", []})
      refute match?({:unknown_module, _}, reason)
      assert {:error, _} = GenServer.call({:phnode, node}, {:spawn, :counter, [:a, :b], []})
      # still serving
      assert GenServer.call(spawn_worker!(ph, :counter, [3]), :get) == 3
    end

    test "duplicate name -> {:error, {:already_started, pid}}", %{ph: ph, node: node} do
      name = PhTest.unique_atom("dup")
      first = spawn_worker!(ph, :echo, [], name: name)

      assert GenServer.call({:phnode, node}, {:spawn, :counter, [1], [name: name]}) ==
               {:error, {:already_started, first}}

      assert GenServer.call({:phnode, node}, {:spawn, :echo, [], [name: name]}) ==
               {:error, {:already_started, first}}

      # the first one still owns the name
      assert GenServer.call({name, node}, :still_echo) == :still_echo
    end

    test "malformed requests get {:error, _} and the node keeps serving",
         %{ph: ph, node: node} do
      bad = [
        :bogus,
        {:spawn},
        {:spawn, :echo},
        {:spawn, :echo, []},
        {:spawn, "echo", [], []},
        {:spawn, 42, [], []},
        {:spawn, :echo, [], :not_a_list},
        {:spawn, :echo, [], {:name, :x}},
        {:spawn, :echo, [], [:foo]},
        {:spawn, :echo, [], [name: "not an atom"]},
        {:spawn, :echo, [], [{:name, :x} | :improper]},
        {:spawn, :echo, [], [name: :ok_name, other: 1]},
        {:spawn, :echo, [], [], :extra},
        {"modules"},
        [:modules],
        String.duplicate("x", 100_000)
      ]

      for req <- bad do
        {ms, res} = timed_call({:phnode, node}, req, 5000)

        assert match?({:ok, {:error, _}}, res),
               "request #{inspect(req, limit: 8)} -> #{inspect(res)} after #{ms} ms"
      end

      # things that are not calls at all
      send({:phnode, node}, :garbage)
      send({:phnode, node}, {:"$gen_call", :not_a_from, :modules})
      send({:phnode, node}, {:"$gen_call", {self()}, :modules})
      GenServer.cast({:phnode, node}, {:spawn, :echo, [], []})
      refute_receive _, 300

      assert :echo in GenServer.call({:phnode, node}, :modules)
      assert GenServer.call(spawn_worker!(ph, :echo), :alive) == :alive
    end
  end

  # --- noproc ---------------------------------------------------------------------

  describe "noproc" do
    test "a call to a stopped worker's pid exits :noproc quickly", %{ph: ph} do
      pid = spawn_worker!(ph, :crasher)
      ref = Process.monitor(pid)
      assert GenServer.call(pid, {:stop, :normal}) == :ok
      assert_receive {:DOWN, ^ref, :process, ^pid, :normal}, 5000

      {ms, res} = timed_call(pid, :anything, 5000)
      assert {:exit, {:noproc, {GenServer, :call, _}}} = res
      assert ms < 1000, "noproc took #{ms} ms"
    end

    test "a call to an unknown registered name exits :noproc quickly", %{node: node} do
      name = PhTest.unique_atom("no_such_name")
      {ms, res} = timed_call({name, node}, :anything, 5000)
      assert {:exit, {:noproc, {GenServer, :call, _}}} = res
      assert ms < 1000, "noproc took #{ms} ms"
    end

    test "a call to a name whose worker stopped exits :noproc quickly",
         %{ph: ph, node: node} do
      name = PhTest.unique_atom("gone")
      pid = spawn_worker!(ph, :crasher, [], name: name)
      ref = Process.monitor(pid)
      assert GenServer.call({name, node}, {:stop, :shutdown}) == :ok
      assert_receive {:DOWN, ^ref, :process, ^pid, :shutdown}, 5000
      {ms, res} = timed_call({name, node}, :anything, 5000)
      assert {:exit, {:noproc, _}} = res
      assert ms < 1000, "noproc took #{ms} ms"
    end
  end

  # --- crashes, monitors, links, exit signals -----------------------------------------

  describe "crashes, monitors, links" do
    test "worker crash during a call: the caller exits with the crash reason", %{ph: ph} do
      pid = spawn_worker!(ph, :crasher)
      assert {{:boom, 42}, {GenServer, :call, _}} = crash_call(pid, {:boom, 42})
      {ms, res} = timed_call(pid, :after_crash, 5000)
      assert {:exit, {:noproc, _}} = res
      assert ms < 1000
    end

    test "Process.monitor + crash: DOWN carries the real reason", %{ph: ph} do
      pid = spawn_worker!(ph, :crasher)
      ref = Process.monitor(pid)
      reason = {:boom, 42, "with a binary", [1.5]}
      assert {^reason, _} = crash_call(pid, reason)
      assert_receive {:DOWN, ^ref, :process, ^pid, ^reason}, 5000
    end

    test "{:stop, reason} replies :ok, then DOWN carries the reason", %{ph: ph} do
      pid = spawn_worker!(ph, :crasher)
      ref = Process.monitor(pid)
      assert GenServer.call(pid, {:stop, {:done, 7}}) == :ok
      assert_receive {:DOWN, ^ref, :process, ^pid, {:done, 7}}, 5000
    end

    test "a linked process that traps exits gets {:EXIT, pid, reason}", %{ph: ph} do
      pid = spawn_worker!(ph, :crasher)
      Process.flag(:trap_exit, true)
      true = Process.link(pid)
      assert {{:boom, :linked}, _} = crash_call(pid, {:boom, :linked})
      assert_receive {:EXIT, ^pid, {:boom, :linked}}, 5000
    end

    test "a linked process that does not trap exits dies with the worker's reason",
         %{ph: ph} do
      pid = spawn_worker!(ph, :crasher)
      test = self()

      linked =
        spawn(fn ->
          Process.link(pid)
          send(test, :linked)

          receive do
            :never -> :ok
          end
        end)

      lref = Process.monitor(linked)
      assert_receive :linked, 5000
      assert {{:boom, :propagated}, _} = crash_call(pid, {:boom, :propagated})
      assert_receive {:DOWN, ^lref, :process, ^linked, {:boom, :propagated}}, 5000
    end

    test "Process.exit(pid, :kill) kills a C worker", %{ph: ph} do
      pid = spawn_worker!(ph, :echo)
      ref = Process.monitor(pid)
      assert GenServer.call(pid, :before) == :before
      Process.exit(pid, :kill)
      assert_receive {:DOWN, ^ref, :process, ^pid, :killed}, 5000
      assert {_, {:exit, {:noproc, _}}} = timed_call(pid, :after, 5000)
    end

    test "Process.exit(pid, :normal) does not kill it", %{ph: ph} do
      pid = spawn_worker!(ph, :counter, [1])
      ref = Process.monitor(pid)
      Process.exit(pid, :normal)
      refute_receive {:DOWN, ^ref, :process, ^pid, _}, 500
      assert GenServer.call(pid, :get) == 1
    end

    test "Process.exit(pid, reason) kills a non-trapping worker with that reason",
         %{ph: ph} do
      pid = spawn_worker!(ph, :echo)
      ref = Process.monitor(pid)
      Process.exit(pid, {:shutdown, :from_test})
      assert_receive {:DOWN, ^ref, :process, ^pid, {:shutdown, :from_test}}, 5000
    end

    test "monitor by {name, node} gives DOWN with {name, node}, UTF-8 names too", %{ph: ph, node: node} do
      for prefix <- ["mon_by_name", "mön_bý_nämé"] do
        name = PhTest.unique_atom(prefix)
        spawn_worker!(ph, :crasher, [], name: name)
        ref = Process.monitor({name, node})
        assert {{:boom, 3}, _} = crash_call({name, node}, {:boom, 3})
        assert_receive {:DOWN, ^ref, :process, {^name, ^node}, {:boom, 3}}, 5000
      end
    end

    test "monitor of an unknown name or a dead pid gives DOWN :noproc", %{ph: ph, node: node} do
      for prefix <- ["never_registered", "nïe_régistered"] do
        name = PhTest.unique_atom(prefix)
        ref = Process.monitor({name, node})
        assert_receive {:DOWN, ^ref, :process, {^name, ^node}, :noproc}, 2000
      end

      pid = spawn_worker!(ph, :crasher)
      assert GenServer.call(pid, {:stop, :normal}) == :ok
      # wait until it is really gone
      ref1 = Process.monitor(pid)
      assert_receive {:DOWN, ^ref1, :process, ^pid, _}, 5000
      ref2 = Process.monitor(pid)
      assert_receive {:DOWN, ^ref2, :process, ^pid, :noproc}, 2000
    end

    test "Process.demonitor: no DOWN after it", %{ph: ph} do
      pid = spawn_worker!(ph, :crasher)
      ref = Process.monitor(pid)
      assert Process.demonitor(ref) == true
      assert {{:boom, :demon}, _} = crash_call(pid, {:boom, :demon})
      refute_receive {:DOWN, ^ref, _, _, _}, 1000
    end

    test "Process.link then Process.unlink, then crash: no EXIT", %{ph: ph} do
      pid = spawn_worker!(ph, :crasher)
      Process.flag(:trap_exit, true)
      true = Process.link(pid)
      true = Process.unlink(pid)
      assert {{:boom, :unlinked}, _} = crash_call(pid, {:boom, :unlinked})
      refute_receive {:EXIT, ^pid, _}, 1000
    end

    test "a late reply after the caller's timeout leaves no stray message", %{ph: ph} do
      pid = spawn_worker!(ph, :crasher)
      {ms, res} = timed_call(pid, {:sleep, 500}, 100)
      assert {:exit, {:timeout, {GenServer, :call, _}}} = res
      assert ms < 400

      receive do
        msg -> flunk("stray message after the call timed out: #{inspect(msg)}")
      after
        1000 -> :ok
      end

      # the worker is fine afterwards
      assert GenServer.call(pid, {:sleep, 0}) == :ok
    end
  end

  # --- distribution ------------------------------------------------------------------

  describe "distribution" do
    test "Node.ping == :pong and phnode is a hidden node", %{node: node} do
      assert Node.ping(node) == :pong
      assert node in Node.list(:hidden), inspect(Node.list(:hidden))
      assert node in Node.list(:connected)
      refute node in Node.list(), inspect(Node.list())
    end

    test "idle for 3 x net_ticktime: the connection stays up", %{ph: ph, node: node} do
      :ok = :net_kernel.monitor_nodes(true, node_type: :all)
      echo = spawn_worker!(ph, :echo)
      assert GenServer.call(echo, :before_idle) == :before_idle
      Process.sleep(@idle_ms)
      assert node in Node.list(:hidden), inspect(Node.list(:hidden))
      refute_received {:nodedown, ^node, _}
      assert GenServer.call(echo, :after_idle) == :after_idle
      assert GenServer.call({:phnode, node}, :modules) |> is_list()
      refute_received {:nodedown, ^node, _}
    end

    test "a callback blocked for 3 x net_ticktime delays only its own worker",
         %{ph: ph, node: node} do
      :ok = :net_kernel.monitor_nodes(true, node_type: :all)
      sleeper = spawn_worker!(ph, :crasher)
      echo = spawn_worker!(ph, :echo)
      task = Task.async(fn -> timed_call(sleeper, {:sleep, @idle_ms}, 20_000) end)
      Process.sleep(100)

      calls = measure_until(task, echo, node, [])
      {sleep_ms, sleep_res} = Task.await(task, 30_000)
      assert sleep_res == {:ok, :ok}
      assert sleep_ms >= @idle_ms - 100

      during = Enum.filter(calls, fn {_ms, res, hidden?} -> hidden? and res == {:ok, :ping} end)
      slow = Enum.filter(calls, fn {ms, _, _} -> ms >= 1000 end)

      assert length(during) >= 5,
             "only #{length(during)} good calls during the sleep: #{inspect(calls, limit: 50)}"

      assert length(during) == length(calls), inspect(calls, limit: 50)
      assert slow == [], "calls slower than 1 s while another worker slept: #{inspect(slow)}"
      assert node in Node.list(:hidden)
      refute_received {:nodedown, ^node, _}
      assert GenServer.call(sleeper, {:sleep, 0}) == :ok
    end

    # Several pollers read at once (a long read hands the next arrivals to
    # another scheduler; with 4 schedulers a batch of several connections is
    # handed over at once): the frames of each connection must still be
    # handled in the order they were sent.
    test "4 client nodes casting and calling beside a 20 MB echo: each connection in order" do
      ph = PhTest.start_node(worker_lib: true, ticktime: @ticktime, args: ["--schedulers", "4"])
      on_exit(fn -> PhTest.stop_node(ph) end)
      cookie = Atom.to_charlist(Node.get_cookie())

      peers =
        for _ <- 1..4 do
          {:ok, pid, node} =
            :peer.start_link(%{
              name: String.to_atom(PhTest.unique_name("orderpeer")),
              host: ~c"127.0.0.1",
              longnames: true,
              args: [~c"-setcookie", cookie, ~c"-connect_all", ~c"false"] ++
                [~c"-kernel", ~c"net_ticktime", ~c"#{@ticktime}"]
            })

          {:module, OrderLoop} =
            :erpc.call(node, :code, :load_binary, [
              OrderLoop,
              ~c"nofile",
              :persistent_term.get(:order_loop_bin)
            ])

          {pid, node}
        end

      try do
        counters = for _ <- peers, do: spawn_worker!(ph, :counter, [0])
        echo = spawn_worker!(ph, :echo)
        big = :rand.bytes(20 * 1024 * 1024)
        flood = Task.async(fn -> GenServer.call(echo, big, 60_000) end)

        reqs =
          for {{_, node}, c} <- Enum.zip(peers, counters),
              do: :erpc.send_request(node, OrderLoop, :run, [c, 300, 20, []])

        for r <- reqs do
          seen = r |> :erpc.receive_response(120_000) |> Enum.reverse()
          assert seen == Enum.map(1..20, &(&1 * 300))
        end

        assert Task.await(flood, 60_000) == big
      after
        for {pid, _} <- peers, do: :peer.stop(pid)
      end
    end

    test "a 20 MB binary round-trips through echo", %{ph: ph} do
      echo = spawn_worker!(ph, :echo)
      bin = :rand.bytes(20 * 1024 * 1024)
      {ms, res} = timed_call(echo, bin, 60_000)
      assert {:ok, back} = res
      assert byte_size(back) == byte_size(bin)
      assert back == bin, "20 MB echo came back different (#{ms} ms)"
      # and a small call right after
      assert GenServer.call(echo, {:small, 1}) == {:small, 1}
    end

    test "garbage bytes to the distribution port: socket closed, node still serves",
         %{ph: ph, node: node} do
      {:port, port, _version} =
        :erl_epmd.port_please(String.to_charlist(ph.alive), {127, 0, 0, 1})

      {:ok, sock} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false], 5000)
      payload = "zGARBAGE\xff\xfe\x00 this is not a handshake"
      :ok = :gen_tcp.send(sock, <<byte_size(payload)::16, payload::binary>>)
      assert recv_until_closed(sock, PhTest.now_ms() + 5000) == :closed
      :gen_tcp.close(sock)

      # a second, oversized length prefix followed by junk and an early close
      {:ok, sock2} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false], 5000)
      :ok = :gen_tcp.send(sock2, <<0xFF, 0xFF, 1, 2, 3>>)
      :gen_tcp.close(sock2)

      assert Node.ping(node) == :pong
      assert GenServer.call(spawn_worker!(ph, :echo), :after_garbage) == :after_garbage
      assert node in Node.list(:hidden)
    end

    test "bad_peer badframe: a malformed control message closes that connection only",
         %{ph: ph, node: node} do
      bad_peer = PhTest.bad_peer()

      unless File.exists?(bad_peer) do
        flunk("#{bad_peer} does not exist (build it with make: test/tools/bad_peer.c)")
      end

      :ok = :net_kernel.monitor_nodes(true, node_type: :all)
      {out, status} = PhTest.cmd(bad_peer, [Atom.to_string(node), PhTest.cookie(), "badframe"])
      assert status == 0, "bad_peer badframe exited #{inspect(status)}: #{out}"
      assert GenServer.call(spawn_worker!(ph, :echo), :after_bad_frame) == :after_bad_frame
      refute_received {:nodedown, ^node, _}
    end

    test "bad_peer badmsg and truncated: a message or control tuple that runs past its frame closes that connection only",
         %{ph: ph, node: node} do
      bad_peer = PhTest.bad_peer()
      :ok = :net_kernel.monitor_nodes(true, node_type: :all)

      for mode <- ["badmsg", "truncated"] do
        {out, status} = PhTest.cmd(bad_peer, [Atom.to_string(node), PhTest.cookie(), mode])
        assert status == 0, "bad_peer #{mode} exited #{inspect(status)}: #{out}"
        assert GenServer.call(spawn_worker!(ph, :echo), {:after, mode}) == {:after, mode}
      end

      refute_received {:nodedown, ^node, _}
    end

    test "bad_peer garbage: raw garbage closes that socket only", %{ph: ph, node: node} do
      bad_peer = PhTest.bad_peer()

      unless File.exists?(bad_peer) do
        flunk("#{bad_peer} does not exist (build it with make: test/tools/bad_peer.c)")
      end

      {out, status} = PhTest.cmd(bad_peer, [Atom.to_string(node), PhTest.cookie(), "garbage"])
      assert status == 0, "bad_peer garbage exited #{inspect(status)}: #{out}"
      assert GenServer.call(spawn_worker!(ph, :echo), :after_garbage) == :after_garbage
    end

    test "--worker-lib: the greeter module answers", %{ph: ph, node: node} do
      greeter = spawn_worker!(ph, :greeter)
      assert GenServer.call(greeter, {:hello, "world"}) == {:hello, "world", :from_library}
      name = PhTest.unique_atom("greeter")
      spawn_worker!(ph, :greeter, [], name: name)
      assert GenServer.call({name, node}, {:hello, :bob}) == {:hello, :bob, :from_library}
    end

    test "a node with the wrong cookie gets pang; phnode keeps serving",
         %{ph: ph, node: node} do
      elixir = System.find_executable("elixir") || flunk("elixir not found in PATH")
      wc = PhTest.unique_name("wc")

      {out, status} =
        PhTest.cmd(
          elixir,
          [
            "--name",
            "#{wc}@127.0.0.1",
            "--cookie",
            "wrong_#{PhTest.suffix()}",
            "-e",
            "IO.puts(\"PING=\#{Node.ping(:\"#{node}\")}\")"
          ],
          timeout: 30_000
        )

      assert status == 0, "elixir exited #{inspect(status)}: #{out}"
      assert out =~ "PING=pang", out
      assert Node.ping(node) == :pong
      assert GenServer.call(spawn_worker!(ph, :echo), :after_wrong_cookie) == :after_wrong_cookie
    end
  end

  # --- node life cycle ---------------------------------------------------------------

  describe "C node to C node" do
    defp nodes_of(n), do: GenServer.call({:phnode, n.node}, :nodes)

    defp wait_until(fun, deadline_ms) do
      cond do
        fun.() -> true
        PhTest.now_ms() > deadline_ms -> false
        true -> Process.sleep(50) && wait_until(fun, deadline_ms)
      end
    end

    test "two phnodes that --join each other end with one stable connection" do
      a_name = PhTest.unique_name("pj")
      b_name = PhTest.unique_name("pj")
      a_node = PhTest.node_atom(a_name)
      b_node = PhTest.node_atom(b_name)
      a = PhTest.start_node(name: a_name, ticktime: @ticktime, args: ["--join", "#{b_node}"])
      on_exit(fn -> if PhTest.alive?(a), do: PhTest.kill_node(a) end)
      b = PhTest.start_node(name: b_name, ticktime: @ticktime, args: ["--join", "#{a_node}"])
      on_exit(fn -> if PhTest.alive?(b), do: PhTest.kill_node(b) end)

      deadline = PhTest.now_ms() + 10_000
      assert wait_until(fn -> b_node in nodes_of(a) and a_node in nodes_of(b) end, deadline),
             "a sees #{inspect(nodes_of(a))}, b sees #{inspect(nodes_of(b))}"

      # Stable: still connected after several tick periods, with no reconnects.
      # (When both handshakes complete at once, the losing connection of the
      # simultaneous connect is closed on the way: that is before this point.)
      closed = fn n -> Regex.scan(~r/connection to #{Regex.escape(Atom.to_string(n))} closed/, PhTest.log(if n == b_node, do: a, else: b)) end
      Process.sleep(500)
      closed_before = {closed.(b_node), closed.(a_node)}
      Process.sleep(3 * @ticktime * 1000)
      assert b_node in nodes_of(a)
      assert a_node in nodes_of(b)
      assert {closed.(b_node), closed.(a_node)} == closed_before

      # The other side dies: the survivor notices and forgets it.
      PhTest.kill_node(b)
      assert wait_until(fn -> b_node not in nodes_of(a) end, PhTest.now_ms() + 5_000)
      assert GenServer.call({:phnode, a.node}, :modules) |> Enum.member?(:echo)
    end
  end

  describe "node life cycle" do
    test "restart under the same name: old pids are :noproc, new workers work" do
      b = PhTest.start_node(ticktime: @ticktime)
      on_exit(fn -> if PhTest.alive?(b), do: PhTest.kill_node(b) end)
      name = PhTest.unique_atom("restart_counter")
      old = spawn_worker!(b, :counter, [7], name: name)
      assert GenServer.call(old, :get) == 7
      ref = Process.monitor(old)

      assert PhTest.stop_node(b) == {:ok, 0}
      assert_receive {:DOWN, ^ref, :process, ^old, down_reason}, 5000
      assert down_reason in [:shutdown, :noconnection, :killed], inspect(down_reason)
      assert PhTest.log(b) =~ "stopped"

      b2 = PhTest.start_node(name: b.alive, ticktime: @ticktime)
      on_exit(fn -> if PhTest.alive?(b2), do: PhTest.kill_node(b2) end)
      assert b2.node == b.node

      {ms, res} = timed_call(old, :get, 5000)
      assert {:exit, {:noproc, _}} = res
      assert ms < 1000, "noproc for the old pid took #{ms} ms"
      {_, res} = timed_call({name, b.node}, :get, 5000)
      assert {:exit, {:noproc, _}} = res

      new = spawn_worker!(b2, :counter, [1], name: name)
      assert new != old
      assert GenServer.call(new, {:add, 1}) == 2
      assert GenServer.call({name, b2.node}, :get) == 2
      assert PhTest.stop_node(b2) == {:ok, 0}
    end

    # The busy poll reads the connection that was active last directly;
    # a peer that goes away right after its replies closes it there.
    test "a peer that disconnects right after its calls, again and again: each connection closes, the node keeps serving" do
      b = PhTest.start_node(ticktime: @ticktime)
      on_exit(fn -> if PhTest.alive?(b), do: PhTest.kill_node(b) end)
      :ok = :net_kernel.monitor_nodes(true, node_type: :all)
      node = b.node

      for round <- 1..25 do
        echo = spawn_worker!(b, :echo)
        for i <- 1..20, do: assert(GenServer.call(echo, {round, i}) == {round, i})
        assert Node.disconnect(node)
        assert_receive {:nodedown, ^node, _}, 5000
      end

      :ok = :net_kernel.monitor_nodes(false, node_type: :all)
      assert PhTest.alive?(b)
      assert GenServer.call(spawn_worker!(b, :echo), :still_serving) == :still_serving
      assert PhTest.stop_node(b) == {:ok, 0}
      refute PhTest.log(b) =~ ~r/\[(error|fatal)\]/i
    end

    test "bad command lines exit non-zero with one clear message" do
      cfg = Path.join(PhTest.tmp_dir(), "bad_config_#{System.unique_integer([:positive])}.json")
      File.write!(cfg, ~s({"net_ticktime": 2, "no_such_field": 1}))
      n = "#{PhTest.unique_name("bad")}@127.0.0.1"
      c = PhTest.cookie()

      cases = [
        {["--name", n, "--cookie", c, "--schedulers", "0"], "--schedulers"},
        {["--cookie", c], "--name"},
        {["--name", n, "--cookie", c, "--config", "/nonexistent.json"], "/nonexistent.json"},
        {["--name", n, "--cookie", c, "--config", cfg], "no_such_field"},
        {["--name", n, "--cookie", c, "--bogus-flag"], "--bogus-flag"},
        {["--name", n, "--cookie", c, "--net-ticktime", "abc"], "--net-ticktime"},
        {["--name", n, "--cookie", c, "--log-level", "loud"], "--log-level"},
        {["--name", n, "--cookie", c, "--worker-lib", "/nonexistent/libnope.so"],
         "/nonexistent/libnope.so"}
      ]

      failures =
        Enum.flat_map(cases, fn {args, expect} ->
          # stderr alone: the message must be there
          {out, status} = PhTest.cmd(PhTest.phnode(), args, timeout: 10_000, only_stderr: true)
          msg_lines = Regex.scan(~r/^phnode: .*$/m, out)

          problem =
            cond do
              status == :timeout ->
                "did not exit within 10 s"

              status == 0 ->
                "exited 0"

              length(msg_lines) != 1 ->
                "expected one 'phnode: ...' line, got #{length(msg_lines)}"

              not String.contains?(out, expect) ->
                "the message does not mention #{expect}"

              true ->
                nil
            end

          if problem,
            do: ["phnode #{Enum.join(args, " ")}: #{problem} (status #{inspect(status)})\n#{out}"],
            else: []
        end)

      assert failures == [], Enum.join(failures, "\n")
    end
  end

  # --- helpers -------------------------------------------------------------------------

  defp measure_until(task, echo, node, acc) do
    {ms, res} = timed_call(echo, :ping, 5000)
    acc = [{ms, res, node in Node.list(:hidden)} | acc]
    Process.sleep(400)
    if task_done?(task), do: Enum.reverse(acc), else: measure_until(task, echo, node, acc)
  end

  # (not by receiving the reply: Task.await must find it in order, before :DOWN)
  defp task_done?(%Task{pid: pid}), do: not Process.alive?(pid)

  defp recv_until_closed(sock, deadline) do
    wait = max(deadline - PhTest.now_ms(), 0)

    case :gen_tcp.recv(sock, 0, wait) do
      {:ok, _data} -> recv_until_closed(sock, deadline)
      {:error, :closed} -> :closed
      {:error, :econnreset} -> :closed
      {:error, :timeout} -> :still_open
      other -> other
    end
  end
end
