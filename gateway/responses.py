"""OpenAI's Responses API: ``POST /v1/responses``, ``GET`` and ``DELETE /v1/responses/{id}``.

A response is a chat turn (``gateway/responses_request.py`` makes the conversation, ``gateway/runs.py``
runs it as one A2A task, ``gateway/response_events.py`` renders it). What it adds is state:

- ``store`` (default true) keeps the response on the gateway's state port, under
  ``responses/<id>``, with the conversation up to and including it, and the session (A2A
  context) it ran in; ``GET`` reads it back, ``DELETE`` removes it. Records expire with the
  sessions (``SWITCHBOARD_SESSION_TTL_SECONDS`` after they were written);
- ``previous_response_id`` continues that conversation without resending it: the stored turns
  come first, then this request's ``input``, in the same session, so the agents see one A2A
  context and ``GET /v1/sessions/<id>`` lists every turn. ``instructions`` are not carried over.

A response's id is ``resp_<task id>``: the A2A task that produced it (``GetTask`` on the
orchestrator, or on the agent the model names).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import wrappers_pb2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway import auth
from gateway.body import read_json_object
from gateway.chat_request import ChatRequest
from gateway.directory import ModelEntry
from gateway.errors import APIError, error_response, from_platform_error
from gateway.response_events import ResponseBuilder
from gateway.responses_request import ResponsesRequest, parse_responses_request
from gateway.runs import TaskRuns
from gateway.sessions import SESSION_HEADER, Sessions, session_from
from gateway.sse import EventStreamResponse
from gateway.translate import ChunkTranslator, to_a2a_message
from runtime.approvals.identity import DEFAULT_TENANT
from runtime.errors import SwitchboardError
from runtime.logs import bind_task
from runtime.state import StateStore
from runtime.state.records import RecordError, decode, encode

log = logging.getLogger(__name__)

KIND = "response"


class ResponseRoutes:
    def __init__(self, runs: TaskRuns, state: StateStore, sessions: Sessions) -> None:
        self._runs = runs
        self._state = state
        self._sessions = sessions

    def routes(self) -> list[Route]:
        return [
            Route("/v1/responses", self.create, methods=["POST"]),
            Route("/v1/responses/{response_id}", self.get, methods=["GET"]),
            Route("/v1/responses/{response_id}", self.delete, methods=["DELETE"]),
        ]

    # -- routes -------------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        settings = self._runs.settings
        try:
            parsed = parse_responses_request(await read_json_object(request, settings.max_body_bytes))
            history: list[dict[str, Any]] = []
            if parsed.previous_response_id is not None:
                previous = await self._load(parsed.previous_response_id)
                if previous is None:
                    raise APIError(
                        400,
                        f"Previous response '{parsed.previous_response_id}' not found: it was never stored "
                        "(store: false), expired or was deleted.",
                        param="previous_response_id",
                        code="previous_response_not_found",
                    )
                history, session_id = list(previous["conversation"]), str(previous["session"])
            else:
                session_id = session_from(request)
            chat = _chat(parsed, history)
            entry = self._runs.entry(parsed.model)
            chat = self._runs.scoped(chat, entry)  # knowledge/<collection>
            await self._runs.check_features(entry, chat.features, parsed.feature_param)
            translator = ChunkTranslator(model=parsed.model, logprobs=parsed.logprobs)
            auth.meter(translator)
            message = to_a2a_message(chat, session_id, self._runs.candidates(entry))
            events = self._runs.events(entry, message, translator, coalesced=parsed.stream)
            first = await self._runs.first(
                events, translator, until_content=bool(chat.features), param_of=parsed.feature_param
            )
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        headers = {SESSION_HEADER: session_id}
        if translator.task_id:
            self._sessions.record(session_id, entry.id, translator.task_id, auth.tenant())
        builder = ResponseBuilder(parsed, translator)
        turn = {"history": history, "input": parsed.input, "session": session_id}
        deadline = self._runs.deadline(False)
        if parsed.stream:
            return EventStreamResponse(
                self._sse(builder, first, events, entry, deadline, turn),
                headers=headers,
                on_disconnect=lambda: self._runs.left(entry, translator),
            )

        async def fed() -> AsyncIterator[list[dict[str, Any]]]:
            async for chunks in events:
                builder.feed(chunks)
                yield chunks

        builder.feed(first)
        failed = await self._runs.collect(request, entry, fed(), translator, deadline)
        if failed is not None:
            return Response(status_code=499) if failed.status == 499 else error_response(failed, headers)
        builder.finish()
        await self._store(builder, turn)
        return JSONResponse(builder.body(), headers=headers)

    async def get(self, request: Request) -> Response:
        response_id = request.path_params["response_id"]
        try:
            stored = await self._load(response_id)
        except APIError as exc:
            return error_response(exc)
        if stored is None:
            return error_response(_not_found(response_id))
        return JSONResponse(stored["response"])

    async def delete(self, request: Request) -> Response:
        response_id = request.path_params["response_id"]
        try:
            if await self._load(response_id) is None:
                return error_response(_not_found(response_id))
            await self._state.delete(_key(response_id))
        except APIError as exc:
            return error_response(exc)
        except SwitchboardError as exc:
            return error_response(from_platform_error(exc))
        return JSONResponse({"id": response_id, "object": "response", "deleted": True})

    # -- streaming -----------------------------------------------------------------------------

    async def _sse(
        self,
        builder: ResponseBuilder,
        first: list[dict[str, Any]],
        events: AsyncIterator[list[dict[str, Any]]],
        entry: ModelEntry,
        deadline: float | None,
        turn: dict[str, Any],
    ) -> AsyncIterator[bytes]:
        translator = builder.translator
        with bind_task(translator.task_id, None):
            for event in [*builder.start(), *builder.feed(first)]:
                yield _encode(event)
            try:
                async for chunks in self._runs.relay(events, translator, deadline, entry):
                    for event in builder.feed(chunks or []):
                        yield _encode(event)
            except APIError as exc:
                for event in builder.failed(exc):
                    yield _encode(event)
                return
            last = builder.finish()
            # Stored before the last event: a client that reads it and asks for the response finds it.
            await self._store(builder, turn)
            for event in last:
                yield _encode(event)

    # -- the store ---------------------------------------------------------------------------------

    async def _store(self, builder: ResponseBuilder, turn: dict[str, Any]) -> None:
        if not builder.request.store:
            return
        record = {
            "response": builder.body(),
            "session": turn["session"],
            "conversation": [*turn["history"], *turn["input"], builder.conversation_turn()],
            "tenant": auth.tenant(),
        }
        payload = wrappers_pb2.BytesValue(value=json.dumps(record).encode())
        try:
            await self._state.save(
                _key(builder.id),
                encode(KIND, payload, writer="gateway"),
                ttl_seconds=self._runs.settings.session_ttl_seconds,
            )
        except SwitchboardError as exc:  # the answer was given; only its record is missing
            log.warning("response not stored", extra={"response_id": builder.id, "reason": exc.message})

    async def _load(self, response_id: str) -> dict[str, Any] | None:
        if not response_id.startswith("resp_") or len(response_id) > 200:
            return None
        try:
            item = await self._state.get(_key(response_id))
            if item is None:
                return None
            record: dict[str, Any] = json.loads(decode(KIND, item.value, wrappers_pb2.BytesValue).value)
        except SwitchboardError as exc:
            raise from_platform_error(exc) from exc
        except (RecordError, ValueError) as exc:
            log.warning("unreadable stored response", extra={"response_id": response_id, "reason": str(exc)})
            return None
        if record.get("tenant", DEFAULT_TENANT) != auth.tenant():  # another tenant's: as if it did not exist
            return None
        return record


def _chat(parsed: ResponsesRequest, history: list[dict[str, Any]]) -> ChatRequest:
    """The chat this response runs as: instructions, the stored conversation, then this input."""
    messages = [*history, *parsed.input]
    if parsed.instructions:
        messages.insert(0, {"role": "system", "content": parsed.instructions})
    called = {c["id"] for m in messages for c in m.get("tool_calls") or ()}
    for message in parsed.input:
        if message["role"] == "tool" and message["tool_call_id"] not in called:
            raise APIError(
                400,
                f"No function call with call_id '{message['tool_call_id']}' was made in this conversation.",
                param="input",
                code="invalid_value",
            )
    if not any(m["role"] == "user" for m in messages):
        raise APIError(400, "The conversation must hold at least one user message.", param="input")
    return ChatRequest(
        model=parsed.model,
        messages=messages,
        stream=parsed.stream,
        generation=parsed.generation,
        tools=parsed.tools,
        response_format=parsed.response_format,
    )


def _key(response_id: str) -> str:
    return f"responses/{response_id}"


def _not_found(response_id: str) -> APIError:
    return APIError(
        404,
        f"No response '{response_id}': it was not stored (store: false), expired or was deleted.",
        type="not_found",
        code="response_not_found",
    )


def _encode(event: dict[str, Any]) -> bytes:
    kind = str(event["type"]).encode()
    return b"event: " + kind + b"\ndata: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"
