#!/usr/bin/env bash
# The whole test suite, on a fresh machine: setup, then unit and integration tests
# against private throwaway Postgres, MariaDB, Redis and Kafka-mock servers.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
# `npm test` builds and runs mocha over every spec in .mocharc.json.
exec npm test
