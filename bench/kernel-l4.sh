#!/usr/bin/env bash
# The kernel L4 data plane against the alternatives, with real packets in network namespaces:
#
#   client ── router ── bridge ─┬─ balancer 198.18.0.2 (VIP 198.18.0.100; Portico or HAProxy)
#                               ├─ server s1 198.18.0.11 (nginx, the VIP on lo for DSR)
#                               └─ server s2 198.18.0.12
#
# Targets, in interleaved rounds (each round runs every target once, in turn):
#   direct   wrk to s1 itself (no balancer on the path)
#   nat      Portico, kernel listener, forwarding: nat (snat to 4 addresses of the balancer:
#            the servers answer through the router otherwise)
#   dsr      Portico, kernel listener, forwarding: dsr (the replies go from the servers to the router)
#   tcp      Portico's userspace tcp listener (one process)
#   haproxy  HAProxy mode tcp (nbthread 1)
#   nat-hand, dsr-hand  the same two modes with rules written by hand (the shapes of the issue that
#            designed them: one dnat through a slot map, snat by a hash; a netdev ingress chain
#            that sets the MACs and fwds), no counters, no persistence, no Portico: what Portico's
#            generated rules are compared with (not in the default list: ONLY="nat nat-hand ...")
# each with keep-alive (`ka`) and one connection per request (`close`: Connection: close, the
# server closes). wrk runs in the client's namespace (-t2 -c$CONNS). Figures: requests per second,
# p50 and p99 latency (wrk --latency), the CPU of the balancer's process (utime + stime of Portico
# or HAProxy from /proc/PID/stat over the measured run, in cores), and the machine's softirq time
# over the run (/proc/stat, in cores): the kernel's forwarding runs in softirq context, which is
# attributed to no process, and on this shared machine the softirq column also holds the client's,
# the servers' and everyone else's packets. Medians over the rounds; the load average is printed
# at the start and the end.
#
#   bash bench/kernel-l4.sh                    # 3 rounds, 5 s per run (about 6 minutes)
#   ROUNDS=1 DUR=3 bash bench/kernel-l4.sh     # a quick look
#   ONLY="direct nat" MODES=ka bash bench/kernel-l4.sh
#   npm run bench:kernel                       # the same, after a build
#
# Needs root, ip, nft, conntrack, nginx, haproxy, wrk, curl. The namespaces are named kl4-<pid>-*;
# every process the script starts is killed by its PID and every namespace it made is deleted on exit.
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-5}
CONNS=${CONNS:-32}
ONLY=${ONLY:-"direct nat dsr tcp haproxy"}
MODES=${MODES:-"ka close"}
RT=${RT:-/tmp/portico-kernel-l4-bench}
T="kl4-$$"
for tool in ip nft conntrack nginx haproxy wrk curl; do
  command -v "$tool" >/dev/null || { echo "bench: '$tool' is missing (apt-get install -y iproute2 nftables conntrack nginx-light haproxy wrk curl)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench: network namespaces and nftables need root" >&2; exit 1; }
[ -f "$ROOT/dist/cli/main.js" ] || { echo "bench: build first (npm run build)" >&2; exit 1; }
rm -rf "$RT" && mkdir -p "$RT/logs" "$RT/tmp"

VIP=198.18.0.100
LB=198.18.0.2
SNAT=(198.18.0.3 198.18.0.4 198.18.0.5 198.18.0.6)
SERVERS=(198.18.0.11 198.18.0.12)
NSS=()
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  for ns in "${NSS[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  done
  for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ns_add() {
  ip netns add "$T-$1" && NSS+=("$T-$1") && ip -n "$T-$1" link set lo up
}
inns() { local ns=$1; shift; ip netns exec "$T-$ns" "$@"; }
# plug NS IFNAME: a veth from the bridge to NS, named IFNAME there.
plug() {
  local host="p${#NSS[@]}$2$RANDOM"
  ip -n "$T-sw" link add "${host:0:15}" type veth peer name "$2" netns "$T-$1"
  ip -n "$T-sw" link set "${host:0:15}" master br0 up
  ip -n "$T-$1" link set "$2" up
}

