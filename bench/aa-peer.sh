#!/usr/bin/env bash
# The PORTICO command of bench/run.sh's A/A mode (AA=1): the Portico slots run copies of the Node
# peers instead of Portico, the http slot (:9208) the undici proxy and the tcp slot (:9304) the
# node net pipe, the same scripts as the node-undici and node-net peers. Their per-round ratios
# (bench/rounds.mjs) are then one program against itself: the spread a round of this machine has
# when nothing differs, to read Portico's own per-round ratios against. exec keeps the PID, which
# the benchmark measures.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS_BENCH:-$ROOT/../shared/bench}
for a in "$@"; do
  case "$a" in
    *portico-tcp.yaml) PORT=9304 exec node "$PEERS/node/net-proxy.js" ;;
    *portico-http.yaml) PORT=9208 exec node "$PEERS/node/undici-proxy.js" ;;
  esac
done
echo "aa-peer: no peers configuration (portico-http.yaml, portico-tcp.yaml) in: $*" >&2
exit 2
