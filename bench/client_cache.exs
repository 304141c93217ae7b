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
Code.require_file("../test/integration/support/ph_test.exs", __DIR__)
lib = Path.expand("../clients/elixir/lib", __DIR__)

for f <- ~w(start_result stop_result hook_manager hook_dispatcher hub future),
    do: Code.require_file(Path.join([lib, "phnode", f <> ".ex"]))

Code.require_file(Path.join(lib, "phnode.ex"))
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

  # lookups of the keys of a shuffled tuple, in order: lookups per second
  # (compiled loops, one per side, so that both pay the same overhead)
  def rate_client(keys, h, n),
    do: n * 1_000_000 / us(fn -> client_loop(keys, tuple_size(keys), h, n, 0) end)

  def rate_registry(keys, reg, n),
    do: n * 1_000_000 / us(fn -> reg_loop(keys, tuple_size(keys), reg, n, 0) end)

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
if run?.("lookup") do
  ph = PhTest.start_node(args: [])
  h = ClBench.connect(:clb_cache, [ph.node])
  {:ok, _} = Registry.start_link(keys: :unique, name: ClBench.Reg)
  me = self()

  lookup_results =
    Enum.reduce([1_000, 10_000, 100_000, 1_000_000], {0, []}, fn n, {have, acc} ->
      new = ClBench.ids("k", n) |> Enum.drop(have)
      ClBench.start_all(h, new)
      for k <- new, do: {:ok, _} = Registry.register(ClBench.Reg, k, nil)
      keys = ClBench.ids("k", n) |> Enum.shuffle() |> List.to_tuple()
      ^n = :ets.info(h, :size)
      lookups = max(1_000_000, 2 * n)

      samples =
        for _ <- 1..rounds do
          c = ClBench.rate_client(keys, h, lookups)
          r = ClBench.rate_registry(keys, ClBench.Reg, lookups)
          {c, r}
        end

      c = ClBench.median(for {c, _} <- samples, do: c)
      r = ClBench.median(for {_, r} <- samples, do: r)
      # the pids are right
      [{pid, nil}] = Registry.lookup(ClBench.Reg, elem(keys, 0))
      ^pid = me
      true = is_pid(PhNode.get_pid(h, elem(keys, 0)))

      ClBench.json(%{
        scenario: "client_get_pid_vs_registry_lookup",
        children: n,
        client_lookups_per_s: c,
        registry_lookups_per_s: r,
        ratio: c / r,
        goal: ">= 1.0"
      })

      {n, acc ++ [{n, c / r}]}
    end)

  _ = lookup_results
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

  measure = fn fun ->
    {vm0, ph0} = cpu.()
    t = ClBench.us(fun) / 1000
    {vm1, ph1} = cpu.()
    {t, vm1 - vm0, ph1 - ph0}
  end

  times =
    for round <- 1..(rounds + 1) do
      raw =
        measure.(fn ->
          {:ok, %{status: :ok}} =
            GenServer.call(
              {:my_hub, ph.node},
              {:start_children, specs, [awaitable: true]},
              :infinity
            )
        end)

      ClBench.stop_all_raw(ph.node, ids)
      h = ClBench.connect(:"clb_start#{round}", [ph.node])

      client =
        measure.(fn ->
          {:ok, f} = PhNode.start_children(h, specs, awaitable: true, timeout: 120_000)
          %{status: :ok} = PhNode.Future.await(f)
        end)

      100_000 = :ets.info(h, :size)
      ClBench.stop_all_raw(ph.node, ids)
      PhNode.Hub.stop(h)
      {raw, client}
    end
    # the first round warms up
    |> tl()

  med = fn f -> ClBench.median(Enum.map(times, f)) end
  raw = med.(fn {{t, _, _}, _} -> t end)
  client = med.(fn {_, {t, _, _}} -> t end)
  raw_cpu = med.(fn {{_, v, p}, _} -> v + p end)
  client_cpu = med.(fn {_, {_, v, p}} -> v + p end)

  ClBench.json(%{
    scenario: "client_start_100k_vs_raw_call",
    raw_ms: for({{t, _, _}, _} <- times, do: t),
    client_ms: for({_, {t, _, _}} <- times, do: t),
    raw_cpu_ms_client_vm_phnode: for({{_, v, p}, _} <- times, do: [v, p]),
    client_cpu_ms_client_vm_phnode: for({_, {_, v, p}} <- times, do: [v, p]),
    median_raw_ms: raw,
    median_client_ms: client,
    client_over_raw: client / raw,
    cpu_client_over_raw: client_cpu / max(raw_cpu, 1),
    goal: "<= 1.10"
  })

  PhTest.kill_node(ph)
end
