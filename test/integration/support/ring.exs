# PhTest.Ring - an Elixir model of ProcessHub's ConsistentHashing ring (the
# Erlang hash_ring 0.4.2 library with hash_ring:make/1 defaults), written
# independently of phnode's C version so that tests can compute where every
# child must run. PhTest.JSON - the little JSON reader the ring vectors need.
# Loaded with Code.require_file; only OTP and Elixir's stdlib.
#
# The ring (docs: /work/shared/docs/processhub-behaviour.md section 7.1):
#   hash(T)   = the last 4 bytes, big-endian, of md5(term_to_binary(T))
#   vnodes    = hash({seq, node_atom}) for seq 0..255, for every node,
#               sorted by Erlang term order of {hash, seq, node}
#   key hash  = hash(child_id) (a binary or an atom)
#   owners    = from the first vnode with hash >= key hash (wrapping to the
#               first vnode past the end), collect distinct nodes until
#               min(replication_factor, node count) are found; walk order.
# term_to_binary is that of OTP 25 (ProcessHub on OTP <= 25): atoms are
# ATOM_EXT (tag 100, 2-byte length, Latin-1). The bytes are built here by
# hand, so the model does not depend on the OTP release running the tests
# (OTP 26 changed the default atom encoding).
defmodule PhTest.Ring do
  @vnodes 256

  defstruct nodes: [], points: {}

  @doc "A ring of the given node atoms."
  def new(nodes) when is_list(nodes) do
    nodes = Enum.uniq(nodes)

    points =
      for node <- nodes, seq <- 0..(@vnodes - 1) do
        {hash({seq, node}), seq, node}
      end
      |> Enum.sort()
      |> List.to_tuple()

    %__MODULE__{nodes: nodes, points: points}
  end

  @doc "The node that owns key (replication factor 1); nil on an empty ring."
  def owner(%__MODULE__{} = ring, key) do
    case key_nodes(ring, key, 1) do
      [node] -> node
      [] -> nil
    end
  end

  @doc "The first min(rf, node count) distinct nodes of the walk from key's hash."
  def key_nodes(%__MODULE__{nodes: nodes, points: points}, key, rf) do
    n = tuple_size(points)
    want = min(rf, length(nodes))

    if n == 0 or want <= 0 do
      []
    else
      start = lower_bound(points, hash(key), 0, n)
      walk(points, n, start, 0, want, [])
    end
  end

  defp walk(_points, n, _start, k, want, acc) when length(acc) == want or k == n,
    do: Enum.reverse(acc)

  defp walk(points, n, start, k, want, acc) do
    {_, _, node} = elem(points, rem(start + k, n))
    acc = if node in acc, do: acc, else: [node | acc]
    walk(points, n, start, k + 1, want, acc)
  end

  # the first index in [lo, hi) whose hash is >= h (hi if none)
  defp lower_bound(_points, _h, lo, hi) when lo >= hi, do: lo

  defp lower_bound(points, h, lo, hi) do
    mid = div(lo + hi, 2)

    if elem(elem(points, mid), 0) < h,
      do: lower_bound(points, h, mid + 1, hi),
      else: lower_bound(points, h, lo, mid)
  end

  @doc "The 32-bit hash of a term: the last 4 bytes of md5(term_to_binary(term))."
  def hash(term) do
    <<_::binary-size(12), h::unsigned-big-32>> = :erlang.md5(encode(term))
    h
  end

  @doc "term_to_binary(term) as OTP 25 does it, for the terms the ring hashes."
  def encode(term), do: <<131, enc(term)::binary>>

  defp enc(b) when is_binary(b), do: <<109, byte_size(b)::unsigned-big-32, b::binary>>
  defp enc(i) when is_integer(i) and i in 0..255, do: <<97, i>>

  defp enc(a) when is_atom(a) do
    text = :unicode.characters_to_binary(Atom.to_string(a), :utf8, :latin1)

    unless is_binary(text) and byte_size(text) <= 255,
      do: raise(ArgumentError, "atom not encodable as ATOM_EXT here: #{inspect(a)}")

    <<100, byte_size(text)::unsigned-big-16, text::binary>>
  end

  defp enc({x, y}), do: <<104, 2, enc(x)::binary, enc(y)::binary>>
  defp enc(t), do: raise(ArgumentError, "the ring does not hash #{inspect(t)}")

  @doc """
  Checks the model against a ring_vectors.json file (decoded with
  PhTest.JSON). Returns {checked, mismatches}: every placement's key hash
  and node list is compared.
  """
  def check_vectors(path) do
    %{"vnodes_per_node" => @vnodes, "rings" => rings} = PhTest.JSON.decode!(File.read!(path))

    results =
      for %{"nodes" => names, "placements" => placements} <- rings,
          ring = new(Enum.map(names, &String.to_atom/1)),
          p <- placements do
        key =
          case p["key_type"] do
            "binary" -> p["key"]
            "atom" -> String.to_atom(p["key"])
          end

        got = {hash(key), Enum.map(key_nodes(ring, key, p["rf"]), &Atom.to_string/1)}
        want = {p["key_hash"], p["nodes"]}
        if got == want, do: :ok, else: {names, p, got}
      end

    {length(results), Enum.reject(results, &(&1 == :ok))}
  end
