# Requests and workers against careless input (issue 14): improper lists in
# every list argument, child ids of a megabyte, the counter at 2^63 - 1,
# UTF-8 names in the config file. Run by test/integration/run.sh.
Code.require_file("support/ph_test.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 120_000
)

defmodule PhNode.HubInputTest do
  use ExUnit.Case, async: false

  setup_all do
    n = PhTest.start_node(ticktime: 4)
    on_exit(fn -> if PhTest.alive?(n), do: PhTest.kill_node(n) end)
    {:ok, ph: n, hub: {:my_hub, n.node}}
  end

  defp spec(id), do: %{id: id, start: {:echo, :start_link, [[]]}}

  defp improper(list, tail), do: Enum.reverse(list) |> Enum.reduce(tail, fn e, acc -> [e | acc] end)

  describe "improper lists (defect 4)" do
    test "every request answers {:error, _} and starts or stops nothing", %{hub: hub} do
      id = "improper_#{System.unique_integer([:positive])}"
      {:ok, %{status: :ok}} = GenServer.call(hub, {:start_child, spec(id <> "_kept"), [awaitable: true]})
      count = GenServer.call(hub, :registry_count)

      requests = [
        {:start_children, improper([spec(id)], :bad), []},
        {:start_children, improper([spec(id)], :bad), [awaitable: true]},
        {:start_children, [spec(id)], improper([awaitable: true], :bad)},
        {:start_child, spec(id), improper([awaitable: true], :bad)},
        {:start_children, [spec(id)], [child_mapping: %{id => improper([node()], :x)}]},
        {:stop_children, improper([id <> "_kept"], :bad), []},
        {:stop_children, [id <> "_kept"], improper([awaitable: true], :bad)},
        {:stop_child, id <> "_kept", improper([awaitable: true], :bad)},
        {:which_children, improper([:global], :bad)},
        {:nodes, improper([:include_local], :bad)},
        {:child_lookup, id <> "_kept", improper([with_metadata: true], :bad)},
        {:register_hook_handlers, :pre_children_start, improper([], :bad)},
        {:cancel_hook_handlers, :pre_children_start, improper([:h1], :bad)}
      ]

      for r <- requests do
        reply = GenServer.call(hub, r)
        assert match?({:error, _}, reply), "#{inspect(r)} answered #{inspect(reply)}"
      end

      assert GenServer.call(hub, :registry_count) == count
      assert GenServer.call(hub, {:get_pid, id}) == nil
      assert is_pid(GenServer.call(hub, {:get_pid, id <> "_kept"}))
    end
  end

  describe "child ids (defect 5)" do
    test "binary ids of 70 KB and 1 MB start, are found and stop", %{hub: hub} do
      for size <- [65_535, 70_000, 1_048_576] do
        uniq = String.pad_leading(Integer.to_string(System.unique_integer([:positive])), 10, "0")
        id = :binary.copy("i", size - 10) <> uniq
        assert {:ok, %{status: :ok, started: [{^id, [{_, pid}]}]}} =
                 GenServer.call(hub, {:start_child, spec(id), [awaitable: true]}, 30_000)

        assert GenServer.call(hub, {:get_pid, id}, 30_000) == pid
        assert {:ok, %{status: :ok}} =
                 GenServer.call(hub, {:stop_child, id, [awaitable: true]}, 30_000)

        assert GenServer.call(hub, {:get_pid, id}, 30_000) == nil
      end
    end
  end

  describe "counter (defect 6)" do
    test "an add past 2^63 - 1 answers {:error, :overflow} and keeps the value", %{ph: ph} do
      max = 9_223_372_036_854_775_807
      c = PhTest.spawn_worker!(ph, :counter, [max - 1])
      assert GenServer.call(c, {:add, 1}) == max
      assert GenServer.call(c, {:add, 1}) == {:error, :overflow}
      assert GenServer.call(c, :get) == max
      GenServer.cast(c, {:add, 1})
      assert GenServer.call(c, :get) == max
      min = -max - 1
      d = PhTest.spawn_worker!(ph, :counter, [min])
      assert GenServer.call(d, {:add, -1}) == {:error, :overflow}
      assert GenServer.call(d, :get) == min
      assert GenServer.call(d, {:add, max}) == -1
    end
  end

  describe "config file names (defect 10)" do
    test "UTF-8 module and function names of a hook stay UTF-8 atoms" do
      sink = PhTest.unique_atom("utf8_sink")
      Process.register(self(), sink)

      Module.create(
        :"mód_#{sink}",
        quote do
          def unquote(:"fün")(to, data), do: send(to, {:"fün", data})
        end,
        Macro.Env.location(__ENV__)
      )

      handler = %{
        "id" => "h_utf8",
        "node" => Atom.to_string(node()),
        "m" => "mód_#{sink}",
        "f" => "fün",
        "a" => [":#{sink}", "_"]
      }

      cfg = Path.join(PhTest.tmp_dir(), "utf8_#{System.unique_integer([:positive])}.json")
      File.write!(cfg, json(%{"hooks" => %{"registry_pid_insert_hook" => [handler]}}))
      n = PhTest.start_node(ticktime: 4, args: ["--config", cfg])
      on_exit(fn -> if PhTest.alive?(n), do: PhTest.kill_node(n) end)
      hub = {:my_hub, n.node}
      {:ok, %{status: :ok}} = GenServer.call(hub, {:start_child, spec("utf8_child"), [awaitable: true]})
      node = n.node
      assert_receive {:"fün", {"utf8_child", [{^node, _}]}}, 5000
    end
  end

  defp json(m) when is_map(m),
    do: "{" <> Enum.map_join(m, ",", fn {k, v} -> json(k) <> ":" <> json(v) end) <> "}"

  defp json(l) when is_list(l), do: "[" <> Enum.map_join(l, ",", &json/1) <> "]"
  defp json(s) when is_binary(s), do: inspect(s)
  defp json(i) when is_integer(i), do: Integer.to_string(i)
end
