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

# The Go generators, pinned here and installed into .tools/bin with `go install`
# (scripts/setup.sh runs this too). `go install pkg@version` builds report no
# version, so a stamp file per version records what is there.
PROTOC_GEN_GO_VERSION="v1.36.12"      # google.golang.org/protobuf
PROTOC_GEN_GO_GRPC_VERSION="v1.6.2"   # google.golang.org/grpc/cmd/protoc-gen-go-grpc
ensure_go_plugins() {
    local bin="$ROOT/.tools/bin"
    mkdir -p "$bin"
    local name module version
    for name in protoc-gen-go protoc-gen-go-grpc; do
        if [[ "$name" == protoc-gen-go ]]; then
            module="google.golang.org/protobuf/cmd/protoc-gen-go" version="$PROTOC_GEN_GO_VERSION"
        else
            module="google.golang.org/grpc/cmd/protoc-gen-go-grpc" version="$PROTOC_GEN_GO_GRPC_VERSION"
        fi
        if [[ ! -x "$bin/$name" || ! -f "$bin/.$name-$version" ]]; then
            command -v go >/dev/null 2>&1 || die "$name is not installed and go is missing; install Go, then run 'make setup'"
            echo "installing $name $version into $bin" >&2
            GOBIN="$bin" go install "$module@$version" >&2 || die "'go install $module@$version' failed"
            rm -f "$bin/.$name-"* && touch "$bin/.$name-$version"
        fi
    done
}

# Every directory buf writes (and wipes first): the drift check compares these.
GENERATED_DIRS=(gen/python gen/ts gen/go/switchboard gen/go/lf)

# Run the three generations into the repository, or under $1 (buf's --output).
# buf.gen.yaml: Python and TypeScript; buf.gen.go.yaml: Go; buf.gen.a2a.yaml: Go
# stubs of the A2A contract, from the descriptor the pinned a2a-sdk ships
# (tools/a2a_descriptor.py).
generate_all() {
    local output=()
    [[ -n "${1:-}" ]] && output=(--output "$1")
    local image
    image="$(mktemp --suffix .binpb)"
    "$SWITCHBOARD_PYTHON" "$ROOT/tools/a2a_descriptor.py" "$image" || { rm -f "$image"; die "could not write the A2A descriptor set"; }
    local status=0
    if ! { "$BUF" generate "${output[@]}" &&
        "$BUF" generate "${output[@]}" --template buf.gen.go.yaml &&
        "$BUF" generate "$image" "${output[@]}" --template buf.gen.a2a.yaml --path a2a.proto; }; then
        status=1
    fi
    rm -f "$image"
    return $status
}
