"""The retrieval evaluation: BEIR metrics, the no-answer calibration, and ``switchboard eval retrieval`` end to end."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.errors import InvalidKnowledgeRequestError
from runtime.knowledge.base import KnowledgeBase
from runtime.knowledge.edge_store import EdgeVectorStore
from runtime.knowledge.embeddings import Embedder
from runtime.knowledge.evaluation import EvalProgress, evaluate, load_beir, mrr_at, ndcg_at, pick_threshold, recall_at
from runtime.knowledge.sparse import Bm25Encoder
from tests.support.platform import ROOT

MINI = ROOT / "bench/data/switchboard-mini"


def test_metrics_follow_beir_definitions() -> None:
    rels = {"a": 2, "b": 1}
    assert ndcg_at(["a", "b", "x"], rels, 10) == pytest.approx(1.0)
    # b first, a second: (1 + 2/log2(3)) / (2 + 1/log2(3))
    assert ndcg_at(["b", "a"], rels, 10) == pytest.approx((1 + 2 / 1.5849625) / (2 + 1 / 1.5849625))
    assert recall_at(["x", "a"], rels, 10) == 0.5 and recall_at(["x", "a"], rels, 1) == 0.0
    assert mrr_at(["x", "y", "b"], rels, 10) == pytest.approx(1 / 3) and mrr_at(["x"], rels, 10) == 0.0


def test_threshold_sits_in_the_middle_of_the_gap_between_relevant_and_unrelated() -> None:
    threshold, correct = pick_threshold([0.5, 0.6, 0.7], [0.1, 0.2, 0.3])
    assert threshold == pytest.approx(0.4) and correct == 6
    # Overlap: the best cut still misclassifies one; it refuses the unrelated 0.45, not the relevant 0.4.
    threshold, correct = pick_threshold([0.4, 0.6, 0.7], [0.1, 0.2, 0.45, 0.3])
    assert correct == 6 and 0.45 < threshold <= 0.6


def test_shipped_dataset_is_well_formed_with_hand_judgements() -> None:
    corpus, queries, qrels = load_beir(MINI)
    assert 60 <= len(corpus) <= 150 and 30 <= len(qrels) <= 60
    assert all(doc in corpus for rels in qrels.values() for doc in rels)
    assert set(qrels) <= set(queries)
    out_of_scope = [json.loads(line) for line in (MINI / "out_of_scope.jsonl").read_text().splitlines()]
    assert len(out_of_scope) >= 10 and not {q["_id"] for q in out_of_scope} & set(queries)


def test_a_directory_that_is_not_beir_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n')
    with pytest.raises(InvalidKnowledgeRequestError, match="not a BEIR-format dataset"):
        load_beir(tmp_path)


async def test_progress_bar_on_a_terminal(embedder: Embedder, bm25: Bm25Encoder, tmp_path: Path) -> None:
    small = tmp_path / "tiny"
    (small / "qrels").mkdir(parents=True)
    (small / "corpus.jsonl").write_text(
        "".join(
            json.dumps({"_id": f"d{i}", "title": t, "text": x}) + "\n"
            for i, (t, x) in enumerate(
                [("Tides", "The Moon's gravity pulls the oceans."), ("Bread", "Yeast makes dough rise.")]
            )
        )
    )
    (small / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "why does dough rise"}) + "\n")
    (small / "qrels/test.tsv").write_text("query-id\tcorpus-id\tscore\nq\td1\t1\n")
    leader, follower = pty.openpty()
    kb = KnowledgeBase(EdgeVectorStore(tmp_path / "store"), embedder, bm25)
    try:
        with os.fdopen(follower, "w") as tty:
            results = await evaluate(kb, small, ["dense", "hybrid"], EvalProgress(tty))
        drawn = os.read(leader, 65536).decode()
    finally:
        await kb.close()
        os.close(leader)
    assert "\rqueries (hybrid)" in drawn and "[" + "#" * 30 + "] 1/1" in drawn
    assert results["modes"]["dense"]["recall@10"] == 1.0 and "no_answer" not in results


def test_eval_retrieval_command_on_the_shipped_dataset(tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    run = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "eval", "retrieval", "--dataset", str(MINI), "--json", str(out)],
        cwd=ROOT,
        env={**os.environ, "SWITCHBOARD_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "nDCG@10" in run.stdout and "no-answer threshold" in run.stdout
    assert "eval: queries (sparse): 52" in run.stderr  # not a terminal: log lines, no bar
    results = json.loads(out.read_text())
    modes = results["modes"]
    assert set(modes) == {"dense", "sparse", "hybrid-rrf", "hybrid-dbsf"} and results["queries"] == 52
    for figures in modes.values():
        assert set(figures) == {"ndcg@10", "recall@10", "recall@100", "mrr@10", "ms_per_query"}
    assert results["features"] == {
        "fusion_default": "dbsf",
        "chunk_headers": True,
        "rewrite": True,
        "expand": False,
        "rerank": False,
    }
    per_query = results["per_query_ndcg@10"]
    # The dataset is built so each signal has its cases: a bare error code needs the keywords,
    # a paraphrase with misleading words needs the meaning, and fusion recovers the code.
    assert per_query["q01"]["sparse"] > per_query["q01"]["dense"]
    assert per_query["q14"]["dense"] > per_query["q14"]["sparse"]
    assert per_query["q01"]["hybrid-rrf"] > per_query["q01"]["dense"]
    assert modes["dense"]["ndcg@10"] > modes["sparse"]["ndcg@10"]
    assert modes["hybrid-rrf"]["recall@100"] == 1.0 > modes["sparse"]["recall@100"]
    # Score fusion keeps BM25's wins on codes without letting its wrong hits on paraphrases
    # outrank dense's right ones, as plain RRF does here (docs/knowledge.md): the default.
    assert modes["hybrid-dbsf"]["ndcg@10"] > modes["hybrid-rrf"]["ndcg@10"]
    assert modes["hybrid-dbsf"]["ndcg@10"] >= modes["dense"]["ndcg@10"] > modes["sparse"]["ndcg@10"]
    no_answer = results["no_answer"]
    assert no_answer["out_of_scope"] == 16 and no_answer["accuracy"] >= 0.85
    assert 0.15 < no_answer["threshold"] < 0.45


def _tiny(root: Path, name: str, docs: list[tuple[str, str]], query: str, relevant: str, unrelated: str) -> Path:
    small = root / name
    (small / "qrels").mkdir(parents=True)
    (small / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "title": t, "text": x}) + "\n" for i, (t, x) in enumerate(docs))
    )
    (small / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": query}) + "\n")
    (small / "qrels/test.tsv").write_text(f"query-id\tcorpus-id\tscore\nq\t{relevant}\t1\n")
    (small / "out_of_scope.jsonl").write_text(json.dumps({"_id": "o", "text": unrelated}) + "\n")
    return small


async def test_a_document_without_a_title_is_indexed_without_one(
    embedder: Embedder, bm25: Bm25Encoder, tmp_path: Path
) -> None:
    """BEIR leaves an untitled document's title empty; the harness used to index its id as the title."""
    small = _tiny(
        tmp_path, "untitled", [("", "Yeast makes dough rise."), ("", "The Moon pulls the oceans.")], "dough", "d0", "x"
    )
    kb = KnowledgeBase(EdgeVectorStore(tmp_path / "store"), embedder, bm25)
    try:
        results = await evaluate(kb, small, ["sparse"])
    finally:
        await kb.close()
    assert results["modes"]["sparse"]["recall@10"] == 1.0
    # The id "d0" is nowhere in what was indexed: a sparse search for it finds nothing.
    probe = KnowledgeBase(EdgeVectorStore(tmp_path / "store2"), embedder, bm25)
    try:
        from runtime.knowledge.base import DocumentInput

        await probe.ingest(
            "c", DocumentInput("d0", "d0", "text/plain", text="Yeast makes dough rise.", derive_title=False)
        )
        assert await probe.search("c", "d0", "sparse") == []
        hit = (await probe.search("c", "yeast", "sparse"))[0]
        assert hit.payload["title"] == ""
        await probe.ingest(
            "c", DocumentInput("d1", "notes/bread-tips.txt", "text/plain", text="Knead for ten minutes.")
        )
        assert (await probe.search("c", "knead", "sparse"))[0].payload["title"] == "bread tips"  # files keep theirs
    finally:
        await probe.close()


