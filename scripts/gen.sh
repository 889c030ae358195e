#!/usr/bin/env bash
# Regenerate gen/python, gen/ts and gen/go from proto/ (make gen), and the Go
# stubs of the A2A contract from the pinned a2a-sdk (docs/contracts.md).
#
# Every template sets `clean: true`, so each output directory is wiped first
# and files of deleted protos disappear. Everything under gen/python, gen/ts,
# gen/go/switchboard and gen/go/lf is generated; gen/go/go.mod and go.sum are not.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
ensure_buf
ensure_python
ensure_go_plugins
cd "$ROOT"

generate_all || die "buf generate failed"
echo "generated from proto/ (and the a2a-sdk's A2A descriptor):"
for dir in "${GENERATED_DIRS[@]}"; do
    (cd "$dir" && find . -type f ! -path '*/__pycache__/*' | sed "s|^\./|  $dir/|" | sort)
done
