#!/usr/bin/env bash
# The demo, on a fresh machine: setup, then throwaway Postgres and Redis, the
# service between them, and a small write load. Ctrl-C stops everything.
# DEMO_SECONDS=N stops it after N seconds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
exec node "$root/dist/demo/run-demo.js"
