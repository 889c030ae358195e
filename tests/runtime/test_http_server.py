"""Slow and idle clients against the real gateway and a real agent's HTTP side (``runtime/http_server.py``).

The timeouts are set small through the environment, so a slow-loris is cut off in about a second
while a normal request on another connection is served meanwhile.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runtime.config import Settings
from runtime.errors import ConfigError
from runtime.http_server import MAX_HEAD_BYTES, HttpLimits
from tests.support.platform import Platform
from tests.support.raw_http import read_response, read_until_closed

TIMEOUT = 1.0
# How late a cut may come on a machine shared with other test runs: timers fire on a busy loop.
SLACK = 4.0
LIMITS = {
    "SWITCHBOARD_HTTP_HEADER_TIMEOUT_SECONDS": str(TIMEOUT),
    "SWITCHBOARD_HTTP_BODY_TIMEOUT_SECONDS": str(TIMEOUT),
    "SWITCHBOARD_HTTP_MAX_CONNECTIONS": "40",
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The gateway alone: nothing behind it is needed to read requests (its /healthz answers without agents)."""
    p = Platform(tmp_path_factory.mktemp("slow-clients"), extra_env=LIMITS)
    try:
        p.spawn("gateway", [sys.executable, "-m", "runtime.cli", "serve", "gateway"], f"{p.gateway_url}/healthz")
        yield p
    finally:
        p.stop()