# ---- topology
ns_add sw; ns_add c; ns_add rt; ns_add lb; ns_add s1; ns_add s2
ip -n "$T-sw" link add br0 type bridge mcast_snooping 0 && ip -n "$T-sw" link set br0 up
ip -n "$T-c" link add eth0 type veth peer name eth1 netns "$T-rt"
ip -n "$T-c" addr add 198.18.1.10/24 dev eth0 && ip -n "$T-c" link set eth0 up
ip -n "$T-c" route add default via 198.18.1.1
ip -n "$T-rt" addr add 198.18.1.1/24 dev eth1 && ip -n "$T-rt" link set eth1 up
plug rt eth0 && ip -n "$T-rt" addr add 198.18.0.1/24 dev eth0
inns rt sysctl -qw net.ipv4.ip_forward=1
plug lb eth0 && ip -n "$T-lb" addr add "$LB/24" dev eth0 && ip -n "$T-lb" route add default via 198.18.0.1
ip -n "$T-lb" addr add "$VIP/32" dev eth0
for a in "${SNAT[@]}"; do ip -n "$T-lb" addr add "$a/24" dev eth0; done
inns lb sysctl -qw net.ipv4.ip_forward=1
# Closed flows leave the conntrack table sooner (one connection per request fills it otherwise).
inns lb sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=10 2>/dev/null || true
for i in 1 2; do
  plug "s$i" eth0
  ip -n "$T-s$i" addr add "${SERVERS[$((i - 1))]}/24" dev eth0
  ip -n "$T-s$i" route add default via 198.18.0.1
  # The servers' side of DSR (portico dsr-setup): the VIP on lo, no ARP for it.
  inns "s$i" node "$ROOT/bin/portico" dsr-setup --vip "$VIP" --apply >"$RT/logs/dsr-setup-s$i.out" 2>&1 || { echo "bench: dsr-setup failed in s$i" >&2; cat "$RT/logs/dsr-setup-s$i.out" >&2; exit 1; }
done

# ---- servers: nginx, one process each, answering its name
for i in 1 2; do
  cat >"$RT/s$i.conf" <<EOF
daemon off; master_process off; worker_processes 1; worker_rlimit_nofile 20000;
error_log $RT/logs/s$i.error.log warn; pid $RT/s$i.pid;
events { worker_connections 8192; multi_accept on; }
http {
  access_log off; server_tokens off; tcp_nodelay on; keepalive_timeout 75s; keepalive_requests 1000000;
  client_body_temp_path $RT/tmp/s$i-body; proxy_temp_path $RT/tmp/s$i-proxy; fastcgi_temp_path $RT/tmp/s$i-fcgi;
  uwsgi_temp_path $RT/tmp/s$i-uwsgi; scgi_temp_path $RT/tmp/s$i-scgi;
  server { listen 0.0.0.0:80 backlog=4096 reuseport; location / { return 200 "s$i\n"; } }
}
EOF
  ip netns exec "$T-s$i" nginx -c "$RT/s$i.conf" -p "$RT" >"$RT/logs/s$i.out" 2>&1 &
  PIDS+=($!)
done

# wait_url NS URL: until it answers (at most 30 s).
wait_url() {
  for _ in $(seq 1 150); do
    inns "$1" curl -fs -m 1 -o /dev/null "$2" && return 0
    sleep 0.2
  done
  return 1
}
for s in "${SERVERS[@]}"; do wait_url c "http://$s/" || { echo "bench: server $s does not answer" >&2; exit 1; }; done

portico_config() {
  local listener
  case $1 in
    nat) listener="{ \"name\": \"vip\", \"protocol\": \"tcp\", \"listen\": \"$VIP:80\", \"dataPlane\": \"kernel\", \"pool\": \"web\", \"kernel\": { \"snat\": [\"${SNAT[0]}\", \"${SNAT[1]}\", \"${SNAT[2]}\", \"${SNAT[3]}\"] } }" ;;
    dsr) listener="{ \"name\": \"vip\", \"protocol\": \"tcp\", \"listen\": \"$VIP:80\", \"dataPlane\": \"kernel\", \"forwarding\": \"dsr\", \"pool\": \"web\", \"kernel\": { \"interface\": \"eth0\" } }" ;;
    tcp) listener="{ \"name\": \"vip\", \"protocol\": \"tcp\", \"listen\": \"$LB:8080\", \"pool\": \"web\" }" ;;
  esac
  cat <<EOF
{ "cluster": { "workers": 1 }, "admin": { "enabled": false }, "log": { "level": "warn" }, "stateDir": "$RT",
  "listeners": [ $listener ],
  "pools": [ { "name": "web", "balance": "roundrobin", "retries": 0, "health": { "type": "none" },
    "servers": [ { "name": "s1", "address": "${SERVERS[0]}:80" }, { "name": "s2", "address": "${SERVERS[1]}:80" } ] } ] }
