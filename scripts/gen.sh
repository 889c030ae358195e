#!/usr/bin/env bash
# Regenerate gen/python from proto/ (make gen).
#
# buf.gen.yaml has `clean: true`, so gen/python is wiped first and files of
# deleted protos disappear. Everything under gen/python is generated.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
ensure_buf
ensure_python
cd "$ROOT"

"$BUF" generate
echo "generated gen/python from proto/:"
(cd gen/python && find . -type f ! -path '*/__pycache__/*' | sed 's|^\./|  gen/python/|' | sort)
