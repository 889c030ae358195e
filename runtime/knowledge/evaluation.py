"""Retrieval evaluation on BEIR-format data: nDCG@10, Recall@10, Recall@100, MRR@10 per mode.

A dataset directory holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/test.tsv`` (``query-id``, ``corpus-id``, ``score``, with a header).
The corpus is ingested into a scratch collection (one chunk per BEIR document, so judgements
apply to hits as they are; a document without a title is indexed without one, as BEIR does),
every judged query is run in each mode through the knowledge agent's own retrieval
(:class:`runtime.knowledge.retrieval.Retriever`: query rewriting, and LLM expansion and
reranking when asked), and the figures are the means over queries, as BEIR computes them
(graded gains, log2 discount). Hybrid runs once per fusion: ``hybrid-dbsf`` distribution-based
score fusion (the default), ``hybrid-rrf`` reciprocal rank fusion.

Several datasets evaluate one after the other; with out-of-scope questions in more than one,
the no-answer threshold is also picked over all of them together (``pooled_no_answer``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from runtime.config import Settings
from runtime.errors import InvalidKnowledgeRequestError
from runtime.knowledge.base import DocumentInput, KnowledgeBase
from runtime.knowledge.chunking import MAX_CHARS, OVERLAP
from runtime.knowledge.retrieval import Retriever
from runtime.knowledge.store import Fusion, Mode

COLLECTION = "beir-eval"
OUT_OF_SCOPE = "out_of_scope.jsonl"
RUNS: dict[str, tuple[Mode, Fusion | None]] = {
    "dense": ("dense", None),
    "sparse": ("sparse", None),
    "hybrid-rrf": ("hybrid", "rrf"),
    "hybrid-dbsf": ("hybrid", "dbsf"),
}
"""What ``--mode`` names: a search mode and, for hybrid, its fusion. ``hybrid`` alone (not part of
``all``) is hybrid with the configured fusion (``SWITCHBOARD_KNOWLEDGE_FUSION``)."""
ALIASES: dict[str, tuple[Mode, Fusion | None]] = {"hybrid": ("hybrid", None)}
ANSWER_TOP_K = 5
CHUNKED_DEPTH = 300
"""Chunks fetched per query when documents are split: enough for 100 distinct documents in practice."""
"""Hits the knowledge agent reads per question (``services/knowledge/agent.py``)."""


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


class EvalProgress:
    """A bar on a terminal (stage, done/total, rate); a line per stage otherwise."""

    def __init__(self, out: TextIO | None = None, enabled: bool = True) -> None:
        self.out = out or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.out.isatty()
        self.stage = ""
        self.total = 0
        self.started = 0.0

    def start(self, stage: str, total: int) -> None:
        self.stage, self.total, self.started = stage, total, time.monotonic()
        if self.enabled and not self.tty:
            print(f"eval: {stage}: {total}", file=self.out, flush=True)

    def advance(self, done: int) -> None:
        if not self.tty:
            return
        width = 30
        filled = int(width * done / max(self.total, 1))
        rate = done / max(time.monotonic() - self.started, 1e-6)
        line = f"\r{self.stage:<18} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}  {rate:.1f}/s"
        print(line, end="", file=self.out, flush=True)
        if done == self.total:
            print(file=self.out, flush=True)


async def evaluate(
    kb: KnowledgeBase,
    directory: Path,
    modes: list[str],
    progress: EvalProgress | None = None,
    retriever: Retriever | None = None,
    chunked: bool = False,
) -> dict[str, Any]:
    """Figures per entry of ``modes`` (keys of :data:`RUNS` or :data:`ALIASES`).

    ``retriever`` is the agent's retrieval over ``kb`` with the features to measure switched on
    or off; by default, query rewriting on and the LLM steps off. ``chunked`` splits each document
    as ingestion does (instead of one chunk per document) and ranks documents by their best chunk.
    """
    retriever = retriever or Retriever(kb)
    corpus, queries, qrels = load_beir(directory)
    out_of_scope = load_out_of_scope(directory)
    bar = progress or EvalProgress(enabled=False)
    await kb.store.drop_collection(COLLECTION)
    started = time.monotonic()
    bar.start("ingest documents", len(corpus))
    for i, (doc_id, doc) in enumerate(corpus.items(), start=1):
        await kb.ingest(
            COLLECTION,
            DocumentInput(doc_id, doc_id, "text/plain", text=doc["text"], title=doc["title"], derive_title=False),
            max_chars=MAX_CHARS if chunked else 1_000_000,
            overlap=OVERLAP if chunked else 0,
        )
        bar.advance(i)
    await kb.store.optimize(COLLECTION)
    ingest_seconds = time.monotonic() - started
    judged = [q for q in queries if q in qrels]
    results: dict[str, Any] = {
        "dataset": str(directory),
        "documents": len(corpus),
        "queries": len(judged),
        "ingest_seconds": round(ingest_seconds, 2),
        "chunked": chunked,
        "features": {
            "fusion_default": kb.fusion,
            "chunk_headers": kb.chunk_headers,
            "rewrite": retriever.rewrite_queries,
            "expand": retriever.expand,
            "rerank": retriever.rerank,
        },
        "modes": {},
    }
    notes: set[str] = set()
    query_seconds: dict[str, float] = {}
    per_query: dict[str, dict[str, float]] = {}
    for mode in modes:
        totals = {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
        bar.start(f"queries ({mode})", len(judged))
        search_mode, fusion = RUNS.get(mode) or ALIASES[mode]
        begun = time.monotonic()
        for i, qid in enumerate(judged, start=1):
            found = await retriever.retrieve(
                queries[qid],
                [COLLECTION],
                top_k=CHUNKED_DEPTH if chunked else 100,
                candidates=CHUNKED_DEPTH if chunked else 100,
                mode=search_mode,
                fusion=fusion,
                max_per_document=0,
            )
            notes.update(found.notes)
            ranked = list(dict.fromkeys(str(f.hit.payload["document_id"]) for f in found.hits))[:100]
            rels = qrels[qid]
            ndcg = ndcg_at(ranked, rels, 10)
            per_query.setdefault(qid, {})[mode] = round(ndcg, 4)
            totals["ndcg@10"] += ndcg
            totals["recall@10"] += recall_at(ranked, rels, 10)
            totals["recall@100"] += recall_at(ranked, rels, 100)
            totals["mrr@10"] += mrr_at(ranked, rels, 10)
            bar.advance(i)
        query_seconds[mode] = time.monotonic() - begun
        results["modes"][mode] = {k: round(v / max(len(judged), 1), 4) for k, v in totals.items()}
        results["modes"][mode]["ms_per_query"] = round(1000 * query_seconds[mode] / max(len(judged), 1), 2)
    results["per_query_ndcg@10"] = per_query
    if notes:
        results["notes"] = sorted(notes)
    if out_of_scope:
        results["no_answer"] = await calibrate(retriever, {q: queries[q] for q in judged}, qrels, out_of_scope, bar)
    await kb.store.drop_collection(COLLECTION)
    return results


def load_out_of_scope(directory: Path) -> dict[str, str]:
    """Optional ``out_of_scope.jsonl`` (``_id``, ``text``): questions the corpus does not answer."""
    path = directory / OUT_OF_SCOPE
    if not path.exists():
        return {}
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return {str(row["_id"]): str(row["text"]) for row in rows}
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidKnowledgeRequestError(f"{path}: {exc}") from exc


async def calibrate(
    retriever: Retriever,
    in_scope: dict[str, str],
    qrels: dict[str, dict[str, int]],
    out_of_scope: dict[str, str],
    bar: EvalProgress,
) -> dict[str, Any]:
    """Picks the no-answer threshold from what the agent would see (hybrid, top ``ANSWER_TOP_K``).

    An in-scope question is answered correctly when its best judged-relevant passage among those
    hits reaches the threshold (the agent keeps it); an out-of-scope one is refused correctly when
    no hit reaches it. The threshold maximises correct decisions over both sets; of the interval
    of thresholds that do equally well, its middle, so neither side sits on the edge.
    """
    relevant_best: list[float] = []
    unrelated_best: list[float] = []
    bar.start("calibrate no-answer", len(in_scope) + len(out_of_scope))
    done = 0
    for qid, text in in_scope.items():
        hits = (await retriever.retrieve(text, [COLLECTION], top_k=ANSWER_TOP_K)).hits
        rels = qrels[qid]
        relevant_best.append(
            max((f.hit.relevance for f in hits if rels.get(str(f.hit.payload["document_id"]), 0) > 0), default=0.0)
        )
        done += 1
        bar.advance(done)
    for text in out_of_scope.values():
        hits = (await retriever.retrieve(text, [COLLECTION], top_k=ANSWER_TOP_K)).hits
        unrelated_best.append(max((f.hit.relevance for f in hits), default=0.0))
        done += 1
        bar.advance(done)
    return decisions(relevant_best, unrelated_best)


def decisions(
    relevant_best: list[float], unrelated_best: list[float], threshold: float | None = None
) -> dict[str, Any]:
    """The threshold picked from these scores (or the one given) and the decisions it makes on them."""
    if threshold is None:
        threshold, _ = pick_threshold(relevant_best, unrelated_best)
    correct = sum(s >= threshold for s in relevant_best) + sum(s < threshold for s in unrelated_best)
    return {
        "threshold": round(threshold, 3),
        "accuracy": round(correct / max(len(relevant_best) + len(unrelated_best), 1), 4),
        "in_scope_answered": sum(s >= threshold for s in relevant_best),
        "in_scope": len(relevant_best),
        "out_of_scope_refused": sum(s < threshold for s in unrelated_best),
        "out_of_scope": len(unrelated_best),
        "relevant_best_relevance": _spread(relevant_best),
        "out_of_scope_best_relevance": _spread(unrelated_best),
        # Kept so that several datasets can be pooled (run_cli).
        "scores": {
            "relevant_best": [round(x, 4) for x in relevant_best],
            "unrelated_best": [round(x, 4) for x in unrelated_best],
        },
    }


def pick_threshold(relevant: list[float], unrelated: list[float]) -> tuple[float, int]:
    """(threshold, correct decisions): the middle of the widest run of best-scoring intervals."""
    cuts = sorted({0.0, *relevant, *unrelated, 1.0})

    def correct(t: float) -> int:
        return sum(s >= t for s in relevant) + sum(s < t for s in unrelated)

    # Any threshold strictly between two consecutive observed scores decides alike: test one each.
    scores = [correct((lo + hi) / 2) for lo, hi in itertools.pairwise(cuts)]
    best = max(scores, default=0)
    runs: list[tuple[float, float]] = []
    for i, c in enumerate(scores):
        if c != best:
            continue
        if runs and runs[-1][1] == cuts[i]:
            runs[-1] = (runs[-1][0], cuts[i + 1])
        else:
            runs.append((cuts[i], cuts[i + 1]))
    low, high = max(runs, key=lambda r: r[1] - r[0], default=(0.0, 1.0))
    return (low + high) / 2, best


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(int(q * (len(ordered) - 1) + 0.5), len(ordered) - 1)], 3)

    return {"min": at(0.0), "p10": at(0.1), "p50": at(0.5), "p90": at(0.9), "max": at(1.0)}


def table(results: dict[str, Any]) -> str:
    features = results.get("features", {})
    switched = ", ".join(f"{k} {'on' if v else 'off'}" for k, v in features.items() if isinstance(v, bool))
    lines = [
        f"{results['dataset']}: {results['documents']} documents, {results['queries']} judged queries"
        + (f" ({switched})" if switched else ""),
        f"{'mode':<11} {'nDCG@10':>8} {'R@10':>8} {'R@100':>8} {'MRR@10':>8} {'ms/query':>9}",
    ]
    for mode, m in results["modes"].items():
        lines.append(
            f"{mode:<11} {m['ndcg@10']:>8.4f} {m['recall@10']:>8.4f} {m['recall@100']:>8.4f} {m['mrr@10']:>8.4f}"
            f" {m.get('ms_per_query', 0.0):>9.2f}"
        )
    na = results.get("no_answer")
    if na:
        lines.append(_no_answer_line("no-answer threshold", na))
    for note in results.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _no_answer_line(label: str, na: dict[str, Any]) -> str:
    return (
        f"{label} {na['threshold']:.3f}: {na['in_scope_answered']}/{na['in_scope']} in-scope answered, "
        f"{na['out_of_scope_refused']}/{na['out_of_scope']} out-of-scope refused "
        f"(relevant best p10 {na['relevant_best_relevance'].get('p10', 0.0):.3f}, "
        f"out-of-scope best p90 {na['out_of_scope_best_relevance'].get('p90', 0.0):.3f})"
    )


def pooled(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One no-answer threshold over every dataset with out-of-scope questions, and its decisions on each."""
    calibrated = [r for r in results if r.get("no_answer")]
    if len(calibrated) < 2:
        return None
    relevant = [x for r in calibrated for x in r["no_answer"]["scores"]["relevant_best"]]
    unrelated = [x for r in calibrated for x in r["no_answer"]["scores"]["unrelated_best"]]
    overall = decisions(relevant, unrelated)
    overall.pop("scores")
    threshold = overall["threshold"]
    overall["per_dataset"] = {}
    for r in calibrated:
        scores = r["no_answer"]["scores"]
        mine = decisions(scores["relevant_best"], scores["unrelated_best"], threshold)
        mine.pop("scores")
        overall["per_dataset"][r["dataset"]] = mine
    return overall


