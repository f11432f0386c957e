#!/usr/bin/env bash
# npm run bench:cache (also the last part of npm run bench): the HTTP cache and compression of
# Portico beside NGINX proxy_cache and Varnish, on loopback, in one run, one origin (NGINX, 1
# worker). Every proxy is pinned to CPU 0, wrk and the origin to CPU 1; the fair figure is
# requests per proxy CPU-second. Needs: nginx varnish wrk curl taskset.
#
#   npm run bench:cache                          # 3 rounds of 5 s per target and scenario
#   ROUNDS=1 DUR=3 npm run bench:cache           # a quick look
#   ONLY="nginx portico" npm run bench:cache
#   PORTICO_BASE=/path/to/other/build npm run bench:cache
#       adds "portico-base": the same configuration run by another build (a folder holding
#       bin/portico and dist/), for a before/after in the same run
#
# Scenarios (every proxy has the same route rules; the origin says what may be cached):
#   ka           GET /ka, 16 B, no caching headers: each proxy passes it (Portico: a route
#                without cache or compression; NGINX: no proxy_cache; Varnish: return (pass))
#   hit16        GET /16b, 16 B, Cache-Control: max-age=3600: cache hits
#   hit16k       GET /16k, 16 KiB text, max-age=3600: cache hits
#   gzhit16k     GET /16k-gz with Accept-Encoding: gzip, 16 KiB text, max-age=3600: hits
#                answered gzip-compressed
#   gzmiss16k    GET /16k-nc with Accept-Encoding: gzip, 16 KiB text, Cache-Control: no-store:
#                every request goes to the origin and is compressed (gzip, level 5 everywhere)
#
# Everything runs from a fresh temporary folder (configurations, Varnish's -n work folder, NGINX's
# cache); every process started is recorded by PID and stopped by PID on exit. Results:
# $OUT (default the temporary folder)/summary.md and runs.csv.
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-5}
WARM=${WARM:-1}
CONNS=${CONNS:-32}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SCENARIOS=${SCENARIOS:-"ka hit16 hit16k gzhit16k gzmiss16k"}
ONLY=${ONLY:-"nginx varnish portico"}
[ -n "${PORTICO_BASE:-}" ] && ONLY="$ONLY portico-base"
CLK_TCK=$(getconf CLK_TCK)
RT=$(mktemp -d /tmp/portico-cache-bench.XXXXXX)
OUT=${OUT:-$RT}
mkdir -p "$OUT/raw" "$RT/logs" "$RT/www" "$RT/tmp"
# varnishd reads its VCL and works in -n as its own user (vcache): the folder must be open to it.
chmod 755 "$RT"

for tool in nginx varnishd wrk curl taskset; do
  command -v "$tool" >/dev/null || { echo "bench:cache: '$tool' is missing (apt-get install -y nginx varnish wrk curl)" >&2; exit 1; }
done

ORIGIN=9121 STATUS=9129
declare -A PORT_OF=([nginx]=9221 [varnish]=9222 [portico]=9223 [portico-base]=9224)
for port in $ORIGIN $STATUS 9221 9222 9223 9224; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "bench:cache: port $port already in use; refusing to start" >&2; exit 1; fi
done