def test_two_datasets_are_evaluated_and_the_threshold_is_also_picked_over_both(tmp_path: Path) -> None:
    bread = _tiny(
        tmp_path,
        "bread",
        [("Bread", "Yeast ferments sugar and the gas makes the dough rise."), ("Tides", "The Moon pulls the oceans.")],
        "why does dough rise",
        "d0",
        "who painted the Mona Lisa",
    )
    shell = _tiny(
        tmp_path,
        "shell",
        [("", "ls - list directory contents"), ("", "rmdir - remove empty directories")],
        "Which command does the following: remove an empty directory",
        "d1",
        "how often should I feed a sourdough starter",
    )
    out = tmp_path / "both.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime.cli",
            "eval",
            "retrieval",
            "--dataset",
            str(bread),
            "--dataset",
            str(shell),
            "--mode",
            "hybrid",
            "--no-rewrite",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        env={**os.environ, "SWITCHBOARD_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "pooled no-answer threshold" in run.stdout and "rewrite off" in run.stdout
    results = json.loads(out.read_text())
    assert [r["dataset"] for r in results["datasets"]] == [str(bread), str(shell)]
    assert all(r["features"]["rewrite"] is False and set(r["modes"]) == {"hybrid"} for r in results["datasets"])
    pooled = results["pooled_no_answer"]
    assert (pooled["in_scope"], pooled["out_of_scope"]) == (2, 2)
    assert set(pooled["per_dataset"]) == {str(bread), str(shell)}
    assert pooled["accuracy"] == 1.0 and 0.0 < pooled["threshold"] < 1.0
