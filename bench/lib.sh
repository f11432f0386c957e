# Shared parts of bench/latency.sh and bench/pair.sh, sourced by both. BENCH names the script in
# messages; the script sets OUT and RT before calling bench_prepare, and adds every PID it starts
# to PIDS (killed on exit, TERM then KILL).

# bench_free_ports PORT...: stop when one of them is in use.
bench_free_ports() {
  local port
  for port in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$BENCH: port $port is in use" >&2; exit 1; fi
  done
}

# The run's folder, the runtime folders of the peers' nginx backends, and their 16 KiB body
# (16383 'x' and a newline, as the peers benchmark makes it).
bench_prepare() {
  mkdir -p "$OUT" "$RT/logs" "$RT/www" "$RT/nginx-tmp"
  head -c 16383 /dev/zero | tr '\0' 'x' > "$RT/www/16k.txt"; echo >> "$RT/www/16k.txt"
}

PIDS=()
bench_cleanup() {
  trap - EXIT INT TERM
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {
  local i
  for i in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "$BENCH: nothing answers on :$1" >&2; exit 1
}

# The peers benchmark's scenarios: the URL on PORT, and the request header that makes the scenario.
url_of() {  # PORT SCENARIO
  case $2 in ka|close) echo "http://127.0.0.1:$1/" ;; ka16k) echo "http://127.0.0.1:$1/16k" ;; esac
}
hdr_of() { [ "$1" = close ] && echo "Connection: close" || echo "X-Bench: 1"; }