PIDS=()
declare -A PID_OF
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$OUT/run.log" >&2; }
proc_tree() {
  local p=$1 c
  echo "$p"
  for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do proc_tree "$c"; done
}
ticks() {
  local total=0 p line rest
  for p in $(proc_tree "$1"); do
    read -r line < "/proc/$p/stat" 2>/dev/null || continue
    rest=${line##*) }
    local a=($rest)
    total=$((total + a[11] + a[12]))
  done
  echo "$total"
}
cleanup() {
  trap - EXIT INT TERM
  local all=() p i alive
  for p in "${PIDS[@]}"; do all+=($(proc_tree "$p")); done
  [ ${#all[@]} -gt 0 ] || return 0
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for i in $(seq 50); do
    alive=0
    for p in "${all[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${all[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
start() {
  local name=$1 cpu=$2; shift 2
  taskset -c "$cpu" "$@" >"$RT/logs/$name.out" 2>&1 &
  PIDS+=("$!")
  PID_OF[$name]=$!
  log "started $name pid=$! cpu=$cpu: $*"
}
wait_port() {
  local i
  for i in $(seq 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# ---- configurations --------------------------------------------------------------------------
head -c 16383 /dev/zero | tr '\0' 'x' > "$RT/www/16k.txt"; echo >> "$RT/www/16k.txt"
NGINX_COMMON="daemon off; master_process on; worker_processes 1; pid PIDFILE; error_log $RT/logs/ERRLOG warn; worker_rlimit_nofile 20000;
events { worker_connections 8192; multi_accept on; }"
temp_paths() { echo "client_body_temp_path $RT/tmp/$1-body; proxy_temp_path $RT/tmp/$1-proxy; fastcgi_temp_path $RT/tmp/$1-fcgi; uwsgi_temp_path $RT/tmp/$1-uwsgi; scgi_temp_path $RT/tmp/$1-scgi;"; }

cat > "$RT/origin.conf" <<EOF
${NGINX_COMMON//PIDFILE/$RT/origin.pid}
http {
  access_log off; server_tokens off; sendfile on; tcp_nodelay on; default_type text/plain;
  keepalive_timeout 75s; keepalive_requests 1000000; etag on;
  $(temp_paths o)
  server {
    listen 127.0.0.1:$ORIGIN backlog=4096;
    location = /ka     { return 200 "hello from 9121\n"; }
    location = /16b    { add_header Cache-Control "max-age=3600"; return 200 "cached 16 bytes\n"; }
    location = /16k    { add_header Cache-Control "max-age=3600"; alias $RT/www/16k.txt; }
    location = /16k-gz { add_header Cache-Control "max-age=3600"; alias $RT/www/16k.txt; }
    location = /16k-nc { add_header Cache-Control "no-store"; alias $RT/www/16k.txt; }
  }
  server { listen 127.0.0.1:$STATUS; location = /status { stub_status; } }
}
EOF
sed -i "s/ERRLOG/origin.error.log/" "$RT/origin.conf"

cat > "$RT/nginx.conf" <<EOF
${NGINX_COMMON//PIDFILE/$RT/nginx.pid}
http {
  access_log off; server_tokens off; tcp_nodelay on; sendfile on;
  keepalive_timeout 75s; keepalive_requests 1000000;
  $(temp_paths n)
  proxy_cache_path $RT/nginx-cache levels=1:2 keys_zone=main:10m max_size=256m inactive=1h use_temp_path=off;
  gzip on; gzip_types text/plain; gzip_min_length 1024; gzip_comp_level 5; gzip_vary on; gzip_proxied any;
  upstream origin { server 127.0.0.1:$ORIGIN; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${PORT_OF[nginx]} backlog=4096;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    location /ka { proxy_pass http://origin; }
    location / {
      proxy_pass http://origin;
      proxy_cache main;
      proxy_cache_lock on;
      add_header X-Cache-Status \$upstream_cache_status;
    }
  }
}
EOF
sed -i "s/ERRLOG/nginx.error.log/" "$RT/nginx.conf"

cat > "$RT/bench.vcl" <<EOF
vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "$ORIGIN"; }
sub vcl_recv { if (req.url ~ "^/ka") { return (pass); } }
# Compressed (and stored compressed) where the scenario asks for gzip, as the others compress
# text by Accept-Encoding; elsewhere Varnish keeps the identity body.
sub vcl_backend_response { if (bereq.url ~ "^/16k-(gz|nc)") { set beresp.do_gzip = true; } }
EOF

cat > "$RT/portico.yaml" <<EOF
log: { level: warn }
admin: { enabled: false }
cluster: { workers: 1 }
caches: [ { name: main, memory: 256MiB } ]
pools: [ { name: origin, health: { type: none }, servers: [ { name: o, address: 127.0.0.1:$ORIGIN } ] } ]
listeners:
  - name: bench
    protocol: http
    listen: 127.0.0.1:PORT
    routes:
      - { match: { path: /ka }, pool: origin }
      - { pool: origin, cache: main, compress: { algorithms: [gzip, br], level: 5 } }
EOF

{
  echo "date_utc: $(date -u +%FT%TZ)"
  echo "kernel: $(uname -r)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) x $(nproc)"
  echo "nginx: $(nginx -v 2>&1)"
  echo "varnish: $(varnishd -V 2>&1 | head -1)"
  echo "wrk: $(wrk -v 2>&1 | head -1)"
  echo "node: $(node -v)"
  echo "portico: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)"
  echo "params: ROUNDS=$ROUNDS DUR=$DUR WARM=$WARM CONNS=$CONNS SCENARIOS=$SCENARIOS ONLY=$ONLY"
  echo "loadavg_before: $(cat /proc/loadavg)"
} > "$OUT/versions.txt"
cat "$OUT/versions.txt" >&2

# ---- start -----------------------------------------------------------------------------------
start origin "$LOAD_CPU" nginx -c "$RT/origin.conf" -p "$RT"
wait_port $ORIGIN || { log "FAIL: the origin did not start (see $RT/logs/origin.out)"; exit 1; }
for name in $ONLY; do
  port=${PORT_OF[$name]:-}
  [ -n "$port" ] || { log "FAIL: unknown target $name"; exit 1; }
  case $name in
    nginx) start nginx "$PROXY_CPU" nginx -c "$RT/nginx.conf" -p "$RT" ;;
    varnish) start varnish "$PROXY_CPU" varnishd -F -n "$RT/varnish" -a "127.0.0.1:$port" -f "$RT/bench.vcl" -s malloc,256m -T none -p gzip_level=5 ;;
    portico)
      sed "s/PORT/$port/" "$RT/portico.yaml" > "$RT/portico-$port.yaml"
      start portico "$PROXY_CPU" node "$ROOT/bin/portico" start -c "$RT/portico-$port.yaml" ;;
    portico-base)
      sed "s/PORT/$port/" "$RT/portico.yaml" > "$RT/portico-$port.yaml"
      start portico-base "$PROXY_CPU" node "$PORTICO_BASE/bin/portico" start -c "$RT/portico-$port.yaml" ;;
  esac
done
for name in $ONLY; do wait_port "${PORT_OF[$name]}" || { log "FAIL: $name did not open its port (see $RT/logs/$name.out)"; exit 1; }; done

# ---- checks: each proxy answers, caches what may be cached (the origin sees no request for a
# second hit), compresses the gzip scenarios, and passes /ka and /16k-nc ----------------------
origin_requests() { curl -s --max-time 3 "http://127.0.0.1:$STATUS/status" | awk 'NR==3 { print $3 }'; }
fail=0
for name in $ONLY; do
  url="http://127.0.0.1:${PORT_OF[$name]}"
  for p in /16b /16k /16k-gz; do curl -s --max-time 3 -o /dev/null -H 'Accept-Encoding: gzip' "$url$p"; curl -s --max-time 3 -o /dev/null "$url$p"; done
  before=$(origin_requests)
  size=$(curl -s --max-time 3 "$url/16k" | wc -c)
  small=$(curl -s --max-time 3 "$url/16b")
  gz=$(curl -s --max-time 3 -H 'Accept-Encoding: gzip' "$url/16k-gz" | gzip -dc 2>/dev/null | wc -c)
  after=$(origin_requests)
  hits_reached=$((after - before - 1))
  ce=$(curl -s --max-time 3 -o /dev/null -D - -H 'Accept-Encoding: gzip' "$url/16k-nc" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-encoding"{print $2}')
  ka=$(curl -s --max-time 3 "$url/ka")
  status=ok
  [ "$size" = 16384 ] && [ "$small" = "cached 16 bytes" ] && [ "$gz" = 16384 ] && [ "$ce" = gzip ] && [ "$ka" = "hello from 9121" ] || status=FAIL
  [ "$hits_reached" = 0 ] || status=FAIL
  log "check $name: 16k=$size 16b='$small' gzip-hit-decoded=$gz miss-encoding=$ce origin-requests-for-3-hits=$hits_reached => $status"
  [ $status = ok ] || fail=1
done
[ $fail = 0 ] || { log "checks failed; not benchmarking (logs in $RT/logs)"; exit 1; }

# ---- measure ---------------------------------------------------------------------------------
echo "round,scenario,peer,requests,duration_s,rps,proxy_ticks,clk_tck,origin_requests,non2xx,sock_errors,p99" > "$OUT/runs.csv"
measure() {
  local round=$1 scen=$2 name=$3 path hdr=()
  case $scen in
    ka) path=/ka ;;
    hit16) path=/16b ;;
    hit16k) path=/16k ;;
    gzhit16k) path=/16k-gz; hdr=(-H 'Accept-Encoding: gzip') ;;
    gzmiss16k) path=/16k-nc; hdr=(-H 'Accept-Encoding: gzip') ;;
  esac
  local url="http://127.0.0.1:${PORT_OF[$name]}$path" raw="$OUT/raw/r${round}_${scen}_${name}.txt"
  taskset -c "$LOAD_CPU" timeout $((WARM + 20)) wrk -t1 -c"$CONNS" -d"${WARM}s" "${hdr[@]}" "$url" >/dev/null 2>&1
  local o0 t0 t1 o1
  o0=$(origin_requests); t0=$(ticks "${PID_OF[$name]}")
  taskset -c "$LOAD_CPU" timeout $((DUR + 30)) wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "${hdr[@]}" "$url" > "$raw" 2>&1
  t1=$(ticks "${PID_OF[$name]}"); o1=$(origin_requests)
  local reqs dur rps non2xx serr p99
  read -r reqs dur < <(awk '/requests in/{gsub(/s,/,"",$4); print $1, $4}' "$raw")
  rps=$(awk '/^Requests\/sec:/{print $2}' "$raw")
  non2xx=$(awk '/Non-2xx/{print $NF}' "$raw"); non2xx=${non2xx:-0}
  serr=$(awk '/Socket errors/{gsub(/,/,""); print $4+$6+$8+$10}' "$raw"); serr=${serr:-0}
  p99=$(awk '$1=="99%"{print $2}' "$raw")
  echo "$round,$scen,$name,${reqs:-0},${dur:-0},${rps:-0},$((t1 - t0)),$CLK_TCK,$((o1 - o0 - 1)),$non2xx,$serr,$p99" >> "$OUT/runs.csv"
  log "r$round $scen $name: rps=${rps:-?} proxy_ticks=$((t1 - t0)) origin_requests=$((o1 - o0 - 1)) non2xx=$non2xx sockerr=$serr p99=$p99"
}
for name in $ONLY; do taskset -c "$LOAD_CPU" timeout 30 wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:${PORT_OF[$name]}/16k" >/dev/null 2>&1; done
read -r -a names <<<"$ONLY"
n=${#names[@]}
for round in $(seq 1 "$ROUNDS"); do
  for scen in $SCENARIOS; do
    for i in $(seq 0 $((n - 1))); do
      measure "$round" "$scen" "${names[$(( (i + round - 1) % n ))]}"
      sleep 0.3
    done
  done
done
echo "loadavg_after: $(cat /proc/loadavg)" >> "$OUT/versions.txt"
node "$ROOT/bench/cache-summary.mjs" "$OUT/runs.csv" "$OUT/versions.txt" > "$OUT/summary.md"
log "summary: $OUT/summary.md"
cat "$OUT/summary.md"
