"""Ingestion on real parts: a mixed folder (Markdown, HTML, PDF, text) into Qdrant Edge with the real model."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.errors import InvalidKnowledgeRequestError
from runtime.knowledge.base import KnowledgeBase
from runtime.knowledge.edge_store import EdgeVectorStore
from runtime.knowledge.embeddings import Embedder
from runtime.knowledge.folders import ingest_paths
from runtime.knowledge.sparse import Bm25Encoder
from runtime.knowledge.store import Condition, Filter
from tests.support.pdf import make_pdf
from tests.support.platform import ROOT

HANDBOOK = """# Employee Handbook

## Leave

### Vacation
Full-time employees accrue 25 days of paid vacation per year. Unused days carry over until March 31.

### Sick leave
Sick leave needs a doctor's note after three consecutive days.

## Equipment
Laptops are replaced every four years. Lost equipment must be reported to IT within 24 hours.
"""

RUNBOOK = """<html><head><title>Database runbook</title></head><body>
<h1>Database runbook</h1>
<h2>Failover</h2><p>To fail over the primary, run <code>pgctl promote</code> on the standby
and update the DNS record.</p>
<h2>Backups</h2><p>Backups run nightly at 02:00 UTC and are kept for 35 days.</p>
<script>var ignored = "not content";</script>
</body></html>"""


def write_folder(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "handbook.md").write_text(HANDBOOK)
    (root / "runbook.html").write_text(RUNBOOK)
    (root / "policy.pdf").write_bytes(
        make_pdf(
            [
                ["Refund policy. Refunds are issued within 14 days of a returned item being received."],
                ["Warranty. Every device carries a two year warranty against manufacturing defects."],
            ],
            title="Refund and warranty policy",
        )
    )
    (root / "notes.txt").write_text(
        "Release train.\n\nThe release train leaves every second Tuesday.\n\n"
        "Error ZQ-7781 means the build cache is corrupt."
    )


@pytest.fixture
async def kb(tmp_path: Path, embedder: Embedder, bm25: Bm25Encoder) -> AsyncIterator[KnowledgeBase]:
    base = KnowledgeBase(EdgeVectorStore(tmp_path / "store"), embedder, bm25)
    yield base
    await base.close()


async def test_mixed_folder_answers_come_from_the_right_chunks_with_provenance(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    write_folder(folder)
    (folder / "fake.md").write_bytes(b"\x00\x01\x02binary pretending to be markdown")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    report = await ingest_paths(kb, [folder], "docs")
    assert report.ingested == 4 and {s for s, _ in report.failures} == {"fake.md", "broken.pdf"}
    assert report.added == ["handbook.md", "notes.txt", "policy.pdf", "runbook.html"] and report.updated == []
    assert any("binary" in r for _, r in report.failures) and any("PDF" in r for _, r in report.failures)

    vacation = (await kb.search("docs", "How many vacation days do I get?"))[0]
    assert vacation.payload["source_uri"] == "handbook.md"
    assert vacation.payload["section_path"] == ["Employee Handbook", "Leave", "Vacation"]
    start, end = vacation.payload["start_offset"], vacation.payload["end_offset"]
    assert "25 days" in vacation.text and end - start == len(vacation.text)

    failover = (await kb.search("docs", "how do I promote the standby database?"))[0]
    assert failover.payload["source_uri"] == "runbook.html" and failover.payload["title"] == "Database runbook"
    assert failover.payload["section_path"] == ["Database runbook", "Failover"] and "ignored" not in failover.text

    warranty = (await kb.search("docs", "how long is the warranty on devices?"))[0]
    assert warranty.payload["source_uri"] == "policy.pdf" and warranty.payload["page"] == 2

    # Modes differ: an opaque error code is a keyword match; a paraphrase is a meaning match.
    code_sparse = await kb.search("docs", "ZQ-7781", mode="sparse")
    assert code_sparse[0].payload["source_uri"] == "notes.txt"
    para_dense = await kb.search("docs", "when are computers swapped for new ones?", mode="dense")
    assert "Laptops are replaced" in para_dense[0].text
    para_sparse = await kb.search("docs", "when are computers swapped for new ones?", mode="sparse")
    assert not para_sparse or "Laptops are replaced" not in para_sparse[0].text


async def test_reingest_after_edits_updates_skips_and_removes(kb: KnowledgeBase, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_folder(folder)
    await ingest_paths(kb, [folder], "docs")
    points = (await kb.store.stats("docs")).points
    again = await ingest_paths(kb, [folder], "docs")
    assert (again.ingested, again.unchanged, again.chunks) == (0, 4, 0)
    assert (await kb.store.stats("docs")).points == points

    (folder / "handbook.md").write_text(HANDBOOK.replace("25 days", "30 days"))
    (folder / "notes.txt").unlink()
    edited = await ingest_paths(kb, [folder], "docs")
    assert (edited.added, edited.updated, edited.unchanged, edited.removed) == ([], ["handbook.md"], 2, ["notes.txt"])
    stats = await kb.store.stats("docs")
    assert stats.documents == 3 and stats.points < points
    hits = await kb.search("docs", "vacation days per year")
    assert "30 days" in hits[0].text and not any("25 days" in h.text for h in hits)
    assert not await kb.search("docs", "ZQ-7781", mode="sparse")  # the deleted file's chunks are gone
    assert sorted(m.document_id for m in await kb.store.markers("docs")) == [
        "handbook.md",
        "policy.pdf",
        "runbook.html",
    ]


async def test_filters_deletes_and_hostile_requests(kb: KnowledgeBase, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_folder(folder)
    await ingest_paths(kb, [folder], "docs")
    before = (await kb.store.stats("docs")).points
    html_only = await kb.search("docs", "backups", flt=Filter(must=[Condition("media_type", equals="text/html")]))
    assert html_only and {h.payload["source_uri"] for h in html_only} == {"runbook.html"}
    for query in ["", "   ", "x" * 1_048_576]:
        with pytest.raises(InvalidKnowledgeRequestError):
            await kb.search("docs", query)
    with pytest.raises(InvalidKnowledgeRequestError, match="unknown field"):
        await kb.search("docs", "backups", flt=Filter(must=[Condition("owner", equals="me")]))
    with pytest.raises(InvalidKnowledgeRequestError):
        await ingest_paths(kb, [folder], "../../etc")
    with pytest.raises(InvalidKnowledgeRequestError):
        await kb.delete("docs", flt=Filter())
    assert (await kb.store.stats("docs")).points == before  # nothing stored was lost
    docs, chunks = await kb.delete("docs", flt=Filter(must=[Condition("source_uri", equals="notes.txt")]))
    assert docs == 1 and chunks >= 1
    assert (await kb.store.stats("docs")).points == before - chunks


def test_cli_killed_mid_ingest_leaves_no_half_document_done_and_a_rerun_completes(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):
        paragraphs = "\n\n".join(
            f"Paragraph {j} of file {i} talks about topic {i * 7 + j} in some detail." for j in range(12)
        )
        (folder / f"doc{i:02}.md").write_text(f"# File {i}\n\n{paragraphs}\n")
    env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(tmp_path / "data")}
    argv = [sys.executable, "-m", "runtime.cli", "ingest", str(folder), "--collection", "crash"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("ingest: 3/"):
            break
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    rerun = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "40 files" in rerun.stderr and "0 failed" in rerun.stderr
    assert " unchanged, 0 removed" in rerun.stderr
    # Whatever the kill interrupted was redone; everything else was skipped as unchanged.
    summary = re.search(r"ingest: (\d+) added, (\d+) updated, (\d+) unchanged", rerun.stderr)
    assert summary is not None, rerun.stderr
    added, updated, unchanged = (int(n) for n in summary.groups())
    # The interrupted document had never been complete: it is added, not updated.
    assert 2 <= unchanged < 40 and added == 40 - unchanged and updated == 0
    check = subprocess.run(
        [sys.executable, "-c", _CHECK, str(tmp_path / "data" / "knowledge" / "collections")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.stdout.strip() == "40 40 True", check.stdout + check.stderr


_CHECK = """
import asyncio, sys
from pathlib import Path
from runtime.knowledge.edge_store import EdgeVectorStore
async def main():
    s = EdgeVectorStore(Path(sys.argv[1]))
    markers = await s.markers("crash")
    done = [m for m in markers if m.payload.get("status") == "done"]
    stats = await s.stats("crash")
    print(len(markers), len(done), stats.points == sum(m.payload["chunks"] for m in done))
    await s.close()
asyncio.run(main())
"""


def test_the_summary_names_changed_files_the_first_few_or_all_with_verbose() -> None:
    import io

    from runtime.knowledge.base import IngestReport
    from runtime.knowledge.cli import LISTED, ConsoleProgress

    added = [f"doc-{i}.md" for i in range(LISTED + 3)]
    report = IngestReport(added=added, updated=["faq.md"], unchanged=4, removed=["old.md"], chunks=40)
    short, full = io.StringIO(), io.StringIO()
    ConsoleProgress(short).finish(report)
    ConsoleProgress(full, verbose=True).finish(report)
    lines = short.getvalue().splitlines()
    assert lines[0].startswith(f"ingest: {LISTED + 3} added, 1 updated, 4 unchanged, 1 removed, 0 failed; 40 chunks")
    assert lines[1] == f"ingest: added: {', '.join(added[:LISTED])} and 3 more (--verbose lists them all)"
    assert lines[2:] == ["ingest: updated: faq.md", "ingest: removed: old.md"]
    assert f"ingest: added: {', '.join(added)}" in full.getvalue().splitlines()
