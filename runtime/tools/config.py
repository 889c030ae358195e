"""The tool servers' configuration: the ``mcpServers`` JSON file MCP hosts already use, plus policies.

The file is the one users paste from their MCP host (Claude Desktop, Cursor, VS Code...)::

    {
      "mcpServers": {
        "time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"]},
        "docs": {"url": "http://127.0.0.1:3001/mcp", "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}}
      },
      "switchboard": {
        "policies": {
          "docs": {"search": "allow", "delete_*": "deny", "*": "approve"},
          "*": {"drop_*": "deny"}
        }
      }
    }

A server is stdio (``command``, ``args``, ``env``, optional ``cwd``) or streamable HTTP
(``url``, ``headers``); an optional ``type`` (``stdio``, ``http``, ``streamable-http``) must
agree, ``sse`` is refused, ``"disabled": true`` skips the server, other keys are ignored.
``${VAR}`` and ``${VAR:-default}`` in commands, arguments, env values, URLs and header values
are read from the environment; a variable that is not set and has no default is an error.

Policies live under the top-level ``switchboard`` key, which MCP hosts ignore, so the same file
still works in them. Per server (or ``*`` for all), tool name or glob → ``allow`` | ``deny`` |
``approve``. For a tool, the server's own rules are read first (its exact name, then the globs in
the order written), then the ``*`` rules the same way; without a match, a tool the server marks
read-only (``readOnlyHint``) is ``allow`` and any other ``approve``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError
from runtime.tools import Policy

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_HTTP_TYPES = frozenset({"http", "streamable-http", "streamable_http", "streamablehttp"})


@dataclass(frozen=True, slots=True)
class ServerConfig:
    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str = ""
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"

    @property
    def target(self) -> str:
        """Where it runs, for logs and the banner (no headers, no environment: they may hold secrets)."""
        return self.url if self.url else " ".join([self.command, *self.args])


@dataclass(frozen=True, slots=True)
class PolicyRules:
    """``server (or *) -> [(tool name or glob, policy), ...]`` in the order written."""

    rules: Mapping[str, tuple[tuple[str, Policy], ...]] = field(default_factory=dict)

    def policy_for(self, server: str, tool: str, *, read_only: bool) -> Policy:
        for scope in (server, "*"):
            entries = self.rules.get(scope, ())
            for pattern, policy in entries:
                if pattern == tool:
                    return policy
            for pattern, policy in entries:
                if fnmatch.fnmatchcase(tool, pattern):
                    return policy
        return Policy.ALLOW if read_only else Policy.APPROVE


@dataclass(frozen=True, slots=True)
class ToolsConfig:
    path: str = ""
    servers: tuple[ServerConfig, ...] = ()
    policies: PolicyRules = field(default_factory=PolicyRules)


def load_tools_config(path: str | Path, environ: Mapping[str, str] | None = None) -> ToolsConfig:
    """Read and check the file at ``path``; every mistake is a :class:`ConfigError` naming where it is."""
    env = os.environ if environ is None else environ
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"MCP config {where}: cannot read it ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"MCP config {where}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from exc
    return parse_tools_config(data, env, where)


def parse_tools_config(data: Any, env: Mapping[str, str], where: str = "MCP config") -> ToolsConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the top level must be a JSON object")
    raw_servers = data.get("mcpServers", {})
    if not isinstance(raw_servers, dict):
        raise ConfigError(f"{where}: 'mcpServers' must be an object of server name -> server")
    servers = [
        _server(name, raw, env, where)
        for name, raw in raw_servers.items()
        if not (isinstance(raw, dict) and raw.get("disabled") is True)
    ]
    own = data.get("switchboard", {})
    if not isinstance(own, dict):
        raise ConfigError(f"{where}: 'switchboard' must be an object")
    unknown = set(own) - {"policies"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) under 'switchboard': {', '.join(sorted(unknown))}")
    return ToolsConfig(path=where, servers=tuple(servers), policies=_policies(own.get("policies", {}), where))


def _server(name: Any, raw: Any, env: Mapping[str, str], where: str) -> ServerConfig:
    at = f"{where}: server {name!r}"
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: server names must be non-empty strings")
    if not isinstance(raw, dict):
        raise ConfigError(f"{at} must be an object with 'command' (stdio) or 'url' (streamable HTTP)")
    kind = raw.get("type")
    if kind is not None and not isinstance(kind, str):
        raise ConfigError(f"{at}: 'type' must be a string")
    kind = (kind or "").lower()
    if kind == "sse":
        raise ConfigError(f"{at}: the SSE transport is not supported; use the server's streamable HTTP endpoint")
    has_command, has_url = "command" in raw, "url" in raw
    if has_command == has_url:
        raise ConfigError(f"{at} needs exactly one of 'command' (stdio) or 'url' (streamable HTTP)")
    if kind and ((kind == "stdio") != has_command or (kind != "stdio" and kind not in _HTTP_TYPES)):
        raise ConfigError(f"{at}: 'type' {kind!r} does not match its {'command' if has_command else 'url'}")
    if has_command:
        command = _expand(_string(raw["command"], f"{at}: 'command'"), env, f"{at}: 'command'")
        if not command:
            raise ConfigError(f"{at}: 'command' is empty")
        args = raw.get("args", [])
        if not isinstance(args, list):
            raise ConfigError(f"{at}: 'args' must be a list of strings")
        return ServerConfig(
            name=name,
            command=command,
            args=tuple(_expand(_string(a, f"{at}: 'args'"), env, f"{at}: 'args'") for a in args),
            env=_string_map(raw.get("env", {}), env, f"{at}: 'env'"),
            cwd=_expand(_string(raw.get("cwd", ""), f"{at}: 'cwd'"), env, f"{at}: 'cwd'"),
        )
    url = _expand(_string(raw["url"], f"{at}: 'url'"), env, f"{at}: 'url'")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{at}: 'url' must be an http:// or https:// URL, not {url!r}")
    return ServerConfig(name=name, url=url, headers=_string_map(raw.get("headers", {}), env, f"{at}: 'headers'"))


def _policies(raw: Any, where: str) -> PolicyRules:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: 'switchboard.policies' must be an object of server (or '*') -> rules")
    rules: dict[str, tuple[tuple[str, Policy], ...]] = {}
    for server, entries in raw.items():
        if not isinstance(entries, dict):
            raise ConfigError(f"{where}: policies for {server!r} must be an object of tool name or glob -> policy")
        parsed = []
        for pattern, value in entries.items():
            try:
                parsed.append((pattern, Policy(value)))
            except ValueError:
                raise ConfigError(
                    f"{where}: policy {value!r} for {server!r} tool {pattern!r} must be allow, deny or approve"
                ) from None
        rules[server] = tuple(parsed)
    return PolicyRules(rules)


def _string(value: Any, at: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{at} must be a string, not {type(value).__name__}")
    return value


def _string_map(value: Any, env: Mapping[str, str], at: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{at} must be an object of name -> string")
    return {str(k): _expand(_string(v, f"{at} {k!r}"), env, f"{at} {k!r}") for k, v in value.items()}


def _expand(text: str, env: Mapping[str, str], at: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is not None:
            return value
        if default is not None:
            return default
        raise ConfigError(f"{at}: environment variable {name} is not set (write ${{{name}:-default}} for a default)")

    return _VAR.sub(replace, text)
