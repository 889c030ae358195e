"""Accuracy of the rule planner: ``python -m bench.planner_eval [--routing-only | --shapes-only]``.

**Plan shapes** (``bench/planner_cases.json``). Each case is a request and the plan shape
expected for it over a fixed set of Agent Cards: the plan's layers (steps grouped by how many
dependencies deep they are, so a layer's steps run in parallel), each step as ``agent:skill``,
and, for plans that end in one step (a synthesis or the last of a sequence), ``"output": "last"``.

- *exact structure*: the plan's layers and output step are exactly the expected ones;
- *agent selection*: the plan uses exactly the expected set of agent skills.

**Routing** (``bench/routing_cases.json``). The shipped dataset's corpus is ingested into a
scratch knowledge base (the bundled MiniLM, Qdrant Edge), and each question is planned by the
rules with the knowledge probe's finding over it (``services/planner/probe.py``, the same code
the planner agent runs, searching in this process instead of over gRPC) and the agents' real
cards. A case is right when the plan's agents are exactly the expected one: the knowledge
agent for questions the documents answer, the reasoning agent for the rest. The issue's bar is
90 %; the command exits 1 below it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from a2a.types import a2a_pb2
from google.protobuf import json_format

from runtime.config import Settings
from runtime.knowledge.base import DocumentInput, KnowledgeBase
from runtime.knowledge.embeddings import Embedder
from runtime.knowledge.evaluation import load_beir
from runtime.plans import validate_plan
from services.planner.catalog import Catalog
from services.planner.probe import KnowledgeProbe, Passage, RetrievalSignal
from services.planner.rules import needs_probe, plan_by_rules
from switchboard.v1 import plan_pb2

CASES = Path(__file__).with_name("planner_cases.json")
ROUTING = Path(__file__).with_name("routing_cases.json")
ROUTING_BAR = 0.90
ROOT = Path(__file__).resolve().parents[1]
COLLECTION = "docs"


@dataclass
class Report:
    total: int = 0
    exact: int = 0
    agents: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def exact_accuracy(self) -> float:
        return self.exact / self.total if self.total else 0.0

    @property
    def agent_accuracy(self) -> float:
        return self.agents / self.total if self.total else 0.0


def load(path: Path = CASES) -> tuple[Catalog, list[dict[str, Any]]]:
    data = json.loads(path.read_text())
    cards = [json_format.ParseDict(c, a2a_pb2.AgentCard()) for c in data["cards"]]
    return Catalog(cards), data["cases"]


def shape(plan: plan_pb2.Plan) -> tuple[list[list[str]], str | None]:
    """The plan's layers of ``agent:skill`` (sorted within a layer) and ``"last"`` when one step is the output."""
    by_id = {s.id: s for s in plan.steps}
    depth: dict[str, int] = {}

    def level(step_id: str) -> int:
        if step_id not in depth:
            depth[step_id] = 1 + max((level(d) for d in by_id[step_id].depends_on), default=-1)
        return depth[step_id]

    layers: dict[int, list[str]] = {}
    for step in plan.steps:
        layers.setdefault(level(step.id), []).append(f"{step.agent}:{step.skill_id}")
    ordered = [sorted(layers[k]) for k in sorted(layers)]
    last = ordered[-1]
    output = (
        "last"
        if plan.output_step_id
        and len(last) == 1
        and depth[plan.output_step_id] == len(ordered) - 1
        and len(ordered) > 1
        else None
    )
    return ordered, output


def evaluate(path: Path = CASES) -> Report:
    catalog, cases = load(path)
    report = Report()
    for case in cases:
        report.total += 1
        plan = plan_by_rules(case["request"], catalog)
        validate_plan(plan, catalog)
        layers, output = shape(plan)
        expected = [sorted(layer) for layer in case["layers"]]
        got_skills = {s for layer in layers for s in layer}
        if got_skills == {s for layer in expected for s in layer}:
            report.agents += 1
        if layers == expected and output == case.get("output"):
            report.exact += 1
        else:
            report.misses.append(
                f"{case['request']!r}: expected {expected} {case.get('output')}, got {layers} {output}"
            )
    return report


