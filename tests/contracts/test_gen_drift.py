"""gen/python, gen/ts and gen/go match proto/, and the generation pipeline behaves as documented."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "tools" / "protoc-gen-grpcio"
GEN = ROOT / "gen" / "python"
PROTOS = sorted(p.relative_to(ROOT / "proto").as_posix() for p in (ROOT / "proto").rglob("*.proto"))


def _buf() -> str:
    """The project's buf, installed with `npm ci` by the scripts' helper if needed."""
    buf = os.environ.get("BUF") or str(ROOT / "node_modules" / ".bin" / "buf")
    if os.access(buf, os.X_OK):
        return buf
    if shutil.which("npm") is None:
        pytest.skip("buf is not installed (npm ci) and npm is unavailable")
    ensure = _run(
        ["bash", "-c", 'source scripts/lib/common.sh && ensure_buf && echo "$BUF"'],
        ROOT,
    )
    assert ensure.returncode == 0, ensure.stderr
    return ensure.stdout.strip().splitlines()[-1]


def _script_env() -> dict[str, str]:
    env = dict(os.environ)
    env["SWITCHBOARD_PYTHON"] = sys.executable
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_generated_code_is_up_to_date() -> None:
    _buf()
    result = _run(["bash", "scripts/check_gen.sh"], ROOT, env=_script_env())
    assert result.returncode == 0, (
        "generated code drifted from proto/; run `make gen`:\n" + result.stdout + result.stderr
    )
    assert "up to date" in result.stdout


def test_drift_check_names_drifted_files(tmp_path: Path) -> None:
    buf = _buf()
    for name in ("proto", "gen", "scripts", "tools"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("buf.yaml", "buf.gen.yaml", "buf.gen.go.yaml", "buf.gen.a2a.yaml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    # The installed generators (protoc-gen-es from npm, the Go plugins from `go install`).
    for name in ("node_modules", ".tools"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = _script_env() | {"BUF": buf}

    usage = tmp_path / "proto" / "switchboard" / "v1" / "usage.proto"
    usage.write_text(
        usage.read_text().replace(
            "  bool estimated = 8;\n",
            "  bool estimated = 8;\n  // Added.\n  string note = 99;\n",
        )
    )
    stale = tmp_path / "gen" / "python" / "switchboard" / "v1" / "removed_pb2.py"
    stale.write_text("# left behind by a deleted proto\n")
    stale_go = tmp_path / "gen" / "go" / "switchboard" / "v1" / "removed.pb.go"
    stale_go.write_text("package switchboardv1\n")
    a2a_go = tmp_path / "gen" / "go" / "lf" / "a2a" / "v1" / "a2a.pb.go"
    a2a_go.write_text(a2a_go.read_text() + "// edited by hand\n")

    result = _run(["bash", "scripts/check_gen.sh"], tmp_path, env=env)
    assert result.returncode == 1
    assert "changed  gen/python/switchboard/v1/usage_pb2.py" in result.stderr
    assert "changed  gen/python/switchboard/v1/usage_pb2.pyi" in result.stderr
    assert "stale    gen/python/switchboard/v1/removed_pb2.py" in result.stderr
    assert "changed  gen/go/switchboard/v1/usage.pb.go" in result.stderr
    assert "changed  gen/ts/switchboard/v1/usage_pb.ts" in result.stderr
    assert "stale    gen/go/switchboard/v1/removed.pb.go" in result.stderr
    assert "changed  gen/go/lf/a2a/v1/a2a.pb.go" in result.stderr
    assert "plan_pb2" not in result.stderr and "plan.pb.go" not in result.stderr

    # gen.sh repairs both kinds of drift (clean: true removes the stale file).
    regen = _run(["bash", "scripts/gen.sh"], tmp_path, env=env)
    assert regen.returncode == 0, regen.stderr
    assert not stale.exists() and not stale_go.exists()
    assert "note" in (tmp_path / "gen/python/switchboard/v1/usage_pb2.pyi").read_text()
    assert "Note string" in (tmp_path / "gen/go/switchboard/v1/usage.pb.go").read_text()
    assert "note: string" in (tmp_path / "gen/ts/switchboard/v1/usage_pb.ts").read_text()
    # go.mod and go.sum are not generated: the Go templates wipe only their own directories.
    assert (tmp_path / "gen/go/go.mod").exists() and (tmp_path / "gen/go/go.sum").exists()
    assert _run(["bash", "scripts/check_gen.sh"], tmp_path, env=env).returncode == 0


def test_committed_code_equals_plain_grpc_tools_protoc(tmp_path: Path) -> None:
    """The buf plugin adds nothing of its own to protoc's modules."""
    result = _run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-Iproto",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *PROTOS,
        ],
        ROOT,
    )
    assert result.returncode == 0, result.stderr
    compared = 0
    for produced in sorted(tmp_path.rglob("*.py*")):
        rel = produced.relative_to(tmp_path)
        committed = GEN / rel
        if rel.name.endswith("_pb2_grpc.py") and not committed.exists():
            # Only files that declare services keep their _pb2_grpc module.
            assert "class " not in produced.read_text(), rel
            continue
        assert committed.read_bytes() == produced.read_bytes(), rel
        compared += 1
    assert compared >= 2 * len(PROTOS)
    # Package markers are the only files the plugin adds.
    for marker in (
        "switchboard/__init__.py",
        "switchboard/v1/__init__.py",
        "switchboard/py.typed",
    ):
        assert (GEN / marker).read_bytes() == b""


