"""Every bad request gets an OpenAI-shaped error with the right status; nothing is a 500 or a hang."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import openai
import pytest

from tests.support.platform import Platform


def _post(platform: Platform, body: bytes | str, headers: dict[str, str] | None = None) -> httpx.Response:
    data = body.encode() if isinstance(body, str) else body
    return httpx.post(
        f"{platform.gateway_url}/v1/chat/completions",
        content=data,
        headers={"content-type": "application/json", **(headers or {})},
        timeout=10,
    )


def _assert_openai_error(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param
    return error


USER: list[Any] = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ("{not json", None),
        ("[1, 2]", None),
        ('"text"', None),
        (json.dumps({"messages": USER}), "model"),
        (json.dumps({"model": 5, "messages": USER}), "model"),
        (json.dumps({"model": "switchboard"}), "messages"),
        (json.dumps({"model": "switchboard", "messages": []}), "messages"),
        (json.dumps({"model": "switchboard", "messages": "hi"}), "messages"),
        (json.dumps({"model": "switchboard", "messages": [1]}), "messages[0]"),
        (json.dumps({"model": "switchboard", "messages": [{"role": "wizard", "content": "x"}]}), "messages[0].role"),
        (json.dumps({"model": "switchboard", "messages": [{"role": "user", "content": 7}]}), "messages[0].content"),
        (
            json.dumps({"model": "switchboard", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
            "messages[0].content[0]",
        ),
        (json.dumps({"model": "switchboard", "messages": [{"role": "system", "content": "only system"}]}), "messages"),
        (json.dumps({"model": "switchboard", "messages": USER, "stream": "yes"}), "stream"),
        (
            json.dumps({"model": "switchboard", "messages": USER, "stream_options": {"include_usage": True}}),
            "stream_options",
        ),
        (
            json.dumps(
                {"model": "switchboard", "messages": USER, "stream": True, "stream_options": {"include_usage": 1}}
            ),
            "stream_options.include_usage",
        ),
        (json.dumps({"model": "switchboard", "messages": USER, "temperature": 9}), "temperature"),
        (json.dumps({"model": "switchboard", "messages": USER, "temperature": "hot"}), "temperature"),
        (json.dumps({"model": "switchboard", "messages": USER, "max_tokens": 0}), "max_tokens"),
        (json.dumps({"model": "switchboard", "messages": USER, "max_tokens": True}), "max_tokens"),
        (json.dumps({"model": "switchboard", "messages": USER, "n": 3}), "n"),
        (json.dumps({"model": "switchboard", "messages": USER, "stop": [1, 2]}), "stop"),
    ],
)
def test_invalid_requests_are_400(platform: Platform, body: str, param: str | None) -> None:
    error = _assert_openai_error(_post(platform, body), 400, param)
    assert error["type"] == "invalid_request_error"


def test_invalid_utf8_is_400(platform: Platform) -> None:
    _assert_openai_error(_post(platform, b'{"model": "\xff\xfe"}'), 400)


def test_unknown_model_is_404(platform: Platform) -> None:
    error = _assert_openai_error(_post(platform, json.dumps({"model": "gpt-9", "messages": USER})), 404, "model")
    assert error["code"] == "model_not_found"


def test_unknown_model_through_sdk(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=USER)
    assert info.value.code == "model_not_found"


def test_body_over_limit_is_413(platform: Platform) -> None:
    big = json.dumps({"model": "switchboard", "messages": [{"role": "user", "content": "x" * 2_000_000}]})
    error = _assert_openai_error(_post(platform, big), 413)
    assert error["code"] == "request_too_large"


def test_body_over_limit_without_content_length_is_413(platform: Platform) -> None:
    def chunks() -> Any:
        yield b'{"model": "switchboard", "messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}]}'

    response = httpx.post(f"{platform.gateway_url}/v1/chat/completions", content=chunks(), timeout=10)
    _assert_openai_error(response, 413)


def test_bad_session_header_is_400(platform: Platform) -> None:
    body = json.dumps({"model": "switchboard", "messages": USER})
    error = _assert_openai_error(_post(platform, body, {"X-Session-ID": "../../etc/passwd"}), 400, "X-Session-ID")
    assert error["code"] == "invalid_session_id"


def test_unknown_route_and_method(platform: Platform) -> None:
    _assert_openai_error(httpx.get(f"{platform.gateway_url}/v1/nothing-here"), 404)
    _assert_openai_error(httpx.get(f"{platform.gateway_url}/v1/chat/completions"), 405)
    _assert_openai_error(httpx.get(f"{platform.gateway_url}/v1/models/nope"), 404)


def test_unknown_parameters_are_ignored(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="switchboard", messages=USER, presence_penalty=0.1, user="u1", extra_body={"some_vendor_flag": True}
    )
    assert reply.choices[0].message.content == "Echo: hi"


def test_client_disconnect_mid_stream_cancels_the_task(platform: Platform) -> None:
    """Closing the socket mid-stream cancels the orchestrator's task and the reasoning sub-task."""
    body = json.dumps(
        {
            "model": "switchboard",
            "stream": True,
            "messages": [{"role": "user", "content": "[[tokens=200]] [[delay_ms=50]]"}],
        }
    ).encode()
    sock = socket.create_connection(("127.0.0.1", platform.ports["gateway"]))
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nX-Session-ID: disconnect-test\r\n\r\n".encode()
        + body
    )
    received = b""
    while received.count(b'"content"') < 3:
        received += sock.recv(65536)
    task_id = received.split(b'"id":"chatcmpl-', 1)[1].split(b'"', 1)[0].decode()
    sock.close()

    import asyncio

    from runtime.a2a_client import AgentClient

    async def states() -> tuple[int, int]:
        orchestrator = AgentClient(platform.agent_url("orchestrator"))
        try:
            deadline = time.monotonic() + 10
            while True:
                task = await orchestrator.get_task(task_id)
                if task.status.state == 5 or time.monotonic() > deadline:  # TASK_STATE_CANCELED
                    break
                await asyncio.sleep(0.1)
            return task.status.state, len(task.artifacts[0].parts) if task.artifacts else 0
        finally:
            await orchestrator.close()

    state, _ = asyncio.run(states())
    assert state == 5, f"orchestrator task state {state}"
    log = platform.log("orchestrator")
    assert "sub-task canceled" in log
    # The reasoning agent stopped too: its task for this context ended canceled.
    assert '"task canceled"' in platform.log("reasoning")