def run_cli(
    directories: list[Path],
    mode: str,
    settings: Settings,
    json_out: str | None = None,
    *,
    rewrite: bool | None = None,
    chunk_headers: bool | None = None,
    expand: bool | None = None,
    rerank: bool | None = None,
    chunked: bool = False,
) -> int:
    """``switchboard eval retrieval``: each switch left None takes its ``SWITCHBOARD_KNOWLEDGE_*`` setting."""
    from runtime.knowledge.backends import open_knowledge_base, open_retriever

    modes = list(RUNS) if mode == "all" else [mode]
    scratch = Path(tempfile.mkdtemp(prefix="switchboard-eval-"))
    tuned = replace(
        settings,
        data_dir=scratch,
        knowledge_rewrite_queries=settings.knowledge_rewrite_queries if rewrite is None else rewrite,
        knowledge_chunk_headers=settings.knowledge_chunk_headers if chunk_headers is None else chunk_headers,
        knowledge_expand_queries=settings.knowledge_expand_queries if expand is None else expand,
        knowledge_rerank=settings.knowledge_rerank if rerank is None else rerank,
    )

    async def run() -> list[dict[str, Any]]:
        # A scratch store; the embedding cache stays in the real data dir so reruns are fast.
        kb = open_knowledge_base(tuned, embedder=_cached_embedder(settings))
        retriever = open_retriever(tuned, kb)
        try:
            return [await evaluate(kb, d, modes, EvalProgress(), retriever, chunked) for d in directories]
        finally:
            if retriever.model is not None:
                await retriever.model.aclose()
            await kb.close()

    try:
        results = asyncio.run(run())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("\n\n".join(table(r) for r in results))
    both = pooled(results)
    if both is not None:
        print("\n" + _no_answer_line("pooled no-answer threshold", both))
        for name, mine in both["per_dataset"].items():
            print(
                f"  {name}: {mine['in_scope_answered']}/{mine['in_scope']} answered, "
                f"{mine['out_of_scope_refused']}/{mine['out_of_scope']} refused"
            )
    output: dict[str, Any] = results[0] if len(results) == 1 else {"datasets": results}
    if both is not None:
        output["pooled_no_answer"] = both
    if json_out == "-":
        print(json.dumps(output, indent=2))
    elif json_out:
        Path(json_out).write_text(json.dumps(output, indent=2))
    return 0


def _cached_embedder(settings: Settings) -> Any:
    from runtime.knowledge.backends import open_embedder

    return open_embedder(settings)
