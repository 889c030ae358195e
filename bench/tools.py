"""What the agent's tool path costs per MCP call: ``python -m bench.tools``.

Every figure against a baseline measured in the same run, on the same servers:

- *adapter*: the same ``tools/call`` through the agent's toolbox (:class:`runtime.tools.mcp.McpToolbox`:
  name lookup, live-session check, timeout, result turned into prompt text) against the ``mcp``
  SDK's own ``Client`` calling the same server directly. Stdio (``server-everything`` ``echo``
  and ``mcp-server-time``) and streamable HTTP (``server-everything``). Sequential calls,
  rounds alternating the two so drift on a shared machine hits both alike; medians of the
  per-call latency. Bars: ratio <= 1.5 and under 2 ms added per call over stdio.
- *in the loop*: whole tool loops (:class:`services.reasoning.tool_loop.ToolLoop`, one ``echo``
  call per round) against the scripted LLM, with the time spent inside the LLM calls measured
  and taken out, so what is left per call is the tool's own time plus everything the agent does
  around it (schema check, two A2A events, the tool message). Compared with the direct SDK call
  measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from a2a.server.events import Event, EventQueue
from a2a.server.tasks import TaskUpdater
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from runtime.config import Settings
from runtime.llm import ChatDelta, ChatMessage, ChatModel, GenerationOptions, ToolChoice, ToolSpec
from runtime.llm.openai_compat import OpenAICompatibleModel
from runtime.state.sqlite import SqliteStateStore
from runtime.tools.config import parse_tools_config
from runtime.tools.mcp import McpToolbox
from services.reasoning.loop_state import LoopState, LoopStore
from services.reasoning.tool_loop import Limits, ToolLoop
from tests.support import mcp_servers as servers
from tests.support.platform import Platform, free_port
from tests.support.tool_chat import calls, script

Call = Callable[[], Awaitable[Any]]


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _timed(call: Call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        out.append((time.perf_counter() - start) * 1000)
    return out


async def compare(direct: Call, adapter: Call, *, rounds: int, per_round: int, warmup: int = 50) -> dict[str, Any]:
    await _timed(direct, warmup)
    await _timed(adapter, warmup)
    a: list[float] = []
    b: list[float] = []
    for i in range(rounds):
        # Alternate which goes first so neither always follows the other.
        first, second = (direct, adapter) if i % 2 == 0 else (adapter, direct)
        x = await _timed(first, per_round)
        y = await _timed(second, per_round)
        a += x if first is direct else y
        b += y if first is direct else x
    direct_p50, adapter_p50 = statistics.median(a), statistics.median(b)
    return {
        "calls": len(a),
        "direct_ms": {"p50": round(direct_p50, 3), "p90": round(_percentile(a, 0.9), 3)},
        "adapter_ms": {"p50": round(adapter_p50, 3), "p90": round(_percentile(b, 0.9), 3)},
        "ratio_p50": round(adapter_p50 / direct_p50, 3),
        "added_ms_p50": round(adapter_p50 - direct_p50, 3),
    }


class _TimedModel:
    """The real model, with the time spent inside its calls added up (so it can be taken out)."""

    def __init__(self, inner: ChatModel) -> None:
        self._inner = inner
        self.model = inner.model
        self.seconds = 0.0

    async def stream_chat(
        self,
        messages: list[ChatMessage],
        options: GenerationOptions,
        tools: Sequence[ToolSpec] = (),
        tool_choice: ToolChoice | None = None,
        *,
        whole: bool = False,
    ) -> AsyncIterator[ChatDelta]:
        start = time.perf_counter()
        async for delta in self._inner.stream_chat(messages, options, tools, tool_choice, whole=whole):
            self.seconds += time.perf_counter() - start
            yield delta
            start = time.perf_counter()
        self.seconds += time.perf_counter() - start

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Sink(EventQueue):
    async def enqueue_event(self, event: Event) -> None:
        pass


async def in_loop(
    llm_url: str, toolbox: McpToolbox, state_dir: Path, direct: Call, *, loops: int, rounds: int
) -> dict[str, Any]:
    model = _TimedModel(OpenAICompatibleModel(Settings(llm_base_url=f"{llm_url}/v1", llm_model="scripted").resolved()))
    state = SqliteStateStore(state_dir / "bench-state.db")
    loop = ToolLoop(model, toolbox, LoopStore(state), Limits(call_timeout=30, max_rounds=rounds + 1, max_tokens=10**9))
    question = script(*[calls(("s__echo", {"message": "bench"}))] * rounds, {"text": "done"})
    per_call: list[float] = []
    direct_ms: list[float] = []
    try:
        for i in range(loops):
            model.seconds = 0.0
            start = time.perf_counter()
            run = LoopState(conversation=[{"role": "user", "content": question}])
            await loop.run(run, TaskUpdater(_Sink(), f"bench-{i}", "bench"))
            outside_llm = time.perf_counter() - start - model.seconds
            per_call.append(outside_llm * 1000 / rounds)
            direct_ms += await _timed(direct, rounds)
    finally:
        await model.aclose()
        await state.close()
    loop_p50, direct_p50 = statistics.median(per_call), statistics.median(direct_ms)
    return {
        "loops": loops,
        "calls_per_loop": rounds,
        "per_call_outside_llm_ms_p50": round(loop_p50, 3),
        "direct_call_ms_p50": round(direct_p50, 3),
        "added_by_the_loop_ms_p50": round(loop_p50 - direct_p50, 3),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-tools-"))
    http_port = free_port()
    http = servers.start_everything_http(http_port, work / "everything-http.log")
    llm = Platform(work)
    llm.start_llm()
    results: dict[str, Any] = {}
    try:
        cases = {
            "stdio_everything_echo": (servers.everything_stdio(), "echo", {"message": "bench"}),
            "stdio_time": (servers.time_server("UTC"), "get_current_time", {"timezone": "Asia/Tokyo"}),
            "http_everything_echo": ({"url": f"http://127.0.0.1:{http_port}/mcp"}, "echo", {"message": "bench"}),
        }
        for name, (server, tool, arguments) in cases.items():
            config = parse_tools_config({"mcpServers": {"s": server}}, os.environ)
            box = McpToolbox(config, connect_timeout=30)
            await box.start()
            await box.wait_started(30)
            target: Any = server["url"] if "url" in server else StdioServerParameters(**server)
            async with Client(target, cache=None) as client:

                async def direct(
                    client: Client = client, tool: str = tool, arguments: dict[str, Any] = arguments
                ) -> Any:
                    return await client.call_tool(tool, arguments)

                async def adapter(
                    box: McpToolbox = box, tool: str = tool, arguments: dict[str, Any] = arguments
                ) -> Any:
                    return await box.call(f"s__{tool}", arguments, 30)

                results[name] = await compare(direct, adapter, rounds=args.rounds, per_round=args.per_round)
                print(name, json.dumps(results[name]), file=sys.stderr, flush=True)
                if name == "stdio_everything_echo":
                    results["in_the_loop_stdio_echo"] = await in_loop(
                        llm.llm_url, box, work, direct, loops=args.loops, rounds=args.loop_rounds
                    )
                    print("in the loop", json.dumps(results["in_the_loop_stdio_echo"]), file=sys.stderr, flush=True)
            await box.aclose()
    finally:
        servers.stop(http)
        llm.stop()
    stdio = [results["stdio_everything_echo"], results["stdio_time"]]
    results["bars"] = {
        "ratio_at_most_1_5": all(r["ratio_p50"] <= 1.5 for r in [*stdio, results["http_everything_echo"]]),
        "stdio_added_under_2_ms": all(r["added_ms_p50"] < 2.0 for r in stdio),
    }
    return {
        "host": host.node(),
        "python": host.python_version(),
        "rounds": args.rounds,
        "calls_per_round": args.per_round,
        "results": results,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=100)
    parser.add_argument("--loops", type=int, default=10)
    parser.add_argument("--loop-rounds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("bench/results/tools.json"))
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0 if all(report["results"]["bars"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
