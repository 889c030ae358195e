#!/usr/bin/env bash
# buf breaking check (FILE rules, see buf.yaml) of proto/ against a baseline
# commit:
#
#   buf breaking proto --against '.git#ref=<baseline>,subdir=proto'
#
# Baseline, first match wins:
#   1. $BUF_BREAKING_AGAINST, any git revision (e.g. a release tag or the
#      previously landed main) - use this when the caller knows it;
#   2. HEAD is not the tip of main: the merge base of HEAD and main (a
#      feature branch, or local commits on top of origin/main);
#   3. HEAD is the tip of main and proto/ or buf.yaml have uncommitted
#      changes: HEAD;
#   4. HEAD is the tip of main (e.g. CI in a fresh clone of main): HEAD^, so
#      the newest commit is checked against its parent.
# "main" is origin/main when it exists (fresh clones only have that), else
# the local main branch.
#
# Exits 0 with a "skipping" message when there is nothing to compare against:
# no commits, no main branch, a shallow clone without the baseline, or a
# baseline without .proto files under proto/ (the first landing).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$ROOT"

skip() {
    echo "buf breaking: skipping: $*"
    exit 0
}

git rev-parse --git-dir >/dev/null 2>&1 || skip "not a git checkout"
head="$(git rev-parse --verify -q HEAD^{commit})" || skip "no commits yet"

resolve() { git rev-parse --verify -q "$1^{commit}"; }

if [[ -n "${BUF_BREAKING_AGAINST:-}" ]]; then
    base="$(resolve "$BUF_BREAKING_AGAINST")" ||
        die "BUF_BREAKING_AGAINST=$BUF_BREAKING_AGAINST is not a commit here"
    why="BUF_BREAKING_AGAINST=$BUF_BREAKING_AGAINST"
else
    main_ref=""
    for ref in refs/remotes/origin/main refs/heads/main; do
        if resolve "$ref" >/dev/null; then
            main_ref="$ref"
            break
        fi
    done
    [[ -n "$main_ref" ]] || skip "no main branch yet"
    main="$(resolve "$main_ref")"

    if [[ "$head" != "$main" ]]; then
        base="$(git merge-base "$head" "$main")" ||
            skip "HEAD and ${main_ref#refs/} share no history (shallow clone?)"
        why="merge base of HEAD and ${main_ref#refs/}"
    elif [[ -n "$(git status --porcelain -- proto buf.yaml)" ]]; then
        base="$head"
        why="HEAD (uncommitted changes in proto/)"
    else
        base="$(resolve "$head^")" ||
            skip "HEAD is the tip of ${main_ref#refs/} and has no parent here (first commit, or shallow clone)"
        why="HEAD^ (HEAD is the tip of ${main_ref#refs/})"
    fi
fi

if ! git ls-tree -r --name-only "$base" -- proto | grep -q '\.proto$'; then
    skip "baseline $(git rev-parse --short "$base") ($why) has no .proto files under proto/ (first landing)"
fi

ensure_buf
echo "buf breaking: proto/ against $(git rev-parse --short "$base") ($why)"
"$BUF" breaking proto --against ".git#ref=$base,subdir=proto"
echo "buf breaking: no breaking changes"
