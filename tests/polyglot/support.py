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

    ``make test`` builds it before pytest starts; this covers pytest run on its own. A lock file
    keeps two xdist workers from building into the same directory at once, and a stamp of the
    sources' modification times skips the build when nothing changed.
    """
    sources = sorted(
        [*(ROOT / "gen/ts").rglob("*.ts"), *(ROOT / "examples/ts").rglob("*.ts"), *(ROOT / "agents").rglob("*.ts")]
    )
    stamp_text = "\n".join(f"{p.relative_to(ROOT)} {p.stat().st_mtime_ns}" for p in sources)
    stamp = BUILD / ".sources"
    (ROOT / ".build").mkdir(exist_ok=True)
    with open(ROOT / ".build" / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == stamp_text:
            return BUILD
        result = subprocess.run(
            ["bash", "scripts/build_ts.sh"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, f"scripts/build_ts.sh failed:\n{result.stdout}{result.stderr}"
        stamp.write_text(stamp_text)
    return BUILD


def env_with(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}
