"""The frameworks people build on the OpenAI API, pointed at Switchboard: openai-node and the Agents SDK.

- openai-node 6 (``node_modules/openai``) runs ``tests/support/openai_surface.mjs``: chat tool
  calls (parallel, streamed and not, the SDK's stream helper), structured output, logprobs,
  errors, the Responses API (two turns, streaming, a function tool round trip, delete) and
  embeddings; it asserts in JS and exits non-zero on the first failure.
- The OpenAI Agents SDK (``openai-agents``) runs an agent with one function tool against
  Switchboard as its model provider, through both of its model classes (chat completions and
  Responses), streamed and not; the scripted LLM chooses the call, the SDK runs the function and
  sends its result back, and the answer uses it. Tracing export is off (no network here).
"""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from agents.models.interface import Model
from openai import AsyncOpenAI

from runtime.knowledge.minilm import MODEL_NAME
from tests.support.platform import ROOT, Platform
from tests.support.tool_chat import calls, script

set_tracing_disabled(True)


def test_openai_node(full_platform: Platform) -> None:
    done = subprocess.run(
        ["node", str(ROOT / "tests" / "support" / "openai_surface.mjs"), full_platform.gateway_url, MODEL_NAME],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    checks = [line.removeprefix("ok ") for line in done.stdout.splitlines() if line.startswith("ok ")]
    assert checks == [
        "chat tools reasoning",
        "chat tools streamed reasoning",
        "chat tools switchboard",
        "chat tools streamed switchboard",
        "structured output and logprobs",
        "errors",
        "responses two turns",
        "responses streamed",
        "responses function tool",
        "embeddings",
    ]


def _models(client: AsyncOpenAI) -> dict[str, Model]:
    return {
        "chat completions, reasoning": OpenAIChatCompletionsModel(model="reasoning", openai_client=client),
        "chat completions, switchboard": OpenAIChatCompletionsModel(model="switchboard", openai_client=client),
        "responses, switchboard": OpenAIResponsesModel(model="switchboard", openai_client=client),
    }


@pytest.mark.parametrize(
    "kind", ["chat completions, reasoning", "chat completions, switchboard", "responses, switchboard"]
)
@pytest.mark.parametrize("streamed", [False, True])
def test_the_agents_sdk_runs_a_function_tool_through_switchboard(
    full_platform: Platform, kind: str, streamed: bool
) -> None:
    ran: list[dict[str, Any]] = []

    @function_tool
    def get_weather(city: str, unit: str) -> str:
        """The weather in a city.

        Args:
            city: The city.
            unit: celsius or fahrenheit.
        """
        ran.append({"city": city, "unit": unit})
        return f"18 degrees {unit} and sunny in {city}"

    question = "What is the weather in Paris? " + script(
        calls(("get_weather", {"city": "Paris", "unit": "celsius"})),
        {"text": "Here it is: {{results}}"},
    )

    async def run() -> str:
        client = AsyncOpenAI(base_url=f"{full_platform.gateway_url}/v1", api_key="unused", max_retries=0, timeout=60)
        agent = Agent(
            name="assistant",
            instructions="Answer with the tools you have.",
            tools=[get_weather],
            model=_models(client)[kind],
            model_settings=ModelSettings(temperature=0.2),
        )
        try:
            if streamed:
                result = Runner.run_streamed(agent, question)
                async for _ in result.stream_events():
                    pass
                return str(result.final_output)
            return str((await Runner.run(agent, question)).final_output)
        finally:
            await client.close()

    answer = asyncio.run(run())
    assert ran == [{"city": "Paris", "unit": "celsius"}]
    assert answer == "Here it is: 18 degrees celsius and sunny in Paris"
