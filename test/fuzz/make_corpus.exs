# Writes the seed corpus of the fuzz harnesses (test/fuzz/corpus/TARGET/):
# real encodings made by this BEAM, a few hand-made odd ones. Run it again
# after changing it; the files are committed.
#   elixir test/fuzz/make_corpus.exs
import Bitwise
root = Path.join(__DIR__, "corpus")

write = fn target, name, bytes ->
  dir = Path.join(root, target)
  File.mkdir_p!(dir)
  File.write!(Path.join(dir, name), bytes)
end

pid = self()
ref = make_ref()
deep = Enum.reduce(1..300, [], fn _, a -> [a] end)

terms = [
  atom: :hello,
  utf8_atom: :"mód",
  int: 42,
  neg: -7_000_000,
  big: 2 ** 200,
  float: 3.25,
  bin: "binary",
  bits: <<1::3>>,
  list: [1, :a, "b", 2.0],
  string: ~c"abc",
  improper: [1, 2 | :tail],
  tuple: {:ok, {1, 2}, []},
  map: %{"b" => [2], {:c} => %{}, a: 1},
  pid: pid,
  ref: ref,
  fun: fn x -> x + 1 end,
  export: &Enum.map/2,
  deep: deep,
  spec: %{id: "c1", start: {:echo, :start_link, [[]]}, restart: :permanent, shutdown: 5000},
  specs: [%{id: "c1", start: {:counter, :start_link, [[1]]}}, %{id: :c2, start: {:kv, :start_link, [[]]}}],
  opts: [awaitable: true, timeout: 5000, metadata: %{tag: "t"}, child_mapping: %{"c1" => [node()]}],
  gen_call: {:"$gen_call", {pid, [:alias | ref]}, {:start_children, [], []}}
]

for {name, t} <- terms, do: write.("term", "#{name}", :erlang.term_to_binary(t))
# ATOM_EXT (Latin-1), as older nodes send atoms
write.("term", "latin1_atom", <<131, 100, 0, 6, "normal">>)

ext = fn t -> <<131, rest::binary>> = :erlang.term_to_binary(t); rest end
v = fn t -> :erlang.term_to_binary(t) end
frame = fn body -> <<byte_size(body) + 1::32, ?p, body::binary>> end

frames = [
  send: frame.(v.({2, :"", pid}) <> v.({:hello, [1, 2]})),
  reg_send: frame.(v.({6, pid, :"", :phnode}) <> v.({:"$gen_call", {pid, ref}, :modules})),
  link: frame.(v.({1, pid, pid})),
  exit: frame.(v.({3, pid, pid, :normal})),
  exit2_latin1: frame.(<<131, 104, 4, 97, 8>> <> ext.(pid) <> ext.(pid) <> <<100, 0, 4, "kill">>),
  monitor: frame.(v.({19, pid, pid, ref})),
  demonitor: frame.(v.({20, pid, :some_name, ref})),
  monitor_exit: frame.(v.({21, pid, pid, ref, {:shutdown, :x}})),
  unlink_id: frame.(v.({35, 17, pid, pid})),
  payload_exit: frame.(v.({24, pid, pid}) <> v.(:boom)),
  alias_send: frame.(v.({33, pid, ref}) <> v.({ref, :reply})),
  send_tt: frame.(v.({12, :"", pid, :token}) <> v.(:msg)),
  ticks_and_two: <<0::32>> <> frame.(v.({1, pid, pid})) <> <<0::32>> <> frame.(v.({4, pid, pid}))
]

for {name, b} <- frames, do: write.("frames", "#{name}", b)

name = "peer@127.0.0.1"
flags = 0x407074FBC
p2 = fn body -> <<byte_size(body)::16, body::binary>> end
p4 = fn body -> <<byte_size(body)::32, body::binary>> end
digest = :crypto.hash(:md5, "cookie12345")

hs = [
  name: <<?N, flags::64, 1234::32, byte_size(name)::16, name::binary>>,
  old_name: <<?n, 5::16, 0x7FFFD::32, name::binary>>,
  status: "sok",
  status_simul: "sok_simultaneous",
  challenge: <<?N, flags::64, 99::32, 1234::32, byte_size(name)::16, name::binary>>,
  complement: <<?c, 4::32, 1234::32>>,
  reply: <<?r, 77::32, digest::binary>>,
  ack: <<?a, digest::binary>>
]

for {n, body} <- hs do
  write.("handshake", "#{n}_tcp", p2.(body))
  write.("handshake", "#{n}_tls", p4.(body))
end

write.("handshake", "whole_tcp", Enum.map_join(hs, fn {_, b} -> p2.(b) end))

hub = [
  hello: {:"$ph_hub", :hello, pid, [node()]},
  welcome: {:"$ph_hub", :welcome, pid, []},
  registered: {:"$ph_hub", :registered, node(), [{"c1", %{id: "c1", start: {:echo, :start_link, [[]]}}, pid, %{}, 123_456 <<< 16}]},
  unregistered: {:"$ph_hub", :unregistered, node(), ["c1", :c2]},
  stop: {:"$ph_hub", :stop, node(), ["c1"], 123_456 <<< 16},
  stop_late: {:"$ph_hub", :stop_late, node(), [{"c1", 123_456 <<< 16}, {:c2, 1}]},
  repair: {:"$ph_hub", :repair, node(), []},
  announce: {:"$ph_hub", :announce},
  specs: Keyword.fetch!(terms, :specs),
  spec: Keyword.fetch!(terms, :spec),
  opts: Keyword.fetch!(terms, :opts),
  improper_specs: [Keyword.fetch!(terms, :spec) | :bad]
]

for {n, t} <- hub, do: write.("hub", "#{n}", v.(t))

configs = [
  minimal: ~s({}),
  node: ~s({"net_ticktime": 60, "schedulers": 2, "port": 0, "max_processes": 1048576, "busy_poll_us": 100, "log_level": "info", "log_format": "text", "max_frame_bytes": 1048576, "handshake_timeout_ms": 7000, "max_pending_handshakes": 10, "join": ["a@127.0.0.1"]}),
  tls: ~s({"tls": {"certfile": "/nonexistent.pem", "keyfile": "k.pem", "cacertfile": "ca.pem", "verify": "verify_peer", "fail_if_no_peer_cert": true, "verify_server_name": false}}),
  hub: ~s({"hub_id": "h", "child_specs": [{"id": "c1", "start": {"module": "counter", "args": [1]}, "restart": "transient", "shutdown": 100}], "hooks": {"registry_pid_insert_hook": [{"id": "h1", "node": "beam@h", "m": "mód", "f": "fün", "a": ["_", ":x", 1], "p": 2}]}}),
  strategies: ~s({"distribution_strategy": {"type": "centralized_load_balancer", "max_history_size": 30, "weight_decay_factor": 0.9, "push_interval": 10000}, "redundancy_strategy": {"type": "replication", "replication_factor": 2, "replication_model": "active_passive", "redundancy_signal": "all"}, "synchronization_strategy": {"type": "gossip", "sync_interval": 15000, "recipients": 3}}),
  bad: ~s({"net_ticktime": "x", "tls": 3})
]

for {n, c} <- configs, do: write.("config", "#{n}.json", c)
IO.puts("corpus written to #{root}")
