"""Starting ``daprd`` sidecars and the Redis they use, on one machine.

``switchboard serve <service> --dapr`` runs its service beside a ``daprd`` of its own,
and ``switchboard up --dapr`` starts Redis plus every service that way; the tests and
benchmarks start theirs through the same functions. In containers (docker-compose)
the sidecars are separate containers and none of this runs.

``daprd`` is the binary ``make setup`` builds (``.tools/bin/daprd``); ``SWITCHBOARD_DAPRD``
overrides the path. ``redis-server`` comes from the system (Debian's package).
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAPR_DIR = ROOT / "dapr"


REDIS_HOST_ENV = "SWITCHBOARD_REDIS_HOST"
"""What the Redis components of ``dapr/components`` read their address from (``envRef``)."""


class SidecarError(RuntimeError):
    """A sidecar or Redis could not be started; the message says what to do."""


@dataclass
class Sidecar:
    app_id: str
    grpc_port: int
    http_port: int
    metrics_port: int
    proc: subprocess.Popen[bytes]
    log_path: Path


def daprd_path() -> Path:
    path = Path(os.environ.get("SWITCHBOARD_DAPRD", ROOT / ".tools" / "bin" / "daprd"))
    if not path.is_file():
        raise SidecarError(f"daprd not found at {path}; `make setup` (or `make daprd`) builds it")
    return path


def redis_server_path() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise SidecarError("redis-server is not on PATH; `make setup` installs it (Debian package redis-server)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_daprd(
    app_id: str,
    resources: Sequence[Path],
    log_path: Path,
    *,
    config: Path | None = None,
    app_port: int = 0,
    app_protocol: str = "grpc",
    grpc_port: int = 0,
    redis_host: str = "localhost:6379",
    workdir: Path | None = None,
    graceful_shutdown_seconds: int = 5,
) -> Sidecar:
    """Start ``daprd`` for ``app_id``; :func:`wait_ready` tells when its APIs answer.

    The sidecar dies with the process that started it (see :func:`_dying_with_parent`), so
    a ``kill -9`` of a service does not leave its sidecar running.
    """
    binary = daprd_path()
    grpc_port = grpc_port or free_port()
    http_port, metrics_port = free_port(), free_port()
    argv = [
        str(binary),
        "--app-id", app_id,
        "--dapr-grpc-port", str(grpc_port),
        "--dapr-http-port", str(http_port),
        "--metrics-port", str(metrics_port),
        "--dapr-listen-addresses", "127.0.0.1",
        "--dapr-internal-grpc-listen-address", "127.0.0.1",
        "--metrics-listen-address", "127.0.0.1",
        "--dapr-graceful-shutdown-seconds", str(graceful_shutdown_seconds),
    ]  # fmt: skip
    for path in resources:
        argv += ["--resources-path", str(path.resolve())]
    if config is not None:
        argv += ["--config", str(config.resolve())]
    if app_port:
        argv += ["--app-port", str(app_port), "--app-protocol", app_protocol, "--app-channel-address", "127.0.0.1"]
    # The developer's own DAPR_* settings must not leak into a sidecar started here.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAPR_")}
    # dapr/components read the Redis address from here; an address set by hand wins.
    env.setdefault(REDIS_HOST_ENV, redis_host)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            _dying_with_parent(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir or log_path.parent,
            env=env,
        )
    return Sidecar(app_id, grpc_port, http_port, metrics_port, proc, log_path)


def wait_ready(sidecar: Sidecar, timeout: float = 30.0) -> None:
    """Block until the sidecar's components are loaded and its APIs answer.

    Waits on ``/v1.0/healthz/outbound`` (components ready), not ``/v1.0/healthz``: the
    latter also waits for the app, and the app needs the sidecar's state API to start.
    """
    url = f"http://127.0.0.1:{sidecar.http_port}/v1.0/healthz/outbound"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sidecar.proc.poll() is not None:
            raise SidecarError(
                f"daprd {sidecar.app_id} exited with {sidecar.proc.returncode}:\n{tail(sidecar.log_path)}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 204:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise SidecarError(f"daprd {sidecar.app_id}: {url} not ready after {timeout:g}s:\n{tail(sidecar.log_path)}")


def start_redis(port: int, workdir: Path, *, persistent: bool = False) -> subprocess.Popen[bytes]:
    """Start ``redis-server`` on ``port`` (loopback only) and wait until it answers PING.

    ``persistent`` keeps an append-only file in ``workdir`` (fsync every second), so
    state outlives a restart of Redis too; tests run it in memory.
    """
    binary = redis_server_path()
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)]
    argv += ["--appendonly", "yes", "--appendfsync", "everysec"] if persistent else ["--appendonly", "no"]
    log_path = workdir / "redis.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen(_dying_with_parent(argv), stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SidecarError(f"redis-server exited with {proc.returncode}:\n{tail(log_path)}")
        if redis_answers(port):
            return proc
        time.sleep(0.05)
    stop(proc)
    raise SidecarError(f"redis-server on port {port} not ready after 10s:\n{tail(log_path)}")


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _dying_with_parent(argv: list[str]) -> list[str]:
    """``argv`` run so that the kernel sends it SIGTERM when the process starting it dies.

    util-linux's ``setpriv --pdeathsig`` sets that before exec'ing the program. Doing it in a
    ``preexec_fn`` instead is not safe here: forking a process that runs gRPC threads aborts
    the child now and then.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv
