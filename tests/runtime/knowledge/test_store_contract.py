"""One contract, two adapters: Qdrant Edge (embedded) and qdrant-client (local mode here; a server in production)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.errors import CollectionNotFoundError, InvalidKnowledgeRequestError
from runtime.knowledge.edge_store import EdgeVectorStore
from runtime.knowledge.embeddings import Embedder
from runtime.knowledge.sparse import Bm25Encoder
from runtime.knowledge.store import ChunkPoint, Condition, Filter, Mode, VectorStore, chunk_point_id

DOCS = {
    "pets.md": ["Cats sleep most of the day and purr when content.", "Dogs need daily walks and enjoy fetch."],
    "db.md": ["Qdrant is a vector database written in Rust.", "Postgres is a relational database with SQL."],
    "zz-code.txt": ["Error code XJ-4411 means the disk quota was exceeded."],
}


async def fill(store: VectorStore, embedder: Embedder, bm25: Bm25Encoder, name: str = "kb") -> None:
    await store.ensure_collection(name, embedder.dimensions, embedder.model)
    for doc, chunks in DOCS.items():
        vectors = embedder.embed(chunks)
        points = [
            ChunkPoint(
                chunk_point_id(doc, i),
                vectors[i].tolist(),
                bm25.document(text),
                {
                    "document_id": doc,
                    "chunk_index": i,
                    "text": text,
                    "tags": ["animals"] if doc == "pets.md" else ["tech"],
                    "page": i + 1,
                    "metadata": {"team": "ops" if doc == "zz-code.txt" else "core"},
                },
            )
            for i, text in enumerate(chunks)
        ]
        await store.upsert(name, points)
        await store.set_marker(name, doc, {"status": "done", "content_hash": doc})


async def ask(
    store: VectorStore, embedder: Embedder, bm25: Bm25Encoder, query: str, mode: Mode, **kw: object
) -> list[str]:
    hits = await store.search(
        "kb",
        mode,
        embedder.embed([query])[0],
        bm25.query(query),
        3,
        **kw,  # type: ignore[arg-type]
    )
    return [str(h.payload["text"]) for h in hits]


async def test_dense_sparse_and_hybrid_each_find_their_kind_of_match(
    store: VectorStore, embedder: Embedder, bm25: Bm25Encoder
) -> None:
    await fill(store, embedder, bm25)
    # Meaning without shared words: only dense gets it first.
    dense = await ask(store, embedder, bm25, "which animal naps a lot?", "dense")
    assert dense[0].startswith("Cats")
    # An opaque code: keywords get it first.
    sparse = await ask(store, embedder, bm25, "XJ-4411", "sparse")
    assert sparse[0].startswith("Error code XJ-4411")
    hybrid = await ask(store, embedder, bm25, "vector database in Rust", "hybrid")
    assert hybrid[0].startswith("Qdrant")
    # Both fusions run inside the store, and both put the match both signals agree on first.
    by_scores = await ask(store, embedder, bm25, "vector database in Rust", "hybrid", fusion="dbsf")
    assert by_scores[0].startswith("Qdrant")
    assert await ask(store, embedder, bm25, "vector database in Rust", "hybrid", fusion="rrf") == hybrid
    # Markers (no vectors) are never returned by a search.
    assert all(
        "status" not in h.payload
        for h in await store.search("kb", "hybrid", embedder.embed(["x"])[0], bm25.query("x"), 10)
    )


async def test_filters_on_keyword_list_numeric_and_metadata_fields(
    store: VectorStore, embedder: Embedder, bm25: Bm25Encoder
) -> None:
    await fill(store, embedder, bm25)
    only_tech = await ask(store, embedder, bm25, "cats", "hybrid", flt=Filter(must=[Condition("tags", equals="tech")]))
    assert only_tech and not any("Cats" in t for t in only_tech)
    page2 = await ask(store, embedder, bm25, "database", "dense", flt=Filter(must=[Condition("page", gte=2)]))
    assert set(page2) == {DOCS["pets.md"][1], DOCS["db.md"][1]}
    page_eq = await ask(store, embedder, bm25, "database", "dense", flt=Filter(must=[Condition("page", equals=1)]))
    assert len(page_eq) == 3
    ops = await ask(
        store, embedder, bm25, "anything", "dense", flt=Filter(must=[Condition("metadata.team", equals="ops")])
    )
    assert ops == DOCS["zz-code.txt"]
    excluded = await ask(
        store, embedder, bm25, "database", "sparse", flt=Filter(must_not=[Condition("document_id", any_of=["db.md"])])
    )
    assert not any("database" in t for t in excluded)
    assert await store.document_ids("kb", Filter(must=[Condition("tags", equals="animals")])) == ["pets.md"]
    with pytest.raises(InvalidKnowledgeRequestError, match="unknown field"):
        Filter(must=[Condition("password", equals="x")]).validate()


async def test_deterministic_ids_overwrite_and_deletes_count(
    store: VectorStore, embedder: Embedder, bm25: Bm25Encoder
) -> None:
    await fill(store, embedder, bm25)
    await fill(store, embedder, bm25)  # the same chunks again: same ids, no duplicates
    stats = await store.stats("kb")
    assert (stats.points, stats.documents, stats.dimensions) == (5, 3, 384)
    assert stats.embedding_model == embedder.model and stats.updated_at > 0
    await store.delete_chunks_from("kb", "pets.md", 1)
    assert (await store.stats("kb")).points == 4
    assert await store.delete_documents("kb", ["db.md", "nope"]) == 2
    stats = await store.stats("kb")
    assert (stats.points, stats.documents) == (2, 2)
    assert sorted(m.document_id for m in await store.markers("kb")) == ["pets.md", "zz-code.txt"]
    one = await store.marker("kb", "pets.md")
    assert one is not None and one.document_id == "pets.md" and await store.marker("kb", "nope.md") is None


async def test_a_document_written_whole_replaces_its_chunks_and_marker(
    store: VectorStore, embedder: Embedder, bm25: Bm25Encoder
) -> None:
    await fill(store, embedder, bm25)
    texts = ["Parrots repeat words they hear often."]
    vectors = embedder.embed(texts)
    point = ChunkPoint(
        chunk_point_id("pets.md", 0),
        vectors[0].tolist(),
        bm25.document(texts[0]),
        {"document_id": "pets.md", "chunk_index": 0, "text": texts[0], "tags": ["birds"]},
    )
    # pets.md had two chunks: the new version has one, so its second is stale and goes.
    await store.write_document("kb", "pets.md", [point], {"status": "done", "content_hash": "v2", "chunks": 1})
    stats = await store.stats("kb")
    assert (stats.points, stats.documents) == (4, 3)
    marker = await store.marker("kb", "pets.md")
    assert marker is not None and marker.payload["content_hash"] == "v2" and marker.payload["status"] == "done"
    assert (await ask(store, embedder, bm25, "which bird talks?", "dense"))[0] == texts[0]
    assert await store.document_ids("kb", Filter(must=[Condition("tags", equals="birds")])) == ["pets.md"]
    assert await store.document_ids("kb", Filter(must=[Condition("tags", equals="animals")])) == []


async def test_collections_listed_dropped_and_hostile_names_refused(
    store: VectorStore, embedder: Embedder, bm25: Bm25Encoder
) -> None:
    await fill(store, embedder, bm25, "kb")
    await store.ensure_collection("other_1", 384, "m")
    assert await store.list_collections() == ["kb", "other_1"]
    for hostile in ["../etc", "a/b", "", ".hidden", "x" * 64, "a b", "kb\x00", "..", "C:\\x"]:
        with pytest.raises(InvalidKnowledgeRequestError):
            await store.ensure_collection(hostile, 384, "m")
        with pytest.raises(InvalidKnowledgeRequestError):
            await store.search(hostile, "dense", embedder.embed(["q"])[0], None, 3)
    with pytest.raises(CollectionNotFoundError):
        await store.stats("missing")
    await store.drop_collection("other_1")
    assert await store.list_collections() == ["kb"]
    assert (await store.stats("kb")).points == 5  # nothing stored was lost


async def test_the_configured_fusion_is_checked_and_becomes_the_default(tmp_path: Path, embedder: Embedder) -> None:
    from runtime.config import Settings
    from runtime.errors import ConfigError
    from runtime.knowledge.backends import open_knowledge_base

    env = {"SWITCHBOARD_DATA_DIR": str(tmp_path)}
    with pytest.raises(ConfigError, match="SWITCHBOARD_KNOWLEDGE_FUSION='max'"):
        open_knowledge_base(Settings.from_env({**env, "SWITCHBOARD_KNOWLEDGE_FUSION": "max"}), embedder)
    for configured, expected in (("rrf", "rrf"), (None, "dbsf")):
        extra = {"SWITCHBOARD_KNOWLEDGE_FUSION": configured} if configured else {}
        kb = open_knowledge_base(Settings.from_env({**env, **extra}), embedder)
        try:
            assert kb.fusion == expected
        finally:
            await kb.close()


@pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
async def test_ties_come_back_in_one_order_on_every_call(
    store: VectorStore, embedder: Embedder, bm25: Bm25Encoder, fusion: str
) -> None:
    """Chunks with the same text tie; identical calls rank them alike, and exact ties go by id."""
    await store.ensure_collection("kb", embedder.dimensions, embedder.model)
    text = "Nightly backups run at two and are kept for five weeks."
    vector = embedder.embed([text])[0].tolist()
    ids = [chunk_point_id(f"copy-{i}.md", 0) for i in range(6)]
    payloads = [{"document_id": pid, "chunk_index": 0, "text": text} for pid in ids]
    await store.upsert(
        "kb", [ChunkPoint(pid, vector, bm25.document(text), p) for pid, p in zip(ids, payloads, strict=True)]
    )
    query, keywords = embedder.embed(["how long are backups kept"])[0], bm25.query("backups kept")
    for mode in ("dense", "sparse", "hybrid"):
        calls = [
            [h.id for h in await store.search("kb", mode, query, keywords, 6, fusion=fusion)]  # type: ignore[arg-type]
            for _ in range(5)
        ]
        assert all(order == calls[0] for order in calls), mode
        exact = fusion == "dbsf" and isinstance(store, EdgeVectorStore)
        if mode != "hybrid" or exact:
            # Equal scores on both sides: an exact tie, settled by id, the cut included. Under RRF the
            # two sides' own orders of the copies give them slightly different fused scores; and
            # qdrant-client's local mode computes the copies' cosines with last-bit differences,
            # which DBSF's normalisation (by their spread, here ~1e-16) turns into different scores.
            assert calls[0] == sorted(ids), mode
            top = await store.search("kb", mode, query, keywords, 1, fusion=fusion)  # type: ignore[arg-type]
            assert [h.id for h in top] == [min(ids)], mode


def test_a_fused_tie_goes_to_the_better_dense_rank_then_the_id() -> None:
    from runtime.knowledge.store import Hit, settle_ties

    query = np.asarray([1.0, 0.0], dtype=np.float32)
    # RRF's exact tie: dense ranks 1 and 2 against sparse ranks 2 and 1 (1/61 + 1/62 both).
    tie = 1 / 61 + 1 / 62
    hits = [
        Hit("b", tie, {}, [0.6, 0.8]),
        Hit("a", tie, {}, [0.6, 0.8]),
        Hit("c", tie, {}, [0.9, 0.43589]),
        Hit("z", 0.05, {}, [0.1, 0.99]),
    ]
    assert [h.id for h in settle_ties(hits, query, 10)] == ["z", "c", "a", "b"]
    assert [h.id for h in settle_ties(hits, query, 2)] == ["z", "c"]
    assert [h.id for h in settle_ties(hits, None, 10)] == ["z", "a", "b", "c"]
