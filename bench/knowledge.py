"""The knowledge stack's costs: ingest rate, hybrid search latency at 10k and 100k chunks, memory, and
an extractive answer end to end through the gateway.

- **Ingest with embedding**: a few hundred chunks of about 128 tokens through ``KnowledgeBase.ingest``
  with the real numpy MiniLM (no cache), so the rate is the model's plus chunking, BM25 and the store.
- **Ingest without embedding**: the same path with random unit vectors in place of the model, building
  the 10k and then the 100k collection in the embedded Qdrant Edge store (synthetic text with a Zipf
  vocabulary, so BM25 sees realistic term statistics).
- **Search**: after ``optimize()``, one hybrid query (dense + sparse prefetch, RRF) as the agent issues
  it (top 10 with vectors), the same query fused by DBSF, and a plain dense query as the same-run
  baseline, interleaved one by one.
  The query's embedding is excluded and measured on its own with the real model.
- **Memory**: this process's resident set before the collection, at 10k and at 100k, and the shard's
  size on disk.
- **End to end**: ``switchboard ingest`` of the shipped dataset's corpus, then the platform (scripted
  LLM, agents, gateway) and ``POST /v1/chat/completions`` with ``model: knowledge`` (extractive mode),
  interleaved with ``KnowledgeService.Search`` on the agent over gRPC as the baseline (embedding and
  retrieval without the A2A task and the gateway). Every question is unique so no cache answers it.

    python -m bench.knowledge [--chunks 100000] [--embed-chunks 240] [--path-chunks 2000] [--requests 60]
                              [--out bench/results/knowledge.json]

Exits 1 when a bar of the issue is missed: hybrid p95 <= 10 ms at 100k chunks; extractive answer
p95 <= 300 ms end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np

from runtime.knowledge.base import DocumentInput, KnowledgeBase
from runtime.knowledge.edge_store import EdgeVectorStore
from runtime.knowledge.embeddings import Vectors
from runtime.knowledge.minilm import MiniLMEmbedder
from runtime.knowledge.sparse import Bm25Encoder
from runtime.knowledge.store import ChunkPoint, Fusion, Mode, chunk_point_id
from switchboard.v1 import knowledge_pb2, knowledge_pb2_grpc
from tests.support.platform import ROOT, Platform, free_port

MINI = ROOT / "bench/data/switchboard-mini"
CHUNKS_PER_DOC = 10
PARAGRAPH_CHARS = 560  # with max_chars 700 each paragraph is one chunk of about 110-130 tokens
BAR_HYBRID_P95_MS = 10.0
BAR_ANSWER_P95_MS = 300.0


class RandomUnitEmbedder:
    """Unit vectors from a seeded generator: ingest and search cost without the model's."""

    def __init__(self, dimensions: int = 384, seed: int = 7) -> None:
        self._rng = np.random.default_rng(seed)
        self._dimensions = dimensions

    @property
    def model(self) -> str:
        return "bench/random-unit"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def batch_size(self) -> int:
        return 256

    def embed(self, texts: Sequence[str]) -> Vectors:
        v = self._rng.standard_normal((len(texts), self._dimensions)).astype(np.float32)
        out: Vectors = v / np.linalg.norm(v, axis=1, keepdims=True)
        return out


