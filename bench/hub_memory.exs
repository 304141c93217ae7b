# bench/hub_memory.sh's driver: the resident set of 3 phnodes before and
# after one start of 100k children; it writes "before" and "after" to
# PHASEFILE and waits for the script's malloc statistics each time.
#   elixir ... bench/hub_memory.exs P1 P2 P3 OSPID1,OSPID2,OSPID3 PHASEFILE
[p1, p2, p3, os_pids, phase_file] = System.argv()
phs = Enum.map([p1, p2, p3], &String.to_atom/1)
os = String.split(os_pids, ",")
n = String.to_integer(System.get_env("N", "100000"))
for x <- phs, do: :pong = Node.ping(x)

Stream.repeatedly(fn -> Process.sleep(50); length(GenServer.call({:my_hub, hd(phs)}, {:nodes, []})) end)
|> Enum.find(&(&1 == 2))

rss = fn ->
  Enum.map(os, fn p ->
    [kb] = Regex.run(~r/VmRSS:\s+(\d+) kB/, File.read!("/proc/#{p}/status"), capture: :all_but_first)
    String.to_integer(kb)
  end)
end

# the script answers each phase by writing "<phase> done" to the file
await = fn phase ->
  File.write!(phase_file, "#{phase}\n")
  Stream.repeatedly(fn -> Process.sleep(100); File.read!(phase_file) end)
  |> Enum.find(&(&1 == "#{phase} done\n"))
end

r0 = rss.()
await.("before")
specs = for i <- 1..n, do: %{id: "m#{i}", start: {:counter, :start_link, [0]}}
{:ok, %{status: :ok}} = GenServer.call({:my_hub, hd(phs)}, {:start_children, specs, [awaitable: true, timeout: 60_000]}, :infinity)
all = fn f -> if Enum.all?(phs, &(GenServer.call({:my_hub, &1}, :registry_count) == n)), do: :ok, else: (Process.sleep(2); f.(f)) end
all.(all)
# after the big buffers the nodes keep for reuse for 1 s (BIGBUF_KEEP_MS) went back
Process.sleep(1_100)
r1 = rss.()
per_child = Enum.zip_with(r0, r1, fn a, b -> div((b - a) * 1024, n) end)
IO.puts(~s({"scenario": "memory_per_child", "children": #{n}, "rss_kb_before": #{inspect(r0)}, "rss_kb_after": #{inspect(r1)}, "bytes_per_child_by_node": #{inspect(per_child)}, "note": "first node is the asked one"}))
await.("after")
