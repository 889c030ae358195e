"""The LLM port: what an agent needs from a chat model, independent of who serves it.

Adapters: :mod:`runtime.llm.openai_compat` (any OpenAI-compatible endpoint, including
the bundled local model served by :mod:`runtime.llm.local_server`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)


@dataclass(frozen=True, slots=True)
class ChatDelta:
    """One streamed piece: text, or (last) the usage and finish reason."""

    text: str = ""
    usage: TokenUsage | None = None
    finish_reason: str | None = None


class ChatModel(Protocol):
    model: str

    def stream_chat(self, messages: list[ChatMessage], options: GenerationOptions) -> AsyncIterator[ChatDelta]:
        """Yield text deltas as the model produces them, then one delta with usage."""
        ...

    async def aclose(self) -> None: ...
