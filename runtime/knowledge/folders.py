"""Keeping a collection in step with folders on disk: what ``switchboard ingest PATH...`` does.

Every supported file under each path is one document, its id the path relative to the folder
it was found in, with that folder recorded as the document's ``metadata.ingest_root``. A run
ingests what changed (unchanged files cost a hash), reports files it cannot take and goes on,
and then removes the documents of that folder whose file is gone.

The same walk feeds either sink: the knowledge base opened in this process, or a running
knowledge agent over ``KnowledgeService`` (:class:`AgentIngest`), which holds the embedded store
while it runs (Qdrant Edge opens a shard in one process at a time).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Protocol

from runtime.errors import CollectionNotFoundError, DocumentRejectedError, KnowledgeError
from runtime.knowledge.base import INGEST_ROOT, DocumentInput, IngestOutcome, IngestReport, Progress
from runtime.knowledge.client import KnowledgeClient
from runtime.knowledge.documents import media_type_for
from runtime.knowledge.store import check_collection_name
from switchboard.v1 import knowledge_pb2

MAX_FILE_BYTES = 20 * 1024 * 1024


class DocumentSink(Protocol):
    async def ingest(self, collection: str, doc: DocumentInput) -> IngestOutcome:
        """Index one document; raises :class:`DocumentRejectedError` for a document it cannot take."""
        ...

    async def remove_stale(self, collection: str, root: str, keep: Collection[str]) -> list[str]:
        """Remove the documents ingested from ``root`` whose ids are not in ``keep``; returns their ids."""
        ...


async def ingest_paths(
    sink: DocumentSink,
    paths: Sequence[Path],
    collection: str,
    progress: Progress | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> IngestReport:
    """Files and directories; documents ingested from a directory whose file is gone are removed."""
    check_collection_name(collection)
    progress = progress or Progress()
    report = IngestReport()
    plan: list[tuple[Path, Path]] = []  # (root, file)
    for path in paths:
        root = path.resolve()
        if root.is_dir():
            plan += [(root, f) for f in sorted(root.rglob("*")) if f.is_file() and not _hidden(f, root)]
        elif root.is_file():
            plan.append((root.parent, root))
        else:
            report.failures.append((str(path), "no such file or directory"))
    progress.start(len(plan))
    seen: dict[str, set[str]] = {}
    for root, file in plan:
        rel = file.relative_to(root).as_posix()
        seen.setdefault(str(root), set()).add(rel)
        media_type = media_type_for(file.name)
        if media_type is None:
            progress.advance(rel, 0, "skipped: not a supported type")
            continue
        try:
            size = file.stat().st_size
            if size > max_bytes:
                raise DocumentRejectedError(f"{rel}: {size} bytes is over the {max_bytes} byte limit")
            doc = DocumentInput(rel, rel, media_type, data=file.read_bytes(), metadata={INGEST_ROOT: str(root)})
            outcome = await sink.ingest(collection, doc)
        except (DocumentRejectedError, OSError) as exc:
            reason = exc.message if isinstance(exc, KnowledgeError) else f"{rel}: {exc}"
            report.failures.append((rel, reason))
            progress.advance(rel, 0, f"failed: {reason}")
            continue
        if outcome.status == "unchanged":
            report.unchanged += 1
        else:
            (report.updated if outcome.replaced else report.added).append(rel)
            report.chunks += outcome.chunks
        progress.advance(rel, outcome.chunks, outcome.status)
    for folder, names in seen.items():
        report.removed += await sink.remove_stale(collection, folder, names)
    progress.finish(report)
    return report


class AgentIngest:
    """The ``DocumentSink`` of ``switchboard ingest`` while a knowledge agent runs: one call per file."""

    def __init__(self, client: KnowledgeClient) -> None:
        self.client = client

    async def ingest(self, collection: str, doc: DocumentInput) -> IngestOutcome:
        document = knowledge_pb2.Document(
            id=doc.document_id, source_uri=doc.source_uri, title=doc.title, media_type=doc.media_type, tags=doc.tags
        )
        if doc.data is not None:
            document.data = doc.data
        else:
            document.text = doc.text or ""
        document.metadata.update(doc.metadata)
        response = await self.client.ingest(
            [knowledge_pb2.IngestDocumentsRequest(collection=collection, document=document)]
        )
        if response.failures:
            raise DocumentRejectedError(response.failures[0].error)
        status = "unchanged" if response.documents_unchanged else "ingested"
        return IngestOutcome(doc.document_id, status, response.chunks_written, replaced=response.documents_replaced > 0)

    async def remove_stale(self, collection: str, root: str, keep: Collection[str]) -> list[str]:
        request = knowledge_pb2.DeleteDocumentsRequest(collection=collection)
        # The proto form of runtime.knowledge.base.stale_filter.
        request.filter.must.add(field=f"metadata.{INGEST_ROOT}").equals.string_value = root
        if keep:
            request.filter.must_not.add(field="document_id").any_of.extend(sorted(keep))
        try:
            response = await self.client.delete(request)
        except CollectionNotFoundError:
            return []
        return list(response.deleted_document_ids)


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)
