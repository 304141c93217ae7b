#!/usr/bin/env bash
# Call rate over TLS distribution: phnode's echo worker against a BEAM echo
# gen_server on a node started with -proto_dist inet_tls, both called by
# the same TLS client node in the same run. The certificates are made here,
# in a temporary directory, with the openssl command. Prints JSON lines
# (and appends them to $OUT when it is set).
#
#   BUILD=build ROUNDS=5 bench/tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
command -v openssl >/dev/null || { echo "tls.sh: no openssl command; skipped" >&2; exit 0; }
source bench/lib.sh
bench_init benchtls

cert() { # name: a certificate for 127.0.0.1 signed by the test CA
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$TMP/$1.key" \
    -out "$TMP/$1.csr" -subj /CN=127.0.0.1 >/dev/null 2>&1
  printf 'subjectAltName=IP:127.0.0.1,DNS:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$TMP/$1.ext"
  openssl x509 -req -in "$TMP/$1.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial \
    -out "$TMP/$1.pem" -days 2 -extfile "$TMP/$1.ext" >/dev/null 2>&1
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$TMP/ca.key" \
  -out "$TMP/ca.pem" -days 2 -subj /CN=bench-ca >/dev/null 2>&1
cert ph
cert beam
cat >"$TMP/dist.conf" <<CONF
[{server, [{certfile, "$TMP/beam.pem"}, {keyfile, "$TMP/beam.key"}, {cacertfile, "$TMP/ca.pem"},
           {verify, verify_peer}, {fail_if_no_peer_cert, true}]},
 {client, [{certfile, "$TMP/beam.pem"}, {keyfile, "$TMP/beam.key"}, {cacertfile, "$TMP/ca.pem"},
           {verify, verify_peer}]}].
CONF
erlc -o "$TMP" bench/beam/ph_bench_server.erl

PH="phtls_$SUFFIX@127.0.0.1"
BS="beamtls_$SUFFIX@127.0.0.1"
bench_phnode "$PH" phnode.log \
  --tls-certfile "$TMP/ph.pem" --tls-keyfile "$TMP/ph.key" --tls-cacertfile "$TMP/ca.pem"
erl -name "$BS" -setcookie "$COOKIE" -noshell -pa "$TMP" -proto_dist inet_tls \
  -ssl_dist_optfile "$TMP/dist.conf" -eval 'ok = ph_bench_server:start()' >"$TMP/beam.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do
  epmd -names 2>/dev/null | grep -q "beamtls_$SUFFIX" && epmd -names | grep -q "phtls_$SUFFIX" && break
  sleep 0.2
done
echo "== calls over TLS distribution: phnode vs a BEAM gen_server, $ROUNDS rounds"
elixir --erl "-proto_dist inet_tls -ssl_dist_optfile $TMP/dist.conf" \
  --name "benchtlsclient_$SUFFIX@127.0.0.1" --cookie "$COOKIE" \
  bench/tls_client.exs "$PH" "$BS" "$ROUNDS" | tee -a "${OUT:-/dev/null}"
