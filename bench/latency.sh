#!/usr/bin/env bash
# npm run bench:latency: the latency Portico adds at half of its saturation rate, beside HAProxy
# and the backends answered directly, in the three L7 scenarios of the peers benchmark
# (keep-alive 16 B, Connection: close, keep-alive 16 KiB), with the garbage collector's part.
#
#   npm run bench:latency
#   DUR=20 GAP=10 SCENARIOS="ka ka16k" npm run bench:latency
#   SHIFT=1000 npm run bench:latency   # every port 1000 higher (beside a running peers benchmark)
#
# For each scenario: wrk as fast as it goes (64 connections, closed loop) against Portico gives
# its saturation rate S; then every target gets the same offered load, S / 2, from wrk pacing
# each connection (bench/pace.lua: GAP ms between an answer and the connection's next request,
# S / 2 * GAP / 1000 connections). Latency is from a request's send to its answer; "added" is a
# target's percentile minus the direct one's in the same round. Portico runs with --trace-gc:
# the collections during each paced run, and their pauses, are counted from its output (line
# buffered by stdbuf, so each run sees its own).
# Same processes, ports and CPU pinning as the peers benchmark (proxies on CPU 0, wrk and the
# nginx backends on CPU 1), whose configuration files it uses. Every process it starts is killed
# by PID on exit; wrk is bounded by timeouts. PORTICO_NODE_FLAGS: flags for Portico's node alone
# (PORTICO_NODE_FLAGS=--single-threaded-gc, say), as bench/portico-peer.sh takes them.
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS_BENCH:-$ROOT/../shared/bench}
C=$PEERS/conf
RT=/tmp/peers-bench
DUR=${DUR:-10}
WARM=${WARM:-2}
GAP=${GAP:-10}
ROUNDS=${ROUNDS:-2}
SCENARIOS=${SCENARIOS:-"ka close ka16k"}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
OUT=${OUT:-/tmp/portico-latency/$(date -u +%Y%m%dT%H%M%SZ)}
BENCH=bench:latency
. "$ROOT/bench/lib.sh"
for tool in haproxy nginx wrk taskset node; do
  command -v "$tool" >/dev/null || { echo "bench:latency: '$tool' is missing" >&2; exit 1; }
done
[ -f "$C/backends.nginx.conf" ] || { echo "bench:latency: no peers configuration at $C (set PEERS_BENCH)" >&2; exit 1; }
SHIFT=${SHIFT:-0}
bench_free_ports $((9101 + SHIFT)) $((9102 + SHIFT)) $((9109 + SHIFT)) $((9201 + SHIFT)) $((9208 + SHIFT))
(cd "$ROOT" && npm run build --silent) || exit 1
bench_prepare

# The peers' configuration files, with their ports moved by SHIFT (so this can run beside the
# peers benchmark) and their pid and log files in OUT.
P_B1=$((9101 + SHIFT)); P_B2=$((9102 + SHIFT)); P_ST=$((9109 + SHIFT)); P_HA=$((9201 + SHIFT)); P_PO=$((9208 + SHIFT))
moved() {  # FILE -> a copy under OUT
  sed -e "s/9101/$P_B1/g; s/9102/$P_B2/g; s/9109/$P_ST/g; s/9201/$P_HA/g; s/9208/$P_PO/g" \
      -e "s#/tmp/peers-bench/[a-z.-]*\.pid#$OUT/$(basename "$1").pid#; s#/tmp/peers-bench/logs/#$OUT/#" "$1" > "$OUT/$(basename "$1")"
  echo "$OUT/$(basename "$1")"
}
taskset -c "$LOAD_CPU" nginx -c "$(moved "$C/backends.nginx.conf")" -p "$RT" > "$OUT/backends.log" 2>&1 & PIDS+=($!)
taskset -c "$PROXY_CPU" haproxy -db -f "$(moved "$C/haproxy-http.cfg")" > "$OUT/haproxy.log" 2>&1 & PIDS+=($!)
cfg=$OUT/portico.yaml
{ cat "$(moved "$C/portico-http.yaml")"; printf '\nadmin: { enabled: false }\ncluster: { workers: 1 }\n'; } > "$cfg"
GCLOG=$OUT/portico-gc.log
taskset -c "$PROXY_CPU" stdbuf -oL node --trace-gc ${PORTICO_NODE_FLAGS:-} "$ROOT/bin/portico" start -c "$cfg" > "$GCLOG" 2>&1 & PIDS+=($!)
wait_port $P_B1; wait_port $P_HA; wait_port $P_PO