EOF
}

cat >"$RT/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 9000
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    maxconn 9000
frontend fe
    bind $LB:8081 backlog 4096
    default_backend be
backend be
    balance roundrobin
    server s1 ${SERVERS[0]}:80
    server s2 ${SERVERS[1]}:80
EOF

# hand_rules nat-hand|dsr-hand: the hand-written rules of that mode.
hand_rules() {
  local s1=${SERVERS[0]} s2=${SERVERS[1]}
  if [ "$1" = nat-hand ]; then
    cat <<EOF
table ip hand {
  map slots { typeof numgen random mod 100 : ip daddr . tcp dport; flags interval; elements = { 0-49 : $s1 . 80, 50-99 : $s2 . 80 } }
  chain pre { type nat hook prerouting priority dstnat; policy accept; ip daddr $VIP tcp dport 80 dnat ip addr . port to numgen random mod 100 map @slots; }
  chain post { type nat hook postrouting priority srcnat; policy accept; ip daddr { $s1, $s2 } tcp dport 80 ct status dnat snat to jhash ip saddr . tcp sport mod 4 map { 0 : ${SNAT[0]}, 1 : ${SNAT[1]}, 2 : ${SNAT[2]}, 3 : ${SNAT[3]} }; }
}
EOF
  else
    local m1 m2 me
    m1=$(inns s1 cat /sys/class/net/eth0/address); m2=$(inns s2 cat /sys/class/net/eth0/address); me=$(inns lb cat /sys/class/net/eth0/address)
    cat <<EOF
table netdev hand {
  map slots { typeof numgen random mod 100 : ether daddr; flags interval; elements = { 0-49 : $m1, 50-99 : $m2 } }
  chain ing { type filter hook ingress device "eth0" priority filter; policy accept; ip daddr $VIP tcp dport 80 ether saddr set $me ether daddr set jhash ip saddr . tcp sport mod 100 map @slots fwd to "eth0"; }
}
EOF
  fi
}

# start TARGET: the balancer of TARGET in the balancer's namespace; sets BAL_PID and URL.
start() {
  BAL_PID=""
  case $1 in
    direct) URL="http://${SERVERS[0]}/" ;;
    nat | dsr | tcp)
      portico_config "$1" >"$RT/portico-$1.json"
      ip netns exec "$T-lb" node "$ROOT/bin/portico" start -c "$RT/portico-$1.json" >>"$RT/logs/portico-$1.out" 2>&1 &
      BAL_PID=$!
      PIDS+=("$BAL_PID")
      if [ "$1" = tcp ]; then URL="http://$LB:8080/"; else URL="http://$VIP/"; fi
      ;;
    nat-hand | dsr-hand)
      hand_rules "$1" >"$RT/$1.nft"
      inns lb nft -f "$RT/$1.nft" || { echo "bench: $1: nft refused the rules" >&2; return 1; }
      URL="http://$VIP/"
      ;;
    haproxy)
      ip netns exec "$T-lb" haproxy -db -f "$RT/haproxy.cfg" >>"$RT/logs/haproxy.out" 2>&1 &
      BAL_PID=$!
      PIDS+=("$BAL_PID")
      URL="http://$LB:8081/"
      ;;
  esac
  # Ready: both servers answer through it (the kernel modes: once the maps name both).
  for _ in $(seq 1 150); do
    local seen
    seen=$(for _ in 1 2 3 4 5 6; do inns c curl -fs -m 1 "$URL" 2>/dev/null; done | sort -u | tr -d '\n')
    [ "$1" = direct ] && [ -n "$seen" ] && return 0
    [ "$seen" = "s1s2" ] && return 0
    sleep 0.2
  done
  echo "bench: $1 did not answer from both servers; see $RT/logs" >&2
  return 1
}

stop_balancer() {
  if [ -z "$BAL_PID" ]; then
    for t in "ip hand" "netdev hand"; do inns lb nft delete table $t 2>/dev/null; done
    inns lb conntrack -F >/dev/null 2>&1
    return 0
  fi
  kill "$BAL_PID" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$BAL_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$BAL_PID" 2>/dev/null
  wait "$BAL_PID" 2>/dev/null
  # The kernel modes' tables go with Portico; make sure before the next target.
  for t in "ip portico" "netdev portico" "ip hand" "netdev hand"; do inns lb nft delete table $t 2>/dev/null; done
  inns lb conntrack -F >/dev/null 2>&1
  return 0
}

