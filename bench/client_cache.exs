# Benchmarks of the Elixir client (clients/elixir), run by bench/client_cache.sh.
# Prints one JSON object per scenario; ratios matter, not absolute numbers.
#
#  1. get_pid from the client's cache vs Registry.lookup, at 1k, 10k, 100k
#     and 1M children (goal >= 1.0x);
#  2. cache freshness after a kill -9 of the member the client is attached
#     to: ms between the surviving registries agreeing and the cache agreeing
#     with them (goal <= 200 ms);
#  3. 100k children started with one awaitable start_children through the
#     client (cache updated, read-your-writes) vs the raw GenServer.call on a
#     hub with no subscriber (goal: <= 10% slower).
Code.require_file("client_lib.exs", __DIR__)
PhTest.init()
Logger.configure(level: :error)

defmodule ClBench do
  def spec(id), do: %{id: id, start: {:counter, :start_link, [0]}}
  def ids(prefix, n), do: for(i <- 1..n, do: "#{prefix}#{i}")

  def connect(name, nodes) do
    {:ok, pid} =
      PhNode.Hub.start_link(hub_id: name, hub: :my_hub, nodes: nodes, cookie: PhTest.cookie())

    Process.unlink(pid)
    name
  end

  def us(fun) do
    t0 = System.monotonic_time(:microsecond)
    fun.()
    System.monotonic_time(:microsecond) - t0
  end

  # lookups of the keys of a shuffled tuple, in order: {lookups per second
  # of wall time, lookups per second of this VM's CPU time} (compiled loops,
  # one per side, so that both pay the same overhead; nothing else runs in
  # this VM meanwhile, so its CPU time is the loop's, which the host's load
  # does not stretch as it stretches the wall time)
  def rate_client(keys, h, n), do: rates(n, fn -> client_loop(keys, tuple_size(keys), h, n, 0) end)

  def rate_registry(keys, reg, n),
    do: rates(n, fn -> reg_loop(keys, tuple_size(keys), reg, n, 0) end)

  defp rates(n, fun) do
    {cpu0, _} = :erlang.statistics(:runtime)
    wall = us(fun)
    {cpu1, _} = :erlang.statistics(:runtime)
    {n * 1_000_000 / wall, n * 1000 / max(cpu1 - cpu0, 1)}
  end

  defp client_loop(_keys, _size, _h, 0, _i), do: :ok

  defp client_loop(keys, size, h, n, i) do
    PhNode.get_pid(h, elem(keys, i))
    client_loop(keys, size, h, n - 1, if(i + 1 == size, do: 0, else: i + 1))
  end

  defp reg_loop(_keys, _size, _reg, 0, _i), do: :ok

  defp reg_loop(keys, size, reg, n, i) do
    Registry.lookup(reg, elem(keys, i))
    reg_loop(keys, size, reg, n - 1, if(i + 1 == size, do: 0, else: i + 1))
  end

  # runs fun in a new process and returns its result
  def isolated(fun) do
    {pid, ref} = spawn_monitor(fn -> exit({:ok, fun.()}) end)

    receive do
      {:DOWN, ^ref, :process, ^pid, {:ok, v}} -> v
      {:DOWN, ^ref, :process, ^pid, other} -> raise "lookup sample failed: #{inspect(other)}"
    end
  end

  def start_all(h, ids) do
    ids
    |> Enum.chunk_every(100_000)
    |> Enum.each(fn chunk ->
      {:ok, f} =
        PhNode.start_children(h, Enum.map(chunk, &spec/1), awaitable: true, timeout: 120_000)

      %PhNode.StartResult{status: :ok} = PhNode.Future.await(f)
    end)
  end

  def stop_all_raw(node, ids) do
    ids
    |> Enum.chunk_every(100_000)
    |> Enum.each(fn chunk ->
      {:ok, _} =
        GenServer.call({:my_hub, node}, {:stop_children, chunk, [awaitable: true]}, :infinity)
    end)
  end

  def json(map), do: IO.puts(encode(map))

  # Full cache rows {cid, [{node, pid}], spec, meta} from a start's result and
  # its specs, every spec started in order: {rows, count}.
  def full_rows(started, specs, meta), do: full_rows(started, specs, meta, [], 0)
  defp full_rows([], _specs, _meta, acc, n), do: {acc, n}

  defp full_rows([{cid, nps} | rest], [%{id: cid} = spec | specs], meta, acc, n),
    do: full_rows(rest, specs, meta, [{cid, nps, spec, meta} | acc], n + 1)

  defp encode(m) when is_map(m),
    do: "{" <> Enum.map_join(m, ", ", fn {k, v} -> "\"#{k}\": #{encode(v)}" end) <> "}"

  defp encode(l) when is_list(l), do: "[" <> Enum.map_join(l, ", ", &encode/1) <> "]"
  defp encode(f) when is_float(f), do: :erlang.float_to_binary(f, decimals: 3)
  defp encode(x) when is_integer(x), do: Integer.to_string(x)
  defp encode(s) when is_binary(s) or is_atom(s), do: "\"#{s}\""

  def median(l), do: l |> Enum.sort() |> Enum.at(div(length(l), 2))
