#!/usr/bin/env bash
# Fail if gen/python differs from what proto/ generates (drift check).
#
# Generates into a temporary directory with the same buf.gen.yaml and
# compares file by file. Exit 0: up to date. Exit 1: drift (files listed).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
ensure_buf
ensure_python
cd "$ROOT"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$BUF" generate --output "$tmp"
fresh="$tmp/gen/python"
committed="gen/python"
[[ -d "$fresh" ]] || die "buf generate produced no $fresh"

list_files() {
    if [[ -d "$1" ]]; then
        (cd "$1" && find . -type f ! -path '*/__pycache__/*' ! -name '*.pyc' | sed 's|^\./||' | LC_ALL=C sort)
    fi
}

drift=()
while IFS= read -r rel; do
    if [[ ! -e "$committed/$rel" ]]; then
        drift+=("missing  $committed/$rel")
    elif [[ ! -e "$fresh/$rel" ]]; then
        drift+=("stale    $committed/$rel (no longer generated)")
    elif ! cmp -s "$fresh/$rel" "$committed/$rel"; then
        drift+=("changed  $committed/$rel")
    fi
done < <( { list_files "$fresh"; list_files "$committed"; } | LC_ALL=C sort -u)

if ((${#drift[@]})); then
    {
        echo "gen/python is out of date with proto/ (${#drift[@]} file(s)):"
        printf '  %s\n' "${drift[@]}"
        echo "Run 'make gen' (scripts/gen.sh) and commit the result."
    } >&2
    exit 1
fi
echo "gen/python is up to date with proto/"
