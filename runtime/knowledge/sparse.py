"""The sparse (keyword) encoder port and its adapter: Qdrant's built-in BM25 (``qdrant_edge.Bm25``).

Documents get term-frequency weights (k, b, average length); queries get one weight per term; the
collections' ``sparse`` vectors use Qdrant's IDF modifier, so the engine supplies the IDF part of
BM25 from the collection itself. The same encoder feeds both store adapters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Sparse:
    indices: list[int]
    values: list[float]


class SparseEncoder(Protocol):
    name: str

    def document(self, text: str) -> Sparse: ...

    def query(self, text: str) -> Sparse: ...


class Bm25Encoder:
    name = "bm25"

    def __init__(self) -> None:
        import qdrant_edge

        self._bm25 = qdrant_edge.Bm25(qdrant_edge.Bm25Config(language="english"))

    def document(self, text: str) -> Sparse:
        v = self._bm25.embed_document(text)
        return Sparse(list(v.indices), list(v.values))

    def query(self, text: str) -> Sparse:
        v = self._bm25.embed_query(text)
        return Sparse(list(v.indices), list(v.values))
