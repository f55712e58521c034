#!/usr/bin/env bash
# Starts private throwaway servers on free 127.0.0.1 ports (never the system ones).
#   bash scripts/throwaway-servers.sh postgres redis [mariadb] [kafka:TOPIC:PARTITIONS ...]
# stdout: `export PG_URL=...`, REDIS_URL, MYSQL_URL, KAFKA_BROKERS lines, then READY.
# Runs until SIGTERM/SIGINT, until stdin closes (when stdin is a pipe), or until its
# parent dies; then stops the servers, removes their temp dirs and exits 0.
# Typical use from another script:
#   coproc SERVERS { exec bash scripts/throwaway-servers.sh postgres redis; }
#   while read -r line <&"${SERVERS[0]}" && [ "$line" != READY ]; do eval "$line"; done
#   ...; kill "$SERVERS_PID"; wait "$SERVERS_PID"
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cli="$root/dist/test/support/servers-cli.js"
if [ ! -f "$cli" ]; then
  # Build output goes to stderr so stdout stays machine-readable. tsc may exit non-zero
  # over unrelated type errors and still emit; only a missing CLI is fatal.
  (cd "$root" && npx tsc -p tsconfig.json) >&2 || true
  if [ ! -f "$cli" ]; then
    echo "throwaway-servers: $cli was not built; run 'npx tsc -p tsconfig.json' in $root and fix the errors" >&2
    exit 1
  fi
fi
# exec: signals reach node directly and its parent is our caller.
exec node "$cli" "$@"