class Vocabulary:
    """Pseudo-words drawn with Zipf frequencies: a few common, a long tail of rare ones."""

    def __init__(self, size: int = 20_000, seed: int = 11) -> None:
        rng = random.Random(seed)
        syllables = [c + v for c in "bcdfghklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
        self.words = np.array(["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(size)])
        weights = 1.0 / np.arange(1, size + 1)
        self.p = weights / weights.sum()
        self.rng = np.random.default_rng(seed)

    def texts(self, count: int, chars: int) -> list[str]:
        # About 7 characters a word with its space; draw all the words at once, then cut to length.
        ids = self.rng.choice(len(self.words), size=(count, chars // 5), p=self.p)
        return [" ".join(self.words[row])[:chars] for row in ids]

    def query(self) -> str:
        # Mid-frequency terms, as a person's keywords tend to be: not stop-word-like, not unseen.
        return " ".join(self.words[self.rng.integers(50, 5000, size=int(self.rng.integers(2, 6)))])


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def pct(samples_s: Sequence[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50": round(q[49], 3), "p95": round(q[94], 3), "mean": round(statistics.fmean(ms), 3)}


def english_paragraphs(count: int) -> list[str]:
    """Paragraphs of real sentences (about 128 tokens each) from the shipped dataset's corpus."""
    docs = [json.loads(line)["text"] for line in (MINI / "corpus.jsonl").read_text().splitlines() if line]
    rng = random.Random(3)
    out = []
    for i in range(count):
        text = f"Note {i}."
        while len(text) < PARAGRAPH_CHARS - 120:
            text += " " + rng.choice(docs)
        out.append(text[:PARAGRAPH_CHARS])
    return out


async def ingest(kb: KnowledgeBase, collection: str, docs: list[tuple[str, list[str]]]) -> tuple[int, float]:
    started = time.perf_counter()
    chunks = 0
    for doc_id, paragraphs in docs:
        outcome = await kb.ingest(
            collection,
            DocumentInput(doc_id, doc_id, "text/plain", text="\n\n".join(paragraphs)),
            max_chars=700,
            overlap=0,
        )
        chunks += outcome.chunks
    return chunks, time.perf_counter() - started


async def search_latency(kb: KnowledgeBase, collection: str, vocab: Vocabulary, queries: int) -> dict[str, Any]:
    """Hybrid (RRF, and DBSF) against dense-only, interleaved so noise lands on all three alike."""
    rng = np.random.default_rng(5)
    kinds: dict[str, tuple[Mode, Fusion]] = {
        "hybrid": ("hybrid", "rrf"),
        "hybrid_dbsf": ("hybrid", "dbsf"),
        "dense": ("dense", "rrf"),
    }
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for i in range(queries + 20):
        dense = rng.standard_normal(384).astype(np.float32)
        dense /= np.linalg.norm(dense)
        sparse = kb.sparse.query(vocab.query())
        order = list(kinds) if i % 2 else list(reversed(kinds))
        for kind in order:
            mode, fusion = kinds[kind]
            started = time.perf_counter()
            await kb.store.search(collection, mode, dense, sparse, 10, None, with_dense=True, fusion=fusion)
            if i >= 20:  # the first ones warm caches
                times[kind].append(time.perf_counter() - started)
    figures = {kind: pct(values) for kind, values in times.items()}
    return {**figures, "hybrid_vs_dense_p50": round(figures["hybrid"]["p50"] / figures["dense"]["p50"], 2)}


async def store_phase(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    model = MiniLMEmbedder()
    bm25 = Bm25Encoder()
    # Query embedding on its own: what a search adds before the store sees it.
    questions = [json.loads(line)["text"] for line in (MINI / "queries.jsonl").read_text().splitlines() if line]
    model.embed(questions[:2])
    samples = []
    for q in questions:
        started = time.perf_counter()
        model.embed([q])
        samples.append(time.perf_counter() - started)
    out["query_embedding_ms"] = pct(samples)
    print(f"query embedding: {out['query_embedding_ms']}", file=sys.stderr)

    embedded = KnowledgeBase(EdgeVectorStore(workdir / "embedded"), model, bm25)
    paragraphs = english_paragraphs(args.embed_chunks)
    docs = [(f"doc-{i}", paragraphs[i : i + CHUNKS_PER_DOC]) for i in range(0, len(paragraphs), CHUNKS_PER_DOC)]
    chunks, seconds = await ingest(embedded, "embedded", docs)
    tokens = statistics.fmean(len(model._tokenizer.encode(p).ids) for p in paragraphs[:50])
    out["ingest_with_embedding"] = {
        "chunks": chunks,
        "seconds": round(seconds, 2),
        "chunks_per_s": round(chunks / seconds, 1),
        "tokens_per_chunk": round(tokens, 1),
    }
    print(f"ingest with embedding: {out['ingest_with_embedding']}", file=sys.stderr)
    await embedded.close()

    vocab = Vocabulary()
    random_vectors = RandomUnitEmbedder()
    kb = KnowledgeBase(EdgeVectorStore(workdir / "store"), random_vectors, bm25)
    # Through the ingest path as documents arrive (10 chunks each): chunking, BM25, markers, store.
    texts = vocab.texts(args.path_chunks, PARAGRAPH_CHARS)
    docs = [(f"path-{i}", texts[i : i + CHUNKS_PER_DOC]) for i in range(0, len(texts), CHUNKS_PER_DOC)]
    chunks, seconds = await ingest(kb, "ingest-path", docs)
    out["ingest_without_embedding"] = {
        "chunks": chunks,
        "seconds": round(seconds, 2),
        "chunks_per_s": round(chunks / seconds, 1),
        "chunks_per_document": CHUNKS_PER_DOC,
    }
    print(f"ingest without embedding: {out['ingest_without_embedding']}", file=sys.stderr)
    await kb.store.drop_collection("ingest-path")

    # The 10k and 100k collections in bulk (1000 points per write), as a re-index would load them.
    await kb.store.ensure_collection("bench", random_vectors.dimensions, random_vectors.model)
    out["rss_mb_before"] = round(rss_mb(), 1)
    built = 0
    bulk_seconds = 0.0
    for size in (10_000, args.chunks):
        while built < size:
            n = min(1000, size - built)
            batch_texts = vocab.texts(n, PARAGRAPH_CHARS)
            vectors = random_vectors.embed(batch_texts)
            started = time.perf_counter()
            points = [
                ChunkPoint(
                    chunk_point_id(f"bulk-{(built + j) // CHUNKS_PER_DOC}", (built + j) % CHUNKS_PER_DOC),
                    vectors[j].tolist(),
                    bm25.document(text),
                    {
                        "document_id": f"bulk-{(built + j) // CHUNKS_PER_DOC}",
                        "chunk_index": (built + j) % CHUNKS_PER_DOC,
                        "text": text,
                        "source_uri": f"bulk-{(built + j) // CHUNKS_PER_DOC}.txt",
                        "title": "",
                        "tags": [],
                        "indexed_at": time.time(),
                    },
                )
                for j, text in enumerate(batch_texts)
            ]
            await kb.store.upsert("bench", points)
            bulk_seconds += time.perf_counter() - started
            built += n
        started = time.perf_counter()
        await kb.store.optimize("bench")
        optimize_s = time.perf_counter() - started
        stats = await kb.store.stats("bench")
        figures = {
            "chunks": stats.points,
            "optimize_s": round(optimize_s, 2),
            "rss_mb": round(rss_mb(), 1),
            "disk_mb": round(disk_mb(workdir / "store" / "bench"), 1),
            **await search_latency(kb, "bench", vocab, args.queries),
        }
        out[f"at_{size}"] = figures
        print(f"at {size}: {figures}", file=sys.stderr)
    out["bulk_upsert"] = {
        "chunks": built,
        "seconds": round(bulk_seconds, 2),
        "chunks_per_s": round(built / bulk_seconds, 1),
    }
    small, large = out["at_10000"], out[f"at_{args.chunks}"]
    out["growth_10k_to_100k"] = {
        "hybrid_p50": round(large["hybrid"]["p50"] / small["hybrid"]["p50"], 2),
        "hybrid_p95": round(large["hybrid"]["p95"] / small["hybrid"]["p95"], 2),
        "rss_mb_added": round(large["rss_mb"] - small["rss_mb"], 1),
        "disk": round(large["disk_mb"] / small["disk_mb"], 2),
    }
    await kb.close()
    return out


def write_corpus(folder: Path) -> None:
    folder.mkdir(parents=True)
    for line in (MINI / "corpus.jsonl").read_text().splitlines():
        if line:
            row = json.loads(line)
            (folder / f"{row['_id']}.md").write_text(f"# {row['title']}\n\n{row['text']}\n")


async def answer_phase(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    grpc_port, http_port = free_port(), free_port()
    p = Platform(
        workdir / "platform",
        extra_env={
            "SWITCHBOARD_KNOWLEDGE_GRPC_PORT": str(grpc_port),
            "SWITCHBOARD_KNOWLEDGE_HTTP_PORT": str(http_port),
            "SWITCHBOARD_KNOWLEDGE_COLLECTION": "docs",
            "SWITCHBOARD_LOG_LEVEL": "WARNING",
        },
    )
    p.workdir.mkdir(parents=True)
    p.ports["knowledge_grpc"], p.ports["knowledge_http"] = grpc_port, http_port
    write_corpus(p.workdir / "docs")
    started = time.perf_counter()
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "runtime.cli", "ingest", str(p.workdir / "docs"), "--collection", "docs"],
        cwd=ROOT,
        env=p.env,
        check=True,
        capture_output=True,
    )
    ingest_s = time.perf_counter() - started
    questions = [json.loads(line)["text"] for line in (MINI / "queries.jsonl").read_text().splitlines() if line]
    try:
        p.start_llm()
        for name in ("reasoning", "planner", "knowledge", "orchestrator", "gateway"):
            p.start_service(name)
        url = f"{p.gateway_url}/v1/chat/completions"
        chat: list[float] = []
        search: list[float] = []
        answered = 0
        async with (
            httpx.AsyncClient(timeout=30) as client,
            grpc.aio.insecure_channel(p.grpc_target("knowledge")) as channel,
        ):
            stub = knowledge_pb2_grpc.KnowledgeServiceStub(channel)
            for i in range(args.requests + 5):
                # A unique question each time: the agent's embedding cache must not answer it.
                base = questions[i % len(questions)]
                for kind in ("chat", "search") if i % 2 else ("search", "chat"):
                    text = f"{base} ({kind} {i})"
                    t0 = time.perf_counter()
                    if kind == "chat":
                        body = {"model": "knowledge", "messages": [{"role": "user", "content": text}]}
                        response = await client.post(url, json=body)
                        response.raise_for_status()
                        content = response.json()["choices"][0]["message"]["content"]
                        answered += i >= 5 and "Sources:" in content
                    else:
                        await stub.Search(knowledge_pb2.SearchRequest(collection="docs", query=text, top_k=5))
                    if i >= 5:
                        (chat if kind == "chat" else search).append(time.perf_counter() - t0)
    finally:
        p.stop()
        proc = p.procs.pop("knowledge", None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=15)
    answer, baseline = pct(chat), pct(search)
    return {
        "corpus_ingest_s": round(ingest_s, 2),
        "requests": len(chat),
        "answered_with_sources": answered,
        "chat_extractive_ms": answer,
        "grpc_search_ms": baseline,
        "added_by_task_and_gateway_p50_ms": round(answer["p50"] - baseline["p50"], 2),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-knowledge-") as tmp:
        workdir = Path(tmp)
        results: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count(), "python": host.python_version(), "system": host.platform()},
            "store": await store_phase(args, workdir),
        }
        results["answer"] = await answer_phase(args, workdir)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--embed-chunks", type=int, default=240)
    parser.add_argument("--path-chunks", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--out", default=str(ROOT / "bench/results/knowledge.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    results = asyncio.run(run(args))
    results["wall_s"] = round(time.perf_counter() - started, 1)
    hybrid_p95 = results["store"][f"at_{args.chunks}"]["hybrid"]["p95"]
    answer_p95 = results["answer"]["chat_extractive_ms"]["p95"]
    results["bars"] = {
        f"hybrid_p95_at_{args.chunks}_ms": {"value": hybrid_p95, "max": BAR_HYBRID_P95_MS},
        "extractive_answer_p95_ms": {"value": answer_p95, "max": BAR_ANSWER_P95_MS},
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    missed = [name for name, bar in results["bars"].items() if bar["value"] > bar["max"]]
    for name in missed:
        print(f"bench.knowledge: bar missed: {name}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
