#!/usr/bin/env bash
# Builds daprd, the Dapr sidecar, from source with the Go toolchain and puts it at .tools/bin/daprd.
#
# Dapr ships daprd as a prebuilt download, which this project cannot fetch; `go install
# github.com/dapr/dapr/cmd/daprd@vX` is refused because dapr's go.mod has replace directives.
# So tools/daprd is a wrapper module of our own that requires dapr at the pinned version, repeats
# its replace block and pins every dependency in go.sum. The build registers only the components
# listed in tools/daprd/components/components.go (see that file), which keeps the download, the
# compile and the binary small.
#
# The binary is built once per machine into a cache keyed by the Dapr version
#   ${SWITCHBOARD_DAPRD_CACHE:-$HOME/.cache/switchboard/daprd}/v<version>/daprd
# and rebuilt only when it is missing, does not report the pinned version, or was built from other
# inputs (Go version, go.mod, go.sum, the component list, the build flags). Then it is linked
# into .tools/bin.
#
#   scripts/build_daprd.sh                   build if needed, link into .tools/bin
#   scripts/build_daprd.sh --refresh-go-sum  let `go build` update tools/daprd/go.mod and go.sum
#                                            (after changing the version or the component list)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Keep in step with the `require github.com/dapr/dapr` line of tools/daprd/go.mod.
DAPR_VERSION="1.18.2"
DAPR_COMMIT="d2dd3747145e38e4d85db4714e26d7569c9c37db" # the v1.18.2 tag, for `daprd --build-info`

MODULE_DIR="$ROOT/tools/daprd"
CACHE_DIR="${SWITCHBOARD_DAPRD_CACHE:-$HOME/.cache/switchboard/daprd}/v$DAPR_VERSION"
BIN="$CACHE_DIR/daprd"
KEY_FILE="$CACHE_DIR/daprd.inputs"
LDFLAGS="-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=$DAPR_VERSION"
LDFLAGS+=" -X github.com/dapr/dapr/pkg/buildinfo.gitversion=v$DAPR_VERSION"
LDFLAGS+=" -X github.com/dapr/dapr/pkg/buildinfo.gitcommit=$DAPR_COMMIT"

die() {
    echo "error: $*" >&2
    exit 1
}

mod_flag="-mod=readonly"
case "${1:-}" in
    "") ;;
    --refresh-go-sum) mod_flag="-mod=mod" ;;
    *) die "unknown argument: $1 (usage: $0 [--refresh-go-sum])" ;;
esac

command -v go >/dev/null 2>&1 || die "the Go toolchain is needed to build daprd (go 1.26.5 or newer)"
grep -q "^require github.com/dapr/dapr v$DAPR_VERSION\$" "$MODULE_DIR/go.mod" \
    || grep -q "^[[:space:]]github.com/dapr/dapr v$DAPR_VERSION\$" "$MODULE_DIR/go.mod" \
    || die "tools/daprd/go.mod does not require github.com/dapr/dapr v$DAPR_VERSION"

# What the binary is built from. A change to any of these rebuilds it.
inputs_key() {
    {
        echo "dapr $DAPR_VERSION; ldflags $LDFLAGS; tags switchboard_daprd; CGO_ENABLED=0 -trimpath"
        go env GOVERSION GOOS GOARCH
        cat "$MODULE_DIR/go.mod" "$MODULE_DIR/components/components.go"
        if [[ -f "$MODULE_DIR/go.sum" ]]; then cat "$MODULE_DIR/go.sum"; fi
    } | sha256sum | cut -d' ' -f1
}

reports_version() {
    [[ -x "$1" ]] && [[ "$("$1" --version 2>/dev/null)" == "$DAPR_VERSION" ]]
}

key="$(inputs_key)"
if [[ "$mod_flag" == "-mod=mod" ]] || ! reports_version "$BIN" \
    || [[ "$(cat "$KEY_FILE" 2>/dev/null)" != "$key" ]]; then
    mkdir -p "$CACHE_DIR"
    tmp="$(mktemp -d "$CACHE_DIR/build.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    echo "building daprd $DAPR_VERSION from source (a few minutes on 2 cores; cached in $CACHE_DIR)"
    start=$SECONDS
    (
        cd "$MODULE_DIR"
        # daprd's cmd/daprd/components/zz_notag.go is compiled when neither the stablecomponents
        # nor the allcomponents tag is set, and panics at start-up to ask for one of them. Go
        # refuses -overlay for files in the module cache, so the build uses a scratch copy of the
        # (checksum-verified) dapr module with our component list in that file's place, through
        # a scratch go.mod (-modfile) that adds one replace directive; -tags switchboard_daprd
        # selects our file. Every other module still comes from the module cache, checked
        # against tools/daprd/go.sum.
        info="$(go mod download -json "github.com/dapr/dapr@v$DAPR_VERSION")"
        field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\$/\1/p" <<<"$info"; }
        pins=$'github.com/dapr/dapr v'"$DAPR_VERSION $(field Sum)"$'\ngithub.com/dapr/dapr v'"$DAPR_VERSION/go.mod $(field GoModSum)"
        if [[ "$mod_flag" == "-mod=mod" ]]; then
            touch go.sum
            grep -vF "github.com/dapr/dapr v$DAPR_VERSION" go.sum > "$tmp/go.sum" || true
            printf '%s\n' "$pins" >> "$tmp/go.sum"
            LC_ALL=C sort -o go.sum "$tmp/go.sum"
        fi
        while IFS= read -r pin; do
            grep -qxF "$pin" go.sum || die "tools/daprd/go.sum does not pin '$pin'"
        done <<<"$pins"

        cp -R "$(field Dir)" "$tmp/dapr"
        chmod -R u+w "$tmp/dapr"
        notag="$tmp/dapr/cmd/daprd/components/zz_notag.go"
        [[ -f "$notag" ]] || die "cmd/daprd/components/zz_notag.go not found: dapr changed its layout, update scripts/build_daprd.sh"
        cp components/components.go "$notag"
        cp go.mod "$tmp/go.mod"
        cp go.sum "$tmp/go.sum"
        printf 'replace github.com/dapr/dapr => %s\n' "$tmp/dapr" >> "$tmp/go.mod"

        CGO_ENABLED=0 go build $mod_flag -modfile="$tmp/go.mod" -trimpath -tags switchboard_daprd \
            -ldflags "$LDFLAGS" \
            -o "$tmp/daprd" github.com/dapr/dapr/cmd/daprd

        if [[ "$mod_flag" == "-mod=mod" ]]; then
            # Keep what `go build` added (requirements, checksums), drop the scratch replace.
            grep -vF "github.com/dapr/dapr => $tmp/dapr" "$tmp/go.mod" > go.mod
            cp "$tmp/go.sum" go.sum
        fi
    )
    reports_version "$tmp/daprd" \
        || die "the daprd just built reports '$("$tmp/daprd" --version 2>&1 | head -1)', not $DAPR_VERSION"
    mv -f "$tmp/daprd" "$BIN"
    # --refresh-go-sum may have changed go.mod/go.sum: key the binary by what it was built from.
    inputs_key > "$KEY_FILE"
    echo "built daprd $DAPR_VERSION in $((SECONDS - start)) s ($(du -h "$BIN" | cut -f1))"
fi

# A hard link costs no space and survives the cache being cleared; copy across file systems.
mkdir -p .tools/bin
rm -f .tools/bin/daprd
ln "$BIN" .tools/bin/daprd 2>/dev/null || cp "$BIN" .tools/bin/daprd
echo "daprd $(.tools/bin/daprd --version) at .tools/bin/daprd (cached in $CACHE_DIR)"
