# RawPeer - the distribution protocol spoken by hand from a BEAM node, for
# tests that must send what a well-behaved node never sends: atoms encoded
# as ATOM_EXT (Latin-1), frame headers that announce more than follows,
# half-finished handshakes, wrong digests, garbage. Only OTP (gen_tcp,
# :erl_epmd, :crypto) and Elixir's standard library.
#
#   {:ok, sock} = RawPeer.open(node)              # TCP to node's port, packet 2
#   {:ok, peer} = RawPeer.connect(node, cookie)   # open + handshake + pump
#   RawPeer.send_frame(peer, control_bytes, msg_bytes \\ "")
#
# Step by step: name_status/2 (open, our name, the status the node answers),
# then finish_handshake/3 (challenge, reply, ack) and pump/3.
#
# A connected peer is a pump process: it answers ticks, forwards every other
# frame to its owner as {:raw_frame, peer, bytes} (or, decoded, as {:frame,
# peer, control, message}), and {:raw_closed, peer} when the node closes the
# connection.
defmodule RawPeer do
  import Bitwise

  # What a hidden Erlang node advertises, minus the atom cache and fragments
  # (which a C node does not negotiate either).
  @flags 0x4 ||| 0x8 ||| 0x10 ||| 0x20 ||| 0x80 ||| 0x100 ||| 0x200 ||| 0x400 ||| 0x800 |||
           0x1000 ||| 0x4000 ||| 0x10000 ||| 0x20000 ||| 0x40000 ||| 0x80000 ||| 0x100000 |||
           0x400000 ||| 0x1000000 ||| 0x2000000 ||| 1 <<< 34 ||| 1 <<< 35

  def flags, do: @flags

  @doc "The distribution port of node (from epmd)."
  def port_of(node) do
    [alive, host] = node |> Atom.to_string() |> String.split("@")

    case :erl_epmd.port_please(String.to_charlist(alive), String.to_charlist(host)) do
      {:port, port, _version} -> port
      other -> raise "epmd does not know #{node}: #{inspect(other)}"
    end
  end

  @doc "A TCP connection to node's distribution port, {:packet, 2}, passive."
  def open(node, port \\ nil) do
    :gen_tcp.connect({127, 0, 0, 1}, port || port_of(node), [
      :binary,
      packet: 2,
      active: false,
      nodelay: true
    ])
  end

  @doc "The send_name packet (version 6, 'N') for name."
  def name_packet(name, flags \\ @flags) do
    name = to_string(name)
    <<?N, flags::64, 1234::32, byte_size(name)::16, name::binary>>
  end

  @doc """
  The initiator's side of the handshake on sock (after open/1). Returns
  {:ok, sock} switched to {:packet, 4}, or {:error, reason}.
  """
  def handshake(sock, name, cookie, timeout \\ 5000) do
    with :ok <- :gen_tcp.send(sock, name_packet(name)),
         {:ok, "s" <> status} <- :gen_tcp.recv(sock, 0, timeout),
         true <- status in ["ok", "ok_simultaneous"] || {:error, {:status, status}} do
      finish_handshake(sock, cookie, timeout)
    else
      {:ok, other} -> {:error, {:unexpected, other}}
      {:error, _} = e -> e
    end
  end

  @doc """
  A raw connection to node that has sent name: {sock, what the node
  answered} ({:ok, "sok"}, {:ok, "salive"}, {:error, :closed}...).
  """
  def name_status(node, name, timeout \\ 5000) do
    {:ok, sock} = open(node)
    :ok = :gen_tcp.send(sock, name_packet(name))
    {sock, :gen_tcp.recv(sock, 0, timeout)}
  end

  @doc """
  The initiator's side after the node's status: its challenge, our reply,
  its ack checked. {:ok, sock} switched to {:packet, 4}, or {:error, reason}.
  """
  def finish_handshake(sock, cookie, timeout \\ 5000) do
    with {:ok, <<?N, _flags::64, challenge::32, _creation::32, nlen::16, _::binary-size(nlen)>>} <-
           :gen_tcp.recv(sock, 0, timeout),
         mine = :rand.uniform(0xFFFFFFFF),
         :ok <- :gen_tcp.send(sock, <<?r, mine::32, digest(challenge, cookie)::binary>>),
         {:ok, <<?a, ack::binary-size(16)>>} <- :gen_tcp.recv(sock, 0, timeout),
         true <- ack == digest(mine, cookie) || {:error, :bad_ack_digest},
         :ok <- :inet.setopts(sock, packet: 4) do
      {:ok, sock}
    else
      {:ok, other} -> {:error, {:unexpected, other}}
      {:error, _} = e -> e
    end
  end

  def digest(challenge, cookie),
    do: :crypto.hash(:md5, [to_string(cookie), Integer.to_string(challenge)])

  @doc "open + handshake + a pump owned by the caller. {:ok, peer} | {:error, reason}."
  def connect(node, cookie, name \\ nil) do
    name = name || :"raw_#{System.unique_integer([:positive])}@127.0.0.1"

    with {:ok, sock} <- open(node),
         {:ok, sock} <- handshake(sock, name, cookie) do
      {:ok, pump(sock, name)}
    end
  end

  @doc """
  A pump owned by the caller for a connected sock ({:packet, 4}) of the
  peer called name: %{pump: pid, name: name, sock: sock}. decode: true
  sends frames as {:frame, pump, control, message} (decode_frame/1).
  """
  def pump(sock, name, decode \\ false) do
    owner = self()
    pump = spawn(fn -> pump_init(owner, decode) end)
    :ok = :gen_tcp.controlling_process(sock, pump)
    send(pump, {:socket, sock})
    %{pump: pump, name: name, sock: sock}
  end

  defp pump_init(owner, decode) do
    receive do
      {:socket, sock} ->
        :ok = :inet.setopts(sock, active: true)
        pump_loop(owner, sock, decode)
    end
  end

  defp pump_loop(owner, sock, decode) do
    receive do
      {:tcp, ^sock, ""} ->
        :gen_tcp.send(sock, "")
        pump_loop(owner, sock, decode)

      {:tcp, ^sock, bytes} ->
        if decode do
          {ctl, msg} = decode_frame(bytes)
          send(owner, {:frame, self(), ctl, msg})
        else
          send(owner, {:raw_frame, self(), bytes})
        end

        pump_loop(owner, sock, decode)

      {:tcp_closed, ^sock} ->
        send(owner, {:raw_closed, self()})

      {:send, from, iodata} ->
        send(from, {:sent, self(), :gen_tcp.send(sock, iodata)})
        pump_loop(owner, sock, decode)

      {:send_raw, from, iodata} ->
        :ok = :inet.setopts(sock, packet: :raw)
        result = :gen_tcp.send(sock, iodata)
        :ok = :inet.setopts(sock, packet: 4)
        send(from, {:sent, self(), result})
        pump_loop(owner, sock, decode)

      :close ->
        :gen_tcp.close(sock)
    end
  end

  @doc "The next data frame on a connected passive sock (ticks answered): {control, message}."
  def recv_frame(sock, timeout \\ 5000) do
    case :gen_tcp.recv(sock, 0, timeout) do
      {:ok, ""} ->
        :gen_tcp.send(sock, "")
        recv_frame(sock, timeout)

      {:ok, bytes} ->
        decode_frame(bytes)

      other ->
        other
    end
  end

  @doc "Sends one data frame: 'p', the control bytes, the message bytes."
  def send_frame(%{pump: pump}, control, msg \\ "") do
    send(pump, {:send, self(), [?p, control, msg]})

    receive do
      {:sent, ^pump, result} -> result
    after
      5000 -> {:error, :timeout}
    end
  end

  @doc "Sends bytes as they are, without the 4-byte length gen_tcp would add."
  def send_raw(%{pump: pump}, iodata) do
    send(pump, {:send_raw, self(), iodata})

    receive do
      {:sent, ^pump, result} -> result
    after
      5000 -> {:error, :timeout}
    end
  end

  def close(%{pump: pump}), do: send(pump, :close)

  # --- the accepting side ------------------------------------------------------

  @doc """
  A fake node that phnode dials: a listening socket registered in epmd as
  alive (a hidden node; the epmd registration lasts while the returned
  :epmd socket is open). {:ok, %{listen: l, epmd: e, port: p}}.
  """
  def listen_as(alive) do
    {:ok, l} = :gen_tcp.listen(0, [:binary, packet: 2, active: false, reuseaddr: true, ip: {127, 0, 0, 1}])
    {:ok, port} = :inet.port(l)
    eport = String.to_integer(System.get_env("ERL_EPMD_PORT") || "4369")
    {:ok, e} = :gen_tcp.connect({127, 0, 0, 1}, eport, [:binary, packet: 2, active: false])
    # ALIVE2_REQ: port, hidden node (72), TCP (0), versions 6..5, the name, no extra
    :ok = :gen_tcp.send(e, <<120, port::16, 72, 0, 6::16, 5::16, byte_size(alive)::16, alive::binary, 0::16>>)
    :ok = :inet.setopts(e, packet: :raw)

    case :gen_tcp.recv(e, 2, 5000) do
      {:ok, <<r, 0>>} when r in [118, 121] -> {:ok, %{listen: l, epmd: e, port: port}}
      other -> {:error, {:epmd, other}}
    end
  end

  @doc """
  Accepts one connection on a listen_as/1 socket and runs the accepting
  side of the handshake as name with cookie; after its challenge ack, in
  the same write, it sends `after_ack` (raw bytes: distribution frames).
  {:ok, sock} switched to {:packet, 4}, or {:error, reason}.
  """
  def accept_handshake(listen, name, cookie, after_ack, timeout \\ 10_000) do
    with {:ok, sock, _peer} <- accept_dial(listen, timeout) do
      accept_rest(sock, name, cookie, after_ack, "ok", timeout)
    end
  end

  @doc "Accepts one connection on a listen_as/1 socket and reads its name: {:ok, sock, peer_node}."
  def accept_dial(%{listen: l}, timeout \\ 10_000) do
    with {:ok, sock} <- :gen_tcp.accept(l, timeout),
         {:ok, <<?N, _flags::64, _creation::32, nlen::16, peer::binary-size(nlen)>>} <-
           :gen_tcp.recv(sock, 0, timeout) do
      {:ok, sock, String.to_atom(peer)}
    else
      {:ok, other} -> {:error, {:unexpected, other}}
      {:error, _} = e -> e
    end
  end

  @doc """
  The accepting side after the name (accept_dial/2): status, challenge,
  the reply checked, the ack followed by `after_ack` in the same write.
  {:ok, sock} switched to {:packet, 4}, or {:error, reason}.
  """
  def accept_rest(sock, name, cookie, after_ack, status \\ "ok", timeout \\ 10_000) do
    name = to_string(name)
    mine = :rand.uniform(0xFFFFFFFF)

    with :ok <- :gen_tcp.send(sock, "s" <> status),
         :ok <- :gen_tcp.send(sock, <<?N, @flags::64, mine::32, 4321::32, byte_size(name)::16, name::binary>>),
         {:ok, <<?r, theirs::32, got::binary-size(16)>>} <- :gen_tcp.recv(sock, 0, timeout),
         true <- got == digest(mine, cookie) || {:error, :bad_digest},
         :ok <- :inet.setopts(sock, packet: :raw),
         :ok <- :gen_tcp.send(sock, [<<17::16, ?a>>, digest(theirs, cookie), after_ack]),
         :ok <- :inet.setopts(sock, packet: 4) do
      {:ok, sock}
    else
      {:ok, other} -> {:error, {:unexpected, other}}
      {:error, _} = e -> e
      false -> {:error, :bad_digest}
    end
  end

  @doc "One data frame as raw bytes: length, 'p', control, message (terms with their version byte)."
  def frame(control, msg) do
    body = [?p, :erlang.term_to_binary(control), :erlang.term_to_binary(msg)]
    [<<IO.iodata_length(body)::32>>, body]
  end

  @doc "A data frame's body (after the 4-byte length) as {control, message}; nil for anything else."
  def decode_frame(<<?p, rest::binary>>) do
    {control, used} = :erlang.binary_to_term(rest, [:used])
    <<_::binary-size(used), msg::binary>> = rest
    {control, if(msg == "", do: nil, else: :erlang.binary_to_term(msg))}
  end

  def decode_frame(_), do: nil

  # --- hand-made external term format ------------------------------------------

  @doc "An atom as ATOM_EXT (tag 100, Latin-1), the encoding older nodes send."
  def latin1_atom(text) when is_binary(text), do: <<100, byte_size(text)::16, text::binary>>

  @doc "A pid of this raw peer (NEW_PID_EXT)."
  def pid_ext(%{name: name}, id \\ 1) do
    n = Atom.to_string(name)
    <<88, 119, byte_size(n), n::binary, id::32, 0::32, 1234::32>>
  end

  @doc "That pid as a term: a pid of node (for control tuples and call tags)."
  def pid(node, id), do: :erlang.binary_to_term(<<131, pid_ext(%{name: node}, id)::binary>>)

  @doc "term_to_binary without the version byte."
  def ext(term) do
    <<131, rest::binary>> = :erlang.term_to_binary(term)
    rest
  end
end
