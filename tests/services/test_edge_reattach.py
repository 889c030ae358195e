"""The edge outlives an orchestrator crash: ``kill -9`` mid-answer changes nothing but the delay.

So does a graceful stop (SIGTERM, as a deploy or ``docker compose restart`` sends): the
orchestrator hands its running workflows over instead of failing them.

Real processes (scripted LLM, reasoning, orchestrator, gateway); the client is the OpenAI SDK.
The orchestrator is killed while a 4-step plan streams, then started again: the gateway
re-joins the same task, and the SDK call returns the answer the uninterrupted run gives,
each piece once; no step that had finished runs again (the scripted LLM counts requests).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.platform import ROOT, Platform, free_port, wait_http

SKILL = "general-reasoning"
# Three feeding steps (their words stream as reasoning), then the answer step (as content).
FEEDERS = {
    "s1": "[[delay_ms=30]] one-a one-b one-c one-d",
    "s2": "[[delay_ms=30]] two-a two-b two-c two-d",
    "s3": "[[delay_ms=30]] three-a three-b three-c three-d",
}
ANSWER = "[[delay_ms=60]][[tokens=24]] four"


def _plan(tag: str) -> str:
    steps: list[dict[str, Any]] = []
    previous: list[str] = []
    for sid, text in [*FEEDERS.items(), ("s4", ANSWER)]:
        steps.append(
            {"id": sid, "agent": "reasoning", "skillId": SKILL, "input": f"{text} {tag}", "dependsOn": previous}
        )
        previous = [sid]
    return json.dumps({"steps": steps, "outputStepId": "s4"})


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = Platform(
        tmp_path_factory.mktemp("reattach"),
        extra_env={
            "SWITCHBOARD_WORKFLOW_LEASE_SECONDS": "2",
            "SWITCHBOARD_REQUEST_TIMEOUT_SECONDS": "60",
            "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "0.3",  # shorter than the plan, so a stop catches it
        },
    )
    try:
        p.start()
        yield p
    finally:
        p.stop()


def _client(p: Platform) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{p.gateway_url}/v1", api_key="x", max_retries=0, timeout=90)


def _streamed(chunks: Iterator[Any], on_chunk: Any = None) -> tuple[str, str]:
    """(content, reasoning) of a streamed completion; ``on_chunk(content_so_far)`` after each chunk."""
    content, reasoning = "", ""
    for chunk in chunks:
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is not None:
            content += delta.content or ""
            reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
        if on_chunk is not None:
            on_chunk(content)
    return content, reasoning


def _count(p: Platform, tag: str) -> dict[str, int]:
    inputs = [i for i in p.llm_user_inputs() if i.endswith(tag)]
    return {sid: sum(text in i for i in inputs) for sid, text in [*FEEDERS.items(), ("s4", ANSWER)]}


class _Restart:
    """Stop the orchestrator with ``sig`` now, start it again in the background (the client keeps reading)."""

    def __init__(self, p: Platform, sig: int = signal.SIGKILL) -> None:
        self.exit_code: int | None = None
        if sig == signal.SIGKILL:
            self.exit_code = p.terminate("orchestrator", sig)
            assert self.exit_code == -signal.SIGKILL
        self._thread = threading.Thread(target=self._restart, args=(p, sig))
        self._thread.start()

    def _restart(self, p: Platform, sig: int) -> None:
        if self.exit_code is None:
            self.exit_code = p.terminate("orchestrator", sig)  # waits while it stops gracefully
        p.start_service("orchestrator")

    def join(self) -> None:
        self._thread.join(timeout=90)
        assert self.exit_code is not None


def _words(text: str) -> set[str]:
    return {w for w in text.split() if "-" in w and not w.startswith("[")}


def _stream_plan(client: openai.OpenAI, tag: str, on_chunk: Any = None) -> tuple[str, str]:
    """(content, reasoning) of the four-step plan tagged ``tag``, streamed."""
    return _streamed(
        client.chat.completions.create(
            model="switchboard",
            messages=[{"role": "user", "content": "four in a row"}],
            stream=True,
            metadata={"plan": _plan(tag)},
        ),
        on_chunk,
    )


def _interrupted_stream(p: Platform, tag: str, sig: int) -> tuple[str, str, _Restart]:
    """The plan streamed while the orchestrator is stopped with ``sig`` mid-answer and started again."""
    restart: list[_Restart] = []

    def stop_in_the_middle(content: str) -> None:
        if not restart and len(content) >= len("t0 t1 t2 t3 t4 t5 "):  # the answer step is streaming
            restart.append(_Restart(p, sig))

    content, reasoning = _stream_plan(_client(p), tag, stop_in_the_middle)
    assert restart, "the answer finished before the orchestrator stopped"
    restart[0].join()
    return content, reasoning, restart[0]


def _assert_each_piece_once(reasoning: str) -> None:
    for sid in FEEDERS:
        for word in _words(FEEDERS[sid]):
            assert reasoning.count(word) == 1, (word, reasoning)


def _assert_only_the_interrupted_step_ran_again(p: Platform, tag: str) -> None:
    runs = _count(p, tag)
    assert runs["s1"] == runs["s2"] == runs["s3"] == 1, runs
    assert runs["s4"] == 2, runs


def test_streaming_answer_survives_kill_9_of_the_orchestrator(edge: Platform) -> None:
    reference, reference_reasoning = _stream_plan(_client(edge), "ref-stream")
    assert reference == "".join(f"t{i} " for i in range(24))

    started = time.monotonic()
    content, reasoning, _ = _interrupted_stream(edge, "kill-stream", signal.SIGKILL)
    # Everything the user sees: the same answer, each piece once, only later.
    assert content == reference
    _assert_each_piece_once(reasoning)
    assert time.monotonic() - started > 1.0
    # Finished steps were never run again; the one caught mid-run ran again from its start.
    _assert_only_the_interrupted_step_ran_again(edge, "kill-stream")
    assert _words(reference_reasoning.replace("ref-stream", "kill-stream")) == _words(reasoning)


def test_a_graceful_stop_hands_the_workflow_over_instead_of_failing_it(edge: Platform) -> None:
    reference, _ = _stream_plan(_client(edge), "ref-term")
    content, reasoning, restart = _interrupted_stream(edge, "term-stream", signal.SIGTERM)
    assert restart.exit_code == 0  # a clean stop, not a crash
    assert content == reference
    _assert_each_piece_once(reasoning)
    _assert_only_the_interrupted_step_ran_again(edge, "term-stream")
    log = edge.log("orchestrator")
    assert '"workflow handed over"' in log
    assert '"task failed at shutdown"' not in log


def test_non_streaming_answer_survives_kill_9_of_the_orchestrator(edge: Platform) -> None:
    client = _client(edge)
    reference = client.chat.completions.create(
        model="switchboard",
        messages=[{"role": "user", "content": "four in a row"}],
        metadata={"plan": _plan("ref-collect")},
    )
    restart: list[_Restart] = []

    def killer() -> None:
        # Kill once the second step's request reached the LLM and a few of its tokens are out.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if _count(edge, "kill-collect")["s2"]:
                time.sleep(0.1)
                restart.append(_Restart(edge))
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=killer)
    watcher.start()
    answer = client.chat.completions.create(
        model="switchboard",
        messages=[{"role": "user", "content": "four in a row"}],
        metadata={"plan": _plan("kill-collect")},
    )
    watcher.join()
    assert restart, "the kill never happened"
    restart[0].join()
    assert answer.choices[0].message.content == reference.choices[0].message.content
    assert answer.choices[0].finish_reason == "stop"
    _assert_each_piece_once((answer.choices[0].message.model_extra or {}).get("reasoning_content", ""))
    runs = _count(edge, "kill-collect")
    assert runs["s1"] == 1 and runs["s3"] == runs["s4"] == 1, runs
    assert runs["s2"] == 2, runs


def test_an_orchestrator_that_never_comes_back_is_a_clear_error_at_the_deadline(edge: Platform) -> None:
    # A second gateway on the same platform, with a short request deadline.
    port = free_port()
    env = {**edge.env, "SWITCHBOARD_GATEWAY_PORT": str(port), "SWITCHBOARD_REQUEST_TIMEOUT_SECONDS": "4"}
    log = open(edge.workdir / "gateway-short.log", "ab")  # noqa: SIM115 - closed below
    gateway = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "serve", "gateway"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", timeout=60, proc=gateway)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=90)
        killed: list[float] = []

        def kill_once(content: str) -> None:
            if not killed and content:
                assert edge.terminate("orchestrator", signal.SIGKILL) == -signal.SIGKILL
                killed.append(time.monotonic())

        started = time.monotonic()
        with pytest.raises(openai.APIError) as failed:
            _streamed(
                client.chat.completions.create(
                    model="switchboard",
                    messages=[{"role": "user", "content": "[[delay_ms=100]][[tokens=30]] never back"}],
                    stream=True,
                ),
                kill_once,
            )
        waited = time.monotonic() - started
        assert killed
        message = str(failed.value.message)
        assert "orchestrator" in message and "could not be reached again" in message, message
        assert 3.5 < waited < 8, waited  # at the request's deadline, not before, not much after
    finally:
        gateway.terminate()
        gateway.wait(timeout=15)
        log.close()
        if "orchestrator" not in edge.procs:
            edge.start_service("orchestrator")
