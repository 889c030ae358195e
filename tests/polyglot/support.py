"""Helpers of the polyglot tests: the Go and Node toolchains, and the compiled TypeScript."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

from tests.support.platform import ROOT

BUILD = ROOT / ".build" / "ts"


def tool(name: str) -> str:
    """The path of ``go`` or ``node``; a missing toolchain fails the test (make setup needs both)."""
    found = shutil.which(name)
    assert found is not None, f"{name} is not on PATH: the polyglot tests need Go and Node (docs/clients.md)"
    return found


def build_typescript() -> Path:
    """Compile the TypeScript once per test run (scripts/build_ts.sh, as ``make ts`` does).

    ``make test`` builds it before pytest starts; this covers pytest run on its own, or after a
    source changed: the build is redone when a source is newer than the build's last file
    (``package.json``, written last). A lock file keeps two xdist workers from building into the
    same directory at once.
    """
    sources = [
        *(ROOT / "gen/ts").rglob("*.ts"),
        *(ROOT / "examples/ts").rglob("*.ts"),
        *(ROOT / "agents").rglob("*.ts"),
    ]
    sources.append(ROOT / "tsconfig.json")
    newest = max(p.stat().st_mtime_ns for p in sources)
    done = BUILD / "package.json"
    (ROOT / ".build").mkdir(exist_ok=True)
    with open(ROOT / ".build" / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists() and done.stat().st_mtime_ns > newest:
            return BUILD
        result = subprocess.run(
            ["bash", "scripts/build_ts.sh"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, f"scripts/build_ts.sh failed:\n{result.stdout}{result.stderr}"
    return BUILD


def env_with(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}
