# PhTest.HubCluster: what the hub tests share to stand up a cluster of
# phnodes under one config: the config file, a node killed when its test
# ends, a cluster joined through its first node and waited for, and the
# registry dump in a form that compares (node lists sorted).
defmodule PhTest.HubCluster do
  import ExUnit.Assertions

  def hub(n), do: {:my_hub, n.node}

  @doc "Writes json to a fresh file in the test tmp dir; returns its path."
  def config_file(prefix, json) do
    path = Path.join(PhTest.tmp_dir(), "#{prefix}_#{System.unique_integer([:positive])}.json")
    File.write!(path, json)
    path
  end

  @doc """
  Starts a phnode with `--config cfg` and `extra` arguments, killed when the
  calling test ends. opts: ticktime (default 2), env, and any other
  PhTest.start_node option.
  """
  def start(cfg, extra \\ [], opts \\ []) do
    opts = Keyword.put_new(opts, :ticktime, 2)
    n = PhTest.start_node(Keyword.put(opts, :args, ["--config", cfg | extra]))
    ExUnit.Callbacks.on_exit(fn -> if PhTest.alive?(n), do: PhTest.kill_node(n) end)
    n
  end

  def join(cfg, seed, extra \\ [], opts \\ []),
    do: start(cfg, ["--join", Atom.to_string(seed.node) | extra], opts)

  @doc "Asserts that every node sees the others as members within timeout ms."
  def wait_members(nodes, timeout \\ 15_000) do
    count = length(nodes)

    assert PhTest.wait_until(
             fn ->
               Enum.all?(nodes, &(length(GenServer.call(hub(&1), {:nodes, []})) == count - 1))
             end,
             timeout,
             100
           ),
           "the #{count} nodes did not form a hub cluster"

    nodes
  end

  @doc "count nodes under cfg, the rest joined through the first, members agreed."
  def cluster(cfg, count, extra \\ [], opts \\ []) do
    first = start(cfg, extra, opts)
    wait_members([first | for(_ <- 2..count//1, do: join(cfg, first, extra, opts))])
  end

  @doc "The registry dump with each row's {node, pid} list sorted (a set)."
  def dump(n) do
    GenServer.call(hub(n), :registry_dump, 30_000)
    |> Map.new(fn {id, {spec, nps, meta}} -> {id, {spec, Enum.sort(nps), meta}} end)
  end
end
