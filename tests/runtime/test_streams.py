"""Adaptive coalescing: merges only what is already waiting, keeps order, surfaces errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from a2a.types import a2a_pb2

from runtime.streams import coalesce, merge_artifact_chunks


def _concat(a: str, b: str) -> str | None:
    return None if b == "|" or a.endswith("|") else a + b


async def _source(items: list[str], delay: float = 0.0) -> AsyncIterator[str]:
    for item in items:
        if delay:
            await asyncio.sleep(delay)
        yield item


async def test_a_slow_source_passes_every_item_through_alone() -> None:
    out = [x async for x in coalesce(_source(["a", "b", "c"], delay=0.01), _concat)]
    assert out == ["a", "b", "c"]


async def test_a_backlog_is_merged_in_order() -> None:
    async def slow_consumer() -> list[str]:
        got = []
        async for x in coalesce(_source(list("abcdef")), _concat):
            got.append(x)
            await asyncio.sleep(0.01)  # the consumer is the slow side: items queue up
        return got

    got = await slow_consumer()
    assert "".join(got) == "abcdef"
    assert len(got) < 6


async def test_unmergeable_items_stay_separate() -> None:
    async def consume() -> list[str]:
        got = []
        async for x in coalesce(_source(["a", "b", "|", "c", "d"]), _concat):
            got.append(x)
            await asyncio.sleep(0.01)
        return got

    got = await consume()
    assert "".join(got) == "ab|cd"
    assert "|" in got


async def test_source_errors_arrive_after_the_items_before_them() -> None:
    async def failing() -> AsyncIterator[str]:
        yield "a"
        raise ValueError("boom")

    got = []
    with pytest.raises(ValueError, match="boom"):
        async for x in coalesce(failing(), _concat):
            got.append(x)
    assert got == ["a"]


def _chunk(text: str, *, append: bool, last: bool = False, artifact: str = "x") -> a2a_pb2.StreamResponse:
    return a2a_pb2.StreamResponse(
        artifact_update=a2a_pb2.TaskArtifactUpdateEvent(
            task_id="t",
            artifact=a2a_pb2.Artifact(artifact_id=artifact, parts=[a2a_pb2.Part(text=text)]),
            append=append,
            last_chunk=last,
        )
    )


def test_artifact_chunks_merge_into_one_text_part() -> None:
    merged = merge_artifact_chunks(_chunk("Hel", append=False), _chunk("lo", append=True, last=True))
    assert merged is not None
    update = merged.artifact_update
    assert [p.text for p in update.artifact.parts] == ["Hello"]
    assert update.append is False and update.last_chunk is True


@pytest.mark.parametrize(
    "second",
    [
        _chunk("x", append=False),  # replaces rather than appends
        _chunk("x", append=True, artifact="other"),
        a2a_pb2.StreamResponse(status_update=a2a_pb2.TaskStatusUpdateEvent(task_id="t")),
    ],
)
def test_artifact_chunks_that_must_stay_apart(second: a2a_pb2.StreamResponse) -> None:
    assert merge_artifact_chunks(_chunk("a", append=False), second) is None
    assert merge_artifact_chunks(_chunk("a", append=True, last=True), _chunk("b", append=True)) is None
