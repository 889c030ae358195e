"""A tiny MCP server whose only job is to count calls, for the exactly-once tests.

Run as ``python -m tests.support.counting_mcp`` (stdio), with ``COUNTER_FILE`` naming a file.
``record(note)`` (not read-only, so approval by default) appends one JSON line per call to that
file and answers ``recorded #<n>: <note>``; the file outlives the server and the agent that
started it, so a test reads from it how many times the tool really ran, and with what.
``count()`` (read-only) answers how many calls were recorded. Everything else, the real
third-party servers cover (``mcp-server-time``, ``@modelcontextprotocol/server-everything``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("counter")


def _file() -> Path:
    return Path(os.environ["COUNTER_FILE"])


def _lines() -> list[str]:
    path = _file()
    return path.read_text().splitlines() if path.exists() else []


@server.tool(
    description="Record a note; every call is kept.",
    annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False),
)
def record(note: str) -> str:
    number = len(_lines()) + 1
    with _file().open("a") as out:
        out.write(json.dumps({"n": number, "note": note, "pid": os.getpid()}) + "\n")
    return f"recorded #{number}: {note}"


@server.tool(description="How many notes were recorded.", annotations=ToolAnnotations(read_only_hint=True))
def count() -> int:
    return len(_lines())


def recorded(path: Path) -> list[dict[str, object]]:
    """The calls recorded in ``path``, oldest first (for tests)."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


if __name__ == "__main__":
    server.run("stdio")
