# PhTest.ClusterCheck - the exact invariant of a quiet hub cluster, checked
# from outside (loaded with Code.require_file after ph_test.exs and
# ring.exs; only OTP and Elixir's stdlib).
#
# check_cluster(live, expected, opts) polls until, on every live phnode:
#   - {:nodes, []} lists exactly the other live nodes;
#   - :registry_dump holds exactly the expected ids (plus, optionally, ids
#     of opts[:optional], whose fate is unknown to the test), each with
#     exactly one {node, pid}, node(pid) == node, and node the ring owner
#     of the id among the live members (PhTest.Ring);
#   - every dump is identical;
#   - {:process_list, :local} equals exactly the rows the dump assigns to
#     this node, same pids; no id runs on two nodes;
#   - a sample of the pids answers (counter children: :get).
# The invariant must hold twice, stable_ms apart. On timeout the last
# snapshot's problems are returned: missing ids, extra ids, doubled ids,
# misplaced ids, registry differences and local-list differences per node,
# each with a count and a few examples.
defmodule PhTest.ClusterCheck do
  alias PhTest.Ring

  @examples 3

  @doc """
  Options:
    hub:        the hub id (default :my_hub)
    optional:   ids that may be present or absent (default none)
    timeout:    ms to wait for the invariant (default 20_000)
    stable_ms:  ms it must still hold after it first did (default 1_000)
    (polls follow each other 250 ms apart; the nodes answer in parallel)
    sample:     pids called to prove they are alive (default 300; :all)
    probe:      the call made to each sampled pid (default :get)
    rf:         replication factor: each id has exactly min(rf, live) copies,
                one on each of its ring owners (default 1)
    trace:      fun.(text) called with a one-line summary of each failed poll
                (for runs that measure where the time goes)
  Returns {:ok, info} or {:error, report}; info: %{dump: dump, waited_ms: ms,
  held_at: t, snap_from: t0, confirmed: {t1, t2}} where t (PhTest.now_ms/0)
  is the moment the first of the two passing snapshots had been taken (it
  was taken from t0 on): the invariant held then (the time the checker
  spends computing and the stable_ms wait are not in it); the second was
  taken from t1 to t2.
  """
  def check_cluster(live, expected, opts \\ []) do
    t0 = PhTest.now_ms()
    deadline = t0 + Keyword.get(opts, :timeout, 20_000)
    expected = MapSet.new(expected)
    optional = MapSet.new(Keyword.get(opts, :optional, []))
    # the pid sample must not draw from the caller's :rand state (a seeded
    # chaos run replays only if its own draws are the same)
    saved = :rand.export_seed()
    :rand.seed(:exsss, {t0, 17, 42})
    # each id's owners, computed once per call (the live nodes are fixed):
    # later polls only look them up, so they follow the cluster closely
    owners = :ets.new(:owners, [:set, :private])

    try do
      poll(live, expected, optional, Keyword.put(opts, :owners_table, owners), t0, deadline, nil)
    after
      :ets.delete(owners)
      if saved == :undefined, do: Process.delete(:rand_seed), else: :rand.seed(saved)
    end
  end

  @doc "check_cluster/3, raising an ExUnit assertion error with the report."
  def check_cluster!(live, expected, opts \\ []) do
    case check_cluster(live, expected, opts) do
      {:ok, info} ->
        info

      {:error, report} ->
        raise ExUnit.AssertionError,
          message: "cluster invariant does not hold:\n" <> report
    end
  end

  defp poll(live, expected, optional, opts, t0, deadline, _last) do
    t_snap = PhTest.now_ms()
    snap = snapshot(live, opts)
    held_at = PhTest.now_ms()
    probs = problems(snap, live, expected, optional, opts)
    Process.put(:check_timing, "snapshot #{held_at - t_snap} ms, check #{PhTest.now_ms() - held_at} ms")

    case probs do
      [] ->
        # once more, stable_ms later: a transient state is not quiet
        Process.sleep(Keyword.get(opts, :stable_ms, 1_000))
        t_snap2 = PhTest.now_ms()
        snap2 = snapshot(live, opts)
        held_again = PhTest.now_ms()

        case problems(snap2, live, expected, optional, opts) do
          [] ->
            {:ok,
             %{dump: first_dump(snap2), waited_ms: PhTest.now_ms() - t0, held_at: held_at, snap_from: t_snap,
               confirmed: {t_snap2, held_again}}}

          probs ->
            again(live, expected, optional, opts, t0, deadline, probs)
        end

      probs ->
        again(live, expected, optional, opts, t0, deadline, probs)
    end
  end

  defp again(live, expected, optional, opts, t0, deadline, probs) do
    if trace = Keyword.get(opts, :trace) do
      trace.("#{PhTest.now_ms() - t0} ms (#{Process.get(:check_timing)}): #{length(probs)} problem(s): " <>
        (probs |> Enum.take(4) |> Enum.map(&String.slice(&1, 0, 160)) |> Enum.join(" | ")))
    end

    if PhTest.now_ms() >= deadline do
      {:error,
       "after #{PhTest.now_ms() - t0} ms, live nodes #{inspect(Enum.map(live, & &1.node))}, " <>
         "#{MapSet.size(expected)} expected ids" <>
         if(MapSet.size(optional) > 0, do: " (+#{MapSet.size(optional)} optional)", else: "") <>
         ":\n" <> (probs |> Enum.join("\n") |> String.replace("@127.0.0.1", ""))}
    else
      Process.sleep(250)
      poll(live, expected, optional, opts, t0, deadline, probs)
    end
  end

  # --- one snapshot ---------------------------------------------------------------

  defp call(node, hub, req) do
    try do
      {:ok, GenServer.call({hub, node}, req, 30_000)}
    catch
      :exit, reason -> {:exit, reason}
    end
  end

  defp snapshot(live, opts) do
    hub = Keyword.get(opts, :hub, :my_hub)

    # the nodes in parallel (one node's three answers in order)
    live
    |> Task.async_stream(
      fn n ->
        {n.node,
         %{
           members: call(n.node, hub, {:nodes, []}),
           dump: call(n.node, hub, :registry_dump),
           local: call(n.node, hub, {:process_list, :local})
         }}
      end,
      max_concurrency: max(length(live), 1),
      timeout: :infinity
    )
    |> Enum.map(fn {:ok, r} -> r end)
  end

  defp first_dump([{_, %{dump: {:ok, d}}} | _]), do: d
  defp first_dump(_), do: nil

  # --- the invariant -----------------------------------------------------------------

  defp problems(snap, live, expected, optional, opts) do
    failed =
      for {node, s} <- snap, {what, {:exit, r}} <- Enum.sort(s),
          do: "#{node}: #{what} call failed: #{inspect(r, limit: 8)}"

    if failed != [] do
      failed
    else
      live_nodes = Enum.map(live, & &1.node)
      ring = Ring.new(live_nodes)
      rf = Keyword.get(opts, :rf, 1)
      owners = Keyword.fetch!(opts, :owners_table)

      owner = fn cid ->
        case :ets.lookup(owners, cid) do
          [{_, o}] ->
            o

          [] ->
            o = if rf == 1, do: Ring.owner(ring, cid), else: Enum.sort(Ring.key_nodes(ring, cid, rf))
            :ets.insert(owners, {cid, o})
            o
        end
      end

      per_node = Enum.flat_map(snap, &node_problems(&1, live_nodes, expected, optional, owner))
      cross = cross_problems(snap, rf)

      if per_node == [] and cross == [] do
        liveness(first_dump(snap), opts)
      else
        per_node ++ cross
      end
    end
  end

  defp node_problems({node, s}, live_nodes, expected, optional, owner) do
    {:ok, members} = s.members
    {:ok, dump} = s.dump
    {:ok, local} = s.local
    want_members = Enum.sort(live_nodes -- [node])

    p_members =
      if Enum.sort(members) == want_members,
        do: [],
        else: ["#{node}: members #{inspect(Enum.sort(members))}, want #{inspect(want_members)}"]

    ids = MapSet.new(Map.keys(dump))
    missing = MapSet.difference(expected, ids)
    extra = ids |> MapSet.difference(expected) |> MapSet.difference(optional)

    # rf 1: one {node, pid} on the ring owner; rf k: one on each of the k owners
    {doubled, misplaced} =
      Enum.reduce(dump, {[], []}, fn
        {cid, {_spec, nps, _meta}}, {d, m} when is_list(nps) ->
          o = owner.(cid)
          want = if is_list(o), do: o, else: [o]
          got = Enum.sort(for {n, _} <- nps, do: n)

          cond do
            length(nps) != length(want) or length(Enum.uniq(got)) != length(got) ->
              {[{cid, nps} | d], m}

            got == want and Enum.all?(nps, fn {n, p} -> is_pid(p) and node(p) == n end) ->
              {d, m}

            true ->
              {d, [{cid, on: got, owner: o} | m]}
          end

        {cid, other}, {d, m} ->
          {[{cid, {:bad_row, other}} | d], m}
      end)

    # what this node runs vs. what its dump says it runs
    local_map = Map.new(local)
    local_dups = length(local) - map_size(local_map)

    assigned =
      for {cid, {_, nps, _}} <- dump, {^node, pid} <- List.wrap(nps), into: %{}, do: {cid, pid}

    not_running = for {cid, pid} <- assigned, Map.get(local_map, cid) != pid, do: {cid, pid}

    unlisted =
      for {cid, pid} <- local_map, Map.get(assigned, cid) != pid,
          do: {cid, pid, registry: Map.get(dump, cid) |> row_nps()}

    [
      p_members,
      count_line(node, "ids missing from the registry", missing),
      count_line(node, "unexpected ids in the registry", extra),
      count_line(node, "ids with more or fewer {node, pid} than owners (doubled)", doubled),
      count_line(node, "ids not on their ring owner", misplaced),
      count_line(node, "ids the registry places here that do not run here (with that pid)", not_running),
      count_line(node, "ids running here that the registry does not place here", unlisted),
      if(local_dups > 0, do: ["#{node}: #{local_dups} duplicate ids in its local list"], else: [])
    ]
    |> List.flatten()
  end

  defp norm({spec, nps, meta}) when is_list(nps), do: {spec, Enum.sort(nps), meta}
  defp norm(row), do: row

  # rows equal up to the order of their {node, pid} (replicas are listed in
  # the order each node learnt of them)
  defp normalized(dump), do: Map.new(dump, fn {cid, row} -> {cid, norm(row)} end)

  defp row_nps(nil), do: nil
  defp row_nps({_, nps, _}), do: nps

  defp cross_problems([{ref_node, %{dump: {:ok, ref}}} | rest] = snap, rf) do
    diffs =
      for {node, %{dump: {:ok, d}}} <- rest, normalized(d) != normalized(ref) do
        only_ref = Map.keys(ref) -- Map.keys(d)
        only_here = Map.keys(d) -- Map.keys(ref)
        differ =
          for {cid, row} <- d, Map.has_key?(ref, cid), norm(ref[cid]) != norm(row), do: cid

        reordered =
          Enum.count(d, fn {cid, row} -> Map.has_key?(ref, cid) and ref[cid] != row and norm(ref[cid]) == norm(row) end)

        "registry of #{node} differs from #{ref_node}'s: " <>
          "#{length(only_ref)} only on #{ref_node} #{ex(only_ref)}, " <>
          "#{length(only_here)} only on #{node} #{ex(only_here)}, " <>
          "#{length(differ)} with other rows #{ex(Enum.map(differ, &{&1, row_nps(ref[&1]), row_nps(d[&1])}))}" <>
          if(reordered > 0, do: ", #{reordered} with the same nodes in another order", else: "")
      end

    # an id running on two nodes at once, whatever the registries say
    running =
      for {node, %{local: {:ok, l}}} <- snap, {cid, _pid} <- l, reduce: %{} do
        acc -> Map.update(acc, cid, [node], &[node | &1])
      end

    twice = for {cid, ns} <- running, length(ns) > rf, do: {cid, ns}

    diffs ++ count_line("cluster", "ids running on more than #{rf} node(s)", twice)
  end

  defp liveness(dump, opts) do
    probe = Keyword.get(opts, :probe, :get)

    rows =
      case Keyword.get(opts, :sample, 300) do
        :all -> Map.to_list(dump)
        k -> dump |> Map.to_list() |> Enum.take_random(k)
      end

    dead =
      rows
      |> Task.async_stream(
        fn {cid, {_, [{_, pid} | _], _}} ->
          try do
            _ = GenServer.call(pid, probe, 5_000)
            nil
          catch
            :exit, r -> {cid, pid, elem_reason(r)}
          end
        end,
        max_concurrency: 32,
        timeout: 10_000,
        on_timeout: :kill_task
      )
      |> Enum.flat_map(fn
        {:ok, nil} -> []
        {:ok, d} -> [d]
        {:exit, r} -> [{:probe_timeout, r}]
      end)

    count_line("cluster", "sampled pids (of #{length(rows)}) that do not answer #{inspect(probe)}", dead)
  end

  defp elem_reason({r, _}), do: r
  defp elem_reason(r), do: r

  defp count_line(_node, _what, items) when items == [], do: []

  defp count_line(node, what, %MapSet{} = s) do
    if MapSet.size(s) == 0, do: [], else: count_line(node, what, Enum.sort(MapSet.to_list(s)))
  end

  defp count_line(node, what, items) do
    ["#{node}: #{length(items)} #{what} #{ex(items)}"]
  end

  defp ex([]), do: ""
  defp ex(items), do: "e.g. " <> inspect(Enum.take(items, @examples), limit: 30, printable_limit: 60)
end
