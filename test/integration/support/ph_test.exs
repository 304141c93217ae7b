# PhTest - helpers for the phnode integration tests (loaded with
# Code.require_file from each test file; only OTP and Elixir's stdlib).
#
# Environment (exported by test/integration/run.sh):
#   PHNODE         path of the phnode binary
#   PH_SAMPLE_LIB  path of libsample_worker.so (module greeter)
#   PH_BAD_PEER    path of the bad_peer helper (may not exist)
#   PH_COOKIE      the cookie of this run
#   PH_SUFFIX      unique per run, part of every node name
#   PH_TMPDIR      scratch directory of this run (node logs go here)
#   PH_PIDDIR      every OS process started by a test writes its pid here;
#                  run.sh kills whatever is listed on exit
#
# Every phnode is started through /bin/sh -c 'exec "$0" "$@" 2>>LOG' so its
# stderr (the log) lands in PH_TMPDIR/<name>.log and the port's os_pid is
# phnode's own pid.
defmodule PhTest do
  @table :ph_test_nodes
  @host "127.0.0.1"
  @default_ticktime 2

  defstruct [:name, :alive, :node, :owner, :os_pid, :log, :pidfile, :args]

  # --- environment -----------------------------------------------------------

  def env!(key) do
    case System.get_env(key) do
      nil -> raise "#{key} is not set: run the integration tests through test/integration/run.sh"
      "" -> raise "#{key} is empty: run the integration tests through test/integration/run.sh"
      v -> v
    end
  end

  def phnode, do: env!("PHNODE")
  def sample_lib, do: env!("PH_SAMPLE_LIB")
  def cookie, do: env!("PH_COOKIE")
  def suffix, do: env!("PH_SUFFIX")
  def tmp_dir, do: env!("PH_TMPDIR")
  def pid_dir, do: env!("PH_PIDDIR")

  def bad_peer do
    System.get_env("PH_BAD_PEER") ||
      Path.join([Path.dirname(phnode()), "test", "bad_peer"])
  end

  @doc "Call once, before ExUnit.start/1: node registry + failure log printer."
  def init do
    unless :ets.whereis(@table) != :undefined do
      parent = self()

      holder =
        spawn(fn ->
          :ets.new(@table, [:named_table, :public, :set])
          send(parent, {:ph_table_ready, self()})

          receive do
            :never -> :ok
          end
        end)

      receive do
        {:ph_table_ready, ^holder} -> :ok
      after
        5000 -> raise "cannot create the PhTest node table"
      end
    end

    :ok
  end

  @doc """
  A test file's start: init/0, then ExUnit with the trace output and
  PhTest.Formatter (which prints the phnode logs of a failed test), each test
  given `timeout` ms.
  """
  def start_exunit(timeout) do
    init()
    ExUnit.start(formatters: [ExUnit.CLIFormatter, PhTest.Formatter], trace: true, timeout: timeout)
  end

  # --- names ----------------------------------------------------------------

  @doc """
  A node alive-name unique to this run: prefix_SUFFIX_OSPID_N. The test
  file's own OS pid keeps two files of one run apart (each file's counter
  starts again at 1), so a node's log holds that node only.
  """
  def unique_name(prefix \\ "ph") do
    "#{prefix}_#{suffix()}_#{System.pid()}_#{System.unique_integer([:positive, :monotonic])}"
  end

  def node_atom(alive), do: :"#{alive}@#{@host}"

  def unique_atom(prefix \\ "w") do
    :"#{prefix}_#{System.unique_integer([:positive, :monotonic])}"
  end

  # --- starting and stopping phnode -------------------------------------------

  @doc """
  Starts a phnode and waits until it logged `ready: node=` and answers
  Node.ping. Options:
    name:        alive name (default unique_name("ph"))
    cookie:      (default PH_COOKIE)
    ticktime:    --net-ticktime (default 2; nil = omit)
    worker_lib:  true to pass --worker-lib PH_SAMPLE_LIB
    args:        extra command line arguments
    timeout:     ms to wait for readiness (default 15000)
    ping:        false to skip the Node.ping check
    host:        the node name's host (default 127.0.0.1)
    netns:       run it inside this network namespace (ip netns exec;
                 support/netns.exs creates them)
  Returns a %PhTest{}; raises (with the log tail) if it does not come up.
  """
  def start_node(opts \\ []) do
    alive = Keyword.get_lazy(opts, :name, fn -> unique_name("ph") end)
    node = if opts[:host], do: :"#{alive}@#{opts[:host]}", else: node_atom(alive)
    log = Path.join(tmp_dir(), "#{alive}.log")
    ticktime = Keyword.get(opts, :ticktime, @default_ticktime)

    args =
      ["--name", Atom.to_string(node), "--cookie", Keyword.get(opts, :cookie, cookie())] ++
        if(ticktime, do: ["--net-ticktime", to_string(ticktime)], else: []) ++
        if(opts[:worker_lib], do: ["--worker-lib", sample_lib()], else: []) ++
        # every test node talks to all phnodes: asking it would merge the
        # hubs of unrelated tests, so only tests of that discovery enable it
        if(Keyword.get(opts, :beam_discovery, false), do: [], else: ["--no-beam-discovery"]) ++
        Keyword.get(opts, :args, [])

    offset = file_size(log)
    # ip netns exec enters the namespace and executes phnode: the same pid
    {exe, args} =
      case opts[:netns] do
        nil -> {phnode(), args}
        ns -> {System.find_executable("ip"), ["netns", "exec", ns, phnode() | args]}
      end

    {owner, os_pid} = spawn_owner(exe, args, log, Keyword.get(opts, :env, []))
    pidfile = Path.join(pid_dir(), "phnode_#{alive}_#{os_pid}.pid")
    File.write!(pidfile, "#{os_pid}\n")

    n = %PhTest{
      name: alive,
      alive: alive,
      node: node,
      owner: owner,
      os_pid: os_pid,
      log: log,
      pidfile: pidfile,
      args: args
    }

    :ets.insert(@table, {{alive, os_pid}, log, now_ms(), nil})
    deadline = now_ms() + Keyword.get(opts, :timeout, 15_000)

    case wait_ready(n, offset, deadline) do
      :ok ->
        if Keyword.get(opts, :ping, true) do
          case wait_ping(node, deadline) do
            :pong ->
              n

            :pang ->
              kill_node(n)

              raise "phnode #{node} logged ready but Node.ping never answered :pong\n" <>
                      log_tail(log)
          end
        else
          n
        end

      {:exited, status} ->
        mark_stopped(n)
        File.rm(pidfile)

        raise "phnode #{node} exited with status #{status} before it was ready\n" <>
                log_tail(log)

      :timeout ->
        kill_node(n)
        raise "phnode #{node} did not log 'ready: node=' in time\n" <> log_tail(log)
    end
  end

  @doc """
  start_node/1 from inside a test, with --net-ticktime 4 unless opts say
  otherwise: the node is killed when the test ends (ExUnit's on_exit).
  """
  def start_for_test(opts \\ []) do
    n = start_node(Keyword.merge([ticktime: 4], opts))
    ExUnit.Callbacks.on_exit(fn -> if alive?(n), do: kill_node(n) end)
    n
  end

  @doc "SIGTERM, then wait for the exit. Returns {:ok, status} | :timeout (then SIGKILLs)."
  def stop_node(%PhTest{} = n, timeout \\ 10_000) do
    os_kill(n.os_pid, "TERM")

    case wait_exit(n, timeout) do
      {:ok, status} ->
        File.rm(n.pidfile)
        mark_stopped(n)
        {:ok, status}

      :timeout ->
        kill_node(n)
        :timeout
    end
  end

  @doc "SIGKILL and wait for the exit."
  def kill_node(%PhTest{} = n) do
    os_kill(n.os_pid, "KILL")
    res = wait_exit(n, 5000)
    File.rm(n.pidfile)
    mark_stopped(n)
    res
  end

  @doc "Waits for the OS process to exit: {:ok, status} | :timeout."
  def wait_exit(%PhTest{owner: owner}, timeout) do
    ref = make_ref()
    send(owner, {:wait_exit, self(), ref})

    receive do
      {^ref, status} -> {:ok, status}
    after
      timeout -> :timeout
    end
  end

  def alive?(%PhTest{owner: owner}) do
    ref = make_ref()
    send(owner, {:status, self(), ref})

    receive do
      {^ref, status} -> status == :running
    after
      2000 -> false
    end
  end

  defp os_kill(os_pid, sig) do
    System.cmd("kill", ["-#{sig}", to_string(os_pid)], stderr_to_stdout: true)
  end

  # The port owner: a process of its own (not linked to any test process) so
  # that the port, and the exit status, outlive the process that started it.
  defp spawn_owner(exe, args, log, extra_env) do
    parent = self()
    ref = make_ref()

    owner =
      spawn(fn ->
        port =
          Port.open({:spawn_executable, "/bin/sh"}, [
            :binary,
            :exit_status,
            :use_stdio,
            args: ["-c", ~S(exec "$0" "$@" 2>>"$PH_NODE_LOG" </dev/null), exe | args],
            env:
              [{~c"PH_NODE_LOG", String.to_charlist(log)}] ++
                for({k, v} <- extra_env, do: {String.to_charlist(k), String.to_charlist(v)})
          ])

        {:os_pid, os_pid} = Port.info(port, :os_pid)
        send(parent, {ref, os_pid})
        owner_loop(port, log, :running, [])
      end)

    receive do
      {^ref, os_pid} -> {owner, os_pid}
    after
      5000 -> raise "cannot spawn #{exe}"
    end
  end

  defp owner_loop(port, log, status, waiters) do
    receive do
      {^port, {:data, data}} ->
        # phnode's stdout (normally empty): keep it with the log
        File.write(log, data, [:append])
        owner_loop(port, log, status, waiters)

      {^port, {:exit_status, s}} ->
        Enum.each(waiters, fn {from, ref} -> send(from, {ref, s}) end)
        owner_loop(port, log, {:exited, s}, [])

      {:wait_exit, from, ref} ->
        case status do
          {:exited, s} ->
            send(from, {ref, s})
            owner_loop(port, log, status, waiters)

          :running ->
            owner_loop(port, log, status, [{from, ref} | waiters])
        end

      {:status, from, ref} ->
        send(from, {ref, status})
        owner_loop(port, log, status, waiters)
    end
  end

  defp wait_ready(n, offset, deadline) do
    ready = "ready: node=#{n.node}"

    cond do
      log_since(n.log, offset) |> String.contains?(ready) ->
        :ok

      match?({:exited, _}, owner_status(n)) ->
        # the exit may race with the last log line
        if String.contains?(log_since(n.log, offset), ready) do
          :ok
        else
          {:exited, elem(owner_status(n), 1)}
        end

      now_ms() > deadline ->
        :timeout

      true ->
        Process.sleep(25)
        wait_ready(n, offset, deadline)
    end
  end

  defp owner_status(%PhTest{owner: owner}) do
    ref = make_ref()
    send(owner, {:status, self(), ref})

    receive do
      {^ref, status} -> status
    after
      2000 -> :unknown
    end
  end

  defp wait_ping(node, deadline) do
    case Node.ping(node) do
      :pong ->
        :pong

      :pang ->
        if now_ms() > deadline do
          :pang
        else
          Process.sleep(100)
          wait_ping(node, deadline)
        end
    end
  end

  defp mark_stopped(n) do
    :ets.update_element(@table, {n.alive, n.os_pid}, {4, now_ms()})
  rescue
    _ -> :ok
  end

  # --- logs -------------------------------------------------------------------

  defp file_size(path) do
    case File.stat(path) do
      {:ok, %{size: s}} -> s
      _ -> 0
    end
  end

  def log_since(path, offset) do
    case File.open(path, [:read, :binary]) do
      {:ok, f} ->
        data =
          case :file.pread(f, offset, 64 * 1024 * 1024) do
            {:ok, d} -> d
            _ -> ""
          end

        File.close(f)
        data

      _ ->
        ""
    end
  end

  def log(%PhTest{log: log}), do: log_since(log, 0)

  def log_tail(path, lines \\ 40) do
    text =
      case File.read(path) do
        {:ok, t} -> t
        _ -> "(no log at #{path})"
      end

    tail = text |> String.split("\n") |> Enum.take(-lines) |> Enum.join("\n")
    "---- tail of #{path} ----\n#{tail}\n---- end of #{Path.basename(path)} ----"
  end

  @doc "Log tails of every node that was running at any time since since_ms (nil: all)."
  def log_tails_since(since_ms) do
    if :ets.whereis(@table) == :undefined do
      []
    else
      :ets.tab2list(@table)
      |> Enum.filter(fn {_, _log, _start, stop} ->
        since_ms == nil or stop == nil or stop >= since_ms
      end)
      |> Enum.map(fn {_, log, _, _} -> log end)
      |> Enum.uniq()
      |> Enum.map(&log_tail/1)
    end
  end

  @doc "Waits until the log (after offset) contains text; true | false."
  def wait_log(%PhTest{log: log}, text, timeout \\ 5000, offset \\ 0) do
    deadline = now_ms() + timeout
    do_wait_log(log, text, offset, deadline)
  end

  defp do_wait_log(log, text, offset, deadline) do
    cond do
      String.contains?(log_since(log, offset), text) ->
        true

      now_ms() > deadline ->
        false

      true ->
        Process.sleep(50)
        do_wait_log(log, text, offset, deadline)
    end
  end

  def log_size(%PhTest{log: log}), do: file_size(log)

  # --- ports and metrics ------------------------------------------------------------

  @doc "A free loopback port (closed again: a node binds it right after)."
  def free_port do
    {:ok, s} = :gen_tcp.listen(0, ip: {127, 0, 0, 1}, reuseaddr: true)
    {:ok, port} = :inet.port(s)
    :gen_tcp.close(s)
    port
  end

  @doc "The text of GET /metrics from a node started with --metrics-port port (plain OTP: no curl)."
  def scrape(port) do
    {:ok, s} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false], 5000)
    :ok = :gen_tcp.send(s, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    reply = recv_all(s, [])
    :gen_tcp.close(s)
    [head, body] = String.split(reply, "\r\n\r\n", parts: 2)
    unless head =~ ~r{^HTTP/1\.[01] 200}, do: raise("GET /metrics: #{head}")
    body
  end

  defp recv_all(s, acc) do
    case :gen_tcp.recv(s, 0, 5000) do
      {:ok, bytes} -> recv_all(s, [acc, bytes])
      {:error, :closed} -> IO.iodata_to_binary(acc)
      {:error, reason} -> raise "GET /metrics: #{inspect(reason)}"
    end
  end

  @doc "The value of the sample `name` (with its labels, as written) in a scrape; raises if missing."
  def metric(text, name) do
    case Regex.run(~r/^#{Regex.escape(name)} ([0-9.e+-]+)$/m, text) do
      [_, v] -> elem(Float.parse(v), 0)
      nil -> raise "#{name} missing from the scrape:\n#{text}"
    end
  end

  # --- calls --------------------------------------------------------------------

  def now_ms, do: System.monotonic_time(:millisecond)

  @doc "Calls fun every `pause` ms until it returns true or `ms` have passed; returns the last result."
  def wait_until(fun, ms, pause \\ 50) do
    deadline = now_ms() + ms

    Stream.repeatedly(fn ->
      ok = fun.()
      unless ok, do: Process.sleep(pause)
      ok
    end)
    |> Enum.find(fn ok -> ok or now_ms() > deadline end)
  end

  @doc "GenServer.call with timing: {elapsed_ms, {:ok, reply} | {:exit, reason}}."
  def timed_call(server, request, timeout \\ 5000) do
    t0 = System.monotonic_time(:microsecond)

    result =
      try do
        {:ok, GenServer.call(server, request, timeout)}
      catch
        :exit, reason -> {:exit, reason}
      end

    {(System.monotonic_time(:microsecond) - t0) / 1000, result}
  end

  @doc "Spawns a worker through {:phnode, node}; returns the pid or raises."
  def spawn_worker!(%PhTest{node: node}, module, args \\ [], opts \\ []) do
    case GenServer.call({:phnode, node}, {:spawn, module, args, opts}, 5000) do
      {:ok, pid} when is_pid(pid) ->
        pid

      other ->
        raise "spawn #{inspect(module)} #{inspect(args)} #{inspect(opts)} on #{node}: #{inspect(other)}"
    end
  end

  # --- other OS processes ----------------------------------------------------------

  @doc """
  Runs exe with args (its pid recorded in PH_PIDDIR while it runs). Returns
  {output, status}; status is :timeout if it had to be killed. Options:
    timeout:     ms (default 15000)
    env:         [{"NAME", "value"}]
    only_stderr: true to capture stderr alone (stdout goes to /dev/null);
                 by default stdout and stderr together
  """
  def cmd(exe, args, opts \\ []) do
    timeout = Keyword.get(opts, :timeout, 15_000)

    script =
      if opts[:only_stderr],
        do: ~S(exec "$0" "$@" 2>&1 >/dev/null </dev/null),
        else: ~S(exec "$0" "$@" 2>&1 </dev/null)

    port =
      Port.open({:spawn_executable, "/bin/sh"}, [
        :binary,
        :exit_status,
        args: ["-c", script, exe | args],
        env:
          Enum.map(Keyword.get(opts, :env, []), fn {k, v} ->
            {String.to_charlist(k), String.to_charlist(v)}
          end)
      ])

    {:os_pid, os_pid} = Port.info(port, :os_pid)
    pidfile = Path.join(pid_dir(), "cmd_#{Path.basename(exe)}_#{os_pid}.pid")
    File.write!(pidfile, "#{os_pid}\n")
    deadline = now_ms() + timeout
    res = collect(port, os_pid, [], deadline)
    File.rm(pidfile)
    res
  end

  defp collect(port, os_pid, acc, deadline) do
    wait = max(deadline - now_ms(), 0)

    receive do
      {^port, {:data, d}} ->
        collect(port, os_pid, [acc, d], deadline)

      {^port, {:exit_status, s}} ->
        {IO.iodata_to_binary(acc), s}
    after
      wait ->
        os_kill(os_pid, "KILL")

        receive do
          {^port, {:exit_status, _}} -> :ok
        after
          2000 -> :ok
        end

        {IO.iodata_to_binary(acc), :timeout}
    end
  end
end

defmodule PhTest.Formatter do
  @moduledoc "Prints the tail of the logs of the nodes involved in a failed test."
  use GenServer

  def init(_opts), do: {:ok, %{}}

  def handle_cast({:test_started, %ExUnit.Test{} = t}, state) do
    {:noreply, Map.put(state, {t.module, t.name}, PhTest.now_ms())}
  end

  def handle_cast({:test_finished, %ExUnit.Test{state: {kind, _}} = t}, state)
      when kind == :failed do
    since = Map.get(state, {t.module, t.name})
    tails = PhTest.log_tails_since(since)

    IO.puts(
      "\n==== phnode logs for failed test \"#{t.name}\" ====\n" <>
        Enum.join(tails, "\n") <> "\n"
    )

    {:noreply, state}
  end

  def handle_cast({:module_finished, %ExUnit.TestModule{state: {:failed, _}} = m}, state) do
    IO.puts(
      "\n==== phnode logs for failed module #{inspect(m.name)} ====\n" <>
        Enum.join(PhTest.log_tails_since(nil), "\n") <> "\n"
    )

    {:noreply, state}
  end

  def handle_cast(_event, state), do: {:noreply, state}
end
