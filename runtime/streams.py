"""Stream plumbing shared by every hop: adaptive coalescing of token events.

Each hop (LLM -> reasoning agent -> orchestrator -> gateway -> client) pays a fixed
cost per event. When tokens arrive slower than a hop can forward them, every token
goes through on its own, at once. When they arrive faster (a fast model, a busy
machine), the tokens that queued up while the hop was busy are merged into one
event. Nothing ever waits to be merged, so coalescing adds no latency; it only
stops a backlog from growing one event at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TypeVar

from a2a.types import a2a_pb2

T = TypeVar("T")

_END = object()


async def coalesce(source: AsyncIterator[T], merge: Callable[[T, T], T | None]) -> AsyncGenerator[T, None]:
    """Yield ``source``'s items, merging those already waiting when the consumer asks.

    ``merge(a, b)`` returns one item equivalent to ``a`` followed by ``b``, or None
    when the two must stay separate (different artifacts, a status change, ...).
    Order is always preserved. An exception in ``source`` is raised here after the
    items before it.
    """
    queue: asyncio.Queue[object] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in source:
                queue.put_nowait(item)
        except BaseException as exc:  # handed to the consumer, in order
            queue.put_nowait(exc)
            return
        queue.put_nowait(_END)

    reader = asyncio.create_task(pump())
    pending: object = None
    try:
        while True:
            item = pending if pending is not None else await queue.get()
            pending = None
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            current: T = item  # type: ignore[assignment]
            while not queue.empty():
                nxt = queue.get_nowait()
                if nxt is _END or isinstance(nxt, BaseException):
                    pending = nxt
                    break
                merged = merge(current, nxt)  # type: ignore[arg-type]
                if merged is None:
                    pending = nxt
                    break
                current = merged
            yield current
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


def merge_artifact_chunks(a: a2a_pb2.StreamResponse, b: a2a_pb2.StreamResponse) -> a2a_pb2.StreamResponse | None:
    """Merge two A2A events when ``b`` appends to the artifact chunk ``a`` carries; else None."""
    if a.WhichOneof("payload") != "artifact_update" or b.WhichOneof("payload") != "artifact_update":
        return None
    first, second = a.artifact_update, b.artifact_update
    if (
        first.last_chunk
        or not second.append
        or first.artifact.artifact_id != second.artifact.artifact_id
        or first.task_id != second.task_id
    ):
        return None
    merged = a2a_pb2.StreamResponse()
    merged.CopyFrom(a)
    parts = merged.artifact_update.artifact.parts
    for part in second.artifact.parts:
        last = parts[-1] if parts else None
        if last is not None and last.WhichOneof("content") == "text" and part.WhichOneof("content") == "text":
            last.text += part.text  # adjacent text pieces become one part
        else:
            parts.append(part)
    merged.artifact_update.last_chunk = second.last_chunk
    return merged