end

rounds = String.to_integer(System.get_env("ROUNDS", "3"))
# CLBENCH_ONLY=lookup|freshness|start runs one scenario
only = System.get_env("CLBENCH_ONLY")
run? = fn name -> only in [nil, "", name] end

# --- 1. get_pid vs Registry.lookup -------------------------------------------------
# Per size: LOOKUP_ROUNDS rounds (default 9), each one cache sample and one
# Registry sample, their order alternating between rounds; each sample runs
# in a fresh process (same heap start for both sides) over the same shuffled
# keys. Reported: every round's two rates and ratio, and the median ratio.
if run?.("lookup") do
  ph = PhTest.start_node(args: [])
  h = ClBench.connect(:clb_cache, [ph.node])
  {:ok, _} = Registry.start_link(keys: :unique, name: ClBench.Reg)
  me = self()
  lookup_rounds = String.to_integer(System.get_env("LOOKUP_ROUNDS", "9"))

  Enum.reduce([1_000, 10_000, 100_000, 1_000_000], 0, fn n, have ->
    new = ClBench.ids("k", n) |> Enum.drop(have)
    ClBench.start_all(h, new)
    for k <- new, do: {:ok, _} = Registry.register(ClBench.Reg, k, nil)
    keys = ClBench.ids("k", n) |> Enum.shuffle() |> List.to_tuple()
    ^n = :ets.info(h, :size)
    lookups = max(1_000_000, 2 * n)
    # the pids are right
    [{pid, nil}] = Registry.lookup(ClBench.Reg, elem(keys, 0))
    ^pid = me
    true = is_pid(PhNode.get_pid(h, elem(keys, 0)))
    client = fn -> ClBench.isolated(fn -> ClBench.rate_client(keys, h, lookups) end) end
    reg = fn -> ClBench.isolated(fn -> ClBench.rate_registry(keys, ClBench.Reg, lookups) end) end

    samples =
      for round <- 1..lookup_rounds do
        if rem(round, 2) == 1 do
          c = client.()
          {c, reg.()}
        else
          r = reg.()
          {client.(), r}
        end
      end

    ratios = for {{c, _}, {r, _}} <- samples, do: c / r
    cpu_ratios = for {{_, c}, {_, r}} <- samples, do: c / r
    {load1, _} = Float.parse(File.read!("/proc/loadavg"))

    ClBench.json(%{
      scenario: "client_get_pid_vs_registry_lookup",
      children: n,
      load_average_1m: load1,
      lookups_per_sample: lookups,
      client_lookups_per_s: for({{c, _}, _} <- samples, do: c),
      registry_lookups_per_s: for({_, {r, _}} <- samples, do: r),
      ratios: ratios,
      cpu_ratios: cpu_ratios,
      median_client_lookups_per_s: ClBench.median(for {{c, _}, _} <- samples, do: c),
      median_registry_lookups_per_s: ClBench.median(for {_, {r, _}} <- samples, do: r),
      median_client_lookups_per_cpu_s: ClBench.median(for {{_, c}, _} <- samples, do: c),
      median_registry_lookups_per_cpu_s: ClBench.median(for {_, {_, r}} <- samples, do: r),
      median_ratio: ClBench.median(ratios),
      median_cpu_ratio: ClBench.median(cpu_ratios),
      min_ratio: Enum.min(ratios),
      goal: ">= 1.0"
    })

    n
  end)

  PhNode.Hub.stop(h)
  PhTest.kill_node(ph)
