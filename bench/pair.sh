#!/usr/bin/env bash
# npm run bench:pair: two proxies measured at the same time, on the same core, under the same
# load: CPU per request of each, round by round, and their ratio.
#
#   npm run bench:pair                                  # the node pipe and Portico's tcp listener
#   PAIR="haproxy portico" npm run bench:pair           # any two of the names below
#   PAIR="node-net node-net" npm run bench:pair         # A/A: one program against a copy of itself
#   ROUNDS=9 DUR=6 SCENARIOS="close" npm run bench:pair
#   PAIR="portico-tcp portico-tcp" B_CHECKOUT=/path/to/other/checkout npm run bench:pair
#                                                       # A/B: B runs another (built) checkout's Portico
#
# Why: the peers benchmark (npm run bench) runs its targets one after the other, and on this kind
# of machine a program's requests per CPU-second moves by up to a third between two runs a minute
# apart (the A/A run in docs/benchmarks.md: 0.66-1.20 for the node pipe against its own copy).
# Here both proxies run pinned to the proxy core and each gets its own wrk (the same connections,
# the same scenario) started together from the load core, so whatever the machine does during a
# round it does to both. Each round's figure is the CPU time each process used (every thread's,
# from /proc/PID/task/*/schedstat, in ns) divided by the requests its wrk completed; which wrk
# starts first alternates round by round. The ratio is A's CPU per request over B's: B's requests
# per CPU-second relative to A's, above 1 when B is the cheaper.
#
# Names: node-net (the node pipe), node-undici, haproxy, haproxy-tcp (../shared/bench's peers and
# configuration files), portico (http listener), portico-tcp (tcp listener), as in npm run bench.
# Ports are the peers benchmark's moved by SHIFT (default 2000, so this can run beside it); the
# second of two same names runs on its port + 10. Every process it starts is killed by PID on
# exit; wrk is bounded by timeouts. PORTICO_NODE_FLAGS as in bench/portico-peer.sh; B_CHECKOUT: the
# B side's Portico comes from that checkout (built with npm run build), to compare two builds.
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS_BENCH:-$ROOT/../shared/bench}
C=$PEERS/conf
N=$PEERS/node
RT=/tmp/peers-bench
PAIR=${PAIR:-"node-net portico-tcp"}
ROUNDS=${ROUNDS:-5}
DUR=${DUR:-5}
WARM=${WARM:-1}
CONNS=${CONNS:-32}
SCENARIOS=${SCENARIOS:-"ka close ka16k"}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SHIFT=${SHIFT:-2000}
OUT=${OUT:-/tmp/portico-pair/$(date -u +%Y%m%dT%H%M%SZ)}
BENCH=bench:pair
. "$ROOT/bench/lib.sh"
read -r NAME_A NAME_B EXTRA <<< "$PAIR"
[ -n "${NAME_B:-}" ] && [ -z "${EXTRA:-}" ] || { echo "bench:pair: PAIR names two proxies, got '$PAIR'" >&2; exit 1; }
for tool in nginx wrk taskset node; do
  command -v "$tool" >/dev/null || { echo "bench:pair: '$tool' is missing" >&2; exit 1; }
done
[ -f "$C/backends.nginx.conf" ] || { echo "bench:pair: no peers configuration at $C (set PEERS_BENCH)" >&2; exit 1; }
if [ -n "${B_CHECKOUT:-}" ]; then
  [ -f "$B_CHECKOUT/bin/portico" ] && [ -f "$B_CHECKOUT/dist/cli/main.js" ] || { echo "bench:pair: no built Portico in B_CHECKOUT=$B_CHECKOUT" >&2; exit 1; }
  case $NAME_B in portico|portico-tcp) ;; *) echo "bench:pair: B_CHECKOUT needs B to be portico or portico-tcp" >&2; exit 1 ;; esac
fi

port_of() {  # NAME -> the peers benchmark's port
  case $1 in
    node-net) echo 9303 ;; node-undici) echo 9207 ;; haproxy) echo 9201 ;; haproxy-tcp) echo 9301 ;;
    portico) echo 9208 ;; portico-tcp) echo 9304 ;;
    *) echo "bench:pair: unknown proxy '$1' (node-net node-undici haproxy haproxy-tcp portico portico-tcp)" >&2; return 1 ;;
  esac
}
PORT_A=$(( $(port_of "$NAME_A") + SHIFT )) || exit 1
PORT_B=$(( $(port_of "$NAME_B") + SHIFT )) || exit 1
[ "$PORT_A" = "$PORT_B" ] && PORT_B=$((PORT_B + 10))
P_B1=$((9101 + SHIFT)); P_B2=$((9102 + SHIFT)); P_ST=$((9109 + SHIFT))
bench_free_ports $P_B1 $P_B2 $P_ST "$PORT_A" "$PORT_B"
case "$NAME_A $NAME_B" in *portico*) (cd "$ROOT" && npm run build --silent) || exit 1 ;; esac
bench_prepare

