"""The reasoning agent's card skills for its tool servers: one per configured MCP server.

The planner matches a request's words against skills' tags, so each server's skill is tagged
with the words of its tools' names (``get_current_time`` → ``current``, ``time``) next to
``mcp``, ``tools`` and the server's name: a question that needs a tool is planned to the agent
that has it. Read on every card request, so the card follows the servers: a server that is down
keeps its skill (plans naming it stay valid) but says so in its name, description and tags.
"""

from __future__ import annotations

import re

from a2a.types import a2a_pb2

from runtime.tools import Policy, ServerState, ServerStatus, Toolbox
from runtime.tools.a2a import summary

MAX_TAGS = 24
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_STOP = frozenset(
    {"get", "set", "list", "the", "and", "for", "with", "from", "into", "tool", "tools", "run", "call", "make", "use"}
)


def server_skills(toolbox: Toolbox) -> list[a2a_pb2.AgentSkill]:
    return [_skill(status) for status in toolbox.servers()]


def skill_id(server: str) -> str:
    return "mcp-" + re.sub(r"[^a-z0-9_-]+", "-", server.lower()).strip("-")


def _skill(status: ServerStatus) -> a2a_pb2.AgentSkill:
    tools = [t for t in status.tools if t.policy is not Policy.DENY]
    listed = "; ".join(f"{t.tool}: {summary(t.description, 100)}" if t.description else t.tool for t in tools)
    who = f" ({status.server_info})" if status.server_info else ""
    if status.state is ServerState.UP:
        description = f"Calls the tools of MCP server '{status.name}'{who}: {listed or 'none listed'}."
        name = f"{status.name} tools (MCP)"
    else:
        why = f": {status.error}" if status.error else ""
        known = f" Its tools when last seen: {listed}." if listed else ""
        description = f"Unavailable: MCP server '{status.name}' is {status.state.value}{why}.{known}"
        name = f"{status.name} tools (MCP, unavailable)"
    tags = ["mcp", "tools", status.name.lower()]
    if status.state is not ServerState.UP:
        tags.insert(1, "unavailable")  # early: the list is cut at MAX_TAGS
    for tool in tools:
        for word in _WORD.findall(tool.tool):
            word = word.lower()
            if len(word) > 2 and word not in _STOP and word not in tags:
                tags.append(word)
    return a2a_pb2.AgentSkill(
        id=skill_id(status.name),
        name=name,
        description=description,
        tags=tags[:MAX_TAGS],
        input_modes=["text/plain"],
        output_modes=["text/plain"],
    )
