#!/usr/bin/env bash
# Compile Switchboard's TypeScript (gen/ts, examples/ts, agents/*) with the pinned tsc into
# .build/ts (make ts). Node 20 cannot run .ts itself; the compiled ES modules are what `node`,
# `node --test` and `switchboard up` run. .build is not committed: it is rebuilt from the sources
# (make setup and make test run this), so there is nothing to drift.
#
#   --check   type-check only (tsc --noEmit, strict), for make lint
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
ensure_buf # npm ci when node_modules is missing: tsc comes from the same lock file
cd "$ROOT"

TSC="$ROOT/node_modules/.bin/tsc"
[[ -x "$TSC" ]] || die "$TSC is missing; run 'npm ci'"
if [[ "${1:-}" == "--check" ]]; then
    "$TSC" -p tsconfig.json --noEmit
    echo "tsc --noEmit: no errors"
    exit 0
fi
out=".build/ts"
# A fresh tree each time: files of deleted sources must not linger and still be run.
rm -rf "$out"
"$TSC" -p tsconfig.json
# The root package.json is not an ES module package (it only pins tools); this one scopes
# "type": "module" to the compiled output.
printf '{\n  "type": "module",\n  "private": true\n}\n' > "$out/package.json"
echo "compiled TypeScript into $out"
