# Operating phnode (docs/operations.md): `phnode ctl` against a running
# 2-node hub cluster, each command and each failure; the Prometheus endpoint
# scraped with curl; handshake failures told apart in the log; JSON log
# lines; the one-line error of a bad command line; no warnings for a --join
# node that is not running.
# Run by test/integration/run.sh.
Code.require_file("support/ph_test.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 60_000
)

defmodule PhNode.OpsTest do
  use ExUnit.Case, async: false

  @ticktime 2

  setup_all do
    port = PhTest.free_port()
    # names of their own: other test files reuse ph_SUFFIX_N (and its log file)
    a =
      PhTest.start_node(
        name: PhTest.unique_name("ops"),
        ticktime: @ticktime,
        args: ["--metrics-port", "#{port}"]
      )

    b =
      PhTest.start_node(
        name: PhTest.unique_name("ops"),
        ticktime: @ticktime,
        args: ["--join", Atom.to_string(a.node)]
      )

    on_exit(fn -> Enum.each([a, b], &PhTest.kill_node/1) end)

    members = fn n -> GenServer.call({:my_hub, n.node}, {:nodes, []}) end

    assert PhTest.wait_until(fn -> members.(a) == [b.node] and members.(b) == [a.node] end, 10_000),
           "the two nodes did not form a hub cluster"

    %{a: a, b: b, metrics_port: port}
  end

  # phnode ctl ARGS against node n: {stdout+stderr, exit status}
  defp ctl(n, args, opts \\ []) do
    cookie = Keyword.get(opts, :cookie, PhTest.cookie())
    target = if n, do: ["-n", Atom.to_string(n.node)], else: []
    PhTest.cmd(PhTest.phnode(), ["ctl" | target] ++ ["--cookie", cookie | args], timeout: 20_000)
  end

  defp one_line?(out), do: length(String.split(String.trim_trailing(out), "\n")) == 1

  describe "phnode ctl" do
    test "ping, status, members (text and --json)", %{a: a, b: b} do
      {out, 0} = ctl(a, ["ping"])
      assert out =~ "pong from #{a.node}"
      {out, 0} = ctl(a, ["--json", "ping"])
      assert out =~ ~s("result":"pong")

      {out, 0} = ctl(a, ["status"])

      for field <- ~w(node version uptime creation schedulers connections processes memory) do
        assert out =~ ~r/^#{field}\s+\S/m, "status lacks #{field}:\n#{out}"
      end

      assert out =~ ~r/^hub id\s+my_hub$/m
      assert out =~ ~r/^members\s+2:/m
      assert out =~ ~r/^partitioned\s+no$/m
      assert out =~ ~r/^strategy distribution\s+consistent_hashing/m

      {out, 0} = ctl(a, ["--json", "status"])
      assert out =~ ~s("hub_id":"my_hub")
      assert out =~ ~s("partitioned":false)
      assert out =~ ~s("node":"#{a.node}")

      {out, 0} = ctl(b, ["members"])
      assert out =~ ~r/^#{Regex.escape(Atom.to_string(b.node))}\s+\(this node\)/m
      hub_members = GenServer.call({:my_hub, b.node}, {:nodes, [:include_local]})
      assert out =~ ~r/^#{length(hub_members)} member\(s\) of hub my_hub$/m

      for m <- hub_members,
          do: assert(out =~ Atom.to_string(m), "#{m} missing: #{out} (hub: #{inspect(hub_members)})")

      assert a.node in hub_members, "#{b.node}'s hub lost #{a.node}: #{inspect(hub_members)}"
      {out, 0} = ctl(b, ["members", "--json"])
      assert out =~ ~s("members":[)
    end

    test "start-child, children, lookup, stop-child", %{a: a, b: b} do
      ids = for i <- 1..6, do: "ops_c#{i}_#{System.unique_integer([:positive])}"

      for id <- ids do
        spec = ~s({"id":"#{id}","start":{"module":"counter","args":[7]}})
        {out, 0} = ctl(a, ["start-child", spec])
        assert out =~ ~r/^started #{id} on \S+ as <.*>$/m
      end

      # both nodes see all six once the registry is synchronised
      assert PhTest.wait_until(
               fn ->
                 {out, 0} = ctl(b, ["children", "--json"])
                 Enum.all?(ids, &String.contains?(out, ~s("id":"#{&1}")))
               end,
               10_000
             )

      {out, 0} = ctl(a, ["children"])
      assert out =~ ~r/^ID\s+NODE\s+PID$/m
      for id <- ids, do: assert(out =~ id)

      {out, 0} = ctl(a, ["children", "--limit", "2"])
      assert out =~ ~r/^2 of \d+ children shown/m

      {out, 0} = ctl(a, ["children", "--node", Atom.to_string(b.node), "--json"])
      refute out =~ ~s("node":"#{a.node}")

      [first | _] = ids
      {out, 0} = ctl(a, ["lookup", first])
      assert out =~ ~r/^id\s+#{first}$/m
      assert out =~ ~r/^pid\s+<.*> on /m
      assert out =~ "counter"
      {out, 0} = ctl(a, ["--json", "lookup", first])
      assert out =~ ~s("id":"#{first}")
      assert out =~ ~s("start":["counter","start_link",[7]])

      # the child answers through its pid
      pid = GenServer.call({:my_hub, a.node}, {:get_pid, first})
      assert GenServer.call(pid, :get) == 7

      {out, 0} = ctl(b, ["stop-child", first])
      assert out =~ "stopped #{first}"

      assert PhTest.wait_until(
               fn -> GenServer.call({:my_hub, a.node}, {:get_pid, first}) == nil end,
               5000
             )

      for id <- tl(ids), do: {_, 0} = ctl(a, ["stop-child", id])
    end

    test "failures: one line on stderr and a non-zero status", %{a: a} do
      # unknown id
      {out, 1} = ctl(a, ["lookup", "no_such_child"])
      assert one_line?(out) and out =~ "unknown child id 'no_such_child'"
      {out, 1} = ctl(a, ["stop-child", "no_such_child"])
      assert one_line?(out) and out =~ "unknown child id"

      # start refused: same id twice, unknown module
      spec = ~s({"id":"ops_dup","start":{"module":"counter"}})
      {_, 0} = ctl(a, ["start-child", spec])
      {out, 1} = ctl(a, ["start-child", spec])
      assert one_line?(out) and out =~ "already started"
      {_, 0} = ctl(a, ["stop-child", "ops_dup"])
      {out, 1} = ctl(a, ["start-child", ~s({"id":"ops_nm","start":{"module":"nope"}})])
      assert one_line?(out) and out =~ "unknown_module", out

      # bad spec and bad JSON (exit 2, before connecting)
      {out, 2} = ctl(a, ["start-child", "{not json"])
      assert one_line?(out) and out =~ "not JSON"
      {out, 2} = ctl(a, ["start-child", ~s({"id":"x"})])
      assert one_line?(out) and out =~ ~s(child spec field "start")

      # wrong cookie, node down
      {out, 3} = ctl(a, ["ping"], cookie: "wrong_#{PhTest.suffix()}")
      assert one_line?(out) and out =~ "wrong cookie", out
      down = %PhTest{node: PhTest.node_atom(PhTest.unique_name("down"))}
      {out, 3} = ctl(down, ["status"])
      assert one_line?(out) and out =~ "node not running", out

      # command line
      {out, 2} = ctl(a, ["frobnicate"])
      assert one_line?(out) and out =~ "unknown command 'frobnicate'" and out =~ "--help"
      {out, 2} = ctl(a, ["lookup"])
      assert one_line?(out) and out =~ "lookup takes one ID"
      {out, 2} = ctl(a, ["status", "--limit", "3"])
      assert one_line?(out) and out =~ "children only"
      {out, 2} = ctl(a, ["children", "--limit", "x"])
      assert one_line?(out) and out =~ "--limit"
      {out, 2} = ctl(nil, ["status"])
      assert one_line?(out) and out =~ "which node?"
      {out, 0} = ctl(nil, ["--help"])
      assert out =~ "start-child"
    end
  end

  describe "metrics" do
    test "curl scrapes /metrics and the values move with the work done", %{
      a: a,
      metrics_port: port
    } do
      curl = System.find_executable("curl")

      if curl == nil do
        IO.puts("SKIPPED: curl not installed (apt-get install curl)")
      else
        url = "http://127.0.0.1:#{port}/metrics"
        scrape = fn ->
          {out, 0} = PhTest.cmd(curl, ["-sS", "--fail", url])
          out
        end

        value = fn text, name ->
          case Regex.run(~r/^#{Regex.escape(name)} ([0-9.e+-]+)$/m, text) do
            [_, v] -> elem(Float.parse(v), 0)
            nil -> flunk("#{name} missing from the scrape:\n#{text}")
          end
        end

        before = scrape.()
        assert before =~ "# TYPE phnode_calls_handled_total counter"
        assert before =~ "# TYPE phnode_processes gauge"

        {:ok, pid} = GenServer.call({:phnode, a.node}, {:spawn, :echo, [], []})
        for i <- 1..50, do: ^i = GenServer.call(pid, i)

        later = scrape.()

        for name <- [
              "phnode_calls_handled_total",
              "phnode_dist_messages_received_total",
              "phnode_dist_messages_sent_total",
              "phnode_dist_received_bytes_total",
              "phnode_dist_sent_bytes_total",
              "phnode_signals_enqueued_total",
              "phnode_metrics_scrapes_total"
            ] do
          assert value.(later, name) > value.(before, name), "#{name} did not move"
        end

        assert value.(later, "phnode_calls_handled_total") >=
                 value.(before, "phnode_calls_handled_total") + 50

        assert value.(later, "phnode_processes") == value.(before, "phnode_processes") + 1

        # the hub's own: starts, stops and the children gauge move with hub work
        ids = for i <- 1..20, do: "metrics_#{i}_#{System.unique_integer([:positive])}"
        specs = for id <- ids, do: %{id: id, start: {:counter, :start_link, [0]}}
        hub_before = scrape.()
        {:ok, %{status: :ok}} = GenServer.call({:my_hub, a.node}, {:start_children, specs, [awaitable: true]})
        {:ok, %{status: :ok}} = GenServer.call({:my_hub, a.node}, {:stop_children, ids, [awaitable: true]})
        hub_after = scrape.()
        starts = fn t -> value.(t, "phnode_hub_child_starts_total") end
        assert starts.(hub_after) - starts.(hub_before) > 0
        assert value.(hub_after, "phnode_hub_child_stops_total") > value.(hub_before, "phnode_hub_child_stops_total")
        assert value.(hub_after, ~s(phnode_hub_children{scope="cluster"})) >= 0
        assert value.(hub_after, "phnode_hub_members") >= 1
        assert value.(later, ~s(phnode_dist_peers{state="up"})) >= 2
        assert value.(later, "phnode_mailbox_backlog") >= 0
        assert later =~ ~r/^phnode_scheduler_busy_seconds_total\{scheduler="1"\} /m

        # a wrong cookie is counted by reason
        bad = value.(later, ~s(phnode_dist_handshake_failures_total{reason="bad_cookie"}))
        {_, 3} = ctl(a, ["ping"], cookie: "wrong_#{PhTest.suffix()}")

        assert PhTest.wait_until(
                 fn ->
                   value.(scrape.(), ~s(phnode_dist_handshake_failures_total{reason="bad_cookie"})) ==
                     bad + 1
                 end,
                 3000
               )

        {out, 0} = PhTest.cmd(curl, ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:#{port}/"])
        assert out == "404"
      end
    end
  end

  describe "logs" do
    test "wrong cookie, garbage and a silent peer are told apart, with the peer", %{a: a} do
      offset = PhTest.log_size(a)
      {_, 3} = ctl(a, ["ping"], cookie: "wrong_#{PhTest.suffix()}")

      assert PhTest.wait_log(a, "reason=bad_cookie", 5000, offset)
      text = PhTest.log_since(a.log, offset)
      assert text =~ ~r/\[warning\] handshake: incoming handshake failed: wrong cookie .*peer=phctl_\d+@127\.0\.0\.1 peer_addr=127\.0\.0\.1:\d+/

      # garbage: raw bytes that are no handshake
      {:port, port, _version} = :erl_epmd.port_please(String.to_charlist(a.alive), {127, 0, 0, 1})
      {:ok, s} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false])
      :ok = :gen_tcp.send(s, "zGARBAGE\xff\xfe\x00 this is not a handshake")
      :gen_tcp.close(s)
      assert PhTest.wait_log(a, "reason=garbage", 5000, offset)
      assert PhTest.log_since(a.log, offset) =~ ~r/not a distribution handshake.*peer_addr=127\.0\.0\.1:\d+/

      # a peer that connects and goes silent: timed out (phnode waits 5 s)
      {:ok, s} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false])
      :ok = :gen_tcp.send(s, <<0>>)
      assert PhTest.wait_log(a, "reason=timeout", 9000, offset)
      :gen_tcp.close(s)
      assert PhTest.log_since(a.log, offset) =~ ~r/handshake timed out.*peer_addr=127\.0\.0\.1:\d+/

      # phnode keeps serving
      assert Node.ping(a.node) == :pong
    end

    test "--log-format json writes one JSON object per line; a --join node not running is no warning" do
      missing = PhTest.node_atom(PhTest.unique_name("absent"))

      n =
        PhTest.start_node(
          name: PhTest.unique_name("opsjson"),
          ticktime: @ticktime,
          args: ["--log-format", "json", "--join", Atom.to_string(missing)]
        )

      on_exit(fn -> PhTest.kill_node(n) end)
      assert PhTest.wait_log(n, "(not running)", 5000)
      {:ok, _} = PhTest.stop_node(n)
      lines = PhTest.log(n) |> String.split("\n", trim: true)
      assert length(lines) > 2

      for line <- lines do
        assert line =~
                 ~r/^\{"time":"[0-9T:.Z-]+","level":"(error|warning|info|debug)","component":"[a-z_]+","node":"#{Regex.escape(Atom.to_string(n.node))}","message":".*"(,"[a-z_]+":".*")*\}$/,
               "not a JSON log line: #{line}"

        refute line =~ ~s("level":"warning"), "a warning at start-up: #{line}"
      end
    end

    test "a bad command line prints one line naming the problem and --help" do
      for {args, text} <- [
            {["--bogus"], "unknown option '--bogus'"},
            {["--name", "x@127.0.0.1", "--metrics-port", "abc"], "--metrics-port must be"},
            {["--name", "x@127.0.0.1", "--log-format", "xml"], "--log-format must be text or json"},
            {["--name", "x@127.0.0.1", "--busy-poll-mode", "fast"],
             "--busy-poll-mode must be cpu or latency"},
            {["--schedulers"], "--schedulers needs a value"}
          ] do
        {out, status} = PhTest.cmd(PhTest.phnode(), args)
        assert status == 2
        assert one_line?(out), "more than one line for #{inspect(args)}:\n#{out}"
        assert out =~ text and out =~ "--help", out
      end
    end
  end
end
