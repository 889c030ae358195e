"""The MCP config file: the shape MCP hosts use, ${ENV} expansion, policies and every way it can be wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.errors import ConfigError
from runtime.tools import Policy, llm_tool_name
from runtime.tools.config import load_tools_config, parse_tools_config

DESKTOP = {
    "mcpServers": {
        "time": {"command": "mcp-server-time", "args": ["--local-timezone", "${TZ_NAME:-UTC}"]},
        "docs": {
            "type": "http",
            "url": "http://127.0.0.1:${DOCS_PORT}/mcp",
            "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"},
        },
        "old": {"command": "x", "disabled": True},
    },
    "globalShortcut": "Ctrl+Space",  # a host's own key: ignored
}


def test_a_pasted_host_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(DESKTOP))
    config = load_tools_config(path, {"DOCS_PORT": "3001", "DOCS_TOKEN": "s3cret"})
    time, docs = config.servers
    assert (time.name, time.transport, time.command, time.args) == (
        "time",
        "stdio",
        "mcp-server-time",
        ("--local-timezone", "UTC"),
    )
    assert (docs.transport, docs.url, dict(docs.headers)) == (
        "http",
        "http://127.0.0.1:3001/mcp",
        {"Authorization": "Bearer s3cret"},
    )
    assert "s3cret" not in docs.target and config.path == str(path)


def test_policies_exact_name_then_globs_then_star_then_read_only_hint() -> None:
    config = parse_tools_config(
        {
            "mcpServers": {},
            "switchboard": {
                "policies": {
                    "docs": {"delete_*": "deny", "delete_draft": "approve", "*": "allow"},
                    "*": {"drop_*": "deny", "search": "allow"},
                }
            },
        },
        {},
    )
    rules = config.policies
    assert rules.policy_for("docs", "delete_draft", read_only=False) is Policy.APPROVE  # exact beats glob
    assert rules.policy_for("docs", "delete_all", read_only=True) is Policy.DENY
    assert rules.policy_for("docs", "drop_table", read_only=False) is Policy.ALLOW  # the server's "*" first
    assert rules.policy_for("other", "drop_table", read_only=True) is Policy.DENY
    assert rules.policy_for("other", "search", read_only=False) is Policy.ALLOW
    assert rules.policy_for("other", "write", read_only=False) is Policy.APPROVE  # default: not read-only
    assert rules.policy_for("other", "read", read_only=True) is Policy.ALLOW  # default: readOnlyHint


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "top level must be a JSON object"),
        ({"mcpServers": []}, "'mcpServers' must be an object"),
        ({"mcpServers": {"a": {}}}, "needs exactly one of 'command'"),
        ({"mcpServers": {"a": {"command": "x", "url": "http://h"}}}, "needs exactly one of 'command'"),
        ({"mcpServers": {"a": {"command": "x", "args": "y"}}}, "'args' must be a list"),
        ({"mcpServers": {"a": {"command": "x", "args": [1]}}}, "'args' must be a string"),
        ({"mcpServers": {"a": {"command": "x", "env": {"K": 1}}}}, "'env' 'K' must be a string"),
        ({"mcpServers": {"a": {"url": "ftp://h"}}}, "must be an http:// or https:// URL"),
        ({"mcpServers": {"a": {"url": "http://h", "type": "sse"}}}, "SSE transport is not supported"),
        ({"mcpServers": {"a": {"command": "x", "type": "http"}}}, "does not match its command"),
        ({"mcpServers": {"a": {"command": "${NOPE}"}}}, "environment variable NOPE is not set"),
        ({"switchboard": {"policies": {"a": {"t": "maybe"}}}}, "must be allow, deny or approve"),
        ({"switchboard": {"policy": {}}}, "unknown key(s) under 'switchboard': policy"),
    ],
)
def test_mistakes_are_config_errors_that_say_where(data: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_tools_config(data, {}, "mcp.json")
    assert message in caught.value.message and caught.value.message.startswith("mcp.json")


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        load_tools_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"mcpServers": {,}}')
    with pytest.raises(ConfigError, match=r"not valid JSON .* line 1, column 17"):
        load_tools_config(bad)


def test_llm_tool_names_are_valid_unique_and_stable() -> None:
    assert llm_tool_name("time", "get_current_time") == "time__get_current_time"
    assert llm_tool_name("my server", "get.thing") == "my_server__get_thing"
    long = llm_tool_name("s" * 40, "t" * 40)
    assert len(long) == 64 and long == llm_tool_name("s" * 40, "t" * 40)
    # "a b" and "a_b" sanitise alike: the second gets a hashed name instead of colliding.
    first = llm_tool_name("a b", "x")
    second = llm_tool_name("a_b", "x", taken={first})
    assert first == "a_b__x" and second != first and second.startswith("a_b__x_")


def test_switchboard_up_names_the_tool_servers_and_refuses_a_broken_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runtime.config import Settings
    from runtime.supervisor import banner, up

    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(DESKTOP))
    config = load_tools_config(path, {"DOCS_PORT": "3001", "DOCS_TOKEN": "t"})
    text = banner(Settings().resolved(), tools=config)
    assert f"tools          MCP servers time (stdio), docs (http) from {path}" in text
    assert "tools          none (SWITCHBOARD_MCP_CONFIG" in banner(Settings().resolved())

    path.write_text('{"mcpServers": {"time": {"command": "x", "url": "http://h"}}}')
    # Before any process starts: the reasoning agent would otherwise restart forever on the typo.
    assert up(Settings(mcp_config=str(path), data_dir=tmp_path).resolved()) == 2
    assert "needs exactly one of 'command' (stdio) or 'url'" in capsys.readouterr().err