end

defmodule PhTest.JSON do
  @moduledoc """
  A small JSON decoder: objects (maps with string keys), arrays, strings
  (with the standard escapes; \\u escapes outside the BMP as surrogate
  pairs), integers, floats, true, false, null. Raises on anything else.
  """

  def decode!(text) when is_binary(text) do
    {value, rest} = value(skip(text))

    case skip(rest) do
      "" ->
        value

      junk ->
        raise ArgumentError, "JSON: trailing data #{snippet(junk)}"
    end
  end

  defp skip(<<c, rest::binary>>) when c in ~c" \t\r\n", do: skip(rest)
  defp skip(text), do: text

  defp value("{" <> rest), do: object(skip(rest), %{})
  defp value("[" <> rest), do: array(skip(rest), [])
  defp value("\"" <> rest), do: string(rest, [])
  defp value("true" <> rest), do: {true, rest}
  defp value("false" <> rest), do: {false, rest}
  defp value("null" <> rest), do: {nil, rest}
  defp value(<<c, _::binary>> = text) when c == ?- or c in ?0..?9, do: number(text)
  defp value(text), do: raise(ArgumentError, "JSON: unexpected #{snippet(text)}")

  defp object("}" <> rest, acc) when acc == %{}, do: {acc, rest}

  defp object("\"" <> rest, acc) do
    {key, rest} = string(rest, [])
    ":" <> rest = skip(rest)
    {v, rest} = value(skip(rest))
    acc = Map.put(acc, key, v)

    case skip(rest) do
      "," <> rest -> object(skip(rest), acc)
      "}" <> rest -> {acc, rest}
    end
  end

  defp array("]" <> rest, []), do: {[], rest}

  defp array(text, acc) do
    {v, rest} = value(text)

    case skip(rest) do
      "," <> rest -> array(skip(rest), [v | acc])
      "]" <> rest -> {Enum.reverse([v | acc]), rest}
    end
  end

  defp string("\"" <> rest, acc), do: {IO.iodata_to_binary(Enum.reverse(acc)), rest}

  defp string("\\u" <> <<hi::binary-size(4), "\\u", lo::binary-size(4), rest::binary>>, acc)
       when binary_part(hi, 0, 1) in ["d", "D"] and
              binary_part(hi, 1, 1) in ["8", "9", "a", "b", "A", "B"] do
    cp =
      0x10000 + (String.to_integer(hi, 16) - 0xD800) * 0x400 +
        (String.to_integer(lo, 16) - 0xDC00)

    string(rest, [<<cp::utf8>> | acc])
  end

  defp string("\\u" <> <<hex::binary-size(4), rest::binary>>, acc),
    do: string(rest, [<<String.to_integer(hex, 16)::utf8>> | acc])

  defp string(<<?\\, c, rest::binary>>, acc) do
    ch =
      case c do
        ?" -> "\""
        ?\\ -> "\\"
        ?/ -> "/"
        ?b -> "\b"
        ?f -> "\f"
        ?n -> "\n"
        ?r -> "\r"
        ?t -> "\t"
      end

    string(rest, [ch | acc])
  end

  defp string(<<c, rest::binary>>, acc), do: string(rest, [c | acc])

  defp number(text) do
    {num, rest} = take_number(text, [])

    value =
      if String.contains?(num, [".", "e", "E"]),
        do: String.to_float(normalize_float(num)),
        else: String.to_integer(num)

    {value, rest}
  end

  defp take_number(<<c, rest::binary>>, acc) when c in ?0..?9 or c in ~c"+-.eE",
    do: take_number(rest, [c | acc])

  defp take_number(rest, acc), do: {acc |> Enum.reverse() |> List.to_string(), rest}

  defp snippet(text), do: inspect(binary_part(text, 0, min(20, byte_size(text))))

  # Elixir's String.to_float wants digits on both sides of the point
  defp normalize_float(num) do
    if String.contains?(num, "."),
      do: num,
      else: String.replace(num, ~r/[eE]/, ".0e", global: false)
  end
end
