"""all-MiniLM-L6-v2 on ONNX Runtime against the numpy model and sentence-transformers' own vectors,
the cache of the graph it builds, and how the runtime is chosen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runtime.config import Settings
from runtime.errors import ConfigError, EmbeddingError
from runtime.knowledge.backends import open_bundled_model, open_embedder
from runtime.knowledge.embeddings import CachedEmbedder
from runtime.knowledge.minilm import MODEL_NAME, MiniLMEmbedder
from runtime.knowledge.minilm_onnx import OnnxMiniLMEmbedder

REFERENCE = Path(__file__).resolve().parents[2] / "data/embeddings/minilm_reference.json"
TOLERANCE = 1e-4  # the numpy model's bar against sentence-transformers (test_embeddings.py)


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("graphs")


@pytest.fixture(scope="module")
def onnx_fp32(graph_dir: Path) -> OnnxMiniLMEmbedder:
    return OnnxMiniLMEmbedder(cache_dir=graph_dir)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return out


def mixed_texts() -> list[str]:
    """Lengths from 1 to 256 tokens (the longest truncated), in no order, so batching has work to do."""
    words = [
        "the",
        "knowledge",
        "agent",
        "embeds",
        "each",
        "chunk",
        "before",
        "storing",
        "it",
        "with",
        "its",
        "sparse",
        "vector",
    ]
    return [" ".join(words[j % len(words)] for j in range((i * 37) % 300 + 1)) for i in range(40)]


def test_vectors_match_sentence_transformers_within_the_reference_tolerance(onnx_fp32: OnnxMiniLMEmbedder) -> None:
    reference = json.loads(REFERENCE.read_text())
    texts = [item["text"] for item in reference["items"]]
    expected = np.array([item["vector"] for item in reference["items"]], dtype=np.float32)
    got = onnx_fp32.embed(texts)
    assert got.shape == (len(texts), 384) and got.dtype == np.float32
    assert cosines(got, expected).min() > 1 - TOLERANCE
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert onnx_fp32.model == MODEL_NAME and onnx_fp32.cache_key == MODEL_NAME and onnx_fp32.dimensions == 384


def test_vectors_match_the_numpy_model(onnx_fp32: OnnxMiniLMEmbedder, minilm: MiniLMEmbedder) -> None:
    texts = mixed_texts()[:8]  # 1 to 256 tokens; the numpy model is slow on a busy machine
    assert cosines(onnx_fp32.embed(texts), minilm.embed(texts)).min() > 1 - TOLERANCE
    assert onnx_fp32.count_tokens(texts) == minilm.count_tokens(texts)


def test_batching_by_length_gives_the_vectors_of_one_by_one(onnx_fp32: OnnxMiniLMEmbedder) -> None:
    texts = mixed_texts()
    lengths = [len(onnx_fp32._tokenizer.encode(t).ids) for t in texts]
    batches = onnx_fp32._batches(lengths)
    # Several batches, each within the token budget, each of similar lengths: the point of batching.
    assert len(batches) > 3 and sorted(i for b in batches for i in b) == list(range(len(texts)))
    assert all(len(b) * max(lengths[i] for i in b) <= onnx_fp32.batch_tokens for b in batches)
    together = onnx_fp32.embed(texts)
    alone = np.stack([onnx_fp32.embed([t])[0] for t in texts])
    assert np.abs(together - alone).max() < 1e-5


def test_the_built_graph_is_reused_on_the_next_start(
    onnx_fp32: OnnxMiniLMEmbedder, graph_dir: Path, minilm: MiniLMEmbedder
) -> None:
    assert onnx_fp32.built and onnx_fp32.cache_path is not None and onnx_fp32.cache_path.parent == graph_dir
    stamp = onnx_fp32.cache_path.stat().st_mtime_ns
    again = OnnxMiniLMEmbedder(cache_dir=graph_dir)
    assert not again.built and again.cache_path == onnx_fp32.cache_path
    assert again.cache_path.stat().st_mtime_ns == stamp
    assert [p.name for p in graph_dir.iterdir()] == [onnx_fp32.cache_path.name]  # no leftover temp file
    text = ["Loaded from the cache, the graph gives the same vectors."]
    assert np.array_equal(again.embed(text), onnx_fp32.embed(text))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_corrupt_cached_graph_is_rebuilt(tmp_path: Path, onnx_fp32: OnnxMiniLMEmbedder, damage: str) -> None:
    assert onnx_fp32.cache_path is not None
    good = onnx_fp32.cache_path.read_bytes()
    target = tmp_path / onnx_fp32.cache_path.name
    target.write_bytes(
        {"truncated": good[: len(good) // 3], "garbage": b"\x08\x07not a model" * 100, "empty": b""}[damage]
    )
    rebuilt = OnnxMiniLMEmbedder(cache_dir=tmp_path)
    assert rebuilt.built and rebuilt.cache_path == target
    assert target.read_bytes() == good  # the build is deterministic: the same file as the first one
    text = ["A rebuilt graph embeds like the first one."]
    assert np.array_equal(rebuilt.embed(text), onnx_fp32.embed(text))


def test_int8_stays_close_and_is_cached_apart(tmp_path: Path, onnx_fp32: OnnxMiniLMEmbedder) -> None:
    int8 = OnnxMiniLMEmbedder(precision="int8", cache_dir=tmp_path)
    assert int8.cache_path is not None and int8.cache_path.name.endswith("-int8.onnx") and int8.built
    assert int8.cache_key != MODEL_NAME and int8.model == MODEL_NAME
    texts = mixed_texts()
    # Not the float tolerance: int8 moves vectors (the retrieval cost is measured in docs/knowledge.md).
    assert cosines(int8.embed(texts), onnx_fp32.embed(texts)).min() > 0.97
    assert not OnnxMiniLMEmbedder(precision="int8", cache_dir=tmp_path).built


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(EmbeddingError, match="fp16"):
        OnnxMiniLMEmbedder(precision="fp16")


def test_the_runtime_setting_picks_the_adapter(tmp_path: Path, graph_dir: Path) -> None:
    base = {"SWITCHBOARD_DATA_DIR": str(tmp_path), "SWITCHBOARD_EMBEDDING_GRAPH_DIR": str(graph_dir)}
    assert isinstance(
        open_bundled_model(Settings.from_env({**base, "SWITCHBOARD_EMBEDDING_RUNTIME": "numpy"})), MiniLMEmbedder
    )
    default = open_bundled_model(Settings.from_env(base))
    assert isinstance(default, OnnxMiniLMEmbedder) and default.precision == "fp32" and not default.built
    with pytest.raises(ConfigError, match="SWITCHBOARD_EMBEDDING_RUNTIME"):
        open_bundled_model(Settings.from_env({**base, "SWITCHBOARD_EMBEDDING_RUNTIME": "torch"}))
    # Without a graph dir the graph lives under the data dir.
    cached = open_embedder(Settings.from_env({"SWITCHBOARD_DATA_DIR": str(tmp_path)}))
    assert isinstance(cached, CachedEmbedder) and isinstance(cached.inner, OnnxMiniLMEmbedder)
    assert cached.inner.cache_path is not None and cached.inner.cache_path.parent == tmp_path / "knowledge" / "models"
    cached.close()
