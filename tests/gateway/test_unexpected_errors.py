"""An exception no route maps (a bug) is OpenAI's 500, and the client's keep-alive connection survives it.

The gateway runs in this process under the platform's own server settings, with one directory
method patched to fail once: the only way to reach the last resort is a bug, so one is planted.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from gateway.app import create_app
from gateway.directory import ModelDirectory, ModelEntry
from runtime import http_server
from runtime.config import Settings
from tests.support.platform import free_port
from tests.support.raw_http import read_response


@pytest.fixture
def gateway_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    real = ModelDirectory.entries
    calls = 0

    def fails_once(self: ModelDirectory) -> list[ModelEntry]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("planted bug")
        return real(self)

    monkeypatch.setattr(ModelDirectory, "entries", fails_once)
    # Nothing listens behind it: the agents' ports are free ones, so no other run's agents answer.
    settings = Settings(
        gateway_port=free_port(),
        orchestrator_http_port=free_port(),
        reasoning_http_port=free_port(),
        planner_http_port=free_port(),
        knowledge_http_port=free_port(),
        data_dir=tmp_path,
    ).resolved()
    server = uvicorn.Server(http_server.config(create_app(settings), settings, settings.gateway_port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.02)
    try:
        yield settings.gateway_port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_a_bug_is_a_json_500_and_the_next_request_on_the_connection_is_served(
    gateway_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with socket.create_connection(("127.0.0.1", gateway_port), timeout=10) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = read_response(sock)
        assert status == 500 and headers.get("connection") != "close"
        error: dict[str, Any] = json.loads(body)["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["type"] == "api_error"
        assert "planted bug" not in error["message"]  # the client is not told the internals

        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")  # the same connection
        status, _, body = read_response(sock)
    assert status == 200 and json.loads(body)["object"] == "list"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    # Logged once, with its traceback, by the edge; uvicorn never saw the exception.
    assert [(r.name, r.getMessage()) for r in errors] == [("gateway.errors", "unhandled error at the edge")]
    assert errors[0].exc_info is not None and "planted bug" in str(errors[0].exc_info[1])