# GC lines of Portico's output so far, and the sum of their pauses (ms): "N scav mc pause_ms".
gc_state() {
  awk '/Scavenge|Mark-Compact|Mark-sweep|Minor/ { n++ }
       /Scavenge/ { s++ } /Mark-Compact|Mark-sweep/ { m++ }
       /ms: / { if (match($0, /MB, [0-9.]+ \/ [0-9.]+ ms/)) { x = substr($0, RSTART + 4); split(x, a, " "); p += a[1] } }
       END { printf "%d %d %d %.2f\n", n, s, m, p }' "$GCLOG"
}
us_ms() { awk -v u="$1" 'BEGIN { printf "%.3f", u / 1000 }'; }

echo "round,scenario,target,offered_rps,achieved_rps,conns,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,errors,gc_scavenges,gc_markcompacts,gc_pause_ms" > "$OUT/runs.csv"
for round in $(seq "$ROUNDS"); do
  for scen in $SCENARIOS; do
    hdr=$(hdr_of "$scen")
    # Saturation of Portico in this round.
    taskset -c "$LOAD_CPU" timeout $((WARM + 20)) wrk -t1 -c64 -d"${WARM}s" -H "$hdr" "$(url_of $P_PO "$scen")" > /dev/null 2>&1
    sat=$(taskset -c "$LOAD_CPU" timeout $((DUR + 30)) wrk -t1 -c64 -d"${DUR}s" -H "$hdr" "$(url_of $P_PO "$scen")" 2>&1 | awk '/^Requests\/sec/ { printf "%d", $2 }')
    [ -n "$sat" ] && [ "$sat" -gt 0 ] || { echo "bench:latency: no saturation figure for $scen" >&2; exit 1; }
    rate=$((sat / 2))
    conns=$(( (rate * GAP + 999) / 1000 ))
    echo "round $round $scen: Portico saturates at $sat req/s; offering $rate req/s on $conns connections" >&2
    for target in direct:$P_B1 haproxy:$P_HA portico:$P_PO; do
      name=${target%%:*}; port=${target##*:}
      url=$(url_of "$port" "$scen")
      taskset -c "$LOAD_CPU" timeout $((WARM + 20)) env GAP="$GAP" CONNS="$conns" wrk -t1 -c"$conns" -d"${WARM}s" -s "$ROOT/bench/pace.lua" -H "$hdr" "$url" > /dev/null 2>&1
      read -r _ s0 m0 p0 < <(gc_state)
      raw=$OUT/r${round}_${scen}_${name}.txt
      taskset -c "$LOAD_CPU" timeout $((DUR + 30)) env GAP="$GAP" CONNS="$conns" wrk -t1 -c"$conns" -d"${DUR}s" -s "$ROOT/bench/pace.lua" -H "$hdr" "$url" > "$raw" 2>&1
      read -r _ s1 m1 p1 < <(gc_state)
      read -r _ q50 q90 q99 q999 qmax < <(grep '^pcts ' "$raw")
      got=$(awk '/^Requests\/sec/ { printf "%d", $2 }' "$raw")
      errs=$(awk '/Socket errors|Non-2xx/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { gsub(",", "", $i); e += $i } } END { print e + 0 }' "$raw")
      if [ "$name" = portico ]; then gs=$((s1 - s0)); gm=$((m1 - m0)); gp=$(awk -v a="$p0" -v b="$p1" 'BEGIN { printf "%.2f", b - a }'); else gs=; gm=; gp=; fi
      echo "$round,$scen,$name,$rate,${got:-0},$conns,$(us_ms "$q50"),$(us_ms "$q90"),$(us_ms "$q99"),$(us_ms "$q999"),$(us_ms "$qmax"),$errs,$gs,$gm,$gp" >> "$OUT/runs.csv"
    done
  done
done
node "$ROOT/bench/latency-summary.mjs" "$OUT/runs.csv" "$DUR" | tee "$OUT/summary.md"
echo "results: $OUT" >&2