# A peers configuration file with the backends' ports moved by SHIFT, the proxy's own port set to
# PORT, and its pid and log files in OUT: a copy named TAG-FILE under OUT.
moved() {  # FILE PORT TAG
  local own; own=$(port_of "$3" 2>/dev/null) || own=NONE
  sed -e "s/9101/$P_B1/g; s/9102/$P_B2/g; s/9109/$P_ST/g; s/:$own\b/:$2/g" \
      -e "s#/tmp/peers-bench/[a-z.-]*\.pid#$OUT/$3-$2.pid#; s#/tmp/peers-bench/logs/#$OUT/#" "$1" > "$OUT/$3-$2-$(basename "$1")"
  echo "$OUT/$3-$2-$(basename "$1")"
}
# start NAME PORT [CHECKOUT]: the proxy pinned to the proxy core; its PID (exec keeps it) on stdout.
start() {
  local name=$1 port=$2 log=$OUT/$1-$2.log cfg
  local checkout=${3:-$ROOT}
  case $name in
    node-net) taskset -c "$PROXY_CPU" env PORT="$port" BACKENDS="127.0.0.1:$P_B1,127.0.0.1:$P_B2" node "$N/net-proxy.js" > "$log" 2>&1 & ;;
    node-undici) taskset -c "$PROXY_CPU" env PORT="$port" BACKENDS="127.0.0.1:$P_B1,127.0.0.1:$P_B2" node "$N/undici-proxy.js" > "$log" 2>&1 & ;;
    haproxy) taskset -c "$PROXY_CPU" haproxy -db -f "$(moved "$C/haproxy-http.cfg" "$port" "$name")" > "$log" 2>&1 & ;;
    haproxy-tcp) taskset -c "$PROXY_CPU" haproxy -db -f "$(moved "$C/haproxy-tcp.cfg" "$port" "$name")" > "$log" 2>&1 & ;;
    portico) cfg=$(moved "$C/portico-http.yaml" "$port" "$name")
      taskset -c "$PROXY_CPU" env PORTICO_CHECKOUT="$checkout" bash "$ROOT/bench/portico-peer.sh" start -c "$cfg" > "$log" 2>&1 & ;;
    portico-tcp) cfg=$(moved "$C/portico-tcp.yaml" "$port" "$name")
      taskset -c "$PROXY_CPU" env PORTICO_CHECKOUT="$checkout" bash "$ROOT/bench/portico-peer.sh" start -c "$cfg" > "$log" 2>&1 & ;;
  esac
  echo $!
}
taskset -c "$LOAD_CPU" nginx -c "$(moved "$C/backends.nginx.conf" 0 backends)" -p "$RT" > "$OUT/backends.log" 2>&1 & PIDS+=($!)
PID_A=$(start "$NAME_A" "$PORT_A"); PIDS+=("$PID_A")
PID_B=$(start "$NAME_B" "$PORT_B" "${B_CHECKOUT:-$ROOT}"); PIDS+=("$PID_B")
wait_port $P_B1; wait_port $P_B2; wait_port "$PORT_A"; wait_port "$PORT_B"

cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }
main_ns() { awk '{ printf "%.0f", $1 }' /proc/"$1"/task/"$1"/schedstat 2>/dev/null; }
wrk_pair() {  # SCENARIO SECONDS OUT_A OUT_B FIRST(A|B): both wrk at once, the FIRST one started first
  local h; h=$(hdr_of "$1")
  local ca=(taskset -c "$LOAD_CPU" timeout $(($2 + 30)) wrk -t1 -c"$CONNS" -d"$2s" -H "$h" "$(url_of "$PORT_A" "$1")")
  local cb=(taskset -c "$LOAD_CPU" timeout $(($2 + 30)) wrk -t1 -c"$CONNS" -d"$2s" -H "$h" "$(url_of "$PORT_B" "$1")")
  local wa wb
  if [ "$5" = A ]; then "${ca[@]}" > "$3" 2>&1 & wa=$!; "${cb[@]}" > "$4" 2>&1 & wb=$!
  else "${cb[@]}" > "$4" 2>&1 & wb=$!; "${ca[@]}" > "$3" 2>&1 & wa=$!; fi
  wait "$wa" "$wb"
}
requests() { awk '/ requests in / { print $1 }' "$1"; }
errors() { awk '/Socket errors|Non-2xx/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { gsub(",", "", $i); e += $i } } END { print e + 0 }' "$1"; }

echo "round,scenario,a,b,first,a_requests,a_cpu_ns,b_requests,b_cpu_ns,a_errors,b_errors,a_main_ns,b_main_ns" > "$OUT/pairs.csv"
for round in $(seq "$ROUNDS"); do
  first=A; [ $((round % 2)) = 0 ] && first=B
  for scen in $SCENARIOS; do
    # Fresh processes compile their hot paths in the first seconds: the first round warms longer.
    warm=$WARM; [ "$round" = 1 ] && warm=$((WARM + 2))
    wrk_pair "$scen" "$warm" /dev/null /dev/null "$first"
    a0=$(cpu_ns "$PID_A"); b0=$(cpu_ns "$PID_B"); am0=$(main_ns "$PID_A"); bm0=$(main_ns "$PID_B")
    ra=$OUT/r${round}_${scen}_a.txt; rb=$OUT/r${round}_${scen}_b.txt
    wrk_pair "$scen" "$DUR" "$ra" "$rb" "$first"
    a1=$(cpu_ns "$PID_A"); b1=$(cpu_ns "$PID_B"); am1=$(main_ns "$PID_A"); bm1=$(main_ns "$PID_B")
    echo "$round,$scen,$NAME_A,$NAME_B,$first,$(requests "$ra"),$((a1 - a0)),$(requests "$rb"),$((b1 - b0)),$(errors "$ra"),$(errors "$rb"),$((am1 - am0)),$((bm1 - bm0))" >> "$OUT/pairs.csv"
    tail -n 1 "$OUT/pairs.csv" >&2
  done
done
{
  echo "date_utc: $(date -u +%FT%TZ)  load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "pair: $NAME_A (A, :$PORT_A) and $NAME_B (B, :$PORT_B${B_CHECKOUT:+, from $B_CHECKOUT}); $ROUNDS rounds of $DUR s, $CONNS connections each"
  echo
  node "$ROOT/bench/pair-summary.mjs" "$OUT/pairs.csv"
} | tee "$OUT/summary.md"
echo "results: $OUT" >&2
