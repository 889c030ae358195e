"""``switchboard ingest`` and ``switchboard eval retrieval``: the knowledge commands."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import TextIO

from runtime.config import Settings
from runtime.errors import KnowledgeError, SwitchboardError
from runtime.knowledge.base import IngestReport, Progress
from runtime.knowledge.client import KnowledgeClient
from runtime.knowledge.evaluation import ALIASES, RUNS


async def _running_agent(settings: Settings) -> str | None:
    """The gRPC address of a knowledge agent answering at ``SWITCHBOARD_KNOWLEDGE_URL``, if one is up."""
    from runtime.a2a_client import fetch_card, grpc_target

    try:
        card = await fetch_card(settings.knowledge_url)
        return grpc_target(card) if card.name == "knowledge" else None
    except SwitchboardError:  # nothing there (or nothing we can call): use the store
        return None


LISTED = 5
"""Files of each kind (added, updated, removed) the summary names without ``--verbose``."""


class ConsoleProgress(Progress):
    """A bar (files, chunks, rate, ETA) on a terminal; one log line per file otherwise.

    The summary counts what was added, updated, unchanged, removed and failed, and names the
    added, updated and removed files: all of them with ``verbose``, the first :data:`LISTED`
    of each kind otherwise.
    """

    def __init__(self, out: TextIO = sys.stderr, verbose: bool = False) -> None:
        self.out = out
        self.verbose = verbose
        self.tty = out.isatty()
        self.total = 0
        self.done = 0
        self.chunks = 0
        self.started = time.monotonic()

    def start(self, files: int) -> None:
        self.total = files
        self.started = time.monotonic()
        if not self.tty:
            print(f"ingest: {files} files", file=self.out, flush=True)

    def advance(self, source: str, chunks: int, status: str) -> None:
        self.done += 1
        self.chunks += chunks
        elapsed = max(time.monotonic() - self.started, 1e-6)
        if self.tty:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            eta = elapsed / self.done * (self.total - self.done)
            line = (
                f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} files  "
                f"{self.chunks} chunks  {self.chunks / elapsed:.1f} chunks/s  ETA {eta:.0f}s  {source[-30:]:<30}"
            )
            print(line, end="", file=self.out, flush=True)
        else:
            print(f"ingest: {self.done}/{self.total} {source}: {status} ({chunks} chunks)", file=self.out, flush=True)

    def finish(self, report: IngestReport) -> None:
        if self.tty:
            print(file=self.out)
        elapsed = time.monotonic() - self.started
        print(
            f"ingest: {len(report.added)} added, {len(report.updated)} updated, {report.unchanged} unchanged, "
            f"{len(report.removed)} removed, {len(report.failures)} failed; {report.chunks} chunks in {elapsed:.1f}s",
            file=self.out,
            flush=True,
        )
        for kind, names in (("added", report.added), ("updated", report.updated), ("removed", report.removed)):
            if names:
                print(f"ingest: {kind}: {self._names(names)}", file=self.out, flush=True)
        for source, reason in report.failures:
            print(f"ingest: skipped {source}: {reason}", file=self.out, flush=True)

    def _names(self, names: list[str]) -> str:
        if self.verbose or len(names) <= LISTED:
            return ", ".join(names)
        return f"{', '.join(names[:LISTED])} and {len(names) - LISTED} more (--verbose lists them all)"


def ingest_main(args: argparse.Namespace, settings: Settings) -> int:
    from runtime.knowledge.backends import open_knowledge_base
    from runtime.knowledge.folders import AgentIngest, ingest_paths

    paths = [Path(p) for p in args.paths]
    # The agent answers from every collection it holds; without --collection, files go to the
    # one SWITCHBOARD_KNOWLEDGE_COLLECTION names, which the REST mirror and the docs call the default.
    collection = args.collection or settings.knowledge_collection
    progress = ConsoleProgress(verbose=args.verbose)

    async def run() -> int:
        target = None if args.local else await _running_agent(settings)
        if target is not None:
            # The agent holds the embedded store while it runs: hand it the files instead.
            print(f"ingest: through the running knowledge agent at {target}", file=sys.stderr, flush=True)
            client = KnowledgeClient(target)
            try:
                report = await ingest_paths(AgentIngest(client), paths, collection, progress)
            finally:
                await client.close()
        else:
            kb = open_knowledge_base(settings)
            try:
                report = await ingest_paths(kb, paths, collection, progress)
            finally:
                await kb.close()
        return 1 if report.failures and not (report.ingested or report.unchanged) else 0

    try:
        return asyncio.run(run())
    except SwitchboardError as exc:  # e.g. the agent stopped mid-ingest: what was sent is kept
        print(f"switchboard: {exc.message}", file=sys.stderr)
        return 2


def eval_main(args: argparse.Namespace, settings: Settings) -> int:
    from runtime.knowledge.evaluation import run_cli

    try:
        return run_cli(
            [Path(d) for d in args.dataset],
            args.mode,
            settings,
            json_out=args.json,
            rewrite=args.rewrite,
            chunk_headers=args.chunk_headers,
            expand=args.expand,
            rerank=args.rerank,
            chunked=args.chunked,
        )
    except KnowledgeError as exc:
        print(f"switchboard: {exc.message}", file=sys.stderr)
        return 2


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ingest = sub.add_parser("ingest", help="ingest files and directories into a knowledge collection")
    ingest.add_argument("paths", nargs="+", help="Markdown, text, HTML or PDF files, or directories of them")
    ingest.add_argument(
        "--collection",
        default="",
        help="collection name (default: SWITCHBOARD_KNOWLEDGE_COLLECTION, which is 'default' unless set)",
    )
    ingest.add_argument(
        "-v", "--verbose", action="store_true", help="name every added, updated and removed file in the summary"
    )
    ingest.add_argument(
        "--local",
        action="store_true",
        help="open the store directly even if a knowledge agent answers at SWITCHBOARD_KNOWLEDGE_URL "
        "(by default the files go through the running agent, which holds the embedded store)",
    )
    ev = sub.add_parser("eval", help="evaluate retrieval on a BEIR-format dataset")
    ev_sub = ev.add_subparsers(dest="eval_command", required=True)
    retrieval = ev_sub.add_parser("retrieval", help="nDCG@10, Recall@10, Recall@100, MRR@10 per mode")
    retrieval.add_argument(
        "--dataset",
        required=True,
        action="append",
        help="directory with corpus.jsonl, queries.jsonl, qrels/test.tsv (repeat it: each is evaluated, "
        "and the no-answer threshold is also picked over all of them)",
    )
    retrieval.add_argument(
        "--mode",
        default="all",
        choices=[*RUNS, *ALIASES, "all"],
        help="hybrid-dbsf fuses by distribution-based score fusion, hybrid-rrf by reciprocal rank fusion, "
        "hybrid by the configured one; all runs dense, sparse, hybrid-rrf and hybrid-dbsf",
    )
    retrieval.add_argument("--json", help="also write the figures to this JSON file (- for stdout)")
    retrieval.add_argument(
        "--chunked",
        action="store_true",
        help="split documents as ingestion does and rank each document by its best chunk "
        "(default: one chunk per document, as BEIR runs)",
    )
    switches = [
        ("--rewrite", "query rewriting: wrappers off, acronyms expanded (SWITCHBOARD_KNOWLEDGE_REWRITE_QUERIES)"),
        ("--chunk-headers", "title and section path in front of each chunk (SWITCHBOARD_KNOWLEDGE_CHUNK_HEADERS)"),
        ("--expand", "multi-query expansion through the LLM (SWITCHBOARD_KNOWLEDGE_EXPAND_QUERIES)"),
        ("--rerank", "LLM reranking of the first passages (SWITCHBOARD_KNOWLEDGE_RERANK)"),
    ]
    for flag, what in switches:
        retrieval.add_argument(
            flag, action=argparse.BooleanOptionalAction, default=None, help=f"{what}; default: the setting"
        )