def _plugin(
    request: plugin_pb2.CodeGeneratorRequest,
) -> plugin_pb2.CodeGeneratorResponse:
    result = subprocess.run(
        [sys.executable, str(PLUGIN)],
        input=request.SerializeToString(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    return plugin_pb2.CodeGeneratorResponse.FromString(result.stdout)


def _tiny_request(parameter: str = "") -> plugin_pb2.CodeGeneratorRequest:
    from google.protobuf import duration_pb2

    wkt = descriptor_pb2.FileDescriptorProto()
    duration_pb2.DESCRIPTOR.CopyToProto(wkt)
    demo = descriptor_pb2.FileDescriptorProto(
        name="demo/v1/ping.proto",
        package="demo.v1",
        syntax="proto3",
        dependency=["google/protobuf/duration.proto"],
    )
    msg = demo.message_type.add(name="PingRequest")
    msg.field.add(
        name="wait_for",
        number=1,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        type_name=".google.protobuf.Duration",
        json_name="waitFor",
    )
    demo.message_type.add(name="PingResponse")
    demo.service.add(name="PingService").method.add(
        name="Ping",
        input_type=".demo.v1.PingRequest",
        output_type=".demo.v1.PingResponse",
    )
    return plugin_pb2.CodeGeneratorRequest(file_to_generate=[demo.name], parameter=parameter, proto_file=[wkt, demo])


def test_plugin_protocol() -> None:
    response = _plugin(_tiny_request("grpcio_tools_version=" + _grpcio_tools_version()))
    assert not response.error
    assert response.supported_features & plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    files = {f.name: f.content for f in response.file}
    assert sorted(files) == [
        "demo/__init__.py",
        "demo/py.typed",
        "demo/v1/__init__.py",
        "demo/v1/ping_pb2.py",
        "demo/v1/ping_pb2.pyi",
        "demo/v1/ping_pb2_grpc.py",
    ]
    assert "from google.protobuf import duration_pb2" in files["demo/v1/ping_pb2.py"]
    assert "'/demo.v1.PingService/Ping'" in files["demo/v1/ping_pb2_grpc.py"]

    no_markers = _plugin(_tiny_request("package_markers=false"))
    assert sorted(f.name for f in no_markers.file) == [
        "demo/v1/ping_pb2.py",
        "demo/v1/ping_pb2.pyi",
        "demo/v1/ping_pb2_grpc.py",
    ]


def _grpcio_tools_version() -> str:
    from importlib.metadata import version

    return version("grpcio-tools")


@pytest.mark.parametrize(
    ("parameter", "mutate", "message"),
    [
        ("grpcio_tools_version=0.0.1", None, "requires 0.0.1"),
        ("frobnicate=1", None, "unknown or malformed option 'frobnicate=1'"),
        ("", "missing_dependency", "grpc_tools.protoc failed"),
    ],
)
def test_plugin_reports_errors_in_response(parameter: str, mutate: str | None, message: str) -> None:
    request = _tiny_request(parameter)
    if mutate == "missing_dependency":
        del request.proto_file[0]  # google/protobuf/duration.proto
    response = _plugin(request)
    assert message in response.error
    assert not response.file
