"""Sessions: what the gateway remembers about a client's ``X-Session-ID``.

A session is the A2A context its chats run in (the context id is the session id), plus
one ``switchboard.v1.Session`` record on the state port: the task of each request and
the model it asked for, and the expiry. Token usage is read from the tasks themselves
(their ``switchboard/usage`` metadata), where the agents record it. Records expire
``session_ttl_seconds`` after the session's last request (the state store's TTL does
the expiring), so an idle session disappears by itself.

A request is recorded as soon as its task exists (so a gateway that dies mid-answer
loses nothing), in the background: it never delays the answer. Reads wait for the
session's writes still under way, so a client sees its own requests at once.

``GET /v1/sessions/{id}`` lists the session's own task ids only: after a ``DELETE``
and a new request with the same id, the old tasks (still in the agents' task stores,
which keep their own history) are not part of the new session.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from a2a.types import a2a_pb2
from google.protobuf import timestamp_pb2
from starlette.requests import Request

from gateway.errors import APIError
from runtime import messages
from runtime.approvals.identity import DEFAULT_TENANT
from runtime.errors import StateConflictError
from runtime.state import StateStore
from runtime.state.records import RecordError, decode, encode
from runtime.usage import usage_from_task
from switchboard.v1 import storage_pb2

log = logging.getLogger(__name__)

SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
SESSION_HEADER = "X-Session-ID"
_SESSION_ID = re.compile(SESSION_ID_PATTERN)


def session_from(request: Request) -> str:
    """The caller's session (``X-Session-ID``), or a new one; a 400 for an id the platform cannot carry."""
    given = request.headers.get(SESSION_HEADER)
    if given is None:
        return uuid.uuid4().hex
    if not _SESSION_ID.fullmatch(given):
        raise APIError(
            400,
            f"{SESSION_HEADER} must be 1-128 characters of letters, digits, '.', '_', ':' or '-'.",
            param=SESSION_HEADER,
            code="invalid_session_id",
        )
    return given


"""What a session id (``X-Session-ID``, the MCP ``ask`` tool's ``session_id``) may be."""
_CONFLICT_RETRIES = 10
_CACHE_SIZE = 10_000


class Sessions:
    def __init__(self, state: StateStore, ttl_seconds: int) -> None:
        self._state = state
        self._ttl = ttl_seconds
        self._locks: OrderedDict[str, asyncio.Lock] = OrderedDict()
        self._writes: dict[str, set[asyncio.Task[None]]] = {}

    @staticmethod
    def _key(session_id: str, tenant: str) -> str:
        # Each tenant has its own sessions: another tenant's id, even a known one, names nothing here.
        if tenant == DEFAULT_TENANT:
            return f"gateway/session/{session_id}"
        return f"gateway/session/{tenant}/{session_id}"

    def record(self, session_id: str, model: str, task_id: str, tenant: str = DEFAULT_TENANT) -> None:
        """Add one request to the session, in the background."""
        job = asyncio.create_task(self._guarded(session_id, lambda: self._append(session_id, model, task_id, tenant)))
        jobs = self._writes.setdefault(session_id, set())
        jobs.add(job)

        def done(finished: asyncio.Task[None]) -> None:
            jobs.discard(finished)
            if not jobs:
                self._writes.pop(session_id, None)

        job.add_done_callback(done)

    async def get(self, session_id: str, tenant: str = DEFAULT_TENANT) -> storage_pb2.Session | None:
        await self._settle(session_id)
        item = await self._state.get(self._key(session_id, tenant))
        if item is None:
            return None
        try:
            return decode("session", item.value, storage_pb2.Session)
        except RecordError as exc:
            # Left in place for inspection; say which record it is.
            raise RecordError(f"the record of session {session_id!r} is unreadable: {exc.message}") from exc

    async def delete(self, session_id: str, tenant: str = DEFAULT_TENANT) -> bool:
        """Forget the session; False when there was none."""
        await self._settle(session_id)
        async with self._lock(session_id):
            item = await self._state.get(self._key(session_id, tenant))
            if item is None:
                return False
            await self._state.delete(self._key(session_id, tenant))
            return True

    async def aclose(self) -> None:
        pending = [job for jobs in self._writes.values() for job in jobs]
        if pending:
            await asyncio.wait(pending, timeout=5.0)

    # -- internals ----------------------------------------------------------

    async def _settle(self, session_id: str) -> None:
        jobs = list(self._writes.get(session_id, ()))
        if jobs:
            await asyncio.wait(jobs, timeout=5.0)

    def _lock(self, session_id: str) -> asyncio.Lock:
        # One writer per session in this process; ETags settle races with other gateways.
        lock = self._locks.pop(session_id, None) or asyncio.Lock()
        self._locks[session_id] = lock
        while len(self._locks) > _CACHE_SIZE:
            self._locks.popitem(last=False)
        return lock

    async def _guarded(self, session_id: str, write: Callable[[], Awaitable[None]]) -> None:
        try:
            async with self._lock(session_id):
                await write()
        except Exception as exc:  # the answer is already out; the record is what is lost
            log.warning("session not recorded", extra={"session_id": session_id, "reason": str(exc)})

    async def _append(self, session_id: str, model: str, task_id: str, tenant: str) -> None:
        key = self._key(session_id, tenant)
        for _ in range(_CONFLICT_RETRIES):
            item = await self._state.get(key)
            now = datetime.now(UTC)
            if item is None:
                session = storage_pb2.Session(
                    id=session_id, context_id=session_id, tenant="" if tenant == DEFAULT_TENANT else tenant
                )
                session.create_time.FromDatetime(now)
            else:
                session = decode("session", item.value, storage_pb2.Session)
            if task_id not in session.task_ids:
                session.task_ids.append(task_id)
                session.models.append(model)
            session.update_time.FromDatetime(now)
            session.expire_time.FromDatetime(now + timedelta(seconds=self._ttl))
            value = encode("session", session, writer="gateway")
            try:
                await self._state.save(key, value, etag=item.etag if item else None, ttl_seconds=self._ttl)
                return
            except StateConflictError:
                continue
        raise StateConflictError(f"session {session_id} kept changing under {_CONFLICT_RETRIES} tries")


