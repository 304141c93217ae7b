# PhTest.Netns - phnodes on a real network that tests can split: each in a
# network namespace of its own (own address, own epmd) on one bridge, cut
# and healed with support/netns.sh (blackhole routes inside the namespaces
# this run created; nothing outside them is touched). Loaded after
# ph_test.exs. The namespaces are removed by down/1 (call it from
# on_exit), and, should this BEAM die first, by `netns.sh sweep`, which
# run.sh calls before and after the tests.
defmodule PhTest.Netns do
  defstruct [:run, :count, :subnet]

  @script Path.join(__DIR__, "netns.sh")

  @doc "nil when this host can run namespaces, else the reason."
  def unavailable do
    case System.cmd(@script, ["check"], stderr_to_stdout: true) do
      {_, 0} -> nil
      {out, _} -> String.trim(out)
    end
  rescue
    e -> Exception.message(e)
  end

  @doc "n namespaces (at most 9) on a fresh bridge."
  def up(n) when n in 1..9 do
    run = :crypto.strong_rand_bytes(2) |> Base.encode16(case: :lower)
    owner = System.pid()

    case System.cmd(@script, ["up", run, "#{n}", owner], stderr_to_stdout: true) do
      {out, 0} ->
        s = out |> String.split() |> List.last()
        %__MODULE__{run: run, count: n, subnet: s}

      {out, rc} ->
        sh(["down", run])
        raise "netns.sh up failed (#{rc}): #{out}"
    end
  end

  def down(%__MODULE__{run: run}), do: sh(["down", run])

  def ns(%__MODULE__{run: run}, i), do: "ph#{run}-#{i}"
  def addr(%__MODULE__{subnet: s}, i), do: "10.213.#{s}.#{10 + i}"

  @doc "No traffic between namespaces i and j (both ways)."
  def cut(%__MODULE__{run: run}, i, j), do: sh(["cut", run, "#{i}", "#{j}"])
  def heal(%__MODULE__{run: run}, i, j), do: sh(["heal", run, "#{i}", "#{j}"])
  def heal_all(%__MODULE__{run: run}), do: sh(["heal_all", run])

  @doc "Cuts every link between the two groups of namespace indices."
  def split(net, left, right), do: for(i <- left, j <- right, do: cut(net, i, j))

  @doc "Starts a phnode in namespace i (PhTest.start_node options)."
  def start_node(net, i, opts \\ []) do
    PhTest.start_node([netns: ns(net, i), host: addr(net, i)] ++ opts)
  end

  defp sh(args) do
    case System.cmd(@script, args, stderr_to_stdout: true) do
      {_, 0} -> :ok
      {out, rc} -> raise "netns.sh #{Enum.join(args, " ")} failed (#{rc}): #{out}"
    end
  end
end