TCK=$(getconf CLK_TCK)
proc_ticks() { [ -n "$1" ] && awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
softirq_ticks() { awk '/^cpu / {print $8}' /proc/stat; }
# ms VALUE: wrk's latency (123.45us, 1.2ms, 1.01s) in milliseconds.
ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'; }

echo "target,mode,round,rps,p50_ms,p99_ms,balancer_cores,softirq_cores,errors" >"$RT/runs.csv"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average at the start: $LOAD_START ($(nproc) cores)"
for round in $(seq 1 "$ROUNDS"); do
  for target in $ONLY; do
    if ! start "$target"; then stop_balancer; continue; fi
    for mode in $MODES; do
      hdr=()
      [ "$mode" = close ] && hdr=(-H "Connection: close")
      inns c wrk -t2 -c"$CONNS" -d1s "${hdr[@]}" "$URL" >/dev/null 2>&1 # warm-up
      p0=$(proc_ticks "$BAL_PID"); s0=$(softirq_ticks); t0=$(date +%s.%N)
      out=$(inns c timeout $((DUR + 20)) wrk -t2 -c"$CONNS" -d"${DUR}s" --latency "${hdr[@]}" "$URL" 2>&1)
      p1=$(proc_ticks "$BAL_PID"); s1=$(softirq_ticks); t1=$(date +%s.%N)
      rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
      p50=$(ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
      p99=$(ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
      errs=$(awk '/Socket errors/ {gsub(",", ""); n = $4 + $6 + $8 + $10} /Non-2xx/ {n += $5} END {print n + 0}' <<<"$out")
      cpu=$(awk -v a="$p0" -v b="$p1" -v t0="$t0" -v t1="$t1" -v hz="$TCK" 'BEGIN { printf "%.2f", (b - a) / hz / (t1 - t0) }')
      si=$(awk -v a="$s0" -v b="$s1" -v t0="$t0" -v t1="$t1" -v hz="$TCK" 'BEGIN { printf "%.2f", (b - a) / hz / (t1 - t0) }')
      [ -z "$BAL_PID" ] && cpu=""
      echo "$target,$mode,$round,${rps:-0},$p50,$p99,$cpu,$si,$errs" >>"$RT/runs.csv"
      printf '%-8s %-5s round %s  %10s req/s  p50 %7s ms  p99 %7s ms  balancer %5s cores  softirq %s cores  errors %s\n' "$target" "$mode" "$round" "${rps:-?}" "$p50" "$p99" "${cpu:--}" "$si" "$errs"
    done
    stop_balancer
  done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average at the end: $LOAD_END"

echo
echo "medians over $ROUNDS rounds ($DUR s each, wrk -t2 -c$CONNS from the client's namespace; load average $LOAD_START at the start, $LOAD_END at the end):"
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").slice(1).map((l) => l.split(","));
const med = (a) => { const s = a.filter((x) => x !== "").map(Number).sort((x, y) => x - y); return s.length === 0 ? undefined : s[(s.length - 1) >> 1]; };
const name = { direct: "direct to one server", nat: "kernel NAT (Portico)", "nat-hand": "kernel NAT, hand-written rules", dsr: "kernel DSR (Portico)", "dsr-hand": "kernel DSR, hand-written rules", tcp: "Portico tcp listener (userspace)", haproxy: "HAProxy mode tcp (1 thread)" };
console.log("| target | mode | req/s | p50 ms | p99 ms | balancer process, cores | softirq (machine), cores | errors |");
console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const t of process.argv[2].split(" ")) for (const m of process.argv[3].split(" ")) {
  const r = rows.filter((x) => x[0] === t && x[1] === m);
  if (r.length === 0) continue;
  const col = (i) => r.map((x) => x[i]);
  const cpu = med(col(6));
  console.log(`| ${name[t]} | ${m === "ka" ? "keep-alive" : "one connection per request"} | ${Math.round(med(col(3)))} | ${med(col(4))} | ${med(col(5))} | ${cpu === undefined ? "-" : cpu.toFixed(2)} | ${med(col(7)).toFixed(2)} | ${r.reduce((a, x) => a + Number(x[8]), 0)} |`);
}' "$RT/runs.csv" "$ONLY" "$MODES"