end

# --- 2. freshness after kill -9 ----------------------------------------------------------
if run?.("freshness") do
  fresh =
    for round <- 1..rounds do
      a = PhTest.start_node(args: [])
      b = PhTest.start_node(args: ["--join", Atom.to_string(a.node)])
      c = PhTest.start_node(args: ["--join", Atom.to_string(a.node)])

      true =
        PhTest.wait_until(
          fn ->
            Enum.all?([a, b, c], &(length(GenServer.call({:my_hub, &1.node}, {:nodes, []})) == 2))
          end,
          20_000
        )

      name = :"clb_fresh#{round}"
      h = ClBench.connect(name, [a.node])
      ClBench.start_all(h, ClBench.ids("f", 10_000))

      list = fn node ->
        GenServer.call({:my_hub, node}, {:process_list, :global}, 30_000) |> Enum.sort()
      end

      t0 = System.monotonic_time(:millisecond)
      PhTest.kill_node(a)

      # the first time the survivors agree (every child running on b or c),
      # then the first time the cache shows that state
      agreed = fn ->
        lb = list.(b.node)

        if lb == list.(c.node) and length(lb) == 10_000 and
             not Enum.any?(lb, fn {_, nps} -> List.keymember?(nps, a.node, 0) end),
           do: lb
      end

      {survivors, agreed_list} =
        Enum.reduce_while(1..100_000, nil, fn _, _ ->
          case agreed.() do
            nil ->
              Process.sleep(2)
              {:cont, nil}

            l ->
              {:halt, {System.monotonic_time(:millisecond) - t0, l}}
          end
        end)

      cache =
        Enum.reduce_while(1..100_000, nil, fn _, _ ->
          now = System.monotonic_time(:millisecond) - t0

          cond do
            Enum.sort(PhNode.process_list(h, :global)) == agreed_list ->
              {:halt, now}

            now > 60_000 ->
              {:halt, :timeout}

            true ->
              Process.sleep(2)
              {:cont, nil}
          end
        end)

      PhNode.Hub.stop(h)
      PhTest.kill_node(b)
      PhTest.kill_node(c)
      {survivors, cache}
    end

  deltas = for {s, c} <- fresh, is_integer(c), do: max(c - s, 0)

  ClBench.json(%{
    scenario: "client_cache_freshness_after_kill9",
    children: 10_000,
    survivors_agree_ms: for({s, _} <- fresh, do: s || -1),
    cache_agrees_ms: for({_, c} <- fresh, do: if(is_integer(c), do: c, else: -1)),
    cache_after_survivors_ms: deltas,
    goal: "<= 200"
  })
end

