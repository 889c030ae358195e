"""Chat turns through the gateway with the OpenAI SDK, as the approval tests hold them."""

from __future__ import annotations

from typing import Any

import openai

from tests.support.platform import Platform


def session_client(p: Platform, session: str, *, timeout: float | None = None, **headers: str) -> openai.OpenAI:
    """An OpenAI client whose every request belongs to ``session``."""
    options: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}
    return openai.OpenAI(
        base_url=f"{p.gateway_url}/v1",
        api_key="unused",
        default_headers={"X-Session-ID": session, **headers},
        max_retries=0,
        **options,
    )


def stream_turn(client: openai.OpenAI, text: str, plan: str | None = None) -> tuple[str, str | None, dict[str, Any]]:
    """Content, finish reason and the last ``switchboard`` extension of one streamed turn."""
    extra = {"metadata": {"plan": plan}} if plan else None
    content, finish, extension = [], None, {}
    for chunk in client.chat.completions.create(
        model="switchboard", messages=[{"role": "user", "content": text}], stream=True, extra_body=extra
    ):
        ext = (chunk.model_extra or {}).get("switchboard")
        if ext:
            extension = ext
        for choice in chunk.choices:
            content.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    return "".join(content), finish, extension
