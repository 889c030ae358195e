"""Tool-calling chats for the tests: scripts for the scripted LLM and what a streamed turn showed."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import openai


def script(*turns: dict[str, Any]) -> str:
    """The ``[[tools_b64=...]]`` directive playing ``turns`` (see ``tests/support/scripted_llm.py``)."""
    return f"[[tools_b64={base64.b64encode(json.dumps(list(turns)).encode()).decode()}]]"


def calls(*pairs: tuple[str, Any]) -> dict[str, Any]:
    return {"calls": [{"name": name, "arguments": arguments} for name, arguments in pairs]}


@dataclass
class Turn:
    content: str = ""
    reasoning: str = ""
    finish: str | None = None
    extension: dict[str, Any] = field(default_factory=dict)
    completion_id: str = ""


def stream(client: openai.OpenAI, model: str, text: str, **kw: Any) -> Turn:
    """One streamed chat turn through the OpenAI SDK: the answer, the ``reasoning_content``, the finish."""
    turn = Turn()
    content: list[str] = []
    reasoning: list[str] = []
    for chunk in client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], stream=True, **kw
    ):
        turn.completion_id = chunk.id
        extension = (chunk.model_extra or {}).get("switchboard")
        if extension:
            turn.extension = extension
        for choice in chunk.choices:
            content.append(choice.delta.content or "")
            reasoning.append((choice.delta.model_extra or {}).get("reasoning_content") or "")
            turn.finish = choice.finish_reason or turn.finish
    turn.content, turn.reasoning = "".join(content), "".join(reasoning)
    return turn
