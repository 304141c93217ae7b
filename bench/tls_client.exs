# The measuring side of the TLS benchmark (bench/tls.sh): one Elixir node,
# itself on TLS distribution, calls phnode's echo worker and a BEAM echo
# gen_server, both over TLS, alternating rounds so both see the same load.
# Prints one JSON object.
#
#   elixir --erl "-proto_dist inet_tls -ssl_dist_optfile F" --name ... --cookie ... \
#          bench/tls_client.exs PHNODE BEAMNODE ROUNDS
[ph, bs, rounds] = System.argv()
ph = String.to_atom(ph)
bs = String.to_atom(bs)
rounds = String.to_integer(rounds)

defmodule TlsBench do
  def timed(fun) do
    t0 = System.monotonic_time(:microsecond)
    fun.()
    System.monotonic_time(:microsecond) - t0
  end

  def sequential(target, n) do
    us = timed(fn -> for i <- 1..n, do: ^i = GenServer.call(target, i) end)
    n * 1_000_000 / us
  end

  def concurrent(target, callers, n) do
    us =
      timed(fn ->
        1..callers
        |> Enum.map(fn _ -> Task.async(fn -> for i <- 1..n, do: ^i = GenServer.call(target, i) end) end)
        |> Enum.each(&Task.await(&1, :infinity))
      end)

    callers * n * 1_000_000 / us
  end

  def median(xs), do: xs |> Enum.sort() |> Enum.at(div(length(xs), 2))
end

true = Node.connect(ph)
true = Node.connect(bs)
{:ok, w} = GenServer.call({:phnode, ph}, {:spawn, :echo, [], []})
b = {:ph_bench_echo, bs}
# warm up both connections
TlsBench.sequential(w, 2000)
TlsBench.sequential(b, 2000)

pairs = fn f ->
  for _ <- 1..rounds do
    p = f.(w)
    q = f.(b)
    {p, q}
  end
end

seq = pairs.(fn t -> TlsBench.sequential(t, 20_000) end)
conc = pairs.(fn t -> TlsBench.concurrent(t, 16, 5_000) end)

report = fn name, rs ->
  ph_rate = TlsBench.median(Enum.map(rs, &elem(&1, 0)))
  beam_rate = TlsBench.median(Enum.map(rs, &elem(&1, 1)))
  ratio = TlsBench.median(Enum.map(rs, fn {p, q} -> p / q end))

  IO.puts(
    ~s({"scenario": "#{name}", "phnode_calls_per_s": #{round(ph_rate)}, ) <>
      ~s("beam_calls_per_s": #{round(beam_rate)}, "ratio": #{Float.round(ratio, 2)}})
  )
end

report.("tls_call_sequential", seq)
report.("tls_call_16_callers", conc)
