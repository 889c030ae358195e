# Shared helpers for the proto scripts. Source it; do not execute it.
# Sets ROOT (repository root) and BUF (the project's pinned buf), and puts the
# project's Python first on PATH for tools/protoc-gen-grpcio.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

die() {
    echo "error: $*" >&2
    exit 1
}

# buf comes from the npm devDependency pinned in package.json/package-lock.json.
# $BUF overrides it (e.g. a buf installed elsewhere, same version please).
ensure_buf() {
    if [[ -n "${BUF:-}" ]]; then
        return
    fi
    BUF="$ROOT/node_modules/.bin/buf"
    if [[ ! -x "$BUF" ]]; then
        command -v npm >/dev/null 2>&1 || die "buf is not installed and npm is missing; install Node.js, then run 'npm ci' in $ROOT"
        echo "buf not installed; running 'npm ci' in $ROOT" >&2
        (cd "$ROOT" && npm ci --no-audit --no-fund >&2) || die "'npm ci' failed"
    fi
    [[ -x "$BUF" ]] || die "$BUF is missing after 'npm ci'"
}

# The generator plugin runs on the project's Python (grpcio-tools pinned in
# pyproject.toml). $SWITCHBOARD_PYTHON overrides the default .venv.
ensure_python() {
    local py="${SWITCHBOARD_PYTHON:-$ROOT/.venv/bin/python}"
    [[ -x "$py" ]] || die "$py not found; run 'uv sync' (or set SWITCHBOARD_PYTHON)"
    "$py" -c 'import grpc_tools' 2>/dev/null || die "grpcio-tools is not installed in $py; run 'uv sync'"
    export SWITCHBOARD_PYTHON="$py"
    PATH="$(dirname "$py"):$PATH"
    export PATH
}