def test_orchestrator_down_is_503_not_a_hang(tmp_path: Any) -> None:
    """With nothing listening behind it, the gateway answers 503 quickly."""
    p = Platform(tmp_path)
    p.spawn(  # only the gateway; nothing listens behind it
        "gateway",
        [__import__("sys").executable, "-m", "runtime.cli", "serve", "gateway"],
        f"{p.gateway_url}/healthz",
    )
    try:
        started = time.monotonic()
        response = httpx.post(
            f"{p.gateway_url}/v1/chat/completions", json={"model": "switchboard", "messages": USER}, timeout=20
        )
        assert time.monotonic() - started < 10
        error = _assert_openai_error(response, 503)
        assert error["type"] == "service_unavailable_error"
        assert httpx.get(f"{p.gateway_url}/readyz").status_code == 503
    finally:
        p.stop()


def test_request_over_the_deadline_is_504_and_canceled(tmp_path: Any) -> None:
    """SWITCHBOARD_REQUEST_TIMEOUT_SECONDS bounds a chat end to end, streaming or not."""
    p = Platform(tmp_path, extra_env={"SWITCHBOARD_REQUEST_TIMEOUT_SECONDS": "1.5"})
    slow = [{"role": "user", "content": "[[tokens=100]] [[delay_ms=100]]"}]
    try:
        p.start()
        started = time.monotonic()
        response = httpx.post(
            f"{p.gateway_url}/v1/chat/completions", json={"model": "switchboard", "messages": slow}, timeout=20
        )
        assert 1.4 < time.monotonic() - started < 6
        assert _assert_openai_error(response, 504)["code"] == "timeout"

        with httpx.stream(
            "POST",
            f"{p.gateway_url}/v1/chat/completions",
            json={"model": "switchboard", "stream": True, "messages": slow},
            timeout=20,
        ) as stream:
            lines = [line for line in stream.iter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        assert json.loads(lines[-2][6:])["error"]["code"] == "timeout"
        assert any('"content"' in line for line in lines[:-2])  # tokens flowed before the deadline
        deadline = time.monotonic() + 10
        while p.log("orchestrator").count("sub-task canceled") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert p.log("orchestrator").count("sub-task canceled") == 2
    finally:
        p.stop()
