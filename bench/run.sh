#!/usr/bin/env bash
# npm run bench: Portico side by side with HAProxy, NGINX and Node proxies (../shared/bench),
# on loopback, one core each, in one run. Needs: haproxy nginx libnginx-mod-stream wrk curl
# (apt-get install -y ...) and the peers' node modules (npm ci in the peers' node/ folder).
#
#   npm run bench                       # L7 peers + Portico, 3 rounds (about 8 minutes), then the
#                                        # latency, TLS and cache parts below (about 10 more)
#   ROUNDS=1 DUR=3 npm run bench        # a quick look
#   ONLY="haproxy node-undici portico" npm run bench
#   PORTICO_L4=1 npm run bench          # adds the L4 peers and Portico's tcp listener (portico-tcp)
#   AA=1 PORTICO_L4=1 ONLY="node-undici portico node-net portico-tcp" CACHE=0 npm run bench
#                                        # A/A: the Portico slots run copies of the Node peers
#                                        # (bench/aa-peer.sh), to see how far apart rounds of one
#                                        # program are on this machine
#   PORTICO_L4=1 PAIRED=0 npm run bench  # without the paired L4 rounds (bench/pair.sh: the node pipe
#                                        # and the tcp listener measured at once on one core; run
#                                        # after the peers when PORTICO_L4=1; alone: npm run bench:pair)
#   LATENCY=0 TLS=0 npm run bench        # without the latency at half load (bench/latency.sh; alone:
#                                        # npm run bench:latency) and the TLS handshakes
#                                        # (bench/tls.sh), both run after the peers by default
#   CACHE=0 npm run bench                # without the cache and compression part (bench/cache.sh,
#                                        # run after the peers: Portico beside NGINX proxy_cache and
#                                        # Varnish; needs varnish; alone: npm run bench:cache)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS_BENCH:-$ROOT/../shared/bench}
if [ ! -x "$PEERS/run.sh" ] && [ ! -f "$PEERS/run.sh" ]; then
  echo "bench: no peers benchmark at $PEERS (set PEERS_BENCH to the folder holding run.sh)" >&2
  exit 1
fi
for tool in haproxy nginx wrk curl taskset; do
  command -v "$tool" >/dev/null || { echo "bench: '$tool' is missing (apt-get install -y haproxy nginx libnginx-mod-stream wrk curl)" >&2; exit 1; }
done
if [ ! -d "$PEERS/node/node_modules" ]; then
  echo "bench: installing the Node peers' modules in $PEERS/node" >&2
  (cd "$PEERS/node" && npm ci --no-audit --no-fund)
fi
(cd "$ROOT" && npm run build --silent)
export PORTICO="$ROOT/bench/portico-peer.sh"
[ "${AA:-0}" = 1 ] && PORTICO="$ROOT/bench/aa-peer.sh"
DEFAULT_ONLY="haproxy nginx node-http-proxy fastify-reply-from node-undici portico"
# PORTICO_L4=1: also Portico's tcp listener (:9304) beside the L4 peers (HAProxy mode tcp, NGINX stream, node net).
[ "${PORTICO_L4:-0}" = 1 ] && DEFAULT_ONLY="$DEFAULT_ONLY haproxy-tcp nginx-stream node-net portico-tcp"
export ONLY=${ONLY:-$DEFAULT_ONLY}
export SCENARIOS=${SCENARIOS:-"ka close ka16k"}
bash "$PEERS/run.sh"
# Portico's ratio to each peer round by round (the peers' summary gives medians only).
RUNS=${OUT:-/tmp/peers-bench/results/latest}/runs.csv
[ -f "$RUNS" ] && node "$ROOT/bench/rounds.mjs" "$RUNS" | tee "$(dirname "$RUNS")/rounds.md"
# The tcp listener against the node pipe, paired (bench/pair.sh), in the run's own folder.
if [ "${PORTICO_L4:-0}" = 1 ] && [ "${PAIRED:-1}" = 1 ] && [ "${AA:-0}" = 0 ]; then
  OUT=$(dirname "$RUNS")/pair PAIR="node-net portico-tcp" ROUNDS=${PAIR_ROUNDS:-5} DUR=${PAIR_DUR:-5} SCENARIOS=$SCENARIOS \
    bash "$ROOT/bench/pair.sh" || echo "bench: the paired rounds did not finish (bench/pair.sh)" >&2
fi
# The latency Portico adds at half of its saturation rate, and the TLS handshakes, in the run's
# folder too (each part's own settings: LATENCY_ROUNDS, LATENCY_DUR, TLS_DUR).
RUN_DIR=$(cd "$(dirname "$RUNS")" && pwd -P)
if [ "${LATENCY:-1}" = 1 ] && [ "${AA:-0}" = 0 ]; then
  OUT=$RUN_DIR/latency ROUNDS=${LATENCY_ROUNDS:-2} DUR=${LATENCY_DUR:-10} SCENARIOS=$SCENARIOS bash "$ROOT/bench/latency.sh" \
    || echo "bench: the latency part did not finish (bench/latency.sh)" >&2
fi
if [ "${TLS:-1}" = 1 ] && [ "${AA:-0}" = 0 ]; then
  DUR=${TLS_DUR:-5} bash "$ROOT/bench/tls.sh" | tee "$RUN_DIR/tls.md" \
    || echo "bench: the TLS part did not finish (bench/tls.sh)" >&2
fi
[ "${CACHE:-1}" = 0 ] && exit 0
# The peers' ONLY and SCENARIOS are not the cache part's (CACHE_ONLY, CACHE_SCENARIOS are).
ONLY=${CACHE_ONLY:-} SCENARIOS=${CACHE_SCENARIOS:-} bash "$ROOT/bench/cache.sh"
