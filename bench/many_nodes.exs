# Client nodes for the benchmarks' many-nodes scenarios (bench/client.exs,
# bench/call_floor.exs): CallLoop, the loop each node runs, and ManyNodes,
# which starts the nodes with OTP's :peer and runs the loop on all at once.

# The loop each client node of the many-nodes scenario runs: plain Erlang
# calls, so that it loads on a node started by :peer (its object code is
# sent there).
{:module, CallLoop, call_loop_bin, _} =
  defmodule CallLoop do
    def run(_target, 0), do: :ok

    def run(target, n) do
      ^n = :gen_server.call(target, n)
      run(target, n - 1)
    end

    # the same calls without the call's monitor (bench/call_floor.exs)
    def run_raw(_target, 0), do: :ok

    def run_raw(target, n) do
      ^n = raw_call(target, n)
      run_raw(target, n - 1)
    end

    # a call without the monitor: the request with a plain reference as its
    # tag, the reply received
    def raw_call(target, request) do
      ref = make_ref()
      send(target, {:"$gen_call", {self(), ref}, request})

      receive do
        {^ref, reply} -> reply
      after
        5_000 -> exit(:timeout)
      end
    end

    # one call, then a pause of about a millisecond, n times
    def spaced(_target, 0), do: :ok

    def spaced(target, n) do
      ^n = :gen_server.call(target, n)
      :timer.sleep(1)
      spaced(target, n - 1)
    end
  end

defmodule ManyNodes do
  # k client nodes on this host (OTP's :peer), each with the loop above
  def start(k) do
    cookie = Atom.to_charlist(Node.get_cookie())

    for i <- 1..k do
      name = :"benchpeer#{i}_#{System.unique_integer([:positive])}"
      {:ok, pid, node} =
        :peer.start_link(%{name: name, host: ~c"127.0.0.1", longnames: true, args: [~c"-setcookie", cookie, ~c"-connect_all", ~c"false"]})

      {:module, CallLoop} = :erpc.call(node, :code, :load_binary, [CallLoop, ~c"nofile", call_loop_bin_of()])
      {pid, node}
    end
  end

  def call_loop_bin_of, do: :persistent_term.get(:call_loop_bin)

  # every client node calls its own worker n times, one call at a time
  # (loop :run, GenServer.call; :run_raw, without the monitor); returns
  # calls per second over all of them
  def run(peers, workers, n, loop \\ :run) do
    t0 = System.monotonic_time(:microsecond)
    reqs = for {{_, node}, w} <- Enum.zip(peers, workers), do: :erpc.send_request(node, CallLoop, loop, [w, n])
    for r <- reqs, do: :ok = :erpc.receive_response(r, :infinity)
    length(peers) * n * 1_000_000 / (System.monotonic_time(:microsecond) - t0)
  end

  def stop(peers), do: for({pid, _} <- peers, do: :peer.stop(pid))
end

:persistent_term.put(:call_loop_bin, call_loop_bin)
