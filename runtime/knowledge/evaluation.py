"""Retrieval evaluation on BEIR-format data: nDCG@10, Recall@10, Recall@100, MRR@10 per mode.

A dataset directory holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/test.tsv`` (``query-id``, ``corpus-id``, ``score``, with a header).
The corpus is ingested into a scratch collection (one chunk per BEIR document, so judgements
apply to hits as they are), every judged query is run in each mode, and the figures are the
means over queries, as BEIR computes them (graded gains, log2 discount).
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from runtime.config import Settings
from runtime.errors import InvalidKnowledgeRequestError
from runtime.knowledge.base import DocumentInput, KnowledgeBase
from runtime.knowledge.store import MODES, Mode

COLLECTION = "beir-eval"


def load_beir(directory: Path) -> tuple[dict[str, dict[str, str]], dict[str, str], dict[str, dict[str, int]]]:
    try:
        corpus = {}
        for line in (directory / "corpus.jsonl").read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                corpus[str(row["_id"])] = {"title": str(row.get("title", "")), "text": str(row["text"])}
        queries = {}
        for line in (directory / "queries.jsonl").read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                queries[str(row["_id"])] = str(row["text"])
        qrels: dict[str, dict[str, int]] = {}
        for i, line in enumerate((directory / "qrels" / "test.tsv").read_text().splitlines()):
            cols = line.split("\t")
            if i == 0 and not cols[-1].strip().lstrip("-").isdigit():
                continue  # header
            if len(cols) >= 3:
                qrels.setdefault(cols[0], {})[cols[1]] = int(cols[2])
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidKnowledgeRequestError(f"{directory} is not a BEIR-format dataset: {exc}") from exc
    return corpus, queries, qrels


def ndcg_at(ranked: list[str], rels: dict[str, int], k: int) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], rels: dict[str, int], k: int) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at(ranked: list[str], rels: dict[str, int], k: int) -> float:
    return next((1.0 / (i + 1) for i, d in enumerate(ranked[:k]) if rels.get(d, 0) > 0), 0.0)


async def evaluate(kb: KnowledgeBase, directory: Path, modes: list[Mode], progress: bool = False) -> dict[str, Any]:
    corpus, queries, qrels = load_beir(directory)
    await kb.store.drop_collection(COLLECTION)
    started = time.monotonic()
    for i, (doc_id, doc) in enumerate(corpus.items(), start=1):
        await kb.ingest(
            COLLECTION,
            DocumentInput(doc_id, doc_id, "text/plain", text=doc["text"], title=doc["title"]),
            max_chars=1_000_000,
            overlap=0,
        )
        if progress and (i % 50 == 0 or i == len(corpus)):
            print(f"\reval: ingested {i}/{len(corpus)} documents", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    await kb.store.optimize(COLLECTION)
    ingest_seconds = time.monotonic() - started
    judged = [q for q in queries if q in qrels]
    results: dict[str, Any] = {
        "dataset": str(directory),
        "documents": len(corpus),
        "queries": len(judged),
        "ingest_seconds": round(ingest_seconds, 2),
        "modes": {},
    }
    for mode in modes:
        totals = {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
        for qid in judged:
            hits = await kb.search(COLLECTION, queries[qid], mode, 100)
            ranked = [str(h.payload["document_id"]) for h in hits]
            rels = qrels[qid]
            totals["ndcg@10"] += ndcg_at(ranked, rels, 10)
            totals["recall@10"] += recall_at(ranked, rels, 10)
            totals["recall@100"] += recall_at(ranked, rels, 100)
            totals["mrr@10"] += mrr_at(ranked, rels, 10)
        results["modes"][mode] = {k: round(v / max(len(judged), 1), 4) for k, v in totals.items()}
    await kb.store.drop_collection(COLLECTION)
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{results['dataset']}: {results['documents']} documents, {results['queries']} judged queries",
        f"{'mode':<8} {'nDCG@10':>8} {'R@10':>8} {'R@100':>8} {'MRR@10':>8}",
    ]
    for mode, m in results["modes"].items():
        lines.append(
            f"{mode:<8} {m['ndcg@10']:>8.4f} {m['recall@10']:>8.4f} {m['recall@100']:>8.4f} {m['mrr@10']:>8.4f}"
        )
    return "\n".join(lines)


def run_cli(directory: Path, mode: str, settings: Settings, json_out: str | None = None) -> int:
    from runtime.knowledge.backends import open_knowledge_base

    modes: list[Mode] = list(MODES) if mode == "all" else [mode]  # type: ignore[list-item]
    scratch = Path(tempfile.mkdtemp(prefix="switchboard-eval-"))

    async def run() -> dict[str, Any]:
        # A scratch store; the embedding cache stays in the real data dir so reruns are fast.
        kb = open_knowledge_base(replace(settings, data_dir=scratch), embedder=_cached_embedder(settings))
        try:
            return await evaluate(kb, directory, modes, progress=True)
        finally:
            await kb.close()

    try:
        results = asyncio.run(run())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(table(results))
    if json_out:
        Path(json_out).write_text(json.dumps(results, indent=2))
    return 0


def _cached_embedder(settings: Settings) -> Any:
    from runtime.knowledge.backends import open_embedder

    return open_embedder(settings)
