"""The tools port on MCP: the tools of every configured server, on the official ``mcp`` SDK.

:class:`McpToolbox` keeps one :class:`~runtime.tools.mcp_session.ServerSession` per server in
the config (stdio or streamable HTTP, kept open, re-opened when it dies: see that module), names
their tools for the LLM (``<server>__<tool>``), and calls them with a time limit. What a call
returns is made fit for a prompt by :func:`to_result`: text as it is, structured content as
JSON, images, audio and binary resources as short references, never megabytes of base64.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mcp_types as types

from runtime import metrics
from runtime.errors import ToolError, ToolTimeoutError, ToolUnavailableError
from runtime.tools import Policy, ServerState, ServerStatus, ToolInfo, ToolResult, llm_tool_name
from runtime.tools.config import ToolsConfig
from runtime.tools.mcp_session import ServerSession


class McpToolbox:
    """:class:`runtime.tools.Toolbox` over the MCP servers of one config."""

    def __init__(
        self,
        config: ToolsConfig,
        *,
        connect_timeout: float = 30.0,
        log_dir: Path | None = None,
        max_result_chars: int = 16_000,
    ) -> None:
        self._servers = {
            s.name: ServerSession(s, config.policies, connect_timeout, log_dir, on_listed=self._relisted)
            for s in config.servers
        }
        self._max_chars = max_result_chars
        self._names: dict[str, tuple[ServerSession, str]] = {}
        self._infos: dict[str, ToolInfo] = {}

    async def start(self) -> None:
        for server in self._servers.values():
            server.start()

    async def wait_started(self, time_limit: float) -> None:
        pending = [s.attempted.wait() for s in self._servers.values() if not s.attempted.is_set()]
        if pending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(time_limit):
                    await asyncio.gather(*pending)

    def tools(self) -> list[ToolInfo]:
        return [
            info
            for info in self._infos.values()
            if info.policy is not Policy.DENY and self._servers[info.server].state is ServerState.UP
        ]

    def find(self, name: str) -> ToolInfo | None:
        return self._infos.get(name)

    def servers(self) -> list[ServerStatus]:
        return [s.status() for s in self._servers.values()]

    @metrics.timed(lambda i: i.tool_duration, lambda self, name, *_: self._tool_attributes(name))
    async def call(self, name: str, arguments: Mapping[str, Any], time_limit: float) -> ToolResult:
        found = self._names.get(name)
        info = self._infos.get(name)
        if found is None or info is None or info.policy is Policy.DENY:
            raise ToolUnavailableError(f"there is no tool named {name!r}")
        server, tool = found
        try:
            result = await server.call(tool, dict(arguments), read_only=info.read_only, time_limit=time_limit)
        except TimeoutError:
            raise ToolTimeoutError(f"{name} did not answer within {time_limit:g} s; the call was cancelled") from None
        except ToolError:
            raise
        except Exception as exc:  # the SDK's own (a malformed result, a transport fault): one clear error
            raise ToolError(f"{name} failed: {type(exc).__name__}: {exc}") from exc
        return to_result(result, self._max_chars)

    def _tool_attributes(self, name: str) -> dict[str, str]:
        # A name the LLM made up is not a label value: the set of labels stays the configured tools.
        return {"mcp.method.name": "tools/call", "gen_ai.tool.name": name if name in self._names else "_unknown"}

    async def aclose(self) -> None:
        await asyncio.gather(*(s.stop() for s in self._servers.values()))

    def _relisted(self) -> None:
        """Rebuild the LLM-facing names after a server's tool list changed (config order, then listing order)."""
        names: dict[str, tuple[ServerSession, str]] = {}
        infos: dict[str, ToolInfo] = {}
        for server in self._servers.values():
            for tool in server.listed:
                name = llm_tool_name(server.config.name, tool.name, names)
                names[name] = (server, tool.name)
                infos[name] = server.info(name, tool)
        self._names, self._infos = names, infos
        for server in self._servers.values():
            server.tools = tuple(i for i in infos.values() if i.server == server.config.name)


def to_result(result: types.CallToolResult, max_chars: int) -> ToolResult:
    """Text for the LLM from MCP content blocks: text as is, structured content as JSON, the rest as references."""
    texts: list[str] = []
    blocks: list[dict[str, Any]] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            texts.append(block.text)
            blocks.append({"type": "text", "chars": len(block.text)})
        elif isinstance(block, types.ImageContent | types.AudioContent):
            size = len(block.data) * 3 // 4
            texts.append(f"[{block.type} {block.mime_type}, {size} bytes, not shown]")
            blocks.append({"type": block.type, "mime_type": block.mime_type, "bytes": size})
        elif isinstance(block, types.ResourceLink):
            texts.append(
                f"[resource link {block.name}: {block.uri}" + (f" ({block.mime_type})]" if block.mime_type else "]")
            )
            blocks.append({"type": "resource_link", "uri": str(block.uri), "name": block.name})
        elif isinstance(block, types.EmbeddedResource):
            resource = block.resource
            uri = str(resource.uri)
            if isinstance(resource, types.TextResourceContents):
                texts.append(f"[resource {uri}]\n{resource.text}")
                blocks.append({"type": "resource", "uri": uri, "chars": len(resource.text)})
            else:
                size = len(resource.blob) * 3 // 4
                texts.append(f"[resource {uri} {resource.mime_type or ''}, {size} bytes, not shown]")
                blocks.append({"type": "resource", "uri": uri, "mime_type": resource.mime_type, "bytes": size})
    structured = result.structured_content
    if structured is not None and not any(_same_json(t, structured) for t in texts):
        texts.append(json.dumps(structured, ensure_ascii=False))
    text = "\n".join(texts) if texts else "(the tool returned no content)"
    if len(text) > max_chars:
        text = f"{text[:max_chars]}… [{len(text) - max_chars} more characters not shown]"
    return ToolResult(text=text, is_error=result.is_error, structured=structured, blocks=tuple(blocks))


def _same_json(text: str, value: Any) -> bool:
    """Whether a text block already says what the structured content holds (as JSON, or as the
    one value SDKs wrap a plain return in: ``{"result": ...}``)."""
    if isinstance(value, dict) and len(value) == 1:
        (inner,) = value.values()
        if inner == text or (not isinstance(inner, str) and _same_json(text, inner)):
            return True
    try:
        return bool(json.loads(text) == value)
    except ValueError:
        return False
