"""Real Redis and daprd processes for tests: one launcher shared by every Dapr-backed suite.

Missing binaries fail the caller with a pointer to ``make setup``; nothing is ever skipped,
so a green run means the Dapr side really ran.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.platform import ROOT, free_port

DAPRD = ROOT / ".tools" / "bin" / "daprd"


@dataclass
class Sidecar:
    app_id: str
    grpc_port: int
    http_port: int
    proc: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class DaprCluster:
    """One Redis and the sidecars started against it; :meth:`stop` ends them all."""

    redis_port: int
    sidecars: list[Sidecar] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        # Sidecars first: they hold connections to Redis.
        for proc in reversed(self.procs):
            _stop(proc)


def require_binaries(what: str) -> str:
    """The path of redis-server; fails the test run when it or daprd is missing."""
    redis_server = shutil.which("redis-server")
    missing = [name for name, ok in (("daprd", DAPRD.is_file()), ("redis-server", redis_server is not None)) if not ok]
    if missing or redis_server is None:
        pytest.fail(
            f"{what} need {' and '.join(missing)} (daprd at {DAPRD}, redis-server on PATH); `make setup` installs them",
            pytrace=False,
        )
    return redis_server


def start_redis(base: Path, what: str) -> DaprCluster:
    redis_server = require_binaries(what)
    port = free_port()
    log_path = base / "redis.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=base,
        )
    cluster = DaprCluster(redis_port=port, procs=[proc])
    _wait_redis(port, proc, log_path)
    return cluster


def start_sidecar(cluster: DaprCluster, base: Path, app_id: str, resources: Path) -> Sidecar:
    """Start a daprd for ``app_id`` on ``resources``; call :func:`wait_ready` before using it."""
    workdir = base / app_id
    workdir.mkdir(exist_ok=True)
    grpc_port, http_port, metrics_port = free_port(), free_port(), free_port()
    # The developer's own DAPR_* settings must not reach the sidecar under test.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAPR_")}
    log_path = base / f"{app_id}.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(DAPRD),
                "--app-id", app_id,
                "--dapr-grpc-port", str(grpc_port),
                "--dapr-http-port", str(http_port),
                "--metrics-port", str(metrics_port),
                "--resources-path", str(resources),
                "--dapr-listen-addresses", "127.0.0.1",
                "--dapr-internal-grpc-listen-address", "127.0.0.1",
                "--metrics-listen-address", "127.0.0.1",
                # Nothing to flush: do not wait out the default 5 s on SIGTERM.
                "--dapr-graceful-shutdown-seconds", "1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=env,
        )  # fmt: skip
    cluster.procs.append(proc)
    sidecar = Sidecar(app_id, grpc_port, http_port, proc, log_path)
    cluster.sidecars.append(sidecar)
    return sidecar


def wait_ready(sidecar: Sidecar, timeout: float = 30.0) -> None:
    url = f"http://127.0.0.1:{sidecar.http_port}/v1.0/healthz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sidecar.proc.poll() is not None:
            pytest.fail(f"daprd {sidecar.app_id} exited with {sidecar.proc.returncode}:\n{_tail(sidecar.log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 204:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    pytest.fail(f"daprd {sidecar.app_id}: {url} not 204 after {timeout}s:\n{_tail(sidecar.log_path)}")


def _wait_redis(port: int, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"redis-server exited with {proc.returncode}:\n{_tail(log_path)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    pytest.fail(f"redis-server on port {port} not ready after {timeout}s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
