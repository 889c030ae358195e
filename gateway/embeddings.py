"""OpenAI's embeddings API, ``POST /v1/embeddings``, served by the knowledge agent's embedder.

The vectors are the knowledge agent's own (``KnowledgeService.Embed``): the bundled
all-MiniLM-L6-v2, or the embeddings endpoint it is configured with
(``SWITCHBOARD_EMBEDDING_BASE_URL``), so a client's vectors compare with what its dense search
compares. The model is listed in ``/v1/models`` under its own id, marked as serving this endpoint.

- ``input``: a string or an array of strings (each non-empty, at most 2048); token arrays are
  refused (the ids of which tokenizer?);
- ``encoding_format``: ``float`` (default) or ``base64`` (little-endian float32, what the OpenAI
  SDKs ask for and decode by default);
- ``dimensions``: accepted only when it is the model's own width; a model that cannot shorten its
  vectors is refused with a 400 rather than answered at another width;
- ``usage``: the tokens the model read (0 with an external endpoint, which does not say).

Texts longer than the model reads (256 tokens for MiniLM) are truncated, as the knowledge agent's
own indexing truncates them; ``docs/openai.md`` says so.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import struct
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.body import read_json_object
from gateway.errors import APIError, error_response, from_platform_error, invalid
from gateway.knowledge import KnowledgeRoutes
from runtime.config import Settings
from runtime.errors import SwitchboardError
from switchboard.v1 import knowledge_pb2

log = logging.getLogger(__name__)

ENDPOINT = "/v1/embeddings"
MAX_INPUTS = 2048
BATCH = 256
"""Texts per Embed call: 256 vectors of even 3072 floats stay under gRPC's 4 MiB message limit."""
_DESCRIBE_TTL_SECONDS = 30.0
_DESCRIBE_TIMEOUT_SECONDS = 2.0


class EmbeddingRoutes:
    def __init__(self, knowledge: KnowledgeRoutes, settings: Settings) -> None:
        self._knowledge = knowledge
        self._max_body_bytes = settings.max_body_bytes
        self._model: knowledge_pb2.EmbedResponse | None = None
        self._described_at = float("-inf")

    def routes(self) -> list[Route]:
        return [Route(ENDPOINT, self.create, methods=["POST"])]

    async def describe(self) -> knowledge_pb2.EmbedResponse | None:
        """The embedding model (id, width), asked of the knowledge agent and kept a while; None when
        no knowledge agent answers (it is then not listed, and requests get a 503)."""
        now = asyncio.get_running_loop().time()
        if now - self._described_at < _DESCRIBE_TTL_SECONDS:
            return self._model
        try:
            async with asyncio.timeout(_DESCRIBE_TIMEOUT_SECONDS):
                self._model = await (await self._knowledge.client()).embed([])
        except (SwitchboardError, TimeoutError) as exc:
            log.info("embedding model not described", extra={"reason": str(exc)})
            self._model = None
        self._described_at = now
        return self._model

    async def models(self, created: int) -> list[dict[str, Any]]:
        """The embedding model as ``/v1/models`` lists it (none when no knowledge agent answers)."""
        model = await self.describe()
        if model is None:
            return []
        return [
            {
                "id": model.model,
                "object": "model",
                "created": created,
                "owned_by": "switchboard",
                "endpoints": [ENDPOINT],
            }
        ]

    async def create(self, request: Request) -> Response:
        try:
            body = await read_json_object(request, self._max_body_bytes)
            texts, encoding, dimensions = _parse(body)
            client = await self._knowledge.client()
            described = await self.describe() or await client.embed([])  # the second says why it failed
            if body["model"] != described.model:
                raise APIError(
                    404,
                    f"The model '{body['model']}' does not exist here: embeddings are served by "
                    f"'{described.model}' (GET /v1/models lists it).",
                    param="model",
                    code="model_not_found",
                )
            if dimensions is not None and dimensions != described.dimensions:
                raise APIError(
                    400,
                    f"'{described.model}' makes {described.dimensions}-dimensional vectors and cannot shorten them: "
                    f"dimensions={dimensions} cannot be honoured (leave it out, or ask for {described.dimensions}).",
                    param="dimensions",
                    code="unsupported_value",
                )
            data: list[dict[str, Any]] = []
            tokens = 0
            for start in range(0, len(texts), BATCH):
                answer = await client.embed(texts[start : start + BATCH])
                tokens += answer.prompt_tokens
                for offset, embedding in enumerate(answer.embeddings):
                    data.append(
                        {
                            "object": "embedding",
                            "index": start + offset,
                            "embedding": _encoded(list(embedding.values), encoding),
                        }
                    )
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": described.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


def _parse(body: dict[str, Any]) -> tuple[list[str], str, int | None]:
    model = body.get("model")
    if model is None:
        raise invalid("You must provide a model parameter.", param="model", code="missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise invalid("'model' must be a non-empty string.", param="model", code="invalid_type")
    raw = body.get("input")
    if raw is None:
        raise invalid("You must provide an input parameter.", param="input", code="missing_required_parameter")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts:
        raise invalid("'input' must be a string or a non-empty array of strings.", param="input", code="invalid_type")
    if len(texts) > MAX_INPUTS:
        raise invalid(f"'input' may hold at most {MAX_INPUTS} strings.", param="input", code="array_above_max_length")
    for i, text in enumerate(texts):
        where = "input" if isinstance(raw, str) else f"input[{i}]"
        if isinstance(text, int | list) and not isinstance(text, bool):
            raise APIError(
                400,
                "Token arrays are not supported: send the text (the model's own tokenizer reads it).",
                param=where,
                code="unsupported_value",
            )
        if not isinstance(text, str):
            raise invalid(f"'{where}' must be a string.", param=where, code="invalid_type")
        if not text:
            raise invalid(f"'{where}' is empty: an empty string has no embedding.", param=where, code="invalid_value")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise invalid("'encoding_format' must be float or base64.", param="encoding_format", code="invalid_value")
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1):
        raise invalid("'dimensions' must be a positive integer.", param="dimensions", code="invalid_value")
    return texts, encoding, dimensions


def _encoded(values: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    return values
