# One connection per node, as the BEAM's dist_util and net_kernel keep it
# (docs/protocol.md, "Handshake"): the statuses phnode answers a connecting
# node (alive, nok, ok_simultaneous), what the answers to its "alive" do, and
# the simultaneous dial of two phnodes. The peers here are BEAM code speaking
# the handshake by hand (support/raw_peer.exs): a fake node registered with
# epmd that phnode dials, and raw connections that claim its name. Nothing is
# timed: every wait is a generous bound. Run by test/integration/run.sh.
Code.require_file("support/ph_test.exs", __DIR__)
Code.require_file("support/raw_peer.exs", __DIR__)
PhTest.start_exunit(180_000)

defmodule PhNode.ConnectionTest do
  use ExUnit.Case, async: false

  defp start(opts), do: PhTest.start_for_test(opts)

  # Several nodes started at once (each start waits for its node).
  defp start_many(opts_list) do
    nodes =
      opts_list
      |> Enum.map(fn opts ->
        Task.async(fn -> PhTest.start_node(Keyword.merge([ticktime: 4], opts)) end)
      end)
      |> Enum.map(&Task.await(&1, 30_000))

    for n <- nodes, do: on_exit(fn -> if PhTest.alive?(n), do: PhTest.kill_node(n) end)
    nodes
  end

  # A node name registered with epmd (RawPeer.listen_as): phnode's dials to
  # it are accepted and answered by hand.
  defp fake(prefix) do
    alive = PhTest.unique_name(prefix)
    {:ok, f} = RawPeer.listen_as(alive)

    on_exit(fn ->
      :gen_tcp.close(f.listen)
      :gen_tcp.close(f.epmd)
    end)

    Map.put(f, :node, PhTest.node_atom(alive))
  end

  defp accept_dial(x) do
    {:ok, sock, from} = RawPeer.accept_dial(x)
    {sock, from}
  end

  defp finish_accept(sock, x) do
    {:ok, sock} = RawPeer.accept_rest(sock, x.node, PhTest.cookie(), [])
    sock
  end

  # Makes phnode send {tag, msg} to a pid of node: its echo worker answers a
  # call whose caller is that pid.
  defp poke(echo, node, tag, msg),
    do: send(echo, {:"$gen_call", {RawPeer.pid(node, 1), tag}, msg})

  # After our status: challenge, reply, ack (its digest checked); then a pump
  # that sends the frames decoded: {:frame, pump, control, message}.
  defp finish_initiate(sock, name, cookie) do
    {:ok, sock} = RawPeer.finish_handshake(sock, cookie)
    RawPeer.pump(sock, name, true)
  end

  defp connect_as(n, name) do
    {sock, status} = RawPeer.name_status(n.node, name)
    assert status == {:ok, "sok"}
    finish_initiate(sock, name, PhTest.cookie())
  end

  # A worker linked to a pid of the raw peer's node, over that connection:
  # a nodedown for the node kills it (it does not trap exits). The call
  # answered after the LINK on the same connection proves the link is made.
  defp linked_echo(n, peer) do
    echo = PhTest.spawn_worker!(n, :echo)
    from = RawPeer.pid(peer.name, 7)
    :ok = RawPeer.send_frame(peer, :erlang.term_to_binary({1, from, echo}))
    call_over(peer, echo, :linked)
    echo
  end

  # A phnode connected to a raw peer named x (old), an echo on it linked to
  # a pid of x, and our monitor of that echo.
  defp connected_with_echo do
    n = start(name: PhTest.unique_name("cm"))
    x = PhTest.node_atom(PhTest.unique_name("cx"))
    old = connect_as(n, x)
    echo = linked_echo(n, old)
    {n, x, old, echo, monitor_sync(echo)}
  end

  # A monitor of echo that phnode has set up when this returns: the call
  # goes on the same connection after it. (A monitor is a signal on its
  # way, and phnode reads a raw peer's connection in parallel: without
  # this, the old connection could close first, and DOWN say noproc.)
  defp monitor_sync(echo) do
    ref = Process.monitor(echo)
    _ = GenServer.call(echo, :monitored, 5000)
    ref
  end

  # A call to echo from a pid of the raw peer's node, over the peer.
  defp call_over(%{pump: pump} = peer, echo, msg) do
    tag = make_ref()
    from = RawPeer.pid(peer.name, 8)

    :ok =
      RawPeer.send_frame(
        peer,
        :erlang.term_to_binary({2, :"", echo}),
        :erlang.term_to_binary({:"$gen_call", {from, tag}, msg})
      )

    assert_receive {:frame, ^pump, _ctl, {^tag, ^msg}}, 5000
  end

  defp dropped_lines(n), do: Regex.scan(~r/dropped the messages/, PhTest.log(n))

  describe "a name phnode is connected to already (alive)" do
    test "true: the old connection closes first, with a nodedown; the new one carries on" do
      {n, x, old, echo, ref} = connected_with_echo()

      {sock, status} = RawPeer.name_status(n.node, x)
      assert status == {:ok, "salive"}
      :ok = :gen_tcp.send(sock, "strue")
      new = finish_initiate(sock, x, PhTest.cookie())

      old_pump = old.pump
      assert_receive {:raw_closed, ^old_pump}, 5000
      assert_receive {:DOWN, ^ref, :process, ^echo, :noconnection}, 5000
      echo2 = PhTest.spawn_worker!(n, :echo)
      call_over(new, echo2, :after_replace)
      assert PhTest.log(n) =~ "#{x} reconnected"
    end

    test "false: the new attempt ends, the old connection and its links stay" do
      {n, x, old, echo, ref} = connected_with_echo()

      {sock, status} = RawPeer.name_status(n.node, x)
      assert status == {:ok, "salive"}
      :ok = :gen_tcp.send(sock, "sfalse")
      assert :gen_tcp.recv(sock, 0, 5000) == {:error, :closed}

      call_over(old, echo, :still_here)
      old_pump = old.pump
      refute_received {:raw_closed, ^old_pump}
      refute_received {:DOWN, ^ref, _, _, _}
    end

    test "true with a wrong cookie: nothing is replaced (the cookie is proved first)" do
      {n, x, old, echo, ref} = connected_with_echo()

      {sock, status} = RawPeer.name_status(n.node, x)
      assert status == {:ok, "salive"}
      :ok = :gen_tcp.send(sock, "strue")
      {:ok, <<?N, _::64, challenge::32, _::binary>>} = :gen_tcp.recv(sock, 0, 5000)
      bad = RawPeer.digest(challenge, :not_the_cookie)
      :ok = :gen_tcp.send(sock, <<?r, 1::32, bad::binary>>)
      assert :gen_tcp.recv(sock, 0, 5000) == {:error, :closed}

      call_over(old, echo, :still_here)
      refute_received {:DOWN, ^ref, _, _, _}

      # and a later, honest "true" still works: the check was released
      {sock2, status2} = RawPeer.name_status(n.node, x)
      assert status2 == {:ok, "salive"}
      :ok = :gen_tcp.send(sock2, "strue")
      _new = finish_initiate(sock2, x, PhTest.cookie())
      assert_receive {:DOWN, ^ref, :process, ^echo, :noconnection}, 5000
    end
  end

  describe "a node connecting to phnode" do
    test "marks the node pending: messages sent meanwhile wait for that connection, no second dial" do
      n = start(name: PhTest.unique_name("cm"))
      x = fake("cx")
      echo = PhTest.spawn_worker!(n, :echo)
      {sock, status} = RawPeer.name_status(n.node, x.node)
      assert status == {:ok, "sok"}

      # phnode has x's name, not its reply yet: a message to x waits for this one
      poke(echo, x.node, :t1, :queued)
      assert {:error, :timeout} = :gen_tcp.accept(x.listen, 500)

      peer = finish_initiate(sock, x.node, PhTest.cookie())
      pump = peer.pump
      assert_receive {:frame, ^pump, _ctl, {:t1, :queued}}, 5000
      assert {:error, :timeout} = :gen_tcp.accept(x.listen, 200)
    end

    test "a new handshake from a node replaces its earlier one that went silent" do
      n = start(name: PhTest.unique_name("cm"))
      # the lesser name: net_kernel would answer nok while the first one lasts
      x = PhTest.node_atom(PhTest.unique_name("ca"))
      echo = PhTest.spawn_worker!(n, :echo)
      {stale, status} = RawPeer.name_status(n.node, x)
      assert status == {:ok, "sok"}
      poke(echo, x, :t1, :queued)

      {sock, status2} = RawPeer.name_status(n.node, x)
      assert status2 == {:ok, "sok"}
      peer = finish_initiate(sock, x, PhTest.cookie())
      pump = peer.pump
      assert_receive {:frame, ^pump, _ctl, {:t1, :queued}}, 5000

      # the first one, finished now, is not adopted beside it
      {:ok, <<?N, _::64, challenge::32, _::binary>>} = :gen_tcp.recv(stale, 0, 5000)

      :ok =
        :gen_tcp.send(stale, <<?r, 1::32, RawPeer.digest(challenge, PhTest.cookie())::binary>>)

      assert {:ok, <<?a, _::binary>>} = :gen_tcp.recv(stale, 0, 5000)
      assert :gen_tcp.recv(stale, 0, 5000) == {:error, :closed}
      call_over(peer, echo, :still_one)
      assert PhTest.log(n) =~ "closing a duplicate incoming connection to #{x}"
    end

    test "a second handshake while phnode waits for an alive answer is closed without a status" do
      {n, x, old, echo, ref} = connected_with_echo()

      {sock, status} = RawPeer.name_status(n.node, x)
      assert status == {:ok, "salive"}
      {sock3, status3} = RawPeer.name_status(n.node, x)
      assert status3 == {:error, :closed}
      :gen_tcp.close(sock3)

      :ok = :gen_tcp.send(sock, "sfalse")
      assert :gen_tcp.recv(sock, 0, 5000) == {:error, :closed}
      call_over(old, echo, :still_here)
      refute_received {:DOWN, ^ref, _, _, _}
    end
  end

  describe "phnode dialing a node that dials it (simultaneous connect)" do
    test "nok when phnode's own attempt wins (its name is the greater); its frames go on its own connection" do
      n = start(name: PhTest.unique_name("cm"))
      x = fake("ca")
      assert Atom.to_string(n.node) > Atom.to_string(x.node)
      echo = PhTest.spawn_worker!(n, :echo)
      poke(echo, x.node, :t1, :queued)
      {dial, from} = accept_dial(x)
      assert from == n.node

      # x dials phnode meanwhile: phnode's own attempt wins
      {sock, status} = RawPeer.name_status(n.node, x.node)
      assert status == {:ok, "snok"}
      assert :gen_tcp.recv(sock, 0, 5000) == {:error, :closed}

      dial = finish_accept(dial, x)
      assert {_ctl, {:t1, :queued}} = RawPeer.recv_frame(dial)
      poke(echo, x.node, :t2, :after)
      assert {_ctl, {:t2, :after}} = RawPeer.recv_frame(dial)
      assert dropped_lines(n) == []
    end

    test "ok_simultaneous when the other's name is greater: its connection takes over phnode's attempt and the frames waiting" do
      n = start(name: PhTest.unique_name("cm"))
      x = fake("cz")
      assert Atom.to_string(n.node) < Atom.to_string(x.node)
      echo = PhTest.spawn_worker!(n, :echo)
      poke(echo, x.node, :t1, :queued)
      {dial, _} = accept_dial(x)

      {sock, status} = RawPeer.name_status(n.node, x.node)
      assert status == {:ok, "sok_simultaneous"}
      peer = finish_initiate(sock, x.node, PhTest.cookie())
      pump = peer.pump
      assert_receive {:frame, ^pump, _ctl, {:t1, :queued}}, 5000

      # phnode's own attempt, answered "alive", says it no longer holds the node
      :ok = :gen_tcp.send(dial, "salive")
      assert :gen_tcp.recv(dial, 0, 5000) == {:ok, "sfalse"}
      assert :gen_tcp.recv(dial, 0, 5000) == {:error, :closed}

      # the connection that won keeps working, and nothing saw a nodedown
      linked = linked_echo(n, peer)
      ref = Process.monitor(linked)
      poke(echo, x.node, :t2, :after)
      assert_receive {:frame, ^pump, _ctl, {:t2, :after}}, 5000
      refute_received {:DOWN, ^ref, _, _, _}
      assert dropped_lines(n) == []
      refute PhTest.log(n) =~ "connection to #{x.node} closed"
    end

    test "a dial answered nok waits for the other's connection instead of dropping what waits" do
      n = start(name: PhTest.unique_name("cm"))
      x = fake("cz")
      echo = PhTest.spawn_worker!(n, :echo)
      poke(echo, x.node, :t1, :queued)
      {dial, _} = accept_dial(x)
      # x's own attempt wins: it answers nok, then dials phnode
      :ok = :gen_tcp.send(dial, "snok")
      assert :gen_tcp.recv(dial, 0, 5000) == {:error, :closed}

      {sock, status} = RawPeer.name_status(n.node, x.node)
      assert status == {:ok, "sok_simultaneous"}
      peer = finish_initiate(sock, x.node, PhTest.cookie())
      pump = peer.pump
      assert_receive {:frame, ^pump, _ctl, {:t1, :queued}}, 5000
      assert dropped_lines(n) == []
    end
  end

  describe "two phnodes" do
    defp counter_value(c), do: GenServer.call(c, :get)

    # Each node's echo sends casts to a counter on the other: a node pair
    # that is not connected yet dials both ways at once.
    test "dialing each other at once: one connection each, no frame lost" do
      for round <- 1..4 do
        [a, b] = start_many([[name: PhTest.unique_name("cs")], [name: PhTest.unique_name("cs")]])

        ca = PhTest.spawn_worker!(a, :counter, [0])
        cb = PhTest.spawn_worker!(b, :counter, [0])
        ea = PhTest.spawn_worker!(a, :echo)
        eb = PhTest.spawn_worker!(b, :echo)
        k = 300

        for _ <- 1..k do
          send(ea, {:"$gen_call", {cb, :"$gen_cast"}, {:add, 1}})
          send(eb, {:"$gen_call", {ca, :"$gen_cast"}, {:add, 1}})
        end

        assert PhTest.wait_until(
                 fn -> counter_value(ca) == k and counter_value(cb) == k end,
                 15_000
               ),
               "round #{round}: a's counter #{counter_value(ca)}, b's #{counter_value(cb)} of #{k}"

        for {x, y} <- [{a, b}, {b, a}] do
          log = PhTest.log(x)
          ups = Regex.scan(~r/connected to #{Regex.escape(Atom.to_string(y.node))} /, log)

          assert length(ups) == 1,
                 "round #{round}: #{x.node} connected #{length(ups)} times to #{y.node}"

          refute log =~ "connection to #{y.node} closed"
          refute log =~ "dropped the messages"
          assert y.node in GenServer.call({:phnode, x.node}, :nodes)
        end

        PhTest.kill_node(a)
        PhTest.kill_node(b)
      end
    end

    test "joining each other at start-up: one connection each, members agree" do
      for round <- 1..3 do
        [an, bn] = [PhTest.unique_name("cj"), PhTest.unique_name("cj")]
        [a_node, b_node] = [PhTest.node_atom(an), PhTest.node_atom(bn)]

        [a, b] =
          start_many([
            [name: an, args: ["--join", Atom.to_string(b_node)]],
            [name: bn, args: ["--join", Atom.to_string(a_node)]]
          ])

        members = fn x -> GenServer.call({:my_hub, x.node}, {:nodes, []}) end

        assert PhTest.wait_until(
                 fn -> members.(a) == [b.node] and members.(b) == [a.node] end,
                 15_000
               ),
               "round #{round}: a has #{inspect(members.(a))}, b has #{inspect(members.(b))}"

        for {x, y} <- [{a, b}, {b, a}] do
          log = PhTest.log(x)
          ups = Regex.scan(~r/connected to #{Regex.escape(Atom.to_string(y.node))} /, log)
          assert length(ups) == 1, "round #{round}: #{x.node} connected #{length(ups)} times"
          refute log =~ "connection to #{y.node} closed"
        end

        PhTest.kill_node(a)
        PhTest.kill_node(b)
      end
    end
  end
end
