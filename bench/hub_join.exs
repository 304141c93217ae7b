# bench/hub_join.sh's driver: 100k children on 3 phnodes, then K joins of a
# 4th phnode, each until it runs its share and every registry agrees, each
# followed by a kill -9 of the 4th node and the survivors' recovery.
#   elixir ... bench/hub_join.exs P1 P2 P3 OSPID1,OSPID2,OSPID3 PHNODE COOKIE PIDDIR
[p1, p2, p3, os_pids, phnode, cookie, piddir] = System.argv()
phs = Enum.map([p1, p2, p3], &String.to_atom/1)
os = String.split(os_pids, ",")
k = String.to_integer(System.get_env("K", "3"))
n = String.to_integer(System.get_env("N", "100000"))
for x <- phs, do: :pong = Node.ping(x)

Stream.repeatedly(fn -> Process.sleep(50); length(GenServer.call({:my_hub, hd(phs)}, {:nodes, []})) end)
|> Enum.find(&(&1 == 2))

# CPU ms (user + system) of an OS process so far
cpu = fn pid ->
  f = File.read!("/proc/#{pid}/stat") |> String.split(") ") |> List.last() |> String.split(" ")
  (String.to_integer(Enum.at(f, 11)) + String.to_integer(Enum.at(f, 12))) * 10
end

count = fn x -> GenServer.call({:my_hub, x}, :registry_count, 60_000) end
local = fn x -> GenServer.call({:my_hub, x}, :local_count, 60_000) end
specs = for i <- 1..n, do: %{id: "j#{i}", start: {:counter, :start_link, [0]}}
{:ok, %{status: :ok}} = GenServer.call({:my_hub, hd(phs)}, {:start_children, specs, [awaitable: true]}, :infinity)
all = fn f -> if Enum.all?(phs, &(count.(&1) == n)), do: :ok, else: (Process.sleep(2); f.(f)) end
all.(all)
Process.sleep(500)
suffix = p1 |> String.split("_", parts: 2) |> List.last()

for i <- 1..k//1 do
  p4 = String.to_atom("j#{i}_" <> suffix)
  c0 = Enum.map(os, cpu) |> Enum.sum()
  t0 = System.monotonic_time(:millisecond)
  port = Port.open({:spawn_executable, phnode},
                   [args: ["--name", Atom.to_string(p4), "--cookie", cookie, "--log-level", "warning", "--join", p1]])
  {:os_pid, os4} = Port.info(port, :os_pid)
  File.write!(Path.join(piddir, "j#{i}.pid"), "#{os4}\n")
  joined = fn f ->
    ok =
      try do
        l4 = local.(p4)
        l4 > 0 and l4 + Enum.sum(Enum.map(phs, local)) == n and count.(p4) == n and
          Enum.all?(phs, &(count.(&1) == n))
      catch
        :exit, _ -> false
      end
    if ok, do: :ok, else: (Process.sleep(5); f.(f))
  end
  joined.(joined)
  ms = System.monotonic_time(:millisecond) - t0
  join_cpu = Enum.sum(Enum.map(os, cpu)) - c0 + cpu.(os4)
  load = File.read!("/proc/loadavg") |> String.split() |> hd()
  IO.puts(~s({"scenario": "join", "round": #{i}, "children": #{n}, "until_agreed_ms": #{ms}, "cpu_ms_4_nodes": #{join_cpu}, "moved": #{local.(p4)}, "load": #{load}}))
  System.cmd("kill", ["-9", "#{os4}"])
  back = fn f ->
    if Enum.sum(Enum.map(phs, local)) == n and Enum.all?(phs, &(count.(&1) == n)),
      do: :ok, else: (Process.sleep(5); f.(f))
  end
  back.(back)
  Process.sleep(1500)
end
