"""The one settings object every Switchboard process reads its configuration from.

Everything comes from the environment (``SWITCHBOARD_*``), so the same build runs
under ``switchboard up``, a container, or beside a Dapr sidecar without files to
mount. Defaults describe the single-machine embedded setup.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError

ENV_PREFIX = "SWITCHBOARD_"


@dataclass(frozen=True, slots=True)
class Settings:
    """Configuration for every service; each process uses the fields it needs."""

    host: str = "127.0.0.1"
    """Interface every server binds to."""
    advertise_host: str = ""
    """Host name written into Agent Cards; defaults to ``host``."""

    gateway_port: int = 8080
    orchestrator_grpc_port: int = 50051
    orchestrator_http_port: int = 8081
    reasoning_grpc_port: int = 50052
    reasoning_http_port: int = 8082
    planner_grpc_port: int = 50053
    planner_http_port: int = 8083
    knowledge_grpc_port: int = 50054
    knowledge_http_port: int = 8084
    textstats_grpc_port: int = 50055
    textstats_http_port: int = 8085
    llm_port: int = 8090

    orchestrator_url: str = ""
    """Base URL of the orchestrator's Agent Card; the gateway routes chats there."""
    reasoning_url: str = ""
    """Base URL of the reasoning agent's Agent Card; the orchestrator delegates there."""
    planner_url: str = ""
    """Base URL of the planner agent's Agent Card; the orchestrator asks it for plans."""
    knowledge_url: str = ""
    """Base URL of the knowledge agent's Agent Card."""
    textstats_url: str = ""
    """Base URL of the TypeScript textstats agent's Agent Card (``agents/ts-textstats``)."""

    extra_agents: str = ""
    """Comma-separated agents in other languages ``switchboard up`` also starts when their runtime is
    there (``runtime/extra_agents.py``): ``textstats`` (TypeScript, needs Node and ``make ts``)."""
    textstats_chunk_delay_ms: float = 0.0
    """Read by the textstats agent: pause between two streamed lines of its answer (demos, crash tests)."""

    agent_urls: str = ""
    """Comma-separated base URLs of the Agent Cards to discover; empty means this platform's own agents."""
    discovery_ttl_seconds: float = 30.0
    """How long a fetched Agent Card is trusted before it is read again."""
    agent_restart_grace_seconds: float = 30.0
    """How long an agent that stops answering is treated as restarting: still planned for, and
    waited for (health-driven) by steps and new requests, before it is dropped and calls to it fail."""
    planner_llm: bool = False
    """Let the planner ask the LLM for a plan first (structured output); rules remain the fallback."""
    planner_in_process: bool = True
    """The orchestrator plans by the planner's rules in its own process (no A2A hop per chat) unless
    ``planner_llm`` is on; false asks the agent at ``planner_url`` for every plan (a custom planner)."""
    planner_llm_timeout_seconds: float = 20.0
    """How long the planner waits for the LLM's plan before planning by rules."""
    planner_knowledge_probe: bool = True
    """Before planning a question without document cues, search the knowledge agent's collections:
    a relevant passage routes it to the documents (docs/planner.md)."""
    planner_probe_timeout_seconds: float = 1.0
    """Longest wait for that search (tens of milliseconds when warm; the first one opens the channel);
    a slower answer plans as if there were no documents."""
    planner_document_answer: str = "knowledge"
    """Who answers a question the documents hold: ``knowledge`` (the knowledge agent alone) or
    ``reasoning`` (the knowledge agent finds the passages, the reasoning agent's LLM writes the answer)."""
    workflow_lease_seconds: float = 10.0
    """How long an orchestrator owns a workflow without renewing; a replica resumes it after that."""
    admin_api_key: str = ""
    """Bearer key required by the gateway's ``/v1/agents`` admin calls; empty leaves them open."""
    auth_required: bool = False
    """Require an API key on every gateway route (and approvals, workflows) even before any virtual key
    exists; once a key exists they are required anyway (docs/operations.md)."""
    mcp_api_key: str = ""
    """Bearer key ``switchboard mcp`` (the stdio MCP server) acts with: sent with its approval calls."""
    prices: str = ""
    """The price table over the defaults (``runtime/metering/prices.py``): a JSON or YAML file's path, or
    inline JSON, ``{"<model>": {"input": <micros per 1M tokens>, "output": <micros per 1M tokens>}}``."""
    usage_records: bool = True
    """Record a usage record per metered LLM use and enforce budgets (``docs/operations.md``); off, neither
    (the keys benchmark's baseline)."""
    budget_cache_seconds: float = 1.0
    """How long a gateway believes a tenant's budget and a key's or tenant's spend before reading them again."""

    llm_base_url: str = ""
    """OpenAI-compatible endpoint; empty means the bundled local model on ``llm_port``."""
    llm_api_key: str = "not-needed"
    llm_model: str = "smollm2-135m-instruct"
    llm_timeout_seconds: float = 120.0
    llm_max_tokens: int = 512
    llm_context_tokens: int = 2048
    llm_threads: int = 2

    max_body_bytes: int = 1_048_576
    """Largest request body the gateway accepts."""
    request_timeout_seconds: float = 300.0
    """Upper bound on one chat request end to end."""
    session_ttl_seconds: int = 86_400
    """How long a session (``X-Session-ID``) is kept after its last request."""
    sse_keep_alive_seconds: float = 15.0
    """Idle time after which a stream that waits (for an approval) sends an SSE comment to stay open."""
    shutdown_grace_seconds: float = 10.0
    """How long a stopping service lets in-flight tasks finish before failing them."""
    http_header_timeout_seconds: float = 10.0
    """Every HTTP server: a request head must arrive within this (408, or the connection closed)."""
    http_body_timeout_seconds: float = 30.0
    """Every HTTP server: longest wait for a request body to start, and between two pieces of it (408)."""
    http_max_connections: int = 1000
    """Every HTTP server: open connections past this get 503 with ``Retry-After`` (``runtime/http_server.py``)."""

    log_level: str = "INFO"
    log_format: str = "json"
    tracing: bool = True
    """Emit OpenTelemetry spans; exported when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set."""
    trace_content: bool = True
    """Record text in spans: prompts and answers (``input.value``, ``output.value``, LLM messages), tool
    arguments and results, retrieved passages. Off, spans keep kinds, models, token counts, ids and scores."""
    phoenix_port: int = 6006
    """``switchboard up --phoenix``: the port of Phoenix's web UI and HTTP API."""
    phoenix_grpc_port: int = 4317
    """``switchboard up --phoenix``: the port Phoenix receives spans on (OTLP/gRPC); every service exports there."""
    metrics: bool = True
    """Record OpenTelemetry metrics, served at ``/metrics`` on every process's HTTP port (Prometheus text)
    and exported over OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``..._METRICS_ENDPOINT`` is set."""

    data_dir: Path = field(default_factory=lambda: Path(".data"))
    """Where embedded stores keep their files (SQLite state and events)."""

    approval_timeout_seconds: float = 86_400.0
    """Default expiry of an approval (a request may set its own); 0 means never."""
    approval_timeout_policy: str = "auto_reject"
    """What an expired approval becomes: ``auto_reject`` or ``escalate``."""
    approval_escalate_to: str = ""
    """Who receives escalated approvals (a principal or group name)."""
    approval_reminder_seconds: float = 3_600.0
    """How long before expiry the reminder event goes out; 0 means none."""
    approval_sweep_seconds: float = 5.0
    """Longest pause of the expiry sweeper between two reads of the open approvals."""
    approval_deciders: str = ""
    """API keys allowed to decide: ``key=principal:tenant|tenant,...`` (``*``: all tenants).
    Empty: the tenant and principal headers are trusted (docs/approvals.md)."""
    approval_webhook_urls: str = ""
    """Comma-separated URLs that receive every approval event, signed."""
    approval_webhook_secret: str = ""
    """HMAC-SHA256 key of the webhook signature."""

    knowledge_collection: str = "default"
    """Collection ``switchboard ingest`` writes to without ``--collection``. The knowledge agent answers
    from every collection it holds unless a request names one (docs/knowledge.md)."""
    knowledge_answer_mode: str = "extractive"
    """``extractive`` (best passages with citations, no LLM) or ``llm`` (generated, cited with [n])."""
    knowledge_fusion: str = "dbsf"
    """How hybrid search fuses dense and sparse candidates: ``dbsf`` or ``rrf`` (docs/knowledge.md)."""
    knowledge_min_relevance: float = 0.33
    """Below this cosine of question and best passage the agent says it found nothing, and the planner
    does not route a question to the documents (calibrated on two corpora, docs/knowledge.md)."""
    knowledge_max_chunks_per_document: int = 2
    """Passages of one document an answer cites at most; the rest of its sources come from other documents."""
    knowledge_lead_sentences: int = 2
    """Sentences an extractive answer leads with, the ones most similar to the question; 0: passages only."""
    knowledge_chunk_headers: bool = True
    """Index each chunk with its document title and section path in front (contextual chunk headers)."""
    knowledge_rewrite_queries: bool = True
    """Strip instruction wrappers ("Which command does the following: ...") and expand known acronyms
    before searching; no LLM involved."""
    knowledge_glossary: str = ""
    """Path of a glossary file (``ACRONYM: expansion`` per line) for query rewriting, beside the
    acronyms the documents define themselves."""
    knowledge_expand_queries: bool = False
    """Ask the LLM for other phrasings of the question and fuse their results (off: with the bundled model it
    raised nDCG@10 but cost seconds per question, docs/knowledge.md)."""
    knowledge_rerank: bool = False
    """Let the LLM reorder the retrieved passages before answering (off: no gain measured with the bundled model)."""
    vector_store: str = "edge"
    """``edge`` (Qdrant Edge, in-process) or ``qdrant-local`` (qdrant-client's local mode); see ``qdrant_url``."""
    qdrant_url: str = ""
    """A Qdrant server or cluster (gRPC preferred); set, it replaces the embedded store."""
    qdrant_api_key: str = ""
    embedding_base_url: str = ""
    """An OpenAI-compatible ``/v1`` endpoint for embeddings; empty means the bundled all-MiniLM-L6-v2."""
    embedding_model: str = ""
    embedding_dimensions: int = 0
    embedding_api_key: str = ""
    embedding_runtime: str = "onnx"
    """How the bundled model runs: ``onnx`` (ONNX Runtime, the numpy model's vectors, several times
    faster), ``onnx-int8`` (faster still, vectors moved slightly) or ``numpy`` (the reference);
    measured in docs/benchmarks.md."""
    embedding_graph_dir: str = ""
    """Where the ONNX graph built from the bundled model's weights is kept between starts (named by
    the weights' hash); empty: ``<data dir>/knowledge/models``."""

    mcp_config: str = ""
    """Path of the MCP servers file (``mcpServers`` as MCP hosts write it, docs/tools.md); empty: no tools."""
    mcp_connect_timeout_seconds: float = 30.0
    """How long one attempt to start or reach an MCP server and list its tools may take."""
    tool_timeout_seconds: float = 30.0
    """Longest one tool call may take before it is cancelled and reported to the LLM as timed out."""
    tool_max_iterations: int = 8
    """Most rounds of tool calls in one task; asked for more, the agent stops with a message saying so."""
    tool_max_tokens: int = 32_000
    """Most LLM tokens (prompt + completion, all turns) one task's tool loop may use before it stops."""
    tool_result_max_chars: int = 16_000
    """Longest tool result passed to the LLM; the rest is cut with a note."""

    dapr_grpc_port: int = 0
    """The Dapr sidecar's gRPC port; 0 means no sidecar: state and events stay embedded."""
    redis_port: int = 6379
    """Port of the Redis ``switchboard up --dapr`` starts (or finds already running)."""
    dapr_state_store: str = "statestore"
    """Name of the Dapr state store component."""
    dapr_shared_state_store: str = "statestore-shared"
    """Name of the Dapr state store every service reads alike (keys prefixed by its name, not the app id):
    API keys and their rate limits (``dapr/components/statestore-shared.yaml``)."""
    dapr_pubsub: str = "pubsub"
    """Name of the Dapr pub/sub component."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        return cls(**values).resolved()

    def resolved(self) -> Settings:
        """Fill the fields whose defaults depend on other fields."""
        adv = self.advertise_host or self.host
        return replace(
            self,
            advertise_host=adv,
            orchestrator_url=self.orchestrator_url or f"http://{adv}:{self.orchestrator_http_port}",
            reasoning_url=self.reasoning_url or f"http://{adv}:{self.reasoning_http_port}",
            planner_url=self.planner_url or f"http://{adv}:{self.planner_http_port}",
            knowledge_url=self.knowledge_url or f"http://{adv}:{self.knowledge_http_port}",
            textstats_url=self.textstats_url or f"http://{adv}:{self.textstats_http_port}",
            agent_urls=self.agent_urls or _own_agent_urls(self, adv),
            llm_base_url=self.llm_base_url or f"http://{adv}:{self.llm_port}/v1",
        )

    @property
    def agent_url_list(self) -> tuple[str, ...]:
        """:attr:`agent_urls` split, without blanks."""
        return tuple(u.strip() for u in self.agent_urls.split(",") if u.strip())

    @property
    def extra_agent_list(self) -> tuple[str, ...]:
        """:attr:`extra_agents` split, lowercased, without blanks."""
        return tuple(a.strip().lower() for a in self.extra_agents.split(",") if a.strip())

    @property
    def uses_local_llm(self) -> bool:
        """True when no external LLM endpoint was configured."""
        return self.llm_base_url.rstrip("/") == f"http://{self.advertise_host}:{self.llm_port}/v1"


def _own_agent_urls(settings: Settings, host: str) -> str:
    """Card URLs of the agents ``switchboard up`` starts, for when ``agent_urls`` is not set."""
    urls = [
        settings.orchestrator_url or f"http://{host}:{settings.orchestrator_http_port}",
        settings.reasoning_url or f"http://{host}:{settings.reasoning_http_port}",
        settings.planner_url or f"http://{host}:{settings.planner_http_port}",
        settings.knowledge_url or f"http://{host}:{settings.knowledge_http_port}",
    ]
    if "textstats" in settings.extra_agent_list:
        urls.append(settings.textstats_url or f"http://{host}:{settings.textstats_http_port}")
    return ",".join(urls)


def _parse(name: str, type_name: Any, raw: str) -> Any:
    kind = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", str(type_name))
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError as exc:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from exc
    return raw
