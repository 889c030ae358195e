"""LLM calls, measured: ``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage``.

:func:`metered_chat` decorates a :class:`~runtime.llm.ChatModel` adapter's ``stream_chat``: the
call lasts from the request until its last delta, and the final delta's usage gives the input and
output tokens (by model and by the tenant the task runs for, ``runtime.metrics.tenant_scope``).
A call that fails records its duration with ``error.type`` and no tokens; one its caller stops
reading (a cancelled task) records ``error.type=cancelled``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from runtime import metrics
from runtime.llm import ChatDelta, TokenUsage


def metered_chat(stream_chat: Callable[..., AsyncIterator[ChatDelta]]) -> Callable[..., AsyncIterator[ChatDelta]]:
    @functools.wraps(stream_chat)
    async def measured(self: Any, *args: Any, **kwargs: Any) -> AsyncIterator[ChatDelta]:
        if metrics.instruments() is None:
            async for delta in stream_chat(self, *args, **kwargs):
                yield delta
            return
        start = time.perf_counter()
        usage: TokenUsage | None = None
        error = ""
        try:
            async for delta in stream_chat(self, *args, **kwargs):
                if delta.usage is not None:
                    usage = delta.usage
                yield delta
        except (GeneratorExit, asyncio.CancelledError):
            error = "cancelled"
            raise
        except BaseException as exc:
            error = metrics.error_type(exc)
            raise
        finally:
            usage = usage or TokenUsage()
            metrics.record_llm_call(
                str(getattr(self, "model", "")),
                time.perf_counter() - start,
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.completion_tokens,
                error=error,
            )

    return measured
