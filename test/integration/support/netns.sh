#!/usr/bin/env bash
# netns.sh - network namespaces for the partition tests: each phnode in a
# namespace of its own with its own address and epmd, all on one bridge that
# the test node (in the root namespace) reaches through the bridge's own
# address; links between two namespaces are cut and healed with blackhole
# routes inside those namespaces (a silent network: nothing is answered, the
# nodes notice after net_ticktime). Only what this script created is ever
# touched: namespaces ph<RUN>-<i>, interfaces phb<RUN> and phv<RUN><i>, and
# addresses in 10.213.<S>.0/24, where S is recorded per run.
#
#   netns.sh check                 exit 0 if this host can (root, ip netns)
#   netns.sh up RUN N OWNER_PID    bridge + N namespaces (prints S)
#   netns.sh addr RUN I            the address of namespace I
#   netns.sh cut RUN I J           no traffic between namespaces I and J
#   netns.sh heal RUN I J          traffic again
#   netns.sh heal_all RUN          every cut of the run healed
#   netns.sh down RUN              kills every process in its namespaces, removes all
#   netns.sh sweep                 'down' for every run whose owner process is gone
#
# RUN is 4 hex digits; I, J from 1 to 9. State: /run/phnode-netns/RUN/.
set -uo pipefail
STATE=/run/phnode-netns

die() { echo "netns.sh: $*" >&2; exit 1; }
valid_run() { [[ "$1" =~ ^[0-9a-f]{4}$ ]] || die "bad run id '$1'"; }
valid_i() { [[ "$1" =~ ^[1-9]$ ]] || die "bad namespace index '$1'"; }
subnet() { cat "$STATE/$1/subnet" 2>/dev/null || die "run $1 is not up"; }
ns() { echo "ph$1-$2"; }
addr_of() { echo "10.213.$(subnet "$1").$((10 + $2))"; }

cmd_check() {
    [ "$(id -u)" -eq 0 ] || { echo "not root"; exit 1; }
    command -v ip >/dev/null || { echo "no ip (iproute2)"; exit 1; }
    command -v epmd >/dev/null || { echo "no epmd"; exit 1; }
    local probe="phchk$$"
    ip netns add "$probe" 2>/dev/null || { echo "ip netns add fails (no CAP_SYS_ADMIN?)"; exit 1; }
    ip netns del "$probe"
    exit 0
}

cmd_up() {
    local run=$1 n=$2 owner=$3 s
    valid_run "$run"
    valid_i "$n"
    [ -e "$STATE/$run" ] && die "run $run exists"
    # a /24 no route of this host uses yet
    for s in $(seq $((16#${run:0:2} % 200 + 20)) 254) $(seq 20 254); do
        [ -z "$(ip -4 route show 10.213.$s.0/24 2>/dev/null)" ] &&
            ! grep -qx "$s" "$STATE"/*/subnet 2>/dev/null && break
    done
    mkdir -p "$STATE/$run"
    echo "$owner" >"$STATE/$run/owner"
    echo "$n" >"$STATE/$run/count"
    echo "$s" >"$STATE/$run/subnet"
    local br="phb$run"
    ip link add "$br" type bridge || die "cannot create bridge $br"
    ip addr add "10.213.$s.1/24" dev "$br" || die "cannot address $br"
    ip link set "$br" up || die "cannot bring $br up"
    local i
    for i in $(seq 1 "$n"); do
        local name
        name=$(ns "$run" "$i")
        ip netns add "$name" || die "cannot add namespace $name"
        ip link add "phv$run$i" type veth peer name eth0 netns "$name" || die "veth $i"
        ip link set "phv$run$i" master "$br" up || die "veth $i to bridge"
        ip -n "$name" addr add "10.213.$s.$((10 + i))/24" dev eth0 || die "address $i"
        ip -n "$name" link set lo up || die "lo $i"
        ip -n "$name" link set eth0 up || die "eth0 $i"
        ip netns exec "$name" epmd -daemon || die "epmd in $name"
    done
    echo "$s"
}

cmd_cut() {
    local run=$1 i=$2 j=$3
    valid_run "$run"; valid_i "$i"; valid_i "$j"
    ip -n "$(ns "$run" "$i")" route replace blackhole "$(addr_of "$run" "$j")/32" &&
        ip -n "$(ns "$run" "$j")" route replace blackhole "$(addr_of "$run" "$i")/32"
}

cmd_heal() {
    local run=$1 i=$2 j=$3
    valid_run "$run"; valid_i "$i"; valid_i "$j"
    ip -n "$(ns "$run" "$i")" route del blackhole "$(addr_of "$run" "$j")/32" 2>/dev/null
    ip -n "$(ns "$run" "$j")" route del blackhole "$(addr_of "$run" "$i")/32" 2>/dev/null
    return 0
}

cmd_heal_all() {
    local run=$1 n i r
    valid_run "$run"
    n=$(cat "$STATE/$run/count" 2>/dev/null) || die "run $run is not up"
    for i in $(seq 1 "$n"); do
        ip -n "$(ns "$run" "$i")" route show type blackhole 2>/dev/null | awk '{print $2}' |
            while read -r r; do ip -n "$(ns "$run" "$i")" route del blackhole "$r" 2>/dev/null; done
    done
    return 0
}

cmd_down() {
    local run=$1 n i name pid
    valid_run "$run"
    n=$(cat "$STATE/$run/count" 2>/dev/null || echo 9)
    for i in $(seq 1 "$n"); do
        name=$(ns "$run" "$i")
        ip netns list 2>/dev/null | grep -q "^$name\b" || continue
        for pid in $(ip netns pids "$name" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$name" 2>/dev/null
    done
    ip link del "phb$run" 2>/dev/null
    for i in $(seq 1 "$n"); do ip link del "phv$run$i" 2>/dev/null; done
    rm -rf "${STATE:?}/$run"
    return 0
}

cmd_sweep() {
    local d run owner
    for d in "$STATE"/*; do
        [ -d "$d" ] || continue
        run=$(basename "$d")
        owner=$(cat "$d/owner" 2>/dev/null)
        if [ -z "$owner" ] || ! kill -0 "$owner" 2>/dev/null; then
            echo "netns.sh: removing run $run (owner ${owner:-?} gone)" >&2
            cmd_down "$run"
        fi
    done
    return 0
}

case "${1:-}" in
check) cmd_check ;;
up) [ $# -eq 4 ] || die "usage: up RUN N OWNER_PID"; cmd_up "$2" "$3" "$4" ;;
addr) [ $# -eq 3 ] || die "usage: addr RUN I"; valid_run "$2"; valid_i "$3"; addr_of "$2" "$3" ;;
cut) [ $# -eq 4 ] || die "usage: cut RUN I J"; cmd_cut "$2" "$3" "$4" ;;
heal) [ $# -eq 4 ] || die "usage: heal RUN I J"; cmd_heal "$2" "$3" "$4" ;;
heal_all) [ $# -eq 2 ] || die "usage: heal_all RUN"; cmd_heal_all "$2" ;;
down) [ $# -eq 2 ] || die "usage: down RUN"; cmd_down "$2" ;;
sweep) cmd_sweep ;;
*) die "usage: netns.sh check|up|addr|cut|heal|heal_all|down|sweep ..." ;;
esac