_RUNNING = {a2a_pb2.TaskState.TASK_STATE_SUBMITTED, a2a_pb2.TaskState.TASK_STATE_WORKING}


def describe(session: storage_pb2.Session, tasks: Mapping[str, a2a_pb2.Task]) -> dict[str, Any]:
    """The body of ``GET /v1/sessions/{id}``: the session, its tasks and the conversation.

    ``tasks`` holds the session's tasks the agents still know; a task they no longer
    list shows with state ``unknown``.
    """
    task_views: list[dict[str, Any]] = []
    conversation: list[dict[str, Any]] = []
    states: set[int] = set()
    total = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for task_id, model in zip(session.task_ids, session.models, strict=True):
        task = tasks.get(task_id)
        if task is None:
            task_views.append({"id": task_id, "model": model, "state": "unknown"})
            continue
        states.add(task.status.state)
        usage = usage_from_task(task)
        total["prompt_tokens"] += usage.prompt_tokens
        total["completion_tokens"] += usage.completion_tokens
        total["total_tokens"] += usage.total_tokens
        task_views.append(
            {
                "id": task_id,
                "model": model,
                "state": _state_name(task.status.state),
                "updated_at": _unix(task.status.timestamp) if task.status.HasField("timestamp") else None,
                "usage": {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "total_tokens": usage.total_tokens,
                },
            }
        )
        asked = next((m for m in task.history if m.role == a2a_pb2.Role.ROLE_USER), None)
        if asked is not None:
            conversation.append({"role": "user", "content": messages.text_of(asked.parts), "task_id": task_id})
        answer = "".join(messages.text_of(a.parts) for a in task.artifacts)
        if answer:
            conversation.append({"role": "assistant", "content": answer, "task_id": task_id})
        if task.status.state == a2a_pb2.TaskState.TASK_STATE_FAILED and task.status.HasField("message"):
            conversation.append(
                {"role": "error", "content": messages.text_of(task.status.message.parts), "task_id": task_id}
            )
    if states & _RUNNING:
        status = "working"
    elif a2a_pb2.TaskState.TASK_STATE_AUTH_REQUIRED in states:
        status = "auth_required"
    elif a2a_pb2.TaskState.TASK_STATE_INPUT_REQUIRED in states:
        status = "input_required"
    else:
        status = "idle"
    return {
        "id": session.id,
        "object": "session",
        "context_id": session.context_id,
        "status": status,
        "created_at": _unix(session.create_time),
        "updated_at": _unix(session.update_time),
        "expires_at": _unix(session.expire_time) if session.HasField("expire_time") else None,
        "tasks": task_views,
        "messages": conversation,
        "usage": total,
    }


def _state_name(state: int) -> str:
    return a2a_pb2.TaskState.Name(state).removeprefix("TASK_STATE_").lower()


def _unix(ts: timestamp_pb2.Timestamp) -> int:
    return int(ts.seconds)
