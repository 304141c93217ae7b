defmodule PhNode.Hub do
  @moduledoc """
  The connection to a phnode hub cluster, for a supervision tree:

      children = [
        {PhNode.Hub, hub_id: :my_hub, nodes: [:"ph1@127.0.0.1", :"ph2@127.0.0.1"], cookie: :secret}
      ]

  Options:

    * `hub_id` (required): the name the application uses in every `PhNode`
      call; also the name of the local registry cache (an ETS table).
    * `hub`: the hub's id on the phnodes (their `hub_id`), default `hub_id`.
    * `nodes` (required): phnodes to reach the hub through; the members are
      learned from the hub and followed as they join and leave.
    * `cookie`: the phnodes' cookie (an atom), if not this node's own.
    * `refresh_interval`: ms between membership / sequence checks (default 1000).
    * `ryw_timeout`: the longest an awaited start or stop waits for the cache to
      show its result (default 5000 ms); after that it returns anyway.

  One process per hub id does everything on the client side: it holds one
  registry subscription on the member it is connected to (the one every
  request goes to), applies the stream to the cache table, fails over to
  another member when that one goes down, and resubscribes (a resync) after a
  gap in the sequence numbers. Reads (`PhNode.get_pid/2` ...) go to the ETS
  table directly and never to this process.
  """
  use GenServer
  require Logger

  @refresh 1_000
  # messages whose ids are kept while an awaited start is in flight (lend)
  @recent 256

  # --- public helpers used by PhNode ------------------------------------------------

  def child_spec(opts) do
    %{
      id: {__MODULE__, Keyword.fetch!(opts, :hub_id)},
      start: {__MODULE__, :start_link, [opts]},
      type: :worker
    }
  end

  def start_link(opts) when is_list(opts) do
    case {Keyword.fetch(opts, :hub_id), Keyword.fetch(opts, :nodes)} do
      {{:ok, hub_id}, {:ok, _}} when is_atom(hub_id) and hub_id != nil ->
        GenServer.start_link(__MODULE__, opts, name: server_name(hub_id))

      {{:ok, hub_id}, {:ok, _}} ->
        {:error, {:bad_hub_id, hub_id}}

      {:error, _} ->
        {:error, {:missing_option, :hub_id}}

      _ ->
        {:error, {:missing_option, :nodes}}
    end
  end

  # ProcessHub.start_link/1's answer to anything but its settings
  def start_link(_other), do: {:error, :expected_hub_settings}

  @doc "The registered name of the connection process of hub_id."
  def server_name(hub_id), do: Module.concat(__MODULE__, hub_id)

  @doc false
  def info(hub_id), do: :persistent_term.get({PhNode, hub_id}, nil)

  @doc "The member requests go to, or nil."
  def member(hub_id), do: meta_value(hub_id, :member)

  @doc false
  # The reference of the connection's registry subscription, or nil.
  def subscription(hub_id), do: meta_value(hub_id, :sub)

  # A value the connection keeps in its meta table, or nil (also when the
  # connection is not running).
  defp meta_value(hub_id, key) do
    case info(hub_id) do
      %{meta: meta} ->
        case :ets.lookup(meta, key) do
          [{_, value}] -> value
          [] -> nil
        end

      nil ->
        nil
    end
  rescue
    ArgumentError -> nil
  end

  @doc """
  Counters of the connection: `%{member:, members:, seq:, resyncs:, gaps:, failovers:}`.
  """
  def stats(hub_id), do: GenServer.call(server_name(hub_id), :stats)

  @doc "Stops the connection (cancels its hook handlers on the member); `{:error, :not_alive}` if none runs."
  def stop(hub_id) do
    case Process.whereis(server_name(hub_id)) do
      nil -> {:error, :not_alive}
      pid -> GenServer.stop(pid)
    end
  end

  @doc false
  # A call to the member; on :noproc / nodedown the connection fails over
  # and, when retry is true, the call is made once more on the new member.
  def call(hub_id, request, timeout \\ 5000, retry \\ true) do
    case member(hub_id) do
      nil ->
        exit({:noproc, {__MODULE__, :call, [hub_id, request]}})

      m ->
        try do
          GenServer.call({info(hub_id).remote, m}, request, timeout)
        catch
          :exit, reason ->
            if retry and member_gone?(reason) do
              GenServer.call(server_name(hub_id), {:member_failed, m}, 60_000)
              call(hub_id, request, timeout, false)
            else
              exit(reason)
            end
        end
    end
  end

  defp member_gone?({:nodedown, _}), do: true
  defp member_gone?({{:nodedown, _}, _}), do: true
  defp member_gone?({:noproc, _}), do: true
  defp member_gone?({:noconnection, _}), do: true
  defp member_gone?({{:noconnection, _}, _}), do: true
  defp member_gone?(_), do: false

  @doc false
  # Sends an awaitable request; the reply comes to the caller (PhNode.Future).
  def send_request(hub_id, request) do
    case member(hub_id) do
      nil -> {:error, :no_member}
      m -> {:ok, :gen_server.send_request({info(hub_id).remote, m}, request), m}
    end
  end

  @doc false
  # Read-your-writes: records the window in which the cache keeps every
  # {cid, pid} it applies (so a child that started and already died is
  # still known to have been seen).
  def note_interest(hub_id, ms) do
    %{interest: a} = info(hub_id)
    until = System.monotonic_time(:millisecond) + ms
    bump(a, until)
  end

  defp bump(a, until) do
    cur = :atomics.get(a, 1)

    if cur < until and :atomics.compare_exchange(a, 1, cur, until) != :ok do
      bump(a, until)
    else
      :ok
    end
  end

  @doc false
  # The answer of an awaitable start or stop, turned into a result once the
  # cache shows it.
  def finish(%{kind: :start} = f, {:ok, %{} = r}) do
    started = Map.get(r, :started, [])

    # The children on the member that answered are in the cache once the
    # connection process has applied its subscription up to the result's
    # registry_seq (and, when the member left their rows out of the
    # stream, once this process has stored them): only those on other
    # members are checked one by one.
    finish_start(f, r, started, fn ->
      cond do
        started == [] -> nil
        is_integer(r[:registry_omitted]) -> store_own(f, started, r)
        true -> synced(f, Map.get(r, :registry_seq))
      end
    end)
  end

  def finish(%{kind: :stop, pre: pre} = f, {:ok, %{} = r}) do
    stopped = Map.get(r, :stopped, [])

    conds =
      for {cid, nodes} <- stopped,
          n <- nodes,
          {^cid, ^n, pid} <- Map.get(pre, cid, []),
          do: {:gone, cid, n, pid}

    await_visible(f.hub_id, conds)

    %PhNode.StopResult{
      status: Map.get(r, :status, :ok),
      stopped: stopped,
      errors: Map.get(r, :errors, [])
    }
  end

  def finish(_f, {:error, _} = e), do: e
  def finish(_f, other), do: {:error, {:unexpected_reply, other}}

  # here.() is the member whose children of this start the cache shows, or
  # nil (each is then checked).
  defp finish_start(f, r, started, here) do
    # A rolled back start stopped its children in the same turn: the cache
    # never sees them, and shows nothing of them once the stop is through.
    if Map.get(r, :rollback, false) do
      await_visible(
        f.hub_id,
        for({cid, nps} <- started, {n, pid} <- nps, do: {:gone, cid, n, pid})
      )
    else
      %{table: tab, seen: seen} = info(f.hub_id)
      await_visible(f.hub_id, not_seen(started, here.(), tab, seen, []))
    end

    %PhNode.StartResult{
      status: Map.get(r, :status, :ok),
      started: started,
      errors: Map.get(r, :errors, []),
      rollback: Map.get(r, :rollback, false)
    }
  end

  # --- result_parts: the started list in parts, stored as it comes ----------------------

  # The member sends a big start's started entries in parts
  # ({:phnode_start_part, parts_ref, seq, entries}, before its reply, on
  # the same connection) while it still registers the rest, and the reply
  # holds the entries after the last part (result_parts: p). At the first
  # part this process borrows the lookup table (the connection lends it
  # once it has applied message seq, the last one sent before the start's
  # turn, and applies nothing more until it is back) and sends the
  # connection the specs; it stores each part's entries as they came while
  # the member works on the next. When the reply says the member left the
  # start's rows out of the stream (registry_omitted, as many as the
  # entries), the connection stores their rows from the specs once the
  # table is back; otherwise nothing is left out, and the rows of messages
  # after seq (this start's included) are applied after the entries, over
  # them. The started list is the parts and the reply's rest, in order:
  # the list the reply alone would have held.
  @doc false
  def await_parts(f) do
    deadline = System.monotonic_time(:millisecond) + f.timeout + 50_000
    parts_loop(f, %{lend: nil, newer: nil, parts: []}, deadline)
  catch
    kind, reason ->
      # the table is given back whatever happened to this process's call
      parts_abort(f)
      :erlang.raise(kind, reason, __STACKTRACE__)
  end

  defp parts_loop(f, st, deadline) do
    %{ref: ref, parts: pref} = f
    left = max(deadline - System.monotonic_time(:millisecond), 0)

    receive do
      {:phnode_start_part, ^pref, seq, entries} ->
        st = if st.lend == nil, do: parts_lend(f, st, seq), else: st
        parts_store(f, st, entries)
        parts_loop(f, %{st | parts: [entries | st.parts]}, deadline)

      {[:alias | ^ref], reply} ->
        Process.demonitor(ref, [:flush])
        parts_done(f, st, reply)

      {:DOWN, ^ref, _, _server, reason} ->
        parts_abort(f)
        {:error, {:hub_down, reason}}
    after
      left ->
        parts_abort(f)
        {:error, :timeout}
    end
  end

  defp parts_lend(f, st, seq) do
    %{server: server} = info(f.hub_id)

    reply =
      try do
        is_integer(seq) and
          GenServer.call(server, {:lend_parts, f.member, f.sub, seq}, :infinity)
      catch
        :exit, _ -> false
      end

    case reply do
      {:lent, newer} ->
        receive do
          {:"ETS-TRANSFER", _, ^server, :phnode_lend} -> :ok
        end

        # the connection has them when the last part comes
        send(server, {:phnode_specs, self(), f.specs, f.meta})
        %{st | lend: :lent, newer: newer}

      _ ->
        %{st | lend: :refused}
    end
  end

  defp parts_store(f, %{lend: :lent, newer: newer}, entries) do
    %{table: tab, seen: seen} = info(f.hub_id)

    # entries a message after the lend's number changed are as that message left them
    entries =
      if newer, do: Enum.reject(entries, &MapSet.member?(newer, elem(&1, 0))), else: entries

    unless :ets.insert_new(tab, entries), do: Enum.each(entries, &replace_row(tab, seen, &1))
  end

  defp parts_store(_f, _st, _entries), do: :ok

  defp parts_done(f, st, {:ok, %{result_parts: p, started: rest} = r})
       when p == length(st.parts) and is_list(rest) do
    parts_store(f, st, rest)
    started = :lists.append(Enum.reverse([rest | st.parts]))

    here =
      case st.lend do
        :lent -> parts_give_back(f, r, started)
        # a resync, or a subscription that changed: each child is checked
        _ -> nil
      end

    finish_start(f, r, started, fn -> here end)
  end

  defp parts_done(f, %{parts: []}, reply), do: finish(f, reply)

  defp parts_done(f, _st, reply) do
    parts_abort(f)
    {:error, {:unexpected_reply, reply}}
  end

  # Gives the table back with what the connection is to do with the specs
  # it got: rows for the entries of the member's own children, when the
  # member left those out of the stream; nothing when it did not (the
  # stream carries them); a resync when the counts differ. Returns the
  # member whose children the cache then shows, or nil.
  defp parts_give_back(f, r, started) do
    %{server: server, table: tab} = info(f.hub_id)
    omitted = r[:registry_omitted]

    {verdict, here} =
      cond do
        not is_integer(omitted) ->
          {:none, :synced}

        length(f.specs) == omitted and length(started) == omitted ->
          {:all, f.member}

        true ->
          case own_entries(started, f.specs, f.member, omitted) do
            {_, fill, ^omitted} -> {{:some, fill}, f.member}
            _ -> {:resync, nil}
          end
      end

    send(server, {:phnode_fill, self(), verdict})
    give_back(tab, server)
    if here == :synced, do: synced(f, Map.get(r, :registry_seq)), else: here
  end

  # The table, if this process holds it, goes back with a resync (what it
  # stored is not known to be right); parts still coming are dropped.
  defp parts_abort(f) do
    case info(f.hub_id) do
      %{server: server, table: tab} ->
        if :ets.info(tab, :owner) == self() do
          send(server, {:phnode_fill, self(), :resync})
          give_back(tab, server)
        end

      nil ->
        :ok
    end

    flush_parts(f.parts)
  end

  defp flush_parts(pref) do
    receive do
      {:phnode_start_part, ^pref, _, _} -> flush_parts(pref)
    after
      0 -> :ok
    end
  end

  # The member sends the rows of a start to its subscribers before the
  # result, which carries the number of the last message holding them
  # (registry_seq): when the result is here, those messages are in the
  # connection process's mailbox, and a call to it returns once they are
  # applied. Returns the member whose rows of this start are then all in
  # the cache, or nil (no number: a phnode without the option; or the
  # subscription changed, or a message was lost and a resync started).
  defp synced(_f, nil), do: nil

  defp synced(f, seq) do
    case GenServer.call(info(f.hub_id).server, {:synced, f.member, f.sub, seq}, :infinity) do
      :ok -> f.member
      :resync -> nil
    end
  catch
    :exit, _ -> nil
  end

  # registry_omit: the member left the rows of the children it started
  # itself ({cid, [{member, pid}]} in started) out of the subscription's
  # messages. This process stores those entries, as they came in the result,
  # in the lookup table, in the state of message registry_seq: the
  # connection process, once it has applied that message, lends it the table
  # and applies nothing more until it is back, so a later change to one of
  # these children (a restart, a stop) is applied after them; one the
  # connection applied before the lend (messages after registry_seq that came
  # while this process decoded the result) is left as it is: the connection
  # names those children (newer). Before giving the table back it sends the
  # connection the specs of those children: the connection stores their
  # spec and metadata (the rows table) before it handles anything else, off
  # this process's clock; readers of those rows wait for it (rows/1). A
  # count that differs from the member's, a lost message, a resync under
  # way: the connection resyncs and the rows come with its snapshot.
  @doc false
  def store_own(f, started, r) do
    %{server: server, table: tab, seen: seen} = info(f.hub_id)
    {entries, fill, built} = own_entries(started, f.specs, f.member, r.registry_omitted)
    seq = Map.get(r, :registry_seq)

    case GenServer.call(
           server,
           {:lend, f.member, f.sub, seq, r.registry_omitted, built},
           :infinity
         ) do
      {:lent, newer} ->
        receive do
          {:"ETS-TRANSFER", _, ^server, :phnode_lend} -> :ok
        end

        # entries a message after the result changed are as that message left them
        entries =
          if newer, do: Enum.reject(entries, &MapSet.member?(newer, elem(&1, 0))), else: entries

        try do
          unless :ets.insert_new(tab, entries),
            do: Enum.each(entries, &replace_row(tab, seen, &1))

          # sent before the table goes back: the connection finds it at once
          send(server, {:phnode_fill, self(), fill, f.meta})
        after
          give_back(tab, server)
        end

        f.member

      :resync ->
        nil
    end
  catch
    :exit, _ -> nil
  end

  defp give_back(tab, server) do
    :ets.give_away(tab, server, :phnode_return)
  rescue
    # the connection is gone: its table goes too
    ArgumentError -> :ets.delete(tab)
  end

  # {entries, specs, count}: the started entries {cid, [{member, pid}]} on
  # member alone (the lookup table's rows, as they came) and their specs (for
  # the rows table). When the member left out as many rows as the call had
  # specs and as the result has entries, every child started here alone:
  # the result and the specs as they are (no walk). Otherwise started
  # follows the specs' order (those that failed left out): one walk of both;
  # when it does not, the specs are looked up by id.
  @doc false
  def own_entries(started, specs, member, omitted) when is_list(specs) do
    if is_integer(omitted) and length(specs) == omitted and length(started) == omitted do
      {started, specs, omitted}
    else
      case in_order(started, specs, member, [], [], 0) do
        :unordered ->
          by_id(started, Map.new(for %{id: id} = s <- specs, do: {id, s}), member)

        done ->
          done
      end
    end
  end

  def own_entries(_started, _specs, _member, _omitted), do: {[], [], -1}

  defp in_order([], _specs, _member, acc, fill, n), do: {acc, fill, n}

  defp in_order([{cid, [{member, _}]} = e | rest] = started, specs, member, acc, fill, n) do
    case specs do
      [%{id: ^cid} = spec | specs] ->
        in_order(rest, specs, member, [e | acc], [spec | fill], n + 1)

      [_failed | specs] ->
        in_order(started, specs, member, acc, fill, n)

      [] ->
        :unordered
    end
  end

  defp in_order([_elsewhere | rest], specs, member, acc, fill, n),
    do: in_order(rest, specs, member, acc, fill, n)

  defp by_id(started, specs, member) do
    Enum.reduce(started, {[], [], 0}, fn
      {cid, [{^member, _}]} = e, {acc, fill, n} when is_map_key(specs, cid) ->
        {[e | acc], [Map.fetch!(specs, cid) | fill], n + 1}

      _, acc ->
        acc
    end)
  end

  @doc false
  # The rows table (spec and metadata) of hub_id, once every awaited start
  # that has returned has its rows there: while the connection is storing
  # them (filling > 0) a call to it returns after it has. Raises
  # ArgumentError when no connection runs (as a read of a missing table).
  def rows(hub_id) do
    case info(hub_id) do
      %{rows: rows, filling: filling, server: server} ->
        if :atomics.get(filling, 1) > 0, do: filled(server)
        rows

      nil ->
        raise ArgumentError, "no PhNode.Hub runs for #{inspect(hub_id)}"
    end
  end

  # the connection stopping meanwhile: its tables go with it (reads raise)
  defp filled(server) do
    GenServer.call(server, :filled, :infinity)
  catch
    :exit, _ -> :ok
  end

  @doc false
  # A cache row's spec: the stream's external format, or the term a caller
  # stored from its own start (registry_omit).
  def spec(spec) when is_binary(spec), do: :erlang.binary_to_term(spec)
  def spec(spec), do: spec

  # The {:seen, cid, pid} of the started children the cache does not show,
  # leaving out those running on `here` (known applied).
  defp not_seen([], _here, _tab, _seen, acc), do: acc

  defp not_seen([{cid, nps} | rest], here, tab, seen, acc) do
    case nps do
      [{^here, _}] ->
        not_seen(rest, here, tab, seen, acc)

      _ ->
        nps = for {n, _} = np <- nps, n != here, do: np
        acc = if nps == [], do: acc, else: missing(nps, row_nps(tab, cid), cid, seen, acc)
        not_seen(rest, here, tab, seen, acc)
    end
  end

  defp missing([], _have, _cid, _seen, acc), do: acc

  defp missing([{_, pid} | rest], have, cid, seen, acc) do
    if List.keymember?(have, pid, 1) or :ets.member(seen, {cid, pid}),
      do: missing(rest, have, cid, seen, acc),
      else: missing(rest, have, cid, seen, [{:seen, cid, pid} | acc])
  end

  defp await_visible(_hub_id, []), do: :ok

  # The hub sends the registry changes a request made before its reply,
  # on the same connection: when the reply is here, they are in the
  # connection process's mailbox or applied. Checked here first (ETS reads);
  # only what is not visible yet (children placed on other members, changes
  # made after the reply) is handed to the connection process to wait for.
  defp await_visible(hub_id, conds) do
    %{server: server, ryw_timeout: t, table: tab, seen: seen} = info(hub_id)

    case Enum.reject(conds, &cond_met?(&1, tab, seen)) do
      [] -> :ok
      left -> GenServer.call(server, {:await, left, t}, t + 60_000)
    end
  catch
    :exit, _ -> :ok
  end

  defp cond_met?({:seen, cid, pid}, tab, seen) do
    Enum.any?(row_nps(tab, cid), fn {_, p} -> p == pid end) or :ets.member(seen, {cid, pid})
  end

  defp cond_met?({:gone, cid, n, pid}, tab, _seen) do
    not Enum.any?(row_nps(tab, cid), fn {m, p} -> m == n and p == pid end)
  end

  # --- the connection process -------------------------------------------------------------

  @impl true
  def init(opts) do
    hub_id = Keyword.fetch!(opts, :hub_id)
    seeds = Keyword.fetch!(opts, :nodes)

    cookie =
      case Keyword.get(opts, :cookie) do
        c when is_binary(c) -> String.to_atom(c)
        c -> c
      end

    cond do
      not Node.alive?() ->
        {:stop, :not_distributed}

      not is_atom(hub_id) ->
        {:stop, {:bad_hub_id, hub_id}}

      not (is_list(seeds) and seeds != [] and Enum.all?(seeds, &is_atom/1)) ->
        {:stop, {:bad_nodes, seeds}}

      not (cookie == nil or is_atom(cookie)) ->
        {:stop, {:bad_cookie, Keyword.get(opts, :cookie)}}

      :ets.whereis(hub_id) != :undefined ->
        {:stop, {:table_exists, hub_id}}

      true ->
        Process.flag(:trap_exit, true)

        Enum.each(seeds, &set_cookie(&1, cookie))

        tab = :ets.new(hub_id, [:named_table, :set, :protected, read_concurrency: true])
        # {cid, spec, meta}: the lookup table (tab) holds {cid, [{node, pid}]}
        rows = :ets.new(:phnode_rows, [:set, :protected, read_concurrency: true])
        meta = :ets.new(:phnode_meta, [:set, :protected, read_concurrency: true])
        # lends whose rows are not stored yet (readers of rows wait)
        filling = :atomics.new(1, signed: true)
        seen = :ets.new(:phnode_seen, [:set, :public])
        hooks = :ets.new(:phnode_hooks, [:set, :protected, read_concurrency: true])
        interest = :atomics.new(1, signed: true)
        :atomics.put(interest, 1, System.monotonic_time(:millisecond))
        ryw = Keyword.get(opts, :ryw_timeout, 5000)
        dispatcher = spawn_link(PhNode.HookDispatcher, :run, [hooks])

        :persistent_term.put({PhNode, hub_id}, %{
          server: self(),
          meta: meta,
          seen: seen,
          hooks: hooks,
          interest: interest,
          ryw_timeout: ryw,
          table: tab,
          rows: rows,
          filling: filling,
          remote: Keyword.get(opts, :hub, hub_id)
        })

        :ok = :net_kernel.monitor_nodes(true, node_type: :all)

        s = %{
          hub_id: hub_id,
          remote: Keyword.get(opts, :hub, hub_id),
          seeds: seeds,
          cookie: cookie,
          refresh: Keyword.get(opts, :refresh_interval, @refresh),
          tab: tab,
          rows: rows,
          filling: filling,
          meta: meta,
          seen: seen,
          seen_used: false,
          hooks: hooks,
          interest: interest,
          dispatcher: dispatcher,
          members: seeds,
          member: nil,
          sub: nil,
          seq: 0,
          snap: nil,
          down: MapSet.new(),
          stale: %{},
          recent: :queue.new(),
          recent_n: 0,
          waiters: %{},
          windex: %{},
          next_waiter: 0,
          resyncs: 0,
          gaps: 0,
          failovers: 0,
          subscribed_at: nil,
          poller: nil
        }

        s = connect(s, [])
        Process.send_after(self(), :refresh, s.refresh)
        {:ok, s}
    end
  end

  @impl true
  def terminate(_reason, s) do
    if s.member do
      for key <- proxied_keys(s),
          do: safe_call(s, s.member, {:cancel_hook_handlers, key, [dispatch_id(s, key)]}, 2000)

      for key <- [:post_cluster_join_hook, :post_cluster_leave_hook],
          do: safe_call(s, s.member, {:cancel_hook_handlers, key, [proxy_id(s, key)]}, 2000)

      if s.sub, do: safe_call(s, s.member, {:unsubscribe_registry, s.sub}, 2000)
    end

    :persistent_term.erase({PhNode, s.hub_id})
    :ok
  end

  @impl true
  def handle_call(:stats, _from, s) do
    {:reply,
     %{
       member: s.member,
       members: s.members,
       seq: s.seq,
       resyncs: s.resyncs,
       gaps: s.gaps,
       failovers: s.failovers,
       syncing: s.snap != nil,
       down: MapSet.to_list(s.down)
     }, s}
  end

  # The messages up to seq were sent before the result the caller holds: a
  # lower count here means one was lost (resync at once).
  def handle_call({:synced, member, sub, seq}, _from, s) do
    cond do
      s.member != member or s.sub != sub or s.snap != nil ->
        {:reply, :resync, s}

      s.seq >= seq ->
        {:reply, :ok, s}

      true ->
        messages_lost(s, member, seq)
    end
  end

  # registry_omit (store_own/3): the caller stores the rows the member left
  # out of messages up to seq. Once those are applied the table is lent to
  # it (ets:give_away/3, this process its heir should the caller die with
  # it), and nothing more is applied until it is given back.
  def handle_call({:lend, member, sub, seq, omitted, built}, {caller, _} = from, s) do
    cond do
      s.member != member or s.sub != sub or s.snap != nil or not is_integer(seq) ->
        {:reply, :resync, s}

      s.seq < seq ->
        messages_lost(s, member, seq)

      omitted != built ->
        Logger.warning(
          "PhNode.Hub #{s.hub_id}: #{member} left #{omitted} rows of a start out of the " <>
            "registry stream, the result gives #{built}: resync"
        )

        {:reply, :resync, resubscribe(s)}

      true ->
        lend_since(s, caller, from, seq, :result)
    end
  end

  # result_parts (await_parts/1): the caller stores a start's entries as its
  # parts come, the first carrying the number of the last message sent
  # before the start's turn. Lent once that is applied, as above; what the
  # connection then does with the specs is said when the table comes back.
  def handle_call({:lend_parts, member, sub, seq}, {caller, _} = from, s) do
    cond do
      s.member != member or s.sub != sub or s.snap != nil or not is_integer(seq) ->
        {:reply, :resync, s}

      s.seq < seq ->
        messages_lost(s, member, seq)

      true ->
        lend_since(s, caller, from, seq, :parts)
    end
  end

  # rows/1: every lend is through (with its rows) when this is handled
  def handle_call(:filled, _from, s), do: {:reply, :ok, s}

  def handle_call({:member_failed, m}, _from, s) do
    s = if s.member == m and not alive_member?(s, m), do: failover(s, m), else: s
    {:reply, :ok, s}
  end

  def handle_call({:await, conds, timeout}, from, s) do
    pending =
      conds
      |> Enum.reject(&cond_met?(&1, s))
      |> Enum.group_by(&elem(&1, 1))

    if pending == %{} do
      {:reply, :ok, s}
    else
      id = s.next_waiter
      timer = Process.send_after(self(), {:waiter_timeout, id}, timeout)

      windex =
        Enum.reduce(Map.keys(pending), s.windex, fn cid, acc ->
          Map.update(acc, cid, [id], &[id | &1])
        end)

      w = %{from: from, conds: pending, timer: timer}
      {:noreply, %{s | waiters: Map.put(s.waiters, id, w), windex: windex, next_waiter: id + 1}}
    end
  end

  def handle_call({:register_hooks, key, handlers}, _from, s) do
    existing = hook_list(s, key)
    ids = Enum.map(handlers, & &1.id)
    taken = MapSet.new(existing, & &1.id)

    cond do
      length(Enum.uniq(ids)) != length(ids) or Enum.any?(ids, &MapSet.member?(taken, &1)) ->
        {:reply, {:error, :failed_to_register_some_handlers}, s}

      true ->
        list = Enum.sort_by(existing ++ handlers, & &1.p, :desc)
        :ets.insert(s.hooks, {key, list})
        if existing == [] and s.member, do: register_proxy(s, s.member, key)
        {:reply, :ok, s}
    end
  end

  def handle_call({:cancel_hooks, key, ids}, _from, s) do
    drop = MapSet.new(ids)
    list = Enum.reject(hook_list(s, key), &MapSet.member?(drop, &1.id))

    if list == [] do
      :ets.delete(s.hooks, key)

      if s.member,
        do: safe_call(s, s.member, {:cancel_hook_handlers, key, [dispatch_id(s, key)]}, 5000)
    else
      :ets.insert(s.hooks, {key, list})
    end

    {:reply, :ok, s}
  end

  @impl true
  def handle_info({:phnode_registry, ref, seq, kind, rows, gone}, %{sub: ref} = s) do
    if seq != s.seq + 1 do
      Logger.warning(
        "PhNode.Hub #{s.hub_id}: registry stream from #{s.member} jumped from #{s.seq} to #{seq}: resync"
      )

      {:noreply, resubscribe(%{s | gaps: s.gaps + 1})}
    else
      s = %{s | seq: seq}
      s = maybe_clear_seen(s)
      record = :atomics.get(s.interest, 1) > System.monotonic_time(:millisecond)
      s = if record, do: %{s | seen_used: true}, else: s
      s = note_recent(s, record, seq, rows, gone)
      touched = apply_rows(rows, gone, s, record)
      s = check_waiters(s, touched)
      s = if kind == :snapshot_done, do: snapshot_done(s), else: s
      {:noreply, s}
    end
  end

  def handle_info({:phnode_registry, _old_ref, _seq, _kind, _rows, _gone}, s), do: {:noreply, s}

  def handle_info({:process_hub, key, _data}, s)
      when key in [:post_cluster_join_hook, :post_cluster_leave_hook] do
    {:noreply, start_poll(s)}
  end

  def handle_info({:nodedown, n, _info}, s) do
    if n in s.members or n == s.member do
      s = %{s | down: MapSet.put(s.down, n)}
      s = drop_node_rows(s, n)
      s = check_waiters(s, :all)
      s = if n == s.member, do: failover(s, n), else: s
      {:noreply, s}
    else
      {:noreply, s}
    end
  end

  def handle_info({:nodeup, n, _info}, s) do
    if MapSet.member?(s.down, n) do
      # back (restarted): its rows come through the subscription again
      s = %{s | down: MapSet.delete(s.down, n), stale: Map.delete(s.stale, n)}
      {:noreply, if(s.member == nil, do: connect(s, []), else: s)}
    else
      {:noreply, s}
    end
  end

  def handle_info(:refresh, s) do
    Process.send_after(self(), :refresh, s.refresh)
    s = if s.member == nil, do: connect(s, []), else: start_poll(s)
    {:noreply, s}
  end

  def handle_info({:poll, ref, member, nodes, hub_seq}, s) do
    s = %{s | poller: nil}

    cond do
      member != s.member ->
        {:noreply, s}

      true ->
        s = if is_list(nodes), do: learn_members(s, nodes), else: s
        # Every message numbered up to hub_seq was in the mailbox before this
        # one: a lower count means one was lost.
        if ref == s.sub and is_integer(hub_seq) and s.snap == nil and s.seq < hub_seq do
          Logger.warning(
            "PhNode.Hub #{s.hub_id}: #{member} sent #{hub_seq} registry messages, #{s.seq} arrived: resync"
          )

          {:noreply, resubscribe(%{s | gaps: s.gaps + 1})}
        else
          {:noreply, s}
        end
    end
  end

  def handle_info({:waiter_timeout, id}, s) do
    case Map.pop(s.waiters, id) do
      {nil, _} ->
        {:noreply, s}

      {w, waiters} ->
        GenServer.reply(w.from, :timeout)
        {:noreply, %{s | waiters: waiters, windex: unindex(s.windex, id, Map.keys(w.conds))}}
    end
  end

  def handle_info({:EXIT, pid, reason}, %{dispatcher: pid} = s) do
    Logger.error("PhNode.Hub #{s.hub_id}: hook dispatcher exited: #{inspect(reason)}; restarted")
    {:noreply, %{s | dispatcher: spawn_link(PhNode.HookDispatcher, :run, [s.hooks])}}
  end

  def handle_info({:EXIT, _pid, _reason}, s), do: {:noreply, s}
  def handle_info(_other, s), do: {:noreply, s}

  # The ids the messages after seq changed (applied before the caller's
  # rows, which must not go over them): nil when none came, :unknown when
  # some are no longer kept.
  defp changed_since(%{seq: seq}, seq), do: {:ok, nil}

  defp changed_since(s, seq) do
    later = for {n, cids} <- :queue.to_list(s.recent), n > seq, do: cids

    if length(later) == s.seq - seq,
      do: {:ok, MapSet.new(List.flatten(later))},
      else: :unknown
  end

  # While an awaited start is in flight (record), the ids each message
  # changed, for the last @recent messages: a caller storing its start's
  # rows (registry_omit) leaves out those changed after its result.
  defp note_recent(s, true, seq, rows, gone) do
    cids = Enum.reduce(rows, gone, fn {cid, _, _, _}, acc -> [cid | acc] end)
    q = :queue.in({seq, cids}, s.recent)

    if s.recent_n >= @recent,
      do: %{s | recent: :queue.drop(q)},
      else: %{s | recent: q, recent_n: s.recent_n + 1}
  end

  defp note_recent(%{recent_n: 0} = s, false, _seq, _rows, _gone), do: s

  defp note_recent(s, false, _seq, _rows, _gone),
    do: %{s | recent: :queue.new(), recent_n: 0}

  # A member numbered more registry messages than arrived here: one was lost.
  defp messages_lost(s, member, seq) do
    Logger.warning(
      "PhNode.Hub #{s.hub_id}: #{member} sent #{seq} registry messages, #{s.seq} arrived: resync"
    )

    {:reply, :resync, resubscribe(%{s | gaps: s.gaps + 1})}
  end

  # Lends the table once message seq is applied, with the ids changed since
  # (kind: :result, a whole result; :parts, a result in parts); when more
  # messages were applied since than are kept, a resync instead.
  defp lend_since(s, caller, from, seq, kind) do
    case changed_since(s, seq) do
      {:ok, newer} ->
        {:noreply, lend(s, caller, from, newer, kind)}

      :unknown ->
        Logger.warning(
          "PhNode.Hub #{s.hub_id}: #{s.seq - seq} registry messages applied since a " <>
            "start's result or its first part, more than are kept: resync"
        )

        {:reply, :resync, resubscribe(s)}
    end
  end

  # Readers of the rows table wait while filling > 0: from before the caller
  # can return until its rows are stored.
  defp lend(s, caller, from, newer, how) do
    true = :ets.setopts(s.tab, {:heir, self(), :phnode_heir})
    :atomics.add(s.filling, 1, 1)

    try do
      :ets.give_away(s.tab, caller, :phnode_lend)
      GenServer.reply(from, {:lent, newer})

      receive do
        {:"ETS-TRANSFER", _, ^caller, :phnode_return} ->
          :ets.setopts(s.tab, {:heir, :none})
          s = if how == :parts, do: fill_parts(s, caller, newer), else: fill(s, caller, newer)
          check_waiters(s, :all)

        {:"ETS-TRANSFER", _, ^caller, :phnode_heir} ->
          # the caller died while it held the table: what it stored is unknown
          :ets.setopts(s.tab, {:heir, :none})
          Logger.warning("PhNode.Hub #{s.hub_id}: a caller died storing its start's rows: resync")
          resubscribe(s)
      end
    rescue
      # the caller died before the table could be lent: its rows are missing
      ArgumentError ->
        :ets.setopts(s.tab, {:heir, :none})
        resubscribe(s)
    after
      :atomics.sub(s.filling, 1, 1)
    end
  end

  # The rows (spec, metadata) of the entries the caller stored, from the
  # specs it sent before giving the table back; those a later message
  # changed (newer) are as that message left them.
  defp fill(s, caller, newer) do
    receive do
      {:phnode_fill, ^caller, specs, meta} ->
        store_rows(s, specs, meta, newer)
    after
      # the caller gave the table back without its specs (it failed storing)
      1000 ->
        Logger.warning("PhNode.Hub #{s.hub_id}: a start's specs did not come: resync")
        resubscribe(s)
    end
  end

  # result_parts: the specs came once the table was lent, the verdict
  # before it came back (await_parts/1).
  defp fill_parts(s, caller, newer) do
    receive do
      {:phnode_fill, ^caller, verdict} ->
        specs =
          receive do
            {:phnode_specs, ^caller, specs, meta} -> {specs, meta}
          after
            0 -> nil
          end

        case {verdict, specs} do
          {:none, _} ->
            s

          {:all, {specs, meta}} ->
            store_rows(s, specs, meta, newer)

          {{:some, fill}, {_, meta}} ->
            store_rows(s, fill, meta, newer)

          _ ->
            Logger.warning("PhNode.Hub #{s.hub_id}: a start's parts were not all stored: resync")
            resubscribe(s)
        end
    after
      1000 ->
        Logger.warning("PhNode.Hub #{s.hub_id}: a start's specs did not come: resync")
        resubscribe(s)
    end
  end

  # The rows of specs, but those a later message changed (newer).
  defp store_rows(s, specs, meta, newer) do
    rows =
      for %{id: cid} = spec <- specs,
          newer == nil or not MapSet.member?(newer, cid),
          do: {cid, spec, meta}

    :ets.insert(s.rows, rows)
    s
  end

  # --- connecting and failing over ------------------------------------------------------

  # Tries the known members (then the seeds), skipping those known down and
  # those in `except`; subscribes on the first whose hub answers.
  defp connect(s, except) do
    candidates =
      (s.members ++ s.seeds)
      |> Enum.uniq()
      |> Enum.reject(&(&1 in except or MapSet.member?(s.down, &1)))

    Enum.reduce_while(candidates, %{s | member: nil, sub: nil}, fn n, acc ->
      case try_member(acc, n) do
        {:ok, acc} -> {:halt, acc}
        :error -> {:cont, acc}
      end
    end)
    |> tap(fn s2 ->
      if s2.member == nil do
        :ets.delete(s.meta, :member)
        :ets.delete(s.meta, :sub)
      end
    end)
  end

  defp try_member(s, n) do
    set_cookie(n, s.cookie)

    with true <- Node.connect(n),
         nodes when is_list(nodes) <- safe_call(s, n, {:nodes, [:include_local]}, 5000) do
      s = learn_members(%{s | member: n}, nodes)
      :ets.insert(s.meta, {:member, n})
      register_proxies(s, n)
      {:ok, subscribe(s)}
    else
      _ -> :error
    end
  end

  defp subscribe(s) do
    case safe_call(s, s.member, {:subscribe_registry, self(), []}, 120_000) do
      {:ok, ref} ->
        :ets.insert(s.meta, {:sub, ref})
        snap = :ets.new(:phnode_snapshot, [:set, :private])
        %{s | sub: ref, seq: 0, snap: snap, subscribed_at: System.monotonic_time(:millisecond)}

      other ->
        Logger.error(
          "PhNode.Hub #{s.hub_id}: subscription on #{s.member} failed: #{inspect(other)}"
        )

        :ets.delete(s.meta, :sub)

        %{s | sub: nil}
    end
  end

  defp resubscribe(s) do
    if s.sub, do: safe_call(s, s.member, {:unsubscribe_registry, s.sub}, 5000)
    if s.snap, do: :ets.delete(s.snap)
    s = subscribe(%{s | snap: nil, resyncs: s.resyncs + 1})
    if s.sub, do: s, else: failover(s, s.member)
  end

  defp failover(s, gone) do
    Logger.warning("PhNode.Hub #{s.hub_id}: member #{gone} lost: failing over")
    if s.snap, do: :ets.delete(s.snap)
    s = connect(%{s | snap: nil, failovers: s.failovers + 1}, [gone])
    if s.member, do: %{s | resyncs: s.resyncs + 1}, else: s
  end

  defp alive_member?(s, m), do: Node.ping(m) == :pong and safe_call(s, m, :is_alive, 2000) == true

  defp set_cookie(_node, nil), do: :ok
  defp set_cookie(node, cookie), do: :erlang.set_cookie(node, cookie)

  # Connects to new members, and to members known down again (a restarted
  # one is still listed by its peers: its nodeup clears it from down).
  defp learn_members(s, nodes) do
    for n <- nodes, n not in s.members or MapSet.member?(s.down, n) do
      set_cookie(n, s.cookie)
      Node.connect(n)
    end

    %{s | members: nodes}
  end

  defp start_poll(%{poller: p} = s) when is_pid(p), do: s
  defp start_poll(%{member: nil} = s), do: s

  defp start_poll(s) do
    parent = self()
    %{member: m, sub: ref} = s

    pid =
      spawn(fn ->
        nodes = safe_call(s, m, {:nodes, [:include_local]}, 5000)
        seq = if ref, do: safe_call(s, m, {:registry_seq, ref}, 5000)

        seq =
          case seq do
            {:ok, n} -> n
            _ -> nil
          end

        send(parent, {:poll, ref, m, nodes, seq})
      end)

    %{s | poller: pid}
  end

  defp safe_call(s, node, req, timeout) do
    GenServer.call({s.remote, node}, req, timeout)
  catch
    :exit, reason -> {:exit, reason}
  end

  # --- the cache --------------------------------------------------------------------

  # One message: rows in the table's own shape ({cid, [{node, pid}], spec,
  # meta}) and the ids of the rows gone. Every entry is the row's state at
  # the end of a flush, so their order does not matter: the rows go to ETS
  # as they came, in one insert. While an awaited start is in flight
  # (record), the pids a row loses are kept in the seen table, so that a
  # child that started and already exited or was restarted still counts as
  # seen; a batch of new rows (a start) loses nothing and costs one
  # insert_new.
  defp apply_rows(rows, gone, s, record) do
    {rows, gone} =
      if s.stale == %{}, do: {rows, gone}, else: without_stale(rows, s.stale, [], gone)

    %{tab: tab, seen: seen} = s
    Enum.each(gone, &delete_row(s, &1, record))
    {entries, full} = split_rows(rows, [], [])
    # the rows first: a reader that finds the entry finds its row
    :ets.insert(s.rows, full)

    cond do
      rows == [] -> :ok
      not record -> :ets.insert(tab, entries)
      :ets.insert_new(tab, entries) -> :ok
      true -> Enum.each(entries, &replace_row(tab, seen, &1))
    end

    if s.snap do
      :ets.insert(s.snap, for({cid, _, _, _} <- rows, do: {cid}))
      :ets.insert(s.snap, for(cid <- gone, do: {cid}))
    end

    if s.windex != %{}, do: for({cid, _, _, _} <- rows, do: cid, into: gone), else: []
  end

  # {[{cid, nps}], [{cid, spec, meta}]} of a message's rows
  defp split_rows([], entries, full), do: {entries, full}

  defp split_rows([{cid, nps, spec, meta} | rest], entries, full),
    do: split_rows(rest, [{cid, nps} | entries], [{cid, spec, meta} | full])

  defp replace_row(tab, seen, {cid, nps} = row) do
    unless :ets.insert_new(tab, row) do
      note_vanished(tab, seen, cid, nps)
      :ets.insert(tab, row)
    end
  end

  defp note_vanished(tab, seen, cid, keep) do
    for {_, p} <- row_nps(tab, cid),
        not List.keymember?(keep, p, 1),
        do: :ets.insert(seen, {{cid, p}})
  end

  # the entry first: a reader that finds the entry finds its row
  defp delete_row(s, cid, record) do
    if record, do: note_vanished(s.tab, s.seen, cid, [])
    :ets.delete(s.tab, cid)
    :ets.delete(s.rows, cid)
  end

  # Leaves out the pids of node incarnations known dead (a member that went
  # down, whose death the member streaming to us may not have seen yet); a
  # row left with none is gone. A node back under the same name has a new
  # creation: its pids stay.
  defp without_stale([], _stale, rows, gone), do: {rows, gone}

  defp without_stale([{cid, nps, spec, meta} = row | rest], stale, rows, gone) do
    case Enum.reject(nps, fn {_, pid} -> stale_pid?(pid, stale) end) do
      ^nps -> without_stale(rest, stale, [row | rows], gone)
      [] -> without_stale(rest, stale, rows, [cid | gone])
      left -> without_stale(rest, stale, [{cid, left, spec, meta} | rows], gone)
    end
  end

  defp stale_pid?(pid, stale) do
    case Map.fetch(stale, node(pid)) do
      {:ok, c} -> creation(pid) == c
      :error -> false
    end
  end

  # The creation of a pid's node incarnation: the last 32 bits of its
  # external format (NEW_PID_EXT).
  defp creation(pid) do
    b = :erlang.term_to_binary(pid)
    :binary.decode_unsigned(:binary.part(b, byte_size(b) - 4, 4))
  end

  # The end of a snapshot: rows it did not have are gone.
  defp snapshot_done(%{snap: nil} = s), do: s

  defp snapshot_done(s) do
    %{tab: tab, snap: snap} = s

    stale =
      :ets.foldl(
        fn {cid, _}, acc -> if :ets.member(snap, cid), do: acc, else: [cid | acc] end,
        [],
        tab
      )

    record = :atomics.get(s.interest, 1) > System.monotonic_time(:millisecond)
    Enum.each(stale, &delete_row(s, &1, record))
    :ets.delete(snap)
    check_waiters(%{s | snap: nil}, :all)
  end

  # A member went down: its pids leave the cache now, and rows streamed
  # later with pids of that incarnation (from a member that has not seen the
  # death yet) leave them out (stale).
  defp drop_node_rows(s, n) do
    changes =
      :ets.foldl(
        fn {cid, nps}, acc ->
          case List.keymember?(nps, n, 0) do
            false ->
              acc

            true ->
              case List.keydelete(nps, n, 0) do
                [] -> [{:delete, cid, nps} | acc]
                rest -> [{:put, cid, rest, nps} | acc]
              end
          end
        end,
        [],
        s.tab
      )

    Enum.each(changes, fn
      {:delete, cid, _} -> delete_row(s, cid, false)
      {:put, cid, nps, _} -> :ets.insert(s.tab, {cid, nps})
    end)

    case changes do
      [] ->
        s

      [change | _] ->
        {^n, pid} = List.keyfind(elem(change, tuple_size(change) - 1), n, 0)
        %{s | stale: Map.put(s.stale, n, creation(pid))}
    end
  end

  defp maybe_clear_seen(%{seen_used: true} = s) do
    if :atomics.get(s.interest, 1) <= System.monotonic_time(:millisecond) do
      :ets.delete_all_objects(s.seen)
      %{s | seen_used: false}
    else
      s
    end
  end

  defp maybe_clear_seen(s), do: s

  # --- read-your-writes waiters -------------------------------------------------------

  defp cond_met?({:seen, _cid, pid} = c, s),
    do: dead_pid?(pid, s) or cond_met?(c, s.tab, s.seen)

  defp cond_met?(c, s), do: cond_met?(c, s.tab, s.seen)

  # a pid of a member known down (of the incarnation that went down, when known)
  defp dead_pid?(pid, s) do
    MapSet.member?(s.down, node(pid)) and
      (not Map.has_key?(s.stale, node(pid)) or stale_pid?(pid, s.stale))
  end

  # the {node, pid} list alone: the spec and metadata are not copied
  defp row_nps(tab, cid) do
    :ets.lookup_element(tab, cid, 2)
  rescue
    ArgumentError -> []
  end

  defp check_waiters(%{waiters: w} = s, _) when w == %{}, do: s

  defp check_waiters(s, :all), do: check_waiters(s, Map.keys(s.windex))

  defp check_waiters(s, cids) do
    Enum.reduce(cids, s, fn cid, s ->
      case Map.get(s.windex, cid) do
        nil -> s
        ids -> Enum.reduce(ids, s, &check_waiter(&2, &1, cid))
      end
    end)
  end

  defp check_waiter(s, id, cid) do
    case Map.get(s.waiters, id) do
      nil ->
        s

      w ->
        left = Enum.reject(Map.get(w.conds, cid, []), &cond_met?(&1, s))

        if left == [] do
          conds = Map.delete(w.conds, cid)
          windex = unindex(s.windex, id, [cid])

          if conds == %{} do
            Process.cancel_timer(w.timer)
            GenServer.reply(w.from, :ok)
            %{s | waiters: Map.delete(s.waiters, id), windex: windex}
          else
            %{s | waiters: Map.put(s.waiters, id, %{w | conds: conds}), windex: windex}
          end
        else
          %{s | waiters: Map.put(s.waiters, id, %{w | conds: Map.put(w.conds, cid, left)})}
        end
    end
  end

  defp unindex(windex, id, cids) do
    Enum.reduce(cids, windex, fn cid, acc ->
      case Map.get(acc, cid) do
        nil ->
          acc

        ids ->
          case List.delete(ids, id) do
            [] -> Map.delete(acc, cid)
            rest -> Map.put(acc, cid, rest)
          end
      end
    end)
  end

  # --- hooks --------------------------------------------------------------------------

  defp hook_list(s, key) do
    case :ets.lookup(s.hooks, key) do
      [{_, l}] -> l
      [] -> []
    end
  end

  defp proxied_keys(s), do: for({k, _} <- :ets.tab2list(s.hooks), do: k)

  defp proxy_id(s, key), do: "phnode_client/#{node()}/#{s.hub_id}/#{key}"
  defp dispatch_id(s, key), do: proxy_id(s, key) <> "/dispatch"

  # The connection's own handlers (membership changes) and one proxy per hook
  # key that has client handlers; each is cancelled first in case a client of
  # the same node name left one behind.
  defp register_proxies(s, member) do
    for key <- [:post_cluster_join_hook, :post_cluster_leave_hook] do
      id = proxy_id(s, key)
      safe_call(s, member, {:cancel_hook_handlers, key, [id]}, 5000)
      safe_call(s, member, {:register_hook_handlers, key, [%{id: id, pid: self(), p: 0}]}, 5000)
    end

    for key <- proxied_keys(s), do: register_proxy(s, member, key)
  end

  defp register_proxy(s, member, key) do
    id = dispatch_id(s, key)
    safe_call(s, member, {:cancel_hook_handlers, key, [id]}, 5000)

    case safe_call(
           s,
           member,
           {:register_hook_handlers, key, [%{id: id, pid: s.dispatcher, p: 0}]},
           5000
         ) do
      :ok ->
        :ok

      other ->
        Logger.error(
          "PhNode.Hub #{s.hub_id}: hook proxy for #{key} on #{member}: #{inspect(other)}"
        )
    end
  end
end
