#!/usr/bin/env bash
# DNS listener benchmark: Portico beside NSD serving the same zone, both driven by dnsperf on
# loopback. The figure is queries answered per CPU-second of the server process(es) (user +
# system time from /proc), which does not depend on how fast the load generator is.
#
#   npm run build && bash bench/dns.sh [SECONDS] [ROUNDS]
#
# Needs dnsperf and nsd (Debian: apt-get install dnsperf nsd); nothing is installed here.
# A third row, a bare node:dgram echo server doing no DNS work, shows what one Node.js process
# can do with UDP at all on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${1:-10}
ROUNDS=${2:-3}
for bin in dnsperf nsd node; do
  command -v "$bin" >/dev/null || { echo "bench/dns.sh: $bin is not installed (apt-get install dnsperf nsd)" >&2; exit 2; }
done
[ -f dist/cli/main.js ] || { echo "bench/dns.sh: build first (npm run build)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
P_NSD=$(free_port)
P_PORTICO=$(free_port)
P_ECHO=$(free_port)

# The same zone for both: www has three A records (from a pool in Portico, rotated), static one.
mkdir -p "$work/nsd"
cat >"$work/nsd/bench.test.zone" <<'EOF'
$ORIGIN bench.test.
$TTL 20
@       IN SOA ns1.bench.test. hostmaster.bench.test. 1 3600 600 604800 60
@       IN NS  ns1.bench.test.
ns1     IN A   192.0.2.53
www     IN A   192.0.2.1
www     IN A   192.0.2.2
www     IN A   192.0.2.3
static  IN A   192.0.2.10
EOF
cat >"$work/nsd/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1
  port: $P_NSD
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$work/nsd"
  pidfile: "$work/nsd/nsd.pid"
  database: ""
  zonelistfile: "$work/nsd/zone.list"
  xfrdfile: "$work/nsd/xfrd.state"
  xfrdir: "$work/nsd"
  logfile: "$work/nsd/nsd.log"
  hide-version: yes
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: bench.test
  zonefile: bench.test.zone
EOF
cat >"$work/portico.json" <<EOF
{ "log": { "level": "warn" }, "admin": { "enabled": false }, "cluster": { "workers": 1 },
  "listeners": [{ "name": "dns", "protocol": "dns", "listen": "127.0.0.1:$P_PORTICO", "responseRateLimit": false,
    "zones": [{ "name": "bench.test", "nameservers": ["ns1.bench.test"], "soa": { "serial": 1 }, "records": [
      { "name": "ns1", "type": "A", "values": ["192.0.2.53"] },
      { "name": "www", "type": "A", "pool": "web" },
      { "name": "static", "type": "A", "values": ["192.0.2.10"] } ] }] }],
  "pools": [{ "name": "web", "servers": [
    { "name": "w1", "address": "192.0.2.1:80" }, { "name": "w2", "address": "192.0.2.2:80" }, { "name": "w3", "address": "192.0.2.3:80" } ] }] }
EOF
cat >"$work/echo.mjs" <<'EOF'
import { createSocket } from 'node:dgram';
const s = createSocket({ type: 'udp4', lookup: (a, _o, cb) => cb(null, a, 4) });
s.on('message', (m, r) => { m[2] |= 0x80; s.send(m, r.port, r.address); });
s.bind(Number(process.argv[2]), '127.0.0.1');
EOF
printf 'www.bench.test A\nstatic.bench.test A\nnope.bench.test A\nbench.test SOA\n' >"$work/queries.txt"

nsd -c "$work/nsd/nsd.conf" -d >"$work/nsd/out.log" 2>&1 &
pids+=($!)
nsd_main=$!
node bin/portico start -c "$work/portico.json" >"$work/portico.log" 2>&1 &
pids+=($!)
portico=$!
node "$work/echo.mjs" "$P_ECHO" &
pids+=($!)
echo_pid=$!

ready() { dig @127.0.0.1 -p "$1" +tries=1 +time=1 bench.test SOA >/dev/null 2>&1 || [ "$1" = "$P_ECHO" ]; }
for _ in $(seq 1 50); do
  if ready "$P_NSD" && ready "$P_PORTICO"; then break; fi
  sleep 0.2
done
sleep 0.5

# A process and all its descendants (NSD forks xfrd, main and the server process).
tree() {
  local p
  for p in "$@"; do
    echo "$p"
    tree $(pgrep -P "$p" || true)
  done
}
# CPU ticks (user + system) of processes and their descendants.
ticks() {
  local t=0 p
  for p in $(tree "$@"); do
    [ -r "/proc/$p/stat" ] && t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$t"
}
hz=$(getconf CLK_TCK)

# One run: prints "queries cpu_seconds qps".
run() {
  local port=$1; shift
  local t0 t1 out q qps
  t0=$(ticks "$@")
  out=$(dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -l "$SECONDS_PER_RUN" 2>&1)
  t1=$(ticks "$@")
  q=$(awk '/Queries completed/ {print $3}' <<<"$out")
  qps=$(awk '/Queries per second/ {printf "%d", $4}' <<<"$out")
  echo "$q $(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz}') $qps"
}

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

declare -A per_cpu qps_of
for name in nsd portico echo; do
  case $name in
    nsd) port=$P_NSD; procs=("$nsd_main") ;;
    portico) port=$P_PORTICO; procs=("$portico") ;;
    echo) port=$P_ECHO; procs=("$echo_pid") ;;
  esac
  rates=()
  qs=()
  for r in $(seq 1 "$ROUNDS"); do
    read -r q cpu qps < <(run "$port" "${procs[@]}")
    rate=$(awk -v q="$q" -v c="$cpu" 'BEGIN {printf "%d", (c > 0 ? q / c : 0)}')
    echo "  $name round $r: $q queries, $cpu CPU-s, $qps q/s, $rate queries per CPU-second" >&2
    rates+=("$rate")
    qs+=("$qps")
  done
  per_cpu[$name]=$(printf '%s\n' "${rates[@]}" | median)
  qps_of[$name]=$(printf '%s\n' "${qs[@]}" | median)
done

echo
echo "DNS: queries per CPU-second of the server (median of $ROUNDS runs of ${SECONDS_PER_RUN}s, dnsperf on loopback, $(nproc) cores)"
printf '%-34s %14s %12s %10s\n' server 'q/CPU-second' 'q/s' 'vs NSD'
for name in nsd portico echo; do
  case $name in
    nsd) label="NSD $(nsd -v 2>&1 | awk 'NR == 1 {print $NF}')" ;;
    portico) label="Portico dns listener" ;;
    echo) label="node:dgram echo (no DNS work)" ;;
  esac
  ratio=$(awk -v a="${per_cpu[$name]}" -v b="${per_cpu[nsd]}" 'BEGIN {printf "%.2fx", a / b}')
  printf '%-34s %14s %12s %10s\n' "$label" "${per_cpu[$name]}" "${qps_of[$name]}" "$ratio"
done
