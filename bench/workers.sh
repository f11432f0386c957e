#!/usr/bin/env bash
# Requests per second with 1 and 2 processes/threads of each proxy, side by side on this machine:
# Portico cluster.workers 1 and 2, HAProxy nbthread 1 and 2, NGINX worker_processes 1 and 2.
# All on 127.0.0.1; nothing is pinned: proxy, backends (one nginx worker) and wrk (one thread)
# share the machine's cores, so a second proxy worker competes with the load generator.
#
#   bash bench/workers.sh                 # 3 rounds, 8 s per run
#   ROUNDS=1 DUR=3 bash bench/workers.sh  # a quick look
#
# Needs haproxy nginx wrk curl. Every process it starts is killed by its PID on exit.
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RT=/tmp/portico-workers-bench
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-8}
CONNS=${CONNS:-64}
for tool in haproxy nginx wrk curl; do
  command -v "$tool" >/dev/null || { echo "bench: '$tool' is missing (apt-get install -y haproxy nginx wrk curl)" >&2; exit 1; }
done
rm -rf "$RT" && mkdir -p "$RT/tmp" "$RT/logs"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
}
trap cleanup EXIT

nginx_common() {
  cat <<EOF
daemon off;
master_process on;
worker_rlimit_nofile 20000;
error_log $RT/logs/$1.error.log warn;
pid $RT/$1.pid;
events { worker_connections 8192; multi_accept on; }
EOF
}
http_common() {
  cat <<EOF
    access_log off; server_tokens off; tcp_nodelay on;
    keepalive_timeout 75s; keepalive_requests 1000000;
    client_body_temp_path $RT/tmp/$1-body; proxy_temp_path $RT/tmp/$1-proxy;
    fastcgi_temp_path $RT/tmp/$1-fcgi; uwsgi_temp_path $RT/tmp/$1-uwsgi; scgi_temp_path $RT/tmp/$1-scgi;
EOF
}

# Backends: one nginx worker, 127.0.0.1:9511 and :9512.
{
  nginx_common backends
  echo 'worker_processes 1;'
  echo 'http {'
  http_common backends
  echo '    server { listen 127.0.0.1:9511 backlog=4096; location = / { return 200 "hello from 9511\n"; } }'
  echo '    server { listen 127.0.0.1:9512 backlog=4096; location = / { return 200 "hello from 9512\n"; } }'
  echo '}'
} >"$RT/backends.conf"
nginx -c "$RT/backends.conf" -p "$RT" >"$RT/logs/backends.out" 2>&1 &
PIDS+=($!)

# start NAME N: the proxy NAME with N workers/threads on 127.0.0.1:9520; echoes its PID.
start() {
  local name=$1 n=$2
  case $name in
    portico)
      cat >"$RT/portico.json" <<EOF
{ "cluster": { "workers": $n }, "admin": { "enabled": false }, "log": { "level": "warn" }, "stateDir": "$RT",
  "listeners": [ { "name": "bench", "protocol": "http", "listen": "127.0.0.1:9520", "routes": [ { "pool": "backends" } ] } ],
  "pools": [ { "name": "backends", "balance": "roundrobin", "health": { "type": "none" },
    "servers": [ { "name": "b1", "address": "127.0.0.1:9511" }, { "name": "b2", "address": "127.0.0.1:9512" } ] } ] }
EOF
      node "$ROOT/bin/portico" start -c "$RT/portico.json" >"$RT/logs/portico-$n.out" 2>&1 &
      ;;
    haproxy)
      cat >"$RT/haproxy.cfg" <<EOF
global
    nbthread $n
    maxconn 9000
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    maxconn 9000
frontend fe
    bind 127.0.0.1:9520 backlog 4096
    default_backend be
backend be
    balance roundrobin
    server b1 127.0.0.1:9511
    server b2 127.0.0.1:9512
EOF
      haproxy -db -f "$RT/haproxy.cfg" >"$RT/logs/haproxy-$n.out" 2>&1 &
      ;;
    nginx)
      {
        nginx_common "nginx-$n"
        echo "worker_processes $n;"
        echo 'http {'
        http_common "nginx-$n"
        echo '    upstream backends { server 127.0.0.1:9511; server 127.0.0.1:9512; keepalive 64; keepalive_requests 1000000; }'
        echo '    server { listen 127.0.0.1:9520 backlog=4096; location / { proxy_pass http://backends; proxy_http_version 1.1; proxy_set_header Connection ""; } }'
        echo '}'
      } >"$RT/nginx-$n.conf"
      nginx -c "$RT/nginx-$n.conf" -p "$RT" >"$RT/logs/nginx-$n.out" 2>&1 &
      ;;
  esac
  echo $!
}

stop() {
  local pid=$1
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
}

ready() {
  for _ in $(seq 1 100); do
    curl -fs -m 1 -o /dev/null http://127.0.0.1:9520/ && return 0
    sleep 0.1
  done
  return 1
}

ready_backends() {
  for _ in $(seq 1 50); do
    curl -fs -m 1 -o /dev/null http://127.0.0.1:9511/ && curl -fs -m 1 -o /dev/null http://127.0.0.1:9512/ && return 0
    sleep 0.1
  done
  echo "bench: the backends did not start" >&2
  exit 1
}
ready_backends

echo "target,workers,round,rps,non2xx" >"$RT/runs.csv"
for round in $(seq 1 "$ROUNDS"); do
  for target in portico haproxy nginx; do
    for n in 1 2; do
      pid=$(start "$target" "$n")
      PIDS+=("$pid")
      if ! ready; then
        echo "bench: $target ($n) did not answer; see $RT/logs" >&2
        stop "$pid"
        continue
      fi
      timeout $((DUR + 10)) wrk -t1 -c"$CONNS" -d1s http://127.0.0.1:9520/ >/dev/null 2>&1
      out=$(timeout $((DUR + 10)) wrk -t1 -c"$CONNS" -d"${DUR}s" http://127.0.0.1:9520/ 2>&1)
      rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
      bad=$(awk '/Non-2xx/ {print $5}' <<<"$out")
      echo "$target,$n,$round,${rps:-0},${bad:-0}" >>"$RT/runs.csv"
      printf '%-8s workers=%s round=%s  %s req/s\n' "$target" "$n" "$round" "${rps:-?}"
      stop "$pid"
    done
  done
done

echo
echo "median req/s over $ROUNDS rounds ($DUR s each, $CONNS connections, wrk -t1, $(nproc) cores shared by proxy, backends and wrk):"
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").slice(1).map((l) => l.split(","));
const by = new Map();
for (const [t, n, , rps] of rows) { const k = t + " " + n; if (!by.has(k)) by.set(k, []); by.get(k).push(Number(rps)); }
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[(s.length - 1) >> 1]; };
console.log("| proxy | 1 | 2 | 2 / 1 |\n| --- | --- | --- | --- |");
for (const t of ["portico", "haproxy", "nginx"]) {
  const a = med(by.get(t + " 1") ?? [0]), b = med(by.get(t + " 2") ?? [0]);
  console.log(`| ${t} | ${Math.round(a)} | ${Math.round(b)} | ${(b / a).toFixed(2)} |`);
}' "$RT/runs.csv"
