"""OpenAI-compatible ``/v1/embeddings`` adapter (OpenAI, vLLM, TEI, Ollama): batched, with retries."""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx
import numpy as np

from runtime import telemetry
from runtime.errors import EmbeddingError
from runtime.knowledge.embeddings import Vectors

RETRYABLE = {408, 409, 429, 500, 502, 503, 504}


class OpenAIEmbeddings:
    def __init__(
        self,
        base_url: str,
        model: str,
        dimensions: int,
        api_key: str = "",
        batch_size: int = 64,
        retries: int = 4,
        timeout: float = 60.0,
    ) -> None:
        self._url = base_url.rstrip("/") + "/embeddings"
        self._model = model
        self._dimensions = dimensions
        self._batch = batch_size
        self._retries = retries
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(timeout=timeout, headers=headers)

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def batch_size(self) -> int:
        return self._batch

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        for start in range(0, len(texts), self._batch):
            out[start : start + self._batch] = self._call(list(texts[start : start + self._batch]))
        return out

    def _call(self, batch: list[str]) -> Vectors:
        delay = 0.5
        for attempt in range(self._retries + 1):
            try:
                # traceparent: the endpoint's own spans join the caller's trace, under its embedding span.
                response = self._http.post(
                    self._url, json={"model": self._model, "input": batch}, headers=telemetry.inject_headers()
                )
            except httpx.HTTPError as exc:
                error = f"cannot reach {self._url}: {exc}"
            else:
                if response.status_code == 200:
                    return self._parse(response.json(), len(batch))
                error = f"{self._url} answered {response.status_code}: {response.text[:200]}"
                if response.status_code not in RETRYABLE:
                    raise EmbeddingError(error)
            if attempt < self._retries:
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise EmbeddingError(error)

    def _parse(self, body: object, expected: int) -> Vectors:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or len(data) != expected:
            raise EmbeddingError(f"{self._url} returned {type(data).__name__} instead of {expected} embeddings")
        rows = sorted(data, key=lambda d: int(d.get("index", 0)))
        vectors = np.array([row["embedding"] for row in rows], dtype=np.float32)
        if vectors.shape != (expected, self._dimensions):
            raise EmbeddingError(
                f"{self._url} returned vectors of shape {vectors.shape}, expected {self._dimensions} wide"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        out: Vectors = vectors / np.maximum(norms, 1e-12)
        return out