@dataclass
class RoutingReport:
    total: int = 0
    correct: int = 0
    in_scope: int = 0
    in_scope_correct: int = 0
    misses: list[str] = field(default_factory=list)
    threshold: float = 0.0
    probe_ms: list[float] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def summary(self) -> dict[str, Any]:
        out_total = self.total - self.in_scope
        ms = sorted(self.probe_ms)
        return {
            "cases": self.total,
            "accuracy": round(self.accuracy, 4),
            "documents_routed_to_knowledge": f"{self.in_scope_correct}/{self.in_scope}",
            "others_routed_to_reasoning": f"{self.correct - self.in_scope_correct}/{out_total}",
            "threshold": self.threshold,
            "probe_search_ms_p50": round(ms[len(ms) // 2], 2) if ms else None,
            "misses": self.misses,
        }


class KnowledgeBaseSearcher:
    """The probe's :class:`services.planner.probe.Searcher` over a knowledge base in this process."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    async def collections(self) -> list[str]:
        return await self.kb.store.list_collections()

    async def search(self, collection: str, query: str, top_k: int) -> list[Passage]:
        hits = await self.kb.search(collection, query, "hybrid", top_k)
        return [
            Passage(collection, h.relevance, str(h.payload.get("source_uri", "")), str(h.payload.get("title", "")))
            for h in hits
        ]


def routing_cards() -> list[a2a_pb2.AgentCard]:
    """The cards a default platform's planner sees: the knowledge and reasoning agents' real skills."""
    from services.knowledge.main import SKILLS as KNOWLEDGE_SKILLS
    from services.reasoning.main import SKILLS as REASONING_SKILLS

    return [
        a2a_pb2.AgentCard(name="reasoning", description="Answers with an LLM.", skills=REASONING_SKILLS),
        a2a_pb2.AgentCard(
            name="knowledge",
            description="Retrieves from the platform's document collections and answers with citations.",
            skills=KNOWLEDGE_SKILLS,
        ),
    ]


def load_routing(path: Path = ROUTING) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


async def evaluate_routing(
    embedder: Embedder | None = None, path: Path = ROUTING, threshold: float | None = None
) -> RoutingReport:
    """Route every case of ``path`` with the probe over its dataset, ingested into a scratch knowledge base."""
    from runtime.knowledge.edge_store import EdgeVectorStore
    from runtime.knowledge.embeddings import CachedEmbedder
    from runtime.knowledge.minilm import MiniLMEmbedder
    from runtime.knowledge.sparse import Bm25Encoder

    data = load_routing(path)
    corpus, _, _ = load_beir(ROOT / data["dataset"])
    settings = Settings.from_env()
    report = RoutingReport(threshold=settings.knowledge_min_relevance if threshold is None else threshold)
    catalog = Catalog(routing_cards())
    with tempfile.TemporaryDirectory(prefix="routing-eval-") as scratch:
        kb = KnowledgeBase(
            EdgeVectorStore(Path(scratch)),
            embedder or CachedEmbedder(MiniLMEmbedder()),
            Bm25Encoder(),
            fusion="dbsf" if settings.knowledge_fusion == "dbsf" else "rrf",
            chunk_headers=settings.knowledge_chunk_headers,
        )
        try:
            for doc_id, doc in corpus.items():
                doc_input = DocumentInput(doc_id, f"{doc_id}.md", "text/plain", text=doc["text"], title=doc["title"])
                await kb.ingest(COLLECTION, doc_input)
            probe = KnowledgeProbe(report.threshold, timeout_seconds=30.0)
            searcher = KnowledgeBaseSearcher(kb)
            for case in data["cases"]:
                request, expected = case["request"], case["expect"]
                signal: RetrievalSignal | None = None
                if needs_probe(request, catalog):
                    signal = await probe.signal(request, searcher)
                    report.probe_ms.append(signal.elapsed_ms)
                plan = plan_by_rules(request, catalog, signal)
                validate_plan(plan, catalog)
                agents = sorted({s.agent for s in plan.steps})
                report.total += 1
                report.in_scope += expected == "knowledge"
                if agents == [expected]:
                    report.correct += 1
                    report.in_scope_correct += expected == "knowledge"
                else:
                    best = f", best passage {signal.best:.3f} in {signal.document}" if signal is not None else ""
                    report.misses.append(f"{request!r}: expected {expected}, got {agents} ({plan.planner}{best})")
        finally:
            await kb.close()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="planner accuracy: plan shapes and knowledge routing")
    parser.add_argument("--shapes-only", action="store_true")
    parser.add_argument("--routing-only", action="store_true")
    parser.add_argument("--json", help="write the routing figures to this file")
    args = parser.parse_args(argv)
    status = 0
    if not args.routing_only:
        report = evaluate()
        print(f"planner evaluation: {report.total} requests in {CASES.name}")
        print(f"  exact structure  {report.exact}/{report.total} = {report.exact_accuracy:.1%}")
        print(f"  agent selection  {report.agents}/{report.total} = {report.agent_accuracy:.1%}")
        for miss in report.misses:
            print(f"  miss: {miss}")
    if not args.shapes_only:
        started = time.monotonic()
        routing = asyncio.run(evaluate_routing())
        summary = routing.summary()
        print(f"routing evaluation: {routing.total} questions in {ROUTING.name} ({time.monotonic() - started:.0f} s)")
        print(f"  accuracy         {routing.correct}/{routing.total} = {routing.accuracy:.1%} (bar {ROUTING_BAR:.0%})")
        print(f"  to the documents {summary['documents_routed_to_knowledge']}")
        print(f"  to reasoning     {summary['others_routed_to_reasoning']}")
        print(f"  threshold {routing.threshold}, probe search p50 {summary['probe_search_ms_p50']} ms (in process)")
        for miss in routing.misses:
            print(f"  miss: {miss}")
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
        if routing.accuracy < ROUTING_BAR:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
