# TLS distribution (issue 14): phnode against BEAM nodes started with
# `-proto_dist inet_tls -ssl_dist_optfile FILE`, in both directions, and
# against another phnode; plaintext, unverifiable and expired certificates
# refused. The certificates are made at run time with the openssl command
# in this run's temporary directory (no key is ever committed). The test
# node itself speaks plain TCP, so the TLS BEAM nodes are separate `elixir`
# processes whose output the tests read. Run by test/integration/run.sh.
Code.require_file("support/ph_test.exs", __DIR__)
PhTest.init()

ExUnit.start(
  formatters: [ExUnit.CLIFormatter, PhTest.Formatter],
  trace: true,
  timeout: 180_000
)

defmodule PhNode.TlsTest do
  use ExUnit.Case, async: false

  @openssl System.find_executable("openssl")

  setup_all do
    if @openssl == nil do
      IO.puts("tls_test: SKIPPED: no openssl command on this host")
      {:ok, skip: true}
    else
      dir = Path.join(PhTest.tmp_dir(), "tls_#{System.unique_integer([:positive])}")
      File.mkdir_p!(dir)
      {:ok, certs: make_certs(dir), dir: dir, skip: false}
    end
  end

  defp openssl!(dir, args) do
    {out, status} = System.cmd(@openssl, args, cd: dir, stderr_to_stdout: true)
    if status != 0, do: raise("openssl #{Enum.join(args, " ")}: #{out}")
    out
  end

  defp ca!(dir, name) do
    openssl!(dir, ~w(req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes
                     -keyout #{name}.key -out #{name}.pem -days 30 -subj /CN=#{name}))
  end

  # a certificate for 127.0.0.1 signed by ca, valid for `days` (-1: expired)
  defp leaf!(dir, name, ca, days, san \\ "IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost") do
    openssl!(dir, ~w(req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes
                     -keyout #{name}.key -out #{name}.csr -subj /CN=127.0.0.1))

    File.write!(
      Path.join(dir, "#{name}.ext"),
      "subjectAltName=#{san}\n" <>
        "extendedKeyUsage=serverAuth,clientAuth\n"
    )

    openssl!(dir, ~w(x509 -req -in #{name}.csr -CA #{ca}.pem -CAkey #{ca}.key -CAcreateserial
                     -out #{name}.pem -days #{days} -extfile #{name}.ext))
  end

  defp make_certs(dir) do
    ca!(dir, "ca")
    ca!(dir, "rogue_ca")
    leaf!(dir, "node", "ca", 30)
    leaf!(dir, "other", "ca", 30)
    leaf!(dir, "rogue", "rogue_ca", 30)
    leaf!(dir, "expired", "ca", -1)
    leaf!(dir, "elsewhere", "ca", 30, "DNS:elsewhere.example")
    p = &Path.join(dir, &1)

    %{
      ca: p.("ca.pem"),
      node: {p.("node.pem"), p.("node.key")},
      other: {p.("other.pem"), p.("other.key")},
      rogue: {p.("rogue.pem"), p.("rogue.key")},
      expired: {p.("expired.pem"), p.("expired.key")},
      elsewhere: {p.("elsewhere.pem"), p.("elsewhere.key")}
    }
  end

  # OTP's ssl_dist_optfile: the same certificate as server and as client
  defp optfile(dir, certs, which) do
    {cert, key} = certs[which]

    opts =
      [certfile: cert, keyfile: key, cacertfile: certs.ca, verify: :verify_peer]
      |> Enum.map(fn {k, v} -> {k, if(is_binary(v), do: String.to_charlist(v), else: v)} end)

    # :nocert: a client that shows no certificate
    client =
      if which == :nocert,
        do: [cacertfile: String.to_charlist(certs.ca), verify: :verify_peer],
        else: opts

    terms = [server: opts ++ [fail_if_no_peer_cert: true], client: client]
    path = Path.join(dir, "dist_#{which}_#{System.unique_integer([:positive])}.conf")
    File.write!(path, :io_lib.format("~p.~n", [terms]))
    path
  end

  defp tls_args(certs, which) do
    {cert, key} = certs[which]
    ["--tls-certfile", cert, "--tls-keyfile", key, "--tls-cacertfile", certs.ca]
  end

  defp start_tls(certs, which \\ :node, extra \\ [])
  defp start_tls(certs, :nocert, extra), do: start_tls(certs, :node, extra)

  defp start_tls(certs, which, extra) do
    n = PhTest.start_node(ticktime: 4, ping: false, args: tls_args(certs, which) ++ extra)
    on_exit(fn -> if PhTest.alive?(n), do: PhTest.kill_node(n) end)
    n
  end

  # until the BEAM node started in the background has registered with epmd
  defp wait_registered(beam) do
    [alive, _] = beam |> Atom.to_string() |> String.split("@")

    assert PhTest.wait_until(
             fn ->
               {:ok, names} = :erl_epmd.names(~c"127.0.0.1")
               Enum.any?(names, fn {nm, _} -> List.to_string(nm) == alive end)
             end,
             20_000
           )
  end

  # A BEAM node with TLS distribution and certificate `which`, idle for ms,
  # and a phnode with certificate `mine` that dials it: {phnode, task, beam}.
  defp dial_tls_server(%{certs: certs, dir: dir}, which, mine, extra \\ [], ms \\ 8000) do
    beam = PhTest.node_atom(PhTest.unique_name("tlssrv"))
    task = Task.async(fn -> beam_tls(dir, certs, which, "Process.sleep(#{ms})", beam) end)
    wait_registered(beam)
    {start_tls(certs, mine, ["--join", Atom.to_string(beam) | extra]), task, beam}
  end

  # Runs Elixir code on a BEAM node with TLS distribution; {output, status}.
  defp beam_tls(dir, certs, which, code, name \\ nil) do
    name = name || PhTest.node_atom(PhTest.unique_name("beamtls"))
    elixir = System.find_executable("elixir")

    PhTest.cmd(
      elixir,
      [
        "--erl",
        "-proto_dist inet_tls -ssl_dist_optfile #{optfile(dir, certs, which)}",
        "--name",
        Atom.to_string(name),
        "--cookie",
        PhTest.cookie(),
        "-e",
        code
      ],
      timeout: 60_000
    )
  end

  test "a BEAM node over TLS calls phnode, phnode configured by its config file", ctx do
    if ctx.skip, do: :ok, else: run_beam_calls_phnode(ctx)
  end

  defp run_beam_calls_phnode(%{certs: certs, dir: dir}) do
    {cert, key} = certs.node
    cfg = Path.join(dir, "ph_tls_#{System.unique_integer([:positive])}.json")

    File.write!(
      cfg,
      Jason_like.encode(%{
        "tls" => %{
          "certfile" => cert,
          "keyfile" => key,
          "cacertfile" => certs.ca,
          "verify" => "verify_peer",
          "fail_if_no_peer_cert" => true
        }
      })
    )

    n = PhTest.start_node(ticktime: 4, ping: false, args: ["--config", cfg])
    on_exit(fn -> if PhTest.alive?(n), do: PhTest.kill_node(n) end)
    assert PhTest.wait_log(n, "distribution=tls", 5000)

    code = """
    ph = :"#{n.node}"
    true = Node.connect(ph)
    {:ok, w} = GenServer.call({:phnode, ph}, {:spawn, :echo, [], []})
    big = :binary.copy("tls", 200_000)
    ^big = GenServer.call(w, big)
    deep = Enum.reduce(1..10_000, [], fn _, a -> [a] end)
    ^deep = GenServer.call(w, deep)
    results = for i <- 1..2000, do: GenServer.call(w, i)
    true = results == Enum.to_list(1..2000)
    IO.puts("RESULT ok " <> inspect(GenServer.call({:phnode, ph}, :modules)))
    """

    {out, status} = beam_tls(dir, certs, :other, code)
    assert status == 0 and out =~ "RESULT ok", out
    assert PhTest.log_since(n.log, 0) =~ ~r/connected to beamtls_\S+ \(incoming\)/
  end

  test "phnode dials a BEAM node over TLS (--join), which then calls it", ctx do
    unless ctx.skip do
      %{certs: certs, dir: dir} = ctx
      beam = PhTest.node_atom(PhTest.unique_name("beamsrv"))

      code = """
      :net_kernel.monitor_nodes(true, [node_type: :all])
      receive do
        {:nodeup, ph, _} ->
          {:ok, w} = GenServer.call({:phnode, ph}, {:spawn, :echo, [], []})
          IO.puts("RESULT " <> inspect(GenServer.call(w, {:hello, ph})))
      after 30_000 -> IO.puts("RESULT no nodeup")
      end
      """

      task = Task.async(fn -> beam_tls(dir, certs, :other, code, beam) end)
      wait_registered(beam)

      n = start_tls(certs, :node, ["--join", Atom.to_string(beam)])
      {out, status} = Task.await(task, 70_000)
      assert status == 0 and out =~ "RESULT {:hello, :\"#{n.node}\"}", out
      assert PhTest.log_since(n.log, 0) =~ "connected to #{beam} (outgoing)"
    end
  end

  test "two phnodes form a hub cluster over TLS", ctx do
    unless ctx.skip do
      %{certs: certs, dir: dir} = ctx
      a = start_tls(certs, :node)
      b = start_tls(certs, :other, ["--join", Atom.to_string(a.node)])

      code = """
      a = :"#{a.node}"
      b = :"#{b.node}"
      ok = Enum.find_value(1..100, fn _ ->
        if GenServer.call({:my_hub, a}, {:nodes, []}) == [b], do: true, else: (Process.sleep(100); nil)
      end)
      IO.puts("RESULT " <> inspect(ok))
      """

      {out, status} = beam_tls(dir, certs, :node, code)
      assert status == 0 and out =~ "RESULT true", out
      assert PhTest.log_since(b.log, 0) =~ "connected to #{a.node} (outgoing)"
    end
  end

  test "plaintext connections are refused with a clear log line", ctx do
    unless ctx.skip do
      n = start_tls(ctx.certs)
      off = PhTest.log_size(n)
      assert Node.ping(n.node) == :pang
      assert PhTest.wait_log(n, "reason=plaintext", 5000, off)

      assert PhTest.log_since(n.log, off) =~
               ~r/plaintext connection refused: this node requires TLS distribution peer=#{Regex.escape(Atom.to_string(node()))} peer_addr=127\.0\.0\.1:\d+/
    end
  end

  test "a certificate from another CA and an expired certificate are refused", ctx do
    unless ctx.skip do
      %{certs: certs, dir: dir} = ctx
      n = start_tls(certs)
      off = PhTest.log_size(n)
      code = "IO.puts(\"RESULT \" <> inspect(Node.ping(:\"#{n.node}\")))"

      {out, _} = beam_tls(dir, certs, :rogue, code)
      assert out =~ "RESULT :pang", out
      assert PhTest.wait_log(n, "certificate verify failed", 5000, off)

      off2 = PhTest.log_size(n)
      {out, _} = beam_tls(dir, certs, :expired, code)
      assert out =~ "RESULT :pang", out
      assert PhTest.wait_log(n, "certificate has expired", 5000, off2)

      # and a good one still gets in
      {out, _} = beam_tls(dir, certs, :other, code)
      assert out =~ "RESULT :pong", out
    end
  end

  test "phnode refuses a server whose certificate does not verify", ctx do
    unless ctx.skip do
      {n, task, _} = dial_tls_server(ctx, :rogue, :node)
      assert PhTest.wait_log(n, "certificate verify failed", 10_000)
      assert PhTest.log_since(n.log, 0) =~ ~r/outgoing handshake failed: TLS handshake failed/
      Task.await(task, 70_000)
    end
  end

  # TLS 1.3: the client's handshake is done before the server has checked
  # the client's certificate; the refusal comes as an alert on the first
  # read, and the log must say so (not just "closed").
  test "a server that refuses phnode's certificate: the log names the TLS alert", ctx do
    unless ctx.skip do
      {n, task, _} = dial_tls_server(ctx, :other, :rogue)
      assert PhTest.wait_log(n, "outgoing handshake failed", 10_000)
      assert PhTest.log_since(n.log, 0) =~ ~r/outgoing handshake failed: TLS handshake failed: .*alert/,
             PhTest.log_tail(n.log, 10)
      Task.await(task, 70_000)
    end
  end

  test "a client without a certificate is refused (fail_if_no_peer_cert)", ctx do
    unless ctx.skip do
      %{certs: certs, dir: dir} = ctx
      n = start_tls(certs)
      off = PhTest.log_size(n)
      code = "IO.puts(\"RESULT \" <> inspect(Node.ping(:\"#{n.node}\")))"
      certs = Map.put(certs, :nocert, certs.other)
      {out, _} = beam_tls(dir, certs, :nocert, code)
      assert out =~ "RESULT :pang", out
      assert PhTest.wait_log(n, "reason=tls", 5000, off)
      assert PhTest.log_since(n.log, off) =~ ~r/TLS handshake failed: .*certificate/
    end
  end

  test "verify_server_name: the dialed node's certificate must name its host", ctx do
    unless ctx.skip do
      for {check, expect} <- [{"true", :refused}, {"false", :connected}] do
        {n, task, beam} =
          dial_tls_server(ctx, :elsewhere, :node, ["--tls-verify-server-name", check], 6000)

        case expect do
          :refused ->
            assert PhTest.wait_log(n, "mismatch", 10_000), PhTest.log_tail(n.log, 10)

          :connected ->
            assert PhTest.wait_log(n, "connected to #{beam} (outgoing)", 10_000),
                   PhTest.log_tail(n.log, 10)
        end

        Task.await(task, 70_000)
        PhTest.kill_node(n)
      end
    end
  end

  test "phnode ctl reaches a TLS node with --tls-* flags, and not without", ctx do
    unless ctx.skip do
      n = start_tls(ctx.certs)
      {cert, key} = ctx.certs.other
      base = ["ctl", "-n", Atom.to_string(n.node), "--cookie", PhTest.cookie()]
      tls = ["--tls-certfile", cert, "--tls-keyfile", key, "--tls-cacertfile", ctx.certs.ca]
      {out, status} = PhTest.cmd(PhTest.phnode(), base ++ tls ++ ["ping"])
      assert status == 0 and out =~ "pong from #{n.node}", out
      {out, status} = PhTest.cmd(PhTest.phnode(), base ++ ["ping"])
      assert status == 3, out
    end
  end

  test "bad TLS settings stop phnode with one clear message", ctx do
    unless ctx.skip do
      name = PhTest.node_atom(PhTest.unique_name("badtls"))

      {out, status} =
        PhTest.cmd(PhTest.phnode(), [
          "--name",
          Atom.to_string(name),
          "--cookie",
          PhTest.cookie(),
          "--tls-certfile",
          "/nonexistent/cert.pem",
          "--tls-cacertfile",
          ctx.certs.ca
        ])

      assert status == 2 and out =~ "tls: /nonexistent/cert.pem", out

      {cert, key} = ctx.certs.node

      {out, status} =
        PhTest.cmd(PhTest.phnode(), [
          "--name",
          Atom.to_string(name),
          "--cookie",
          PhTest.cookie(),
          "--tls-certfile",
          cert,
          "--tls-keyfile",
          key
        ])

      assert status == 2 and out =~ "verify_peer needs cacertfile", out
    end
  end
end

# A JSON encoder for the flat maps of strings and booleans these tests
# write (the standard library has none in this Elixir version).
defmodule Jason_like do
  def encode(m) when is_map(m),
    do: "{" <> Enum.map_join(m, ",", fn {k, v} -> encode(k) <> ":" <> encode(v) end) <> "}"

  def encode(s) when is_binary(s), do: inspect(s)
  def encode(b) when is_boolean(b), do: to_string(b)
end
