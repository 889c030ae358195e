"""The third-party MCP servers the tool tests run as real processes, and how to find and kill them.

- ``mcp-server-time`` (PyPI, in the venv): stdio; ``--local-timezone`` fixes its zone.
- ``@modelcontextprotocol/server-everything`` (npm, pinned in ``package-lock.json``): stdio, or
  streamable HTTP at ``http://127.0.0.1:<PORT>/mcp`` (its own ``PORT`` variable; it listens on
  every interface, the tests only ever call it on loopback).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TIME = str(ROOT / ".venv" / "bin" / "mcp-server-time")
EVERYTHING = str(ROOT / "node_modules" / ".bin" / "mcp-server-everything")


def time_server(zone: str = "UTC") -> dict[str, Any]:
    return {"command": TIME, "args": ["--local-timezone", zone]}


def everything_stdio() -> dict[str, Any]:
    return {"command": EVERYTHING, "args": ["stdio"]}


def counter_stdio(counter_file: Path) -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": ["-m", "tests.support.counting_mcp"],
        "cwd": str(ROOT),
        "env": {"COUNTER_FILE": str(counter_file), "PYTHONPATH": str(ROOT)},
    }


def start_everything_http(port: int, log: Path) -> subprocess.Popen[bytes]:
    """server-everything over streamable HTTP on ``port``; returns once it accepts connections."""
    out = log.open("ab")
    proc = subprocess.Popen(
        [EVERYTHING, "streamableHttp"], env={**os.environ, "PORT": str(port)}, stdout=out, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server-everything exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise TimeoutError(f"server-everything did not listen on {port}")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        proc.wait(timeout=10)


def kill(pid: int) -> None:
    """``kill -9`` a process that is not ours to wait for (an agent's MCP child)."""
    os.kill(pid, signal.SIGKILL)


def children(parent: int, *, containing: str) -> list[int]:
    """Live processes whose parent is ``parent`` and whose command line contains ``containing``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent and fields[0] != "Z" and containing in cmdline:
            found.append(int(entry))
    return found


def wait_for(predicate: Any, within: float = 20.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(every)
