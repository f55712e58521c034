#!/usr/bin/env bash
# Prepares a fresh Debian/Ubuntu machine for the demo and the tests:
# Debian packages for the throwaway servers, npm packages, and the build.
# Safe to run again: it only installs what is missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is needed (found: $(node -v 2>/dev/null || echo none)); install it, e.g. from nodejs.org or NodeSource" >&2
  exit 1
fi

# Server binaries the throwaway-server harness starts privately (never the system services),
# plus librdkafka for the Kafka mock cluster and a C compiler for its helper.
missing=()
have() { command -v "$1" >/dev/null || ls /usr/lib/postgresql/*/bin/"$1" >/dev/null 2>&1; }
have initdb || missing+=(postgresql)
have mariadbd || missing+=(mariadb-server)
have redis-server || missing+=(redis-server)
[ -f /usr/include/librdkafka/rdkafka_mock.h ] || missing+=(librdkafka-dev)
have cc || missing+=(build-essential)
# Test tools: promtool (alert rule tests), docker-compose (compose file check), Chromium (console
# browser test), openssl (test CAs for TLS), flock (the log directory lock), zsh (completion check).
have promtool || missing+=(prometheus)
have docker-compose || missing+=(docker-compose)
have chromium || missing+=(chromium)
have openssl || missing+=(openssl)
have flock || missing+=(util-linux)
have zsh || missing+=(zsh)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    echo "setup: missing Debian packages: ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages" >&2
  # `npm ci`: exactly the lock file.
  npm ci --no-audit --no-fund >&2
fi
echo "setup: building" >&2
npm run --silent build >&2
