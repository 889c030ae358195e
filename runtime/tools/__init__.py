"""The tools port: what an agent needs from the tools it may call, independent of who serves them.

Adapter: :mod:`runtime.tools.mcp` (MCP servers over stdio and streamable HTTP, on the
official ``mcp`` SDK). Configuration: :mod:`runtime.tools.config` (the ``mcpServers`` JSON
file MCP hosts use, plus Switchboard's policies). The agent's side of the loop (asking the
LLM, validating arguments, approvals, events) is in ``services/reasoning/tool_loop.py``.

A :class:`ToolInfo` is one tool as the LLM sees it: a name unique across servers and valid
for OpenAI function names (``<server>__<tool>``, see :func:`llm_tool_name`), the server's
description and JSON Schema, its hints and the :class:`Policy` that applies.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class Policy(StrEnum):
    ALLOW = "allow"
    """Offered to the LLM and run when it asks."""
    DENY = "deny"
    """Never offered to the LLM."""
    APPROVE = "approve"
    """Offered; each call waits for a person's decision, and runs once with the approved arguments."""


class ServerState(StrEnum):
    STARTING = "starting"
    """The first connection attempt is under way."""
    UP = "up"
    DOWN = "down"
    """Not answering; the adapter keeps trying with backoff."""


@dataclass(frozen=True, slots=True)
class ToolInfo:
    name: str
    """The name offered to the LLM: unique, ``^[a-zA-Z0-9_-]{1,64}$``."""
    server: str
    tool: str
    """The tool's own name on its server."""
    description: str
    input_schema: Mapping[str, Any]
    policy: Policy
    read_only: bool = False
    """``readOnlyHint``: the tool does not change its environment (a hint from the server)."""
    destructive: bool = True
    """``destructiveHint`` (MCP's default is true for tools that are not read-only)."""
    idempotent: bool = False
    open_world: bool = True
    title: str = ""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a call returned, made fit for a prompt: text, never megabytes of base64."""

    text: str
    """What the LLM reads: text blocks, structured content as JSON, other blocks as short references."""
    is_error: bool = False
    """The tool reported an error (MCP ``isError``); the LLM sees it and may correct itself."""
    structured: Any = None
    """``structuredContent`` as the server sent it."""
    blocks: tuple[Mapping[str, Any], ...] = ()
    """One short description per content block (type, MIME type, size, URI), for history and views."""


@dataclass(frozen=True, slots=True)
class ServerStatus:
    name: str
    transport: str
    """``stdio`` or ``http``."""
    state: ServerState
    tools: tuple[ToolInfo, ...] = ()
    """Its tools when last listed (kept while it is down, so the card can still name them)."""
    error: str = ""
    """Why it is down (or why the last attempt failed)."""
    since: float = 0.0
    """Wall-clock time of the last state change."""
    server_info: str = ""
    """``name version`` as the server introduced itself."""
    retry_in: float = 0.0
    """Seconds until the next attempt, while down."""


class Toolbox(Protocol):
    """The tools of every configured server, kept connected."""

    async def start(self) -> None:
        """Begin connecting to every server; returns at once (a server that is down does not block)."""

    async def wait_started(self, time_limit: float) -> None:
        """Wait (at most ``time_limit`` seconds) until every server's first connection attempt has ended."""

    def tools(self) -> list[ToolInfo]:
        """The tools that can be called now (servers up), denied ones left out."""

    def find(self, name: str) -> ToolInfo | None:
        """The tool offered as ``name``, also when its server is down now (to say so)."""

    def servers(self) -> list[ServerStatus]: ...

    async def call(self, name: str, arguments: Mapping[str, Any], time_limit: float) -> ToolResult:
        """Call the tool offered as ``name``; raises :class:`~runtime.errors.ToolError` when it cannot.

        ``time_limit`` bounds the call itself (:class:`~runtime.errors.ToolTimeoutError`); waiting for a
        server that is being (re-)connected is bounded by the adapter's connect timeout.
        """

    async def aclose(self) -> None: ...


_INVALID = re.compile(r"[^a-zA-Z0-9_-]")
MAX_NAME = 64


def llm_tool_name(server: str, tool: str, taken: Collection[str] = ()) -> str:
    """``<server>__<tool>`` made valid for OpenAI (``^[a-zA-Z0-9_-]{1,64}$``) and unique among ``taken``.

    Other characters become ``_``; a name that is too long, or that collides with one already
    taken, is cut and given a short hash of the original pair, so the same pair always gets
    the same name.
    """
    name = _INVALID.sub("_", f"{server}__{tool}")
    if len(name) <= MAX_NAME and name not in taken:
        return name
    digest = hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"
