"""Process entry for the reasoning agent (``switchboard serve reasoning``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from a2a.types import a2a_pb2

from runtime.agent_server import AgentDefinition
from runtime.backends import open_state
from runtime.config import Settings
from runtime.llm import a2a as llm_events
from runtime.llm.openai_compat import OpenAICompatibleModel
from runtime.state.tasks import StateTaskStore
from runtime.tools.config import load_tools_config
from runtime.tools.mcp import McpToolbox
from services.reasoning.agent import ReasoningExecutor
from services.reasoning.loop_state import LoopStore
from services.reasoning.skills import server_skills
from services.reasoning.tool_loop import Limits

log = logging.getLogger(__name__)

NAME = "reasoning"
SKILLS = [
    a2a_pb2.AgentSkill(
        id="general-reasoning",
        name="General reasoning",
        description="Answers questions, explains, summarises and drafts text with an LLM.",
        tags=["reasoning", "chat", "analysis", "synthesis"],
        examples=["Explain the difference between TCP and UDP", "Summarise this paragraph"],
        input_modes=["text/plain"],
        output_modes=["text/plain"],
    )
]


def definition(settings: Settings) -> AgentDefinition:
    model = OpenAICompatibleModel(settings)
    if not settings.mcp_config:
        return _definition(settings, ReasoningExecutor(model), on_stop=[model.aclose])
    # A broken file stops the agent at start with the reason: better than running without the tools it names.
    config = load_tools_config(settings.mcp_config)
    toolbox = McpToolbox(
        config,
        connect_timeout=settings.mcp_connect_timeout_seconds,
        log_dir=settings.data_dir / "logs",
        max_result_chars=settings.tool_result_max_chars,
    )
    state = open_state(settings, NAME)
    store = LoopStore(state, NAME)
    limits = Limits(
        call_timeout=settings.tool_timeout_seconds,
        max_rounds=settings.tool_max_iterations,
        max_tokens=settings.tool_max_tokens,
        connect_wait=settings.mcp_connect_timeout_seconds,
    )
    executor = ReasoningExecutor(model, toolbox, store, limits)

    async def start(_: StateTaskStore) -> None:
        log.info(
            "MCP servers configured",
            extra={"config": config.path, "servers": [f"{s.name} ({s.transport}: {s.target})" for s in config.servers]},
        )
        await toolbox.start()

    async def close() -> None:
        await toolbox.aclose()
        await state.close()
        await model.aclose()

    return _definition(
        settings, executor, on_start=[start], on_stop=[close], extra_skills=lambda: server_skills(toolbox)
    )


def _definition(
    settings: Settings,
    executor: ReasoningExecutor,
    *,
    on_start: Sequence[Callable[[StateTaskStore], Awaitable[None]]] = (),
    on_stop: Sequence[Callable[[], Awaitable[None]]] = (),
    extra_skills: Callable[[], Sequence[a2a_pb2.AgentSkill]] | None = None,
) -> AgentDefinition:
    return AgentDefinition(
        name=NAME,
        description="Answers with an LLM, streaming tokens as they are generated; calls the tools of its MCP servers.",
        version="0.2.0",
        skills=SKILLS,
        executor=executor,
        grpc_port=settings.reasoning_grpc_port,
        http_port=settings.reasoning_http_port,
        on_start=on_start,
        on_stop=on_stop,
        extra_skills=extra_skills,
        # The caller's functions, JSON answers and log probabilities are the LLM's to honour: this
        # agent passes them on (an LLM endpoint that cannot honour one answers 400, and so does the edge).
        extensions=[llm_events.extension()],
    )
