"""Real Redis and daprd processes for tests, started through :mod:`runtime.sidecar`.

The same functions start the sidecars of ``switchboard serve --dapr``; this module only
groups what a test started so one call stops it all, and turns a launch failure into a
test failure. Missing binaries fail the caller with a pointer to ``make setup``; nothing
is ever skipped, so a green run means the Dapr side really ran.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runtime import sidecar as launcher
from runtime.sidecar import Sidecar

__all__ = ["DaprCluster", "Sidecar", "require_binaries", "start_redis", "start_sidecar", "wait_ready"]


@dataclass
class DaprCluster:
    """One Redis and the sidecars started against it; :meth:`stop` ends them all."""

    redis_port: int
    sidecars: list[Sidecar] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        # Sidecars first: they hold connections to Redis.
        for proc in reversed(self.procs):
            launcher.stop(proc)


def require_binaries(what: str) -> str:
    """The path of redis-server; fails the test run when it or daprd is missing."""
    try:
        launcher.daprd_path()
        return launcher.redis_server_path()
    except launcher.SidecarError as exc:
        pytest.fail(f"{what}: {exc}", pytrace=False)


def start_redis(base: Path, what: str) -> DaprCluster:
    require_binaries(what)
    port = launcher.free_port()
    try:
        proc = launcher.start_redis(port, base)
    except launcher.SidecarError as exc:
        pytest.fail(str(exc), pytrace=False)
    return DaprCluster(redis_port=port, procs=[proc])


def start_sidecar(cluster: DaprCluster, base: Path, app_id: str, resources: Path) -> Sidecar:
    """Start a daprd for ``app_id`` on ``resources``; call :func:`wait_ready` before using it."""
    workdir = base / app_id
    workdir.mkdir(exist_ok=True)
    # Nothing to flush: do not wait out the default seconds on SIGTERM.
    sidecar = launcher.start_daprd(
        app_id,
        [resources],
        base / f"{app_id}.log",
        redis_host=f"127.0.0.1:{cluster.redis_port}",
        workdir=workdir,
        graceful_shutdown_seconds=1,
    )
    cluster.procs.append(sidecar.proc)
    cluster.sidecars.append(sidecar)
    return sidecar


def wait_ready(sidecar: Sidecar, timeout: float = 30.0) -> None:
    try:
        launcher.wait_ready(sidecar, timeout)
    except launcher.SidecarError as exc:
        pytest.fail(str(exc), pytrace=False)
