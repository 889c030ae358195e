"""Running one request as an A2A task and following it to its end: the plumbing every OpenAI route shares.

The chat completions route (``gateway/app.py``) and the Responses API (``gateway/responses.py``)
both turn a request into one A2A message, then hand it here: :meth:`TaskRuns.events` sends it
and yields the task's events translated into chat chunks (``gateway/translate.py``), surviving a
restart of the agent behind it; :meth:`TaskRuns.first` waits for the first of them, so an agent
that is down, or a request refused for a parameter, is an HTTP error rather than a 200 stream
that fails in its first line; :meth:`TaskRuns.relay` and :meth:`TaskRuns.collect` follow the
rest within the request's deadline, canceling the task downstream when the client leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from a2a.types import a2a_pb2
from starlette.requests import Request

from gateway import auth
from gateway.chat_decisions import rejoin
from gateway.chat_request import ChatRequest
from gateway.directory import ModelDirectory, ModelEntry
from gateway.errors import APIError, from_platform_error, invalid
from gateway.translate import ChunkTranslator
from runtime import messages
from runtime.config import Settings
from runtime.errors import AgentStreamBrokenError, AgentUnavailableError, InvalidRequestError, SwitchboardError
from runtime.llm.a2a import check_agent, check_plan
from runtime.plans import plan_from_json
from runtime.streams import coalesce, merge_artifact_chunks
from switchboard.v1 import plan_pb2

log = logging.getLogger(__name__)

# A resent request's own task is among the newest of its session.
_OWN_TASK_PAGE = 20
# Between two tries to re-join when the orchestrator serves but the subscription still failed.
_REJOIN_PAUSE = 0.1

PLANNING_TAG = "planning"
"""The skill tag of a planner agent (``services/planner/main.py``)."""

Chunks = list[dict[str, Any]]


class TaskRuns:
    def __init__(self, settings: Settings, directory: ModelDirectory) -> None:
        self.settings = settings
        self.directory = directory
        self._background: set[asyncio.Task[Any]] = set()
        self._down_since: dict[str, float] = {}
        """Models whose agent could not take a request, since when (loop time): restarting, waited for."""

    def entry(self, model: str) -> ModelEntry:
        """The model's entry, or a 404 naming it."""
        entry = self.directory.get(model)
        if entry is None:
            raise APIError(
                404,
                f"The model '{model}' does not exist. GET /v1/models lists the models you can call.",
                param="model",
                code="model_not_found",
            )
        auth.check_model(entry.id)
        return entry

    def scoped(self, chat: ChatRequest, entry: ModelEntry) -> ChatRequest:
        """``chat`` answering from the collection a ``knowledge/<collection>`` model names; a 400 when
        ``metadata.collection`` names another."""
        if not entry.collection:
            return chat
        if chat.collection and chat.collection != entry.collection:
            raise invalid(
                f"'metadata.collection' is {chat.collection!r} but the model names {entry.collection!r}.",
                param="metadata.collection",
                code="invalid_value",
            )
        return dataclasses.replace(chat, collection=entry.collection)

    async def check_features(
        self,
        entry: ModelEntry,
        features: list[str],
        param_of: Callable[[str], str],
        plan: dict[str, Any] | None = None,
    ) -> None:
        """Refuse (400, naming the parameter) what the request asks of an LLM that its path cannot give.

        An agent asked directly must declare the feature on its card; the orchestrator checks the
        plan it makes, and a plan the caller sent is checked here, before any task exists.
        """
        if not features:
            return
        try:
            if entry is not self.directory.default:
                check_agent(features, entry.agent, self.directory.agents.card(entry.agent))
            elif plan is not None:
                check_plan(features, plan_from_json(plan, origin=plan_pb2.PLAN_ORIGIN_USER), self.directory.agents.card)
        except InvalidRequestError as exc:
            raise APIError(400, exc.message, param=param_of(exc.param or features[0]), code=exc.code) from exc

    def candidates(self, entry: ModelEntry) -> list[a2a_pb2.AgentCard] | None:
        """The cards a planner agent asked directly plans over (the agents this gateway knows), else None.

        A planner is an agent with a skill tagged ``planning``; without candidates it could plan nothing.
        """
        card = self.directory.agents.card(entry.agent) if entry is not self.directory.default else None
        if card is None or not any(PLANNING_TAG in skill.tags for skill in card.skills):
            return None
        return [c for c in self.directory.agents.cards() if c.name != entry.agent]

    async def first(
        self,
        events: AsyncGenerator[Chunks, None],
        translator: ChunkTranslator,
        *,
        until_content: bool = False,
        param_of: Callable[[str], str] = str,
    ) -> Chunks:
        """The first chunks of the task (an :class:`APIError` when it cannot start or answer).

        ``until_content``: wait for the first chunk of the answer (text, calls, the end), not only
        for the task to exist, so a request refused for one of its parameters is a 400 even when
        streamed; progress notes before it are held back and sent with it. ``param_of``: the name
        the caller's API gives a parameter the platform names (``tools`` is ``functions`` in a
        legacy chat, ``text.format`` in a response).
        """
        first: Chunks = []
        try:
            async with asyncio.timeout(self.settings.request_timeout_seconds):
                first = await anext(events)
                while until_content and not _answers(first) and translator.finish_reason is None:
                    first += await anext(events)
        except TimeoutError:
            await events.aclose()
            if translator.interrupted:  # the agent went away and did not come back in time
                unreachable = AgentUnavailableError(
                    f"{translator.interrupted}; it did not come back within {self.settings.request_timeout_seconds:g} s"
                )
                raise from_platform_error(unreachable) from None
            raise timed_out(self.settings.request_timeout_seconds) from None
        except SwitchboardError as exc:
            error = from_platform_error(exc)
            if error.param is not None:
                error.param = param_of(error.param)
            raise error from exc
        except StopAsyncIteration:
            if translator.paused is not None or translator.finish_reason is not None:
                return first
            raise APIError(502, "The agent ended the task without answering.", type="api_error") from None
        return first

    def deadline(self, wait: bool) -> float | None:
        """When the request must end (loop time); None for a caller that waits for a person."""
        if wait:  # bound by the approval's own timeout instead
            return None
        return asyncio.get_running_loop().time() + self.settings.request_timeout_seconds

    async def relay(
        self,
        events: AsyncIterator[Chunks],
        translator: ChunkTranslator,
        deadline: float | None,
        entry: ModelEntry,
    ) -> AsyncIterator[Chunks | None]:
        """The rest of a streamed task's chunks; None when a keep-alive is due (the caller waits
        through a pause). Raises the :class:`APIError` to send in the stream when it fails."""
        try:
            async with asyncio.timeout_at(deadline):
                if translator.wait_for_approval:
                    async for item in keep_alive(events, self.settings.sse_keep_alive_seconds):
                        yield item
                else:
                    async for chunks in events:
                        yield chunks
        except SwitchboardError as exc:
            # Headers are gone; OpenAI clients raise on an ``error`` event inside the stream.
            log.warning("stream failed", extra={"reason": exc.message})
            raise from_platform_error(exc) from exc
        except TimeoutError:
            raise await self.deadline_passed(entry, translator) from None

    async def collect(
        self,
        request: Request,
        entry: ModelEntry,
        events: AsyncIterator[Chunks],
        translator: ChunkTranslator,
        deadline: float | None,
    ) -> APIError | None:
        """Follow a non-streamed task to its end; the error to answer with, or None when it answered.

        A client that left gets its task canceled and a 499 (nobody reads it).
        """

        async def drain() -> None:
            async for _ in events:
                pass

        work = asyncio.create_task(drain())
        gone = asyncio.create_task(disconnected(request))
        timeout = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
        done, _ = await asyncio.wait({work, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if work not in done:
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            if gone in done:
                await self.cancel_downstream(entry, translator.task_id)
                return APIError(499, "The client closed the request.", code="client_closed_request")
            gone.cancel()
            return await self.deadline_passed(entry, translator)
        gone.cancel()
        try:
            work.result()
        except SwitchboardError as exc:
            return from_platform_error(exc)
        return None

    async def events(
        self, entry: ModelEntry, message: a2a_pb2.Message, translator: ChunkTranslator, *, coalesced: bool
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """The task's events, translated; the task's end or failure ends the iteration.

        Streams coalesce token events that queue up behind a slow client; a collected
        (non-streaming) answer has no per-event write to save, so it skips that machinery.
        """
        # The caller's tenant travels with the request: the orchestrator records it on the workflow,
        # its approvals, and passes it to every step's agent.
        message.metadata.update({messages.TENANT: auth.tenant()})
        who = auth.caller()
        if who is not None and who.key is not None:  # its usage is billed to the key, its budgets apply
            message.metadata.update({messages.KEY_ID: who.key.id})
        source = entry.client.stream(message)
        async for chunks in self.surviving(entry, source, translator, coalesced=coalesced, message=message):
            yield chunks

    async def surviving(
        self,
        entry: ModelEntry,
        source: AsyncGenerator[a2a_pb2.StreamResponse, None],
        translator: ChunkTranslator,
        *,
        coalesced: bool,
        message: a2a_pb2.Message | None = None,
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """``source`` translated, outliving a restart of the agent behind it.

        Before the task exists (no event yet), an agent that cannot be reached is waited for,
        health-driven, and ``message`` sent again once it serves: unless the agent took it before
        it went away, which its task list tells (the task whose first message is this one), and
        then that task is followed instead; the message is never run twice. After the task
        exists, a broken orchestrator stream is re-joined: the orchestrator resumes its workflows
        after a crash (docs/orchestration.md), so the caller waits through the restart and gets
        the rest of the answer; the translator sends only what the caller does not have yet.
        Other agents fail their interrupted tasks on restart: re-joining them would only turn a
        prompt error into a slow one.
        """
        answered = False
        while True:
            try:
                async with contextlib.aclosing(source):
                    async for chunks in translated(source, translator, coalesced=coalesced):
                        answered = True
                        yield chunks
                return
            except AgentUnavailableError as exc:  # the connection dropped, or the stream ended early
                if not answered and message is not None:
                    translator.interrupted = exc.message
                    source = await self._resubmit(entry, message, exc)
                    translator.interrupted = ""
                    continue
                if not translator.task_id or entry is not self.directory.default:
                    raise
                translator.interrupted = exc.message
                source = await self._rejoin(entry, translator.task_id, exc)
                translator.interrupted = ""
                translator.reattaching = True

    async def _resubmit(
        self, entry: ModelEntry, message: a2a_pb2.Message, cause: AgentUnavailableError
    ) -> AsyncGenerator[a2a_pb2.StreamResponse, None]:
        """The request's stream again, once its agent serves: its own task if the agent took it, else a resend.

        Only an agent that was serving is waited for (it is most likely restarting), and for at most
        ``agent_restart_grace_seconds`` since it went away: one this gateway never reached, or one
        down for longer, is an error at once.
        """
        if entry.client.card is None:  # never reached since this gateway started: down, not restarting
            raise cause
        now = asyncio.get_running_loop().time()
        since = self._down_since.setdefault(entry.id, now)
        seconds = min(self.settings.request_timeout_seconds, since + self.settings.agent_restart_grace_seconds - now)
        if seconds <= 0:
            raise AgentUnavailableError(f"{cause.message}; it has been unreachable for {now - since:.0f} s")
        log.warning(
            "the agent could not take the request; waiting for it", extra={"agent": entry.id, "reason": cause.message}
        )
        try:
            await entry.client.wait_until_serving(seconds)
            self._down_since.pop(entry.id, None)
            taken = await self._own_task(entry, message)
        except AgentUnavailableError as exc:
            raise AgentUnavailableError(f"{cause.message}; it did not come back within {seconds:.0f} s") from exc
        if taken:
            log.info("the agent took the request before it went away; following its task", extra={"task_id": taken})
            return await rejoin(entry.client, taken)
        return entry.client.stream(message)

    async def _own_task(self, entry: ModelEntry, message: a2a_pb2.Message) -> str:
        """The task the agent started for ``message`` (the one whose history begins with it), or ""."""
        try:
            page = await entry.client.list_tasks(
                a2a_pb2.ListTasksRequest(context_id=message.context_id, page_size=_OWN_TASK_PAGE)
            )
        except AgentUnavailableError:
            raise
        except SwitchboardError:  # an agent that cannot list tasks cannot have taken it durably
            return ""
        for task in page.tasks:
            if task.history and task.history[0].message_id == message.message_id:
                return str(task.id)
        return ""

    async def _rejoin(
        self, entry: ModelEntry, task_id: str, cause: AgentUnavailableError
    ) -> AsyncGenerator[a2a_pb2.StreamResponse, None]:
        """Subscribe to ``task_id`` again as soon as the orchestrator serves again (health-driven)."""
        loop = asyncio.get_running_loop()
        limit = self.settings.request_timeout_seconds
        give_up = loop.time() + limit
        log.warning(
            "the orchestrator's stream broke mid-answer; re-joining the task",
            extra={"task_id": task_id, "reason": cause.message},
        )
        while True:
            try:
                await entry.client.wait_until_serving(max(0.0, give_up - loop.time()))
                followed = await rejoin(entry.client, task_id)
            except AgentUnavailableError as exc:  # still down or restarting, or gone again
                if loop.time() >= give_up:
                    raise AgentUnavailableError(_gone(cause.message, limit, task_id)) from exc
                await asyncio.sleep(_REJOIN_PAUSE)
                continue
            except SwitchboardError as exc:
                # The orchestrator is up but has no such task to follow (it was never stored, e.g.
                # its state store is down): the break itself is the error to report.
                raise cause from exc
            log.info("re-joined the task after its stream broke", extra={"task_id": task_id})
            return followed

    def left(self, entry: ModelEntry, translator: ChunkTranslator) -> Awaitable[None]:
        """The client disconnected: cancel its task, unless the task is waiting for a person."""
        if translator.paused is not None:
            log.info("client left a task that waits for approval; it stays paused")
            return asyncio.sleep(0)
        return self.cancel_downstream(entry, translator.task_id)

    async def deadline_passed(self, entry: ModelEntry, translator: ChunkTranslator) -> APIError:
        """The error for a request past its deadline; the task is canceled unless its agent is gone."""
        seconds = self.settings.request_timeout_seconds
        if translator.interrupted:
            # Nothing to cancel it on; if the orchestrator comes back, the workflow finishes there.
            gone = AgentUnavailableError(_gone(translator.interrupted, seconds, translator.task_id))
            return from_platform_error(gone)
        await self.cancel_downstream(entry, translator.task_id)
        return timed_out(seconds)

    async def cancel_downstream(self, entry: ModelEntry, task_id: str) -> None:
        """The client left: cancel its A2A task so no agent keeps working for nobody."""
        if not task_id:
            return

        async def cancel() -> None:
            try:
                await entry.client.cancel(task_id)
                log.info("client disconnected; task canceled", extra={"task_id": task_id})
            except Exception as exc:  # the task may have ended meanwhile
                log.info("cancel after disconnect not applied", extra={"task_id": task_id, "reason": str(exc)})

        job = asyncio.create_task(cancel())
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        for job in list(self._background):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(job, 2.0)


def _answers(chunks: Chunks) -> bool:
    """Whether ``chunks`` hold part of the answer, not only progress notes."""
    for chunk in chunks:
        for choice in chunk.get("choices") or ():
            if choice.get("finish_reason") or set(choice.get("delta") or ()) - {"role", "reasoning_content"}:
                return True
    return False


def timed_out(seconds: float) -> APIError:
    return APIError(
        504, f"The request did not finish within {seconds:g} s and was canceled.", type="timeout", code="timeout"
    )


def _gone(reason: str, seconds: float, task_id: str) -> str:
    return (
        f"The orchestrator stopped answering mid-answer ({reason}) and could not be reached again within "
        f"{seconds:g} s. Task {task_id} resumes when it is back: GET /v1/workflows/{task_id} shows it."
    )


async def disconnected(request: Request) -> None:
    """Return when the client goes away (the body is already read, so only a disconnect can arrive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def translated(
    source: AsyncGenerator[a2a_pb2.StreamResponse, None], translator: ChunkTranslator, *, coalesced: bool
) -> AsyncIterator[list[dict[str, Any]]]:
    """Translate a task's events until it ends, or pauses when the caller does not wait through pauses."""
    stream = coalesce(source, merge_artifact_chunks) if coalesced else source
    async with contextlib.aclosing(stream):  # stops coalesce's reader before the source is closed
        async for event in stream:
            chunks = translator.on_event(event)
            if chunks or translator.task_id:
                yield chunks
            if translator.paused is not None and not translator.wait_for_approval:
                return  # the task waits for a person; this turn ends and the task stays paused
    if translator.finish_reason is None:
        raise AgentStreamBrokenError("the agent's stream ended before the task finished")


async def keep_alive(
    events: AsyncIterator[list[dict[str, Any]]], seconds: float
) -> AsyncIterator[list[dict[str, Any]] | None]:
    """``events``, with None whenever none came for ``seconds`` (an SSE comment keeps proxies from closing)."""
    queue: asyncio.Queue[list[dict[str, Any]] | BaseException | StopAsyncIteration] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in events:
                queue.put_nowait(item)
            queue.put_nowait(StopAsyncIteration())
        except BaseException as exc:  # handed to the reader, which raises it in the response's task
            queue.put_nowait(exc)

    reader = asyncio.create_task(pump())
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), seconds)
            except TimeoutError:
                yield None
                continue
            if isinstance(item, StopAsyncIteration):
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
