#!/usr/bin/env bash
# TLS handshakes per proxy CPU-second: Portico's https listener beside HAProxy (bind ... ssl),
# with the same certificate and key, one core each.
#
#   bash bench/tls.sh                 # ECDSA P-256, TLS 1.3 and TLS 1.2, full and resumed, 5 s each
#   DUR=3 KEY=rsa bash bench/tls.sh   # RSA 2048
#
# Both proxies are pinned to CPU 0 and `openssl s_time` (the client) to CPU 1. s_time does
# handshakes only (no request): `-new` makes a full handshake per connection, `-reuse` resumes
# the first session on every later connection. The figure is handshakes / proxy CPU-seconds
# (utime + stime from /proc). Every process started is recorded by PID and stopped by PID.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RT=${RT:-/tmp/portico-tls-bench}
DUR=${DUR:-5}
KEY=${KEY:-ec}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
HAPROXY_PORT=9411
PORTICO_PORT=9412
CLK_TCK=$(getconf CLK_TCK)

for tool in haproxy openssl taskset; do
  command -v "$tool" >/dev/null || { echo "tls bench: '$tool' is missing (apt-get install -y haproxy openssl)" >&2; exit 1; }
done
for port in $HAPROXY_PORT $PORTICO_PORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "port $port already in use" >&2; exit 1; fi
done
mkdir -p "$RT"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

if [ "$KEY" = rsa ]; then newkey=(-newkey rsa:2048); else newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1); fi
openssl req -x509 "${newkey[@]}" -nodes -keyout "$RT/key.pem" -out "$RT/cert.pem" -days 2 \
  -subj /CN=bench.portico.test -addext subjectAltName=DNS:bench.portico.test 2>/dev/null
cat "$RT/cert.pem" "$RT/key.pem" > "$RT/haproxy.pem"

cat > "$RT/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4000
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:$HAPROXY_PORT ssl crt $RT/haproxy.pem alpn h2,http/1.1
    default_backend be
backend be
    server s1 127.0.0.1:9
EOF

cat > "$RT/portico.yaml" <<EOF
log: { level: warn }
admin: { enabled: false }
cluster: { workers: 1 }
listeners:
  - name: tls
    protocol: https
    listen: 127.0.0.1:$PORTICO_PORT
    tls:
      certificates: [ { cert: $RT/cert.pem, key: $RT/key.pem } ]
    routes: [ { pool: none } ]
pools:
  - name: none
    servers: [ { name: s1, address: 127.0.0.1:9 } ]
EOF

(cd "$ROOT" && npm run build --silent)
taskset -c "$PROXY_CPU" haproxy -db -f "$RT/haproxy.cfg" > "$RT/haproxy.log" 2>&1 &
PIDS+=($!); HAPROXY_PID=$!
taskset -c "$PROXY_CPU" node "$ROOT/bin/portico" start -c "$RT/portico.yaml" > "$RT/portico.log" 2>&1 &
PIDS+=($!); PORTICO_PID=$!
for port in $HAPROXY_PORT $PORTICO_PORT; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done

ticks() { local a; read -r -a a < <(sed 's/^.*) //' "/proc/$1/stat"); echo $((a[11] + a[12])); }

# TLS 1.3 resumption needs the ticket that arrives after the handshake: a Node client does it
# (tls-resume.mjs), and reports how many were resumed. Everything else is openssl s_time.
client() { # port mode ver seconds
  if [ "$2" = reuse ] && [ "$3" = tls1_3 ]; then
    node "$ROOT/bench/tls-resume.mjs" "$1" "$4" | awk '{ print $1 " connections in " $4 " real seconds (" $6 " resumed)" }'
  else
    openssl s_time -connect "127.0.0.1:$1" -"$2" -"$3" -time "$4" 2>&1
  fi
}

measure() { # name pid port mode(new|reuse) version(tls1_3|tls1_2)
  local name=$1 pid=$2 port=$3 mode=$4 ver=$5 t0 t1 out n secs
  taskset -c "$LOAD_CPU" timeout 30 bash -c "$(declare -f client); ROOT=$ROOT client $port $mode $ver 1" >/dev/null 2>&1 || true
  t0=$(ticks "$pid")
  out=$(taskset -c "$LOAD_CPU" timeout $((DUR + 30)) bash -c "$(declare -f client); ROOT=$ROOT client $port $mode $ver $DUR" || true)
  t1=$(ticks "$pid")
  [ -n "${VERBOSE:-}" ] && echo "$out" | tail -2 >&2
  n=$(grep -Eo '^[0-9]+ connections in [0-9.]+ real' <<<"$out" | tail -1 | awk '{print $1}')
  secs=$(grep -Eo '^[0-9]+ connections in [0-9.]+ real' <<<"$out" | tail -1 | awk '{print $4}')
  awk -v name="$name" -v mode="$mode" -v ver="$ver" -v n="${n:-0}" -v s="${secs:-1}" -v t=$((t1 - t0)) -v hz="$CLK_TCK" \
    'BEGIN { cpu = t / hz; printf "| %s | %s | %s | %d | %.0f | %.2f | %.0f |\n", name, ver, mode, n, n / s, cpu, (cpu > 0 ? n / cpu : 0) }'
}

echo "key: $KEY; $(haproxy -v | head -1); node $(node -v); $(openssl version)"
echo "loadavg: $(cat /proc/loadavg)"
echo
echo "| proxy | version | handshakes | count | per s | proxy CPU-s | per proxy CPU-s |"
echo "|---|---|---|---:|---:|---:|---:|"
for ver in tls1_3 tls1_2; do
  for mode in new reuse; do
    measure haproxy "$HAPROXY_PID" "$HAPROXY_PORT" "$mode" "$ver"
    measure portico "$PORTICO_PID" "$PORTICO_PORT" "$mode" "$ver"
  done
done
