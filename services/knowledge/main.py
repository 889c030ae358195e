"""Process entry for the knowledge agent (``switchboard serve knowledge``)."""

from __future__ import annotations

from a2a.types import a2a_pb2

from runtime.agent_server import AgentDefinition
from runtime.config import Settings
from runtime.knowledge.backends import open_knowledge_base, open_retriever
from runtime.llm.openai_compat import OpenAICompatibleModel
from services.knowledge.agent import KnowledgeExecutor
from services.knowledge.service import KnowledgeServicer

# The planner routes requests that point at documents to skills tagged knowledge/rag/documents.
SKILLS = [
    a2a_pb2.AgentSkill(
        id="answer-from-knowledge",
        name="Answer from the knowledge base",
        description=(
            "Answers questions from the ingested documents (docs, handbook, runbooks, policies, manuals) "
            "with citations to the exact source, section and page; says so when nothing relevant is found."
        ),
        tags=["knowledge", "rag", "documents", "docs", "retrieval", "citations", "search"],
        examples=["What does our handbook say about vacation days?", "According to the runbook, how do I fail over?"],
        input_modes=["text/plain"],
        output_modes=["text/plain", "application/json"],
    )
]


def definition(settings: Settings) -> AgentDefinition:
    kb = open_knowledge_base(settings)
    model = OpenAICompatibleModel(settings) if settings.knowledge_answer_mode == "llm" else None
    executor = KnowledgeExecutor(
        open_retriever(settings, kb),
        settings.knowledge_min_relevance,
        mode=settings.knowledge_answer_mode,
        model=model,
        context_chars=max(1000, settings.llm_context_tokens * 2),
        default_collection=settings.knowledge_collection,
        lead_sentences=settings.knowledge_lead_sentences,
    )
    servicer = KnowledgeServicer(kb)
    return AgentDefinition(
        name="knowledge",
        description=(
            "Retrieves from the platform's document collections (Qdrant, hybrid search) and answers with citations."
        ),
        version="0.1.0",
        skills=SKILLS,
        executor=executor,
        grpc_port=settings.knowledge_grpc_port,
        http_port=settings.knowledge_http_port,
        extra_servicers=[servicer.register],
        on_stop=[executor.aclose],
    )
