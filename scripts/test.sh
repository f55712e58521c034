#!/usr/bin/env bash
# The README's test command: installs what is missing (scripts/setup.sh), runs the whole
# suite against real throwaway servers (`npm test`), then the quick subset of the fault
# suite (`npm run test:faults -- --quick --gate data`: one case of each kind under load,
# every sink compared with the source row by row). The full fault suite is
# `npm run test:faults` (hours); the container image test is `npm run test:deploy`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
npm test
# The quick fault subset, gated on the data (--gate data): any row missing, different or extra
# in a sink, a duplicate change, a crash of the service or a case not run fails this command.
# Recovery time and peak RSS are printed against their limits (30 s, 300 MB) but not gated
# while issue 11 is open: the big-values case is still over both (see the README, § Faults).
npm run test:faults -- --quick --gate data