# --- 3. 100k starts: client vs raw call -------------------------------------------------
if run?.("start") do
  ph = PhTest.start_node(args: [])
  specs = for id <- ClBench.ids("s", 100_000), do: ClBench.spec(id)
  ids = ClBench.ids("s", 100_000)

  # CPU of this VM (all its threads) and of the phnode, besides the wall time:
  # the machine is shared, and the CPU each path costs is what load does not blur
  cpu = fn ->
    {vm, _} = :erlang.statistics(:runtime)

    [utime, stime] =
      File.read!("/proc/#{ph.os_pid}/stat")
      |> String.split(") ")
      |> List.last()
      |> String.split(" ")
      |> Enum.slice(11, 2)

    {vm, (String.to_integer(utime) + String.to_integer(stime)) * 10}
  end

  # Each timed path runs in a process of its own, spawned before the clock
  # starts with what the path uses (the specs: its heap holds them and
  # nothing else), and exits after the CPU counters are read. Run in the
  # bench process itself (START_IN=main, as before), a path that allocates
  # (the rows of the client and the floor) may trigger, and pay for, the
  # collection of earlier rounds' results left in that heap, the raw
  # path's included.
  isolate? = System.get_env("START_IN", "process") != "main"

  measure = fn fun ->
    if isolate? do
      parent = self()

      {pid, mref} =
        spawn_monitor(fn ->
          receive do
            :go -> :ok
          end

          send(parent, {:timed, self(), ClBench.us(fun) / 1000})

          receive do
            :done -> :ok
          end
        end)

      {vm0, ph0} = cpu.()
      send(pid, :go)

      t =
        receive do
          {:timed, ^pid, t} -> t
          {:DOWN, ^mref, _, _, reason} -> raise "a timed path failed: #{inspect(reason)}"
        end

      {vm1, ph1} = cpu.()
      send(pid, :done)

      receive do
        {:DOWN, ^mref, _, _, _} -> :ok
      end

      {t, vm1 - vm0, ph1 - ph0}
    else
      {vm0, ph0} = cpu.()
      t = ClBench.us(fun) / 1000
      {vm1, ph1} = cpu.()
      {t, vm1 - vm0, ph1 - ph0}
    end
  end

  # Every path waits until the result is known: the raw call's reply is the
  # result; the client's await returns the result once the cache shows it.
  # A round runs the raw call, the floor and the bare floor (below) and the
  # client, in an order rotating between rounds, each on the same phnode after the previous
  # one's children are stopped; the raw call on a hub without a subscriber
  # (no client connected), the client through a fresh connection (its
  # snapshot of the empty registry taken before the clock starts).
  raw_run = fn ->
    r =
      measure.(fn ->
        {:ok, %{status: :ok}} =
          GenServer.call({:my_hub, ph.node}, {:start_children, specs, [awaitable: true]}, :infinity)
      end)

    ClBench.stop_all_raw(ph.node, ids)
    r
  end

  # The floor of any cache that is filled after the result (no overlap):
  # the raw call, then building the full rows (ClBench.full_rows/3, the rows
  # the client built from the same result and specs before its cache had two
  # levels, 2026-12-05 08:40 UTC) and one :ets.insert/2 into
  # a table with the cache's options (but public), made before the clock starts. What the
  # client path costs beyond this is its own protocol (the lend, the checks).
  floor_run = fn ->
    # public: the timed process inserts (a protected table inserts as fast)
    tab = :ets.new(:clb_floor, [:set, :public, read_concurrency: true])

    r =
      measure.(fn ->
        {:ok, %{status: :ok, started: started}} =
          GenServer.call({:my_hub, ph.node}, {:start_children, specs, [awaitable: true]}, :infinity)

        {rows, 100_000} = ClBench.full_rows(started, specs, %{})
        true = :ets.insert(tab, rows)
      end)

    100_000 = :ets.info(tab, :size)
    :ets.delete(tab)
    ClBench.stop_all_raw(ph.node, ids)
    r
  end

  # The bare floor: the raw call, then the result's started entries
  # ({cid, [{node, pid}]}, as they came) inserted in one :ets.insert/2: no
  # row built, no spec or metadata stored. Less than any cache that answers
  # child_lookup/3 from the cache can cost.
  bare_run = fn ->
    tab = :ets.new(:clb_bare, [:set, :public, read_concurrency: true])

    r =
      measure.(fn ->
        {:ok, %{status: :ok, started: started}} =
          GenServer.call({:my_hub, ph.node}, {:start_children, specs, [awaitable: true]}, :infinity)

        true = :ets.insert(tab, started)
      end)

    100_000 = :ets.info(tab, :size)
    :ets.delete(tab)
    ClBench.stop_all_raw(ph.node, ids)
    r
  end

  client_run = fn round ->
    h = ClBench.connect(:"clb_start#{round}", [ph.node])
    %{syncing: false} = PhNode.Hub.stats(h)

    r =
      measure.(fn ->
        {:ok, f} = PhNode.start_children(h, specs, awaitable: true, timeout: 120_000)
        %{status: :ok} = PhNode.Future.await(f)
      end)

    # the rows (spec, metadata) the connection stores after the await
    # returned (off the caller's clock): the client VM's CPU until they are in
    {vm_a, _} = :erlang.statistics(:runtime)
    rows_tab = PhNode.Hub.rows(h)
    {vm_b, _} = :erlang.statistics(:runtime)
    Process.put({:fill_cpu, round}, vm_b - vm_a)
    100_000 = :ets.info(h, :size)
    100_000 = :ets.info(rows_tab, :size)
    # memory of the two tables, and of the one table of full rows they replace
    one = :ets.new(:clb_one, [:set, :public, read_concurrency: true])
    full =
      for {cid, nps} <- :ets.tab2list(h),
          [{_, sp, m}] = :ets.lookup(rows_tab, cid),
          do: {cid, nps, sp, m}

    true = :ets.insert(one, full)
    words = fn t -> :ets.info(t, :memory) end
    mem = %{lookup: words.(h), rows: words.(rows_tab), one_table: words.(one)}
    Process.put({:mem_words, round}, mem)
    :ets.delete(one)
    ClBench.stop_all_raw(ph.node, ids)
    PhNode.Hub.stop(h)
    r
  end

  start_rounds = String.to_integer(System.get_env("START_ROUNDS", "#{max(rounds, 8)}"))

  # a round runs the four paths, the order rotating between rounds (each
  # path first, second, third and last as often over 4 rounds); the first
  # round warms up
  times =
    for round <- 0..start_rounds do
      paths = [
        raw: fn -> raw_run.() end,
        floor: floor_run,
        bare: bare_run,
        client: fn -> client_run.(round) end
      ]

      k = rem(round, 4)
      order = Enum.drop(paths, k) ++ Enum.take(paths, k)
      Map.new(order, fn {name, run} -> {name, run.()} end)
    end
    |> tl()

  med = fn f -> ClBench.median(Enum.map(times, f)) end
  wall = fn path -> med.(fn t -> elem(t[path], 0) end) end
  total = fn {_, v, p} -> v + p end
  cpu_of = fn path -> med.(fn t -> total.(t[path]) end) end
  {raw, raw_cpu} = {wall.(:raw), cpu_of.(:raw)}
  {load1, _} = Float.parse(File.read!("/proc/loadavg"))

  # per path: its rounds, medians, and ratios against the raw path
  per_path =
    for path <- [:client, :floor, :bare], into: %{} do
      w = wall.(path)
      c = cpu_of.(path)

      {path,
       %{
         ms: for(t <- times, do: elem(t[path], 0)),
         cpu_ms_client_vm_phnode: for(t <- times, do: tl(Tuple.to_list(t[path]))),
         median_ms: w,
         median_of_round_ratios: med.(fn t -> elem(t[path], 0) / elem(t.raw, 0) end),
         over_raw: w / raw,
         median_cpu_ms: c,
         cpu_over_raw: c / max(raw_cpu, 1),
         cpu_median_of_round_ratios: med.(fn t -> total.(t[path]) / max(total.(t.raw), 1) end)
       }}
    end

  ClBench.json(%{
    scenario: "client_start_100k_vs_raw_call",
    load_average_1m: load1,
    timed_in: if(isolate?, do: "a process per path", else: "the bench process"),
    raw_ms: for(t <- times, do: elem(t.raw, 0)),
    raw_cpu_ms_client_vm_phnode: for(t <- times, do: tl(Tuple.to_list(t.raw))),
    median_raw_ms: raw,
    median_cpu_raw_ms: raw_cpu,
    client: per_path.client,
    floor: per_path.floor,
    bare: per_path.bare,
    client_fill_after_await_cpu_ms: for(r <- 1..start_rounds, do: Process.get({:fill_cpu, r})),
    client_tables_words_100k: Process.get({:mem_words, start_rounds}),
    median_cpu_client_vm_ms: Map.new([:raw | Map.keys(per_path)], &{&1, med.(fn t -> elem(t[&1], 1) end)}),
    median_cpu_phnode_ms: Map.new([:raw | Map.keys(per_path)], &{&1, med.(fn t -> elem(t[&1], 2) end)}),
    goal: "<= 1.10"
  })

  PhTest.kill_node(ph)
end
