#!/usr/bin/env bash
# The join of bench/cluster.exs on its own, repeated: 3 phnodes, 100,000
# counter children started once, then K (3) times a 4th phnode launched with
# --join until it runs its share and every registry counts all children,
# then killed with kill -9 (the survivors settle before the next join).
# Prints one line a join: wall ms, CPU ms of the 4 nodes (/proc), children
# moved, load average. The node names are the same on every run (SUFFIX,
# default "hj"), so two builds move the same children: compare builds by
# alternating runs (BUILD=dir-with-phnode).
set -euo pipefail
cd "$(dirname "$0")/.."
SUFFIX=${SUFFIX:-hj}
source bench/lib.sh
bench_init hubjoin
S=$SUFFIX
bench_cluster "a_$S@127.0.0.1" "b_$S@127.0.0.1" "c_$S@127.0.0.1"
elixir --name "hj_x_$S@127.0.0.1" --cookie "$COOKIE" bench/hub_join.exs \
  "a_$S@127.0.0.1" "b_$S@127.0.0.1" "c_$S@127.0.0.1" "$CLUSTER_OSPIDS" \
  "$PHNODE" "$COOKIE" "$TMP/pids"
