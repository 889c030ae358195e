#!/usr/bin/env bash
# Fail if gen/python, gen/ts or gen/go differ from what proto/ (and the pinned
# a2a-sdk's A2A descriptor) generate (drift check).
#
# Generates into a temporary directory with the same templates and compares
# every generated directory file by file. Exit 0: up to date. Exit 1: drift (files listed).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
ensure_buf
ensure_python
ensure_go_plugins
cd "$ROOT"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

generate_all "$tmp" || die "buf generate failed"

list_files() {
    if [[ -d "$1" ]]; then
        (cd "$1" && find . -type f ! -path '*/__pycache__/*' ! -name '*.pyc' | sed 's|^\./||' | LC_ALL=C sort)
    fi
}

drift=()
for committed in "${GENERATED_DIRS[@]}"; do
    fresh="$tmp/$committed"
    [[ -d "$fresh" ]] || die "buf generate produced no $fresh"
    while IFS= read -r rel; do
        if [[ ! -e "$committed/$rel" ]]; then
            drift+=("missing  $committed/$rel")
        elif [[ ! -e "$fresh/$rel" ]]; then
            drift+=("stale    $committed/$rel (no longer generated)")
        elif ! cmp -s "$fresh/$rel" "$committed/$rel"; then
            drift+=("changed  $committed/$rel")
        fi
    done < <( { list_files "$fresh"; list_files "$committed"; } | LC_ALL=C sort -u)
done

if ((${#drift[@]})); then
    {
        echo "generated code is out of date with proto/ (${#drift[@]} file(s)):"
        printf '  %s\n' "${drift[@]}"
        echo "Run 'make gen' (scripts/gen.sh) and commit the result."
    } >&2
    exit 1
fi
echo "${GENERATED_DIRS[*]} are up to date with proto/"
