#!/usr/bin/env bash
# buf lint of proto/ with the rules in buf.yaml (STANDARD).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
ensure_buf
cd "$ROOT"
"$BUF" lint
echo "buf lint: ok"
