"""Process entry for the reasoning agent (``switchboard serve reasoning``)."""

from __future__ import annotations

from a2a.types import a2a_pb2

from runtime.agent_server import AgentDefinition
from runtime.config import Settings
from runtime.llm.openai_compat import OpenAICompatibleModel
from services.reasoning.agent import ReasoningExecutor

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
    executor = ReasoningExecutor(OpenAICompatibleModel(settings))
    return AgentDefinition(
        name="reasoning",
        description="Answers with an LLM, streaming tokens as they are generated.",
        version="0.1.0",
        skills=SKILLS,
        executor=executor,
        grpc_port=settings.reasoning_grpc_port,
        http_port=settings.reasoning_http_port,
        on_stop=[executor.aclose],  # the LLM client's HTTP session, closed before the loop ends
    )
