defmodule PhNode do
  @moduledoc """
  ProcessHub's API for a phnode hub cluster, from an Elixir application.

  Start a `PhNode.Hub` connection in your supervision tree, then call these
  functions with its `hub_id`, as you would call `ProcessHub`'s:

      {:ok, future} = PhNode.start_children(:my_hub, specs, awaitable: true)
      %PhNode.StartResult{status: :ok} = PhNode.Future.await(future)
      pid = PhNode.get_pid(:my_hub, "c1")

  Requests go to the member the connection is attached to. Registry reads
  (`get_pid/2`, `get_pids/2`, `child_lookup/3`, `process_list/2`,
  `tag_query/2`, `registry_dump/1`) answer from the local cache, an ETS table
  named `hub_id` kept by the registry subscription; no network round trip.
  See clients/elixir/README.md for every difference from ProcessHub.
  """

  alias PhNode.{Future, Hub, HookManager}

  @call_timeout 60_000

  # At least this many specs for a start to ask for parts: the member sends
  # none for fewer (a part is 5000 entries; smaller batches, under 4096, are
  # not even started as a big one). Smaller starts await as before.
  @parts_min 5000

  # --- starting and stopping ------------------------------------------------------------

  @doc """
  Starts one child: `start_children(hub_id, [child_spec], opts)` with the
  hub's single-child request. Returns `{:ok, :start_initiated}`,
  `{:ok, %PhNode.Future{}}` with `awaitable: true`, or `{:error, reason}`.
  """
  def start_child(hub_id, child_spec, opts \\ []) do
    start(hub_id, {:start_child, child_spec, opts}, [child_spec], opts)
  end

  @doc """
  Starts children on the hub (ProcessHub's options: `awaitable`, `timeout`,
  `await_timeout`, `check_existing`, `on_failure`, `metadata`,
  `disable_logging`, `child_mapping`). Returns `{:ok, :start_initiated}`,
  `{:ok, %PhNode.Future{}}` with `awaitable: true`, or `{:error, reason}`
  (`{:error, :no_children}` for `[]`).
  """
  def start_children(hub_id, child_specs, opts \\ []) when is_list(child_specs) do
    if child_specs == [] do
      {:error, :no_children}
    else
      start(hub_id, {:start_children, child_specs, opts}, child_specs, opts)
    end
  end

  defp start(hub_id, request, specs, opts) do
    if Keyword.get(opts, :awaitable, false) do
      timeout = Keyword.get(opts, :timeout, 10_000)
      Hub.note_interest(hub_id, timeout + 60_000)

      sub = Hub.subscription(hub_id)
      meta = metadata(opts)
      parts = if sub != nil and is_map(meta) and big?(specs, @parts_min), do: make_ref()
      request = with_registry_seq(request, sub, is_map(meta), parts)

      with {:ok, req, member} <- Hub.send_request(hub_id, request) do
        {:ok,
         future(:start, hub_id, req, member, timeout,
           sub: sub,
           specs: specs,
           meta: meta,
           parts: parts
         )}
      end
    else
      Hub.call(hub_id, request, @call_timeout, false)
    end
  end

  # The future of an awaitable request sent to member, owned by the caller.
  defp future(kind, hub_id, req, member, timeout, fields) do
    struct!(
      Future,
      [kind: kind, hub_id: hub_id, ref: req, member: member, timeout: timeout, owner: self()] ++
        fields
    )
  end

  # Asks the member to tell, in the result, the number of the last message
  # of the connection's subscription that holds the start's rows (the
  # result's registry_seq, which PhNode.StartResult leaves out), and to
  # leave the rows of the children it starts itself out of that
  # subscription (registry_omit): the caller stores them from the result,
  # its specs and metadata (PhNode.Hub.finish/2), rather than the
  # connection decoding them from the stream.
  defp big?(_specs, 0), do: true
  defp big?([_ | rest], n), do: big?(rest, n - 1)
  defp big?(_specs, _n), do: false

  # With registry_omit, a big start's started list comes in parts while the
  # member still registers the rest (result_parts): the caller stores each
  # part as it comes (PhNode.Hub.await_parts/1).
  defp with_registry_seq(request, nil, _omit, _parts), do: request

  defp with_registry_seq({kind, specs, opts}, sub, omit, parts) do
    extra =
      cond do
        omit and parts != nil -> [registry_seq: sub, registry_omit: true, result_parts: parts]
        omit -> [registry_seq: sub, registry_omit: true]
        true -> [registry_seq: sub]
      end

    {kind, specs, extra ++ opts}
  end

  # The metadata the hub stores: the last metadata option, %{} without one.
  defp metadata(opts) when is_list(opts) do
    Enum.reduce(opts, %{}, fn
      {:metadata, m}, _ -> m
      _, acc -> acc
    end)
  end

  defp metadata(_opts), do: nil

  @doc "Stops one child; see `stop_children/3`."
  def stop_child(hub_id, child_id, opts \\ []) do
    stop(hub_id, {:stop_child, child_id, opts}, [child_id], opts)
  end

  @doc """
  Stops children wherever they run. Options `awaitable`, `timeout`,
  `await_timeout`. Returns `{:ok, :stop_initiated}` or `{:ok, %PhNode.Future{}}`.
  """
  def stop_children(hub_id, child_ids, opts \\ []) when is_list(child_ids) do
    stop(hub_id, {:stop_children, child_ids, opts}, child_ids, opts)
  end

  defp stop(hub_id, request, cids, opts) do
    if Keyword.get(opts, :awaitable, false) do
      # what the cache shows now: the awaited result waits for these rows to go
      tab = hub_id

      pre =
        Map.new(cids, fn cid ->
          # the {node, pid} list alone (no copy of the spec and metadata)
          nps =
            try do
              :ets.lookup_element(tab, cid, 2)
            rescue
              ArgumentError -> []
            end

          {cid, for({n, p} <- nps, do: {cid, n, p})}
        end)

      with {:ok, req, member} <- Hub.send_request(hub_id, request) do
        {:ok, future(:stop, hub_id, req, member, Keyword.get(opts, :timeout, 10_000), pre: pre)}
      end
    else
      Hub.call(hub_id, request, @call_timeout, false)
    end
  end

  # --- registry queries: from the local cache ---------------------------------------------

  @doc "The first pid of the child, or nil (from the cache)."
  def get_pid(hub_id, child_id) do
    case :ets.lookup_element(hub_id, child_id, 2) do
      [{_, pid} | _] -> pid
      [] -> nil
    end
  rescue
    ArgumentError -> nil
  end

  @doc "Every pid of the child (one per replica), `[]` if unknown (from the cache)."
  def get_pids(hub_id, child_id) do
    for {_, pid} <- :ets.lookup_element(hub_id, child_id, 2), do: pid
  rescue
    ArgumentError -> []
  end

  @doc """
  `{child_spec, [{node, pid}]}`, with `with_metadata: true`
  `{child_spec, [{node, pid}], metadata}`; nil if unknown (from the cache).
  """
  def child_lookup(hub_id, child_id, opts \\ []) do
    # the entry first: a row stored after it is waited for only when missing
    with [_ | _] = nps <- get_nps(hub_id, child_id),
         [{_, spec, meta}] <- row(hub_id, child_id) do
      spec = Hub.spec(spec)
      if Keyword.get(opts, :with_metadata, false), do: {spec, nps, meta}, else: {spec, nps}
    else
      _ -> nil
    end
  rescue
    ArgumentError -> nil
  end

  # The row of a child whose entry is in the lookup table: there, or being
  # stored by the connection (an awaited start that has returned).
  defp row(hub_id, child_id) do
    with %{rows: rows} <- Hub.info(hub_id),
         [] <- :ets.lookup(rows, child_id) do
      :ets.lookup(Hub.rows(hub_id), child_id)
    end
  end

  @doc """
  `:global`: `[{cid, [{node, pid}]}]`; `:local`: `[{cid, pid}]` of the children
  running on this node, which is never a member: `[]` (from the cache).
  """
  def process_list(hub_id, :global), do: :ets.tab2list(hub_id)

  def process_list(hub_id, :local) do
    me = node()

    for {cid, nps} <- process_list(hub_id, :global), {^me, pid} <- nps, do: {cid, pid}
  end

  @doc "`%{cid => {child_spec, [{node, pid}], metadata}}` (from the cache)."
  def registry_dump(hub_id) do
    :ets.foldl(
      fn {cid, spec, meta}, acc ->
        case get_nps(hub_id, cid) do
          [] -> acc
          nps -> Map.put(acc, cid, {Hub.spec(spec), nps, meta})
        end
      end,
      %{},
      Hub.rows(hub_id)
    )
  end

  @doc "`[{cid, [{node, pid}]}]` of the children whose metadata has `tag: tag` (from the cache)."
  def tag_query(hub_id, tag) do
    cids =
      :ets.select(Hub.rows(hub_id), [
        {{:"$1", :_, %{tag: :"$2"}}, [{:"=:=", :"$2", {:const, tag}}], [:"$1"]}
      ])

    for cid <- cids, nps = get_nps(hub_id, cid), nps != [], do: {cid, nps}
  end

  # The lookup table's [{node, pid}] of a child, [] if unknown. The cache
  # keeps {cid, [{node, pid}]} there (what get_pid/2 reads) and the spec and
  # metadata in a second table (PhNode.Hub.rows/1), filled after an awaited
  # start's entries.
  defp get_nps(hub_id, child_id) do
    :ets.lookup_element(hub_id, child_id, 2)
  rescue
    ArgumentError -> []
  end

  # --- cluster and state: asked of the member ----------------------------------------------

  @doc """
  `{node, [{cid, pid, :worker, [module]}]}` of the member the connection uses;
  with `[:global]` one such tuple per member.
  """
  def which_children(hub_id, opts \\ []) do
    Hub.call(hub_id, {:which_children, opts}, Keyword.get(opts, :timeout, 5000))
  end

  @doc """
  The hub's members. The client node is never one, so with or without
  `[:include_local]` this is every member.
  """
  def nodes(hub_id, _opts \\ []) do
    Hub.call(hub_id, {:nodes, [:include_local]})
  end

  @doc "true if the connection runs and its member's hub answers."
  def is_alive?(hub_id) do
    Hub.info(hub_id) != nil and Hub.call(hub_id, :is_alive, 5000) == true
  catch
    :exit, _ -> false
  end

  @doc "The member's answer: is its event queue locked (a migration running)?"
  def is_locked?(hub_id), do: Hub.call(hub_id, :is_locked)

  @doc "The member's answer: is it partitioned?"
  def is_partitioned?(hub_id), do: Hub.call(hub_id, :is_partitioned)

  # --- hooks ---------------------------------------------------------------------------

  @doc """
  Registers hook handlers that run on this node (`PhNode.HookManager`: M/F/A,
  a one-argument function, or a pid). `:ok`, or
  `{:error, :failed_to_register_some_handlers}` when an id is already
  registered for the key or repeats in the list (then none is registered).
  """
  def register_hook_handlers(hub_id, hook_key, handlers)
      when is_atom(hook_key) and is_list(handlers) do
    case normalize_handlers(handlers) do
      {:ok, hs} -> GenServer.call(Hub.server_name(hub_id), {:register_hooks, hook_key, hs})
      :error -> {:error, {:bad_handlers, handlers}}
    end
  end

  @doc "Cancels handlers by id; unknown ids and keys are fine: `:ok`."
  def cancel_hook_handlers(hub_id, hook_key, handler_ids)
      when is_atom(hook_key) and is_list(handler_ids) do
    GenServer.call(Hub.server_name(hub_id), {:cancel_hooks, hook_key, handler_ids})
  end

  defp normalize_handlers(handlers) do
    hs =
      Enum.map(handlers, fn
        %HookManager{} = h -> h
        %{id: _} = m -> struct(HookManager, m)
        _ -> nil
      end)

    if Enum.all?(hs, &valid_handler?/1), do: {:ok, hs}, else: :error
  end

  defp valid_handler?(nil), do: false

  defp valid_handler?(%HookManager{id: id, p: p} = h)
       when ((is_atom(id) and id != nil) or is_binary(id)) and is_integer(p) do
    is_function(h.fun, 1) or is_pid(h.pid) or
      (is_atom(h.m) and h.m != nil and is_atom(h.f) and is_list(h.a))
  end

  defp valid_handler?(_), do: false
end
