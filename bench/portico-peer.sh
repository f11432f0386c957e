#!/usr/bin/env bash
# The PORTICO command that bench/run.sh gives the peers benchmark. With PORTICO_L4=1 the peers
# run two Portico processes (L7 on :9208, L4 on :9304) from configurations without an `admin:`
# section, and both would bind the admin API's default address (127.0.0.1:9090); the second
# would not start. The admin API is not what is measured, so it is turned off here: for
# `start -c FILE`, a copy of FILE with `admin: { enabled: false }` added is run instead.
# The peers run one process or thread each: a FILE without a `cluster:` section runs one
# worker (`cluster: { workers: 1 }` added; the default is one per core).
# PORTICO_NODE_FLAGS: flags for Portico's node alone (a V8 heap setting, say), not the peers'.
# PORTICO_CHECKOUT: run the (built) Portico of another checkout instead of this one's.
# exec keeps the PID, which the benchmark measures.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
args=("$@")
for i in "${!args[@]}"; do
  if [ "${args[$i]}" = -c ] && [ -n "${args[$((i + 1))]:-}" ]; then
    file=${args[$((i + 1))]}
    extra=
    grep -q '^admin:' "$file" || extra+=$'\nadmin: { enabled: false }'
    grep -q '^cluster:' "$file" || extra+=$'\ncluster: { workers: 1 }'
    if [ -n "$extra" ]; then
      copy=${TMPDIR:-/tmp}/portico-peer-$(basename "$file")
      { cat "$file"; printf '%s\n' "$extra"; } > "$copy"
      args[$((i + 1))]=$copy
    fi
  fi
done
exec node ${PORTICO_NODE_FLAGS:-} "${PORTICO_CHECKOUT:-$ROOT}/bin/portico" "${args[@]}"
