"""50 simultaneous streaming chats complete with every chunk delivered once and in order."""

from __future__ import annotations

import asyncio

import openai


async def test_fifty_concurrent_streams(async_client: openai.AsyncOpenAI) -> None:
    async def one(i: int) -> tuple[int, list[str], str | None]:
        stream = await async_client.chat.completions.create(
            model="switchboard",
            messages=[{"role": "user", "content": f"[[tokens={10 + i % 7}]] [[delay_ms=5]]"}],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"X-Session-ID": f"concurrent-{i}"},
        )
        pieces: list[str] = []
        finish = None
        ids = set()
        async for chunk in stream:
            ids.add(chunk.id)
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
        assert len(ids) == 1, "chunks of one answer share one id"
        return i, pieces, finish

    results = await asyncio.gather(*(one(i) for i in range(50)))
    assert len(results) == 50
    for i, pieces, finish in results:
        expected = [f"t{k} " for k in range(10 + i % 7)]
        # Tokens that queue up behind a busy hop may share a chunk (runtime/streams.py), but
        # every token arrives exactly once, whole, and in order.
        assert "".join(pieces) == "".join(expected), f"stream {i} got {pieces}"
        assert [t + " " for p in pieces for t in p.split()] == expected
        assert finish == "stop"