class Trickler(threading.Thread):
    """A slow-loris connection: sends ``prefix``, then one byte of ``drip`` every ``every`` seconds until cut off."""

    def __init__(self, port: int, prefix: bytes, drip: bytes, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.prefix, self.drip, self.every = prefix, drip, every
        self.answer = b""
        self.cut_at: float | None = None
        """When the server answered or closed (``time.monotonic``); None while it let the trickle go on."""
        self.started = 0.0

    def run(self) -> None:
        self.started = time.monotonic()
        try:
            self.sock.sendall(self.prefix)
            for byte in self.drip:
                readable, _, _ = select.select([self.sock], [], [], self.every)
                if readable:
                    break  # an answer, or the close
                self.sock.sendall(bytes([byte]))
            else:
                return  # the server read the whole trickle: cut_at stays None
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.cut_at = time.monotonic()
        self.sock.settimeout(5)
        try:
            while chunk := self.sock.recv(65536):
                self.answer += chunk
        except OSError:
            pass
        finally:
            self.sock.close()

    @property
    def cut_after(self) -> float | None:
        return None if self.cut_at is None else self.cut_at - self.started

    def error(self) -> dict[str, Any]:
        head, _, body = self.answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), self.answer[:200]
        assert b"content-type: application/json" in head
        error: dict[str, Any] = json.loads(body)["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["code"] == "request_timeout"
        return error


def _cut_off_while_others_are_served(tricklers: list[Trickler], url: str) -> None:
    """Every trickler is cut off about ``TIMEOUT`` after it started; normal requests are served before and after."""
    for t in tricklers:
        t.start()
    served: list[float] = []
    with httpx.Client(timeout=10) as client:
        while any(t.is_alive() for t in tricklers):
            assert client.get(url).status_code == 200
            served.append(time.monotonic())
            time.sleep(0.1)
    for t in tricklers:
        t.join()
        assert t.cut_after is not None, "the server let a slow client trickle on"
        assert TIMEOUT * 0.8 <= t.cut_after <= TIMEOUT + SLACK, t.cut_after
    first_cut = min(t.cut_at for t in tricklers if t.cut_at is not None)
    assert served and served[0] < first_cut, "no normal request was served while the slow clients were connected"


def test_a_slow_loris_head_is_cut_off_while_a_normal_request_is_served(gateway: Platform) -> None:
    port = gateway.ports["gateway"]
    head = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
    tricklers = [Trickler(port, b"G", head[1:]) for _ in range(20)]
    _cut_off_while_others_are_served(tricklers, f"{gateway.gateway_url}/v1/models")
    for t in tricklers:
        assert "request head" in t.error()["message"]


def test_a_connection_that_sends_nothing_is_closed(gateway: Platform) -> None:
    with socket.create_connection(("127.0.0.1", gateway.ports["gateway"]), timeout=TIMEOUT + SLACK) as sock:
        started = time.monotonic()
        assert sock.recv(1024) == b""  # closed without an answer: nothing was asked
        assert TIMEOUT * 0.8 <= time.monotonic() - started <= TIMEOUT + SLACK


def test_a_slow_loris_body_is_cut_off_with_a_408(gateway: Platform) -> None:
    """A byte every 0.2 s never leaves a one-second gap: the minimum rate is what cuts it off."""
    port = gateway.ports["gateway"]
    body = b'{"model": "switchboard", "messages": [{"role": "user", "content": "' + b"x" * 500 + b'"}]}'
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    tricklers = [Trickler(port, head, body) for _ in range(10)]
    _cut_off_while_others_are_served(tricklers, f"{gateway.gateway_url}/healthz")
    for t in tricklers:
        assert "request body" in t.error()["message"]
    log = gateway.log("gateway")
    assert "unhandled error" not in log and "Traceback" not in log


def test_a_body_that_stops_coming_is_408(gateway: Platform) -> None:
    with socket.create_connection(("127.0.0.1", gateway.ports["gateway"]), timeout=TIMEOUT + SLACK) as sock:
        sock.sendall(b"POST /v1/agents HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        started = time.monotonic()
        answer = read_until_closed(sock)
        assert TIMEOUT * 0.8 <= time.monotonic() - started <= TIMEOUT + SLACK
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"


def test_an_oversized_head_is_431(gateway: Platform) -> None:
    with socket.create_connection(("127.0.0.1", gateway.ports["gateway"]), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEAD_BYTES + 1024))
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 ")
    error = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
    assert error["code"] == "request_header_fields_too_large"


def test_past_the_connection_cap_requests_get_a_503_and_room_comes_back(tmp_path: Any) -> None:
    limits = {**LIMITS, "SWITCHBOARD_HTTP_HEADER_TIMEOUT_SECONDS": "20", "SWITCHBOARD_HTTP_MAX_CONNECTIONS": "4"}
    p = Platform(tmp_path, extra_env=limits)
    p.spawn("gateway", [sys.executable, "-m", "runtime.cli", "serve", "gateway"], f"{p.gateway_url}/healthz")
    held: list[socket.socket] = []
    try:
        # Four connections, each known to the server (one answered request) and kept alive.
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", p.ports["gateway"]), timeout=10)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[0] == 200
            held.append(sock)
        with socket.create_connection(("127.0.0.1", p.ports["gateway"]), timeout=10) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = read_response(extra)
            assert extra.recv(1) == b""  # and the connection is closed
        assert status == 503 and headers["retry-after"] == "1" and headers["content-type"] == "application/json"
        error = json.loads(body)["error"]
        assert error["type"] == "service_unavailable_error" and error["code"] == "too_many_connections"
        # The held connections are still served, and a closed one makes room.
        held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(held[0])[0] == 200
        held.pop().close()
        deadline = time.monotonic() + 5
        while httpx.get(f"{p.gateway_url}/healthz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the closed connection never made room"
            time.sleep(0.05)
    finally:
        for sock in held:
            sock.close()
        p.stop()


def test_an_agents_http_side_cuts_off_a_slow_loris_too(tmp_path: Any) -> None:
    p = Platform(tmp_path, extra_env=LIMITS)
    try:
        p.start_service("reasoning")
        port = p.ports["reasoning_http"]
        head = b"GET /.well-known/agent-card.json HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        tricklers = [Trickler(port, b"G", head[1:]) for _ in range(10)]
        _cut_off_while_others_are_served(tricklers, f"{p.agent_url('reasoning')}/.well-known/agent-card.json")
        for t in tricklers:
            t.error()
    finally:
        p.stop()


@pytest.mark.parametrize("name", ["HTTP_HEADER_TIMEOUT_SECONDS", "HTTP_BODY_TIMEOUT_SECONDS", "HTTP_MAX_CONNECTIONS"])
def test_a_limit_of_zero_is_a_configuration_error_naming_the_variable(name: str) -> None:
    with pytest.raises(ConfigError, match=f"SWITCHBOARD_{name}"):
        HttpLimits.from_settings(Settings.from_env({f"SWITCHBOARD_{name}": "0"}))
