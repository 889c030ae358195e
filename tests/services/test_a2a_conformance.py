"""A2A v1.0 conformance of Switchboard's serving stack, on all three bindings (docs/conformance.md).

The System Under Test is ``tests/support/scenario_agent.py`` (the A2A TCK's message-id
scenarios acted out by a ``TrackedExecutor``) served as its own process by
``runtime/agent_server.py``, the bootstrap every Switchboard agent uses. It is driven over
gRPC, JSON-RPC and HTTP+JSON with the a2a SDK's client transports, and with raw gRPC stubs
and httpx where the wire itself is checked (status codes, headers, JSON names).

Checked: ``SubscribeToTask`` on a task waiting for input stays open and sees the follow-up
complete it (spec 3.1.6); the specification's error codes (5.4) for an unknown task, an
unsupported operation, push notifications not supported, an unsupported or missing
``A2A-Version``, and a task that cannot be canceled; Agent Card headers (8.6.1); the
JSON-RPC URL with a trailing slash; gRPC reflection v1 and v1alpha; camelCase JSON names,
usage included (5.5); and a stop that ends open subscriptions cleanly.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from a2a.client.card_resolver import parse_agent_card
from a2a.types import a2a_pb2, a2a_pb2_grpc
from google.protobuf import json_format, message_factory
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc as v1alpha_grpc
from grpc_status import rpc_status

from runtime import messages, reflection
from runtime.a2a_client import AgentClient
from tests.support.platform import ROOT, free_port, wait_http

BINDINGS = ["GRPC", "JSONRPC", "HTTP+JSON"]
VERSION = {"A2A-Version": "1.0"}
_T = a2a_pb2.TaskState
_SNAKE = re.compile(r"^[a-z]+(_[a-z]+)+$")


@dataclass
class ScenarioAgent:
    proc: subprocess.Popen[bytes]
    grpc_port: int
    http_port: int
    card: a2a_pb2.AgentCard
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def interface(self, binding: str) -> str:
        return next(i.url for i in self.card.supported_interfaces if i.protocol_binding == binding)

    def client(self, binding: str) -> AgentClient:
        """Our client on the SDK's transport for ``binding`` (a card naming that interface alone)."""
        card = a2a_pb2.AgentCard()
        card.CopyFrom(self.card)
        kept = [i for i in card.supported_interfaces if i.protocol_binding == binding]
        del card.supported_interfaces[:]
        card.supported_interfaces.extend(kept)
        return AgentClient(self.url, card=card)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def start_scenario_agent(workdir: Path) -> ScenarioAgent:
    grpc_port, http_port = free_port(), free_port()
    log = open(workdir / "scenarios.log", "ab")  # noqa: SIM115 - closed with the process
    argv = [sys.executable, "-m", "tests.support.scenario_agent"]
    argv += ["--grpc-port", str(grpc_port), "--http-port", str(http_port), "--data-dir", str(workdir / "data")]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{http_port}/readyz", timeout=60, proc=proc)
    card = parse_agent_card(httpx.get(f"http://127.0.0.1:{http_port}/.well-known/agent-card.json", timeout=10).json())
    return ScenarioAgent(proc, grpc_port, http_port, card, workdir / "scenarios.log")


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScenarioAgent]:
    running = start_scenario_agent(tmp_path_factory.mktemp("conformance"))
    try:
        yield running
    finally:
        assert running.stop() == 0


def _message(scenario: str, task_id: str = "", text: str = "conformance check") -> a2a_pb2.Message:
    message = messages.user_message(text, task_id=task_id)
    message.message_id = f"{scenario}-{uuid.uuid4().hex}"
    return message


async def _send(client: AgentClient, scenario: str, task_id: str = "") -> a2a_pb2.Task:
    transport = await client.connect()
    reply = await transport.send_message(a2a_pb2.SendMessageRequest(message=_message(scenario, task_id)))
    assert reply.HasField("task"), reply
    return reply.task


def _task_in(agent: ScenarioAgent, scenario: str) -> a2a_pb2.Task:
    async def send() -> a2a_pb2.Task:
        client = agent.client("GRPC")
        try:
            return await _send(client, scenario)
        finally:
            await client.close()

    return asyncio.run(send())


# -- SubscribeToTask until the task ends (3.1.6) ---------------------------------------------


@pytest.mark.parametrize("binding", BINDINGS)
async def test_subscribe_stays_open_until_the_follow_up_completes_the_task(agent: ScenarioAgent, binding: str) -> None:
    client = agent.client(binding)
    try:
        assert client.binding == binding
        waiting = await _send(client, "tck-input-required")
        assert waiting.status.state == _T.TASK_STATE_INPUT_REQUIRED
        transport = await client.connect()
        stream = transport.subscribe(a2a_pb2.SubscribeToTaskRequest(id=waiting.id))
        first = await asyncio.wait_for(anext(stream), 10)
        assert first.task.id == waiting.id and first.task.status.state == _T.TASK_STATE_INPUT_REQUIRED

        following = asyncio.ensure_future(anext(stream))
        done, _ = await asyncio.wait({following}, timeout=0.5)
        assert not done, "the stream ended (or sent something) while the task was still waiting"

        completed = await _send(client, "tck-complete-task", task_id=waiting.id)
        assert completed.status.state == _T.TASK_STATE_COMPLETED
        event = await asyncio.wait_for(following, 10)
        assert event.status_update.task_id == waiting.id
        assert event.status_update.status.state == _T.TASK_STATE_COMPLETED
        assert messages.text_of(event.status_update.status.message.parts) == "Hello from TCK"
        assert [e async for e in stream] == []  # closed at the terminal state
    finally:
        await client.close()


# -- error codes (5.4) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    operation: str
    task: str  # "missing", or the scenario that makes the task
    version: str | None
    grpc: grpc.StatusCode
    jsonrpc: int
    http: tuple[int, str]
    reason: str


REFUSALS = {
    "unknown task": Refusal(
        "get", "missing", "1.0", grpc.StatusCode.NOT_FOUND, -32001, (404, "NOT_FOUND"), "TASK_NOT_FOUND"
    ),
    "unsupported operation": Refusal(
        "subscribe",
        "tck-complete-task",
        "1.0",
        grpc.StatusCode.UNIMPLEMENTED,
        -32004,
        (400, "UNIMPLEMENTED"),
        "UNSUPPORTED_OPERATION",
    ),
    "push notifications not supported": Refusal(
        "push",
        "tck-input-required",
        "1.0",
        grpc.StatusCode.UNIMPLEMENTED,
        -32003,
        (400, "UNIMPLEMENTED"),
        "PUSH_NOTIFICATION_NOT_SUPPORTED",
    ),
    "version header missing": Refusal(
        "get",
        "tck-complete-task",
        None,
        grpc.StatusCode.UNIMPLEMENTED,
        -32009,
        (400, "UNIMPLEMENTED"),
        "VERSION_NOT_SUPPORTED",
    ),
    "old version": Refusal(
        "get",
        "tck-complete-task",
        "0.3",
        grpc.StatusCode.UNIMPLEMENTED,
        -32009,
        (400, "UNIMPLEMENTED"),
        "VERSION_NOT_SUPPORTED",
    ),
    "task not cancelable": Refusal(
        "cancel",
        "tck-complete-task",
        "1.0",
        grpc.StatusCode.FAILED_PRECONDITION,
        -32002,
        (409, "FAILED_PRECONDITION"),
        "TASK_NOT_CANCELABLE",
    ),
}


def _grpc_refusal(agent: ScenarioAgent, refusal: Refusal, task_id: str) -> tuple[object, str]:
    metadata = [("a2a-version", refusal.version)] if refusal.version else []
    with grpc.insecure_channel(agent.target) as channel:
        stub = a2a_pb2_grpc.A2AServiceStub(channel)
        try:
            if refusal.operation == "get":
                stub.GetTask(a2a_pb2.GetTaskRequest(id=task_id), metadata=metadata, timeout=10)
            elif refusal.operation == "cancel":
                stub.CancelTask(a2a_pb2.CancelTaskRequest(id=task_id), metadata=metadata, timeout=10)
            elif refusal.operation == "push":
                config = a2a_pb2.TaskPushNotificationConfig(task_id=task_id, url="http://127.0.0.1:9/hook")
                stub.CreateTaskPushNotificationConfig(config, metadata=metadata, timeout=10)
            else:
                next(stub.SubscribeToTask(a2a_pb2.SubscribeToTaskRequest(id=task_id), metadata=metadata, timeout=10))
        except grpc.RpcError as exc:
            status = rpc_status.from_call(exc)  # type: ignore[arg-type]
            assert status is not None, "no google.rpc.Status in the trailers"
            info = error_details_pb2.ErrorInfo()
            assert status.details[0].Unpack(info)
            return exc.code(), info.reason
    raise AssertionError(f"gRPC {refusal.operation} was not refused")


_JSONRPC_METHODS = {
    "get": ("GetTask", "id"),
    "cancel": ("CancelTask", "id"),
    "subscribe": ("SubscribeToTask", "id"),
    "push": ("CreateTaskPushNotificationConfig", "taskId"),
}


def _jsonrpc_refusal(agent: ScenarioAgent, refusal: Refusal, task_id: str) -> tuple[object, str]:
    method, key = _JSONRPC_METHODS[refusal.operation]
    params: dict[str, Any] = {key: task_id}
    if refusal.operation == "push":
        params["url"] = "http://127.0.0.1:9/hook"
    headers = {"A2A-Version": refusal.version} if refusal.version else {}
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = httpx.post(agent.interface("JSONRPC"), json=body, headers=headers, timeout=10)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    return error["code"], error["data"][0]["reason"]


def _rest_refusal(agent: ScenarioAgent, refusal: Refusal, task_id: str) -> tuple[object, str]:
    base = f"{agent.interface('HTTP+JSON')}/tasks/{task_id}"
    headers = {"A2A-Version": refusal.version} if refusal.version else {}
    with httpx.Client(timeout=10, headers=headers) as http:
        if refusal.operation == "get":
            response = http.get(base)
        elif refusal.operation == "cancel":
            response = http.post(f"{base}:cancel")
        elif refusal.operation == "push":
            response = http.post(f"{base}/pushNotificationConfigs", json={"url": "http://127.0.0.1:9/hook"})
        else:
            response = http.post(f"{base}:subscribe")
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == response.status_code  # AIP-193: the body repeats the HTTP status
    return (response.status_code, error["status"]), error["details"][0]["reason"]


@pytest.mark.parametrize("binding", BINDINGS)
@pytest.mark.parametrize("case", list(REFUSALS))
def test_errors_carry_the_specified_code(agent: ScenarioAgent, binding: str, case: str) -> None:
    refusal = REFUSALS[case]
    task_id = f"no-such-task-{uuid.uuid4().hex}" if refusal.task == "missing" else _task_in(agent, refusal.task).id
    if binding == "GRPC":
        code, reason = _grpc_refusal(agent, refusal, task_id)
        assert code == refusal.grpc
    elif binding == "JSONRPC":
        code, reason = _jsonrpc_refusal(agent, refusal, task_id)
        assert code == refusal.jsonrpc
    else:
        code, reason = _rest_refusal(agent, refusal, task_id)
        assert code == refusal.http
    assert reason == refusal.reason


# -- HTTP details: the card, the JSON-RPC URL, media types ----------------------------------


def test_the_agent_card_is_cacheable_json(agent: ScenarioAgent) -> None:
    url = f"{agent.url}/.well-known/agent-card.json"
    card = httpx.get(url, timeout=10)
    assert card.status_code == 200
    assert card.headers["content-type"] == "application/json"
    assert card.headers["cache-control"] == "public, max-age=30"  # Switchboard's discovery TTL
    again = httpx.get(url, headers={"If-None-Match": card.headers["etag"]}, timeout=10)
    assert again.status_code == 304 and again.headers["cache-control"] == "public, max-age=30"
    assert {i["protocolBinding"] for i in card.json()["supportedInterfaces"]} == set(BINDINGS)


@pytest.mark.parametrize("suffix", ["", "/"])
def test_json_rpc_answers_with_and_without_a_trailing_slash(agent: ScenarioAgent, suffix: str) -> None:
    body = {"jsonrpc": "2.0", "id": 7, "method": "GetTask", "params": {"id": "no-such-task"}}
    response = httpx.post(agent.interface("JSONRPC") + suffix, json=body, headers=VERSION, timeout=10)
    assert response.status_code == 200  # not a redirect a POST client would have to follow
    assert response.json()["id"] == 7 and response.json()["error"]["code"] == -32001


def test_rest_answers_application_json_unless_asked_for_the_a2a_media_type(agent: ScenarioAgent) -> None:
    task = _task_in(agent, "tck-complete-task")
    url = f"{agent.interface('HTTP+JSON')}/tasks/{task.id}"
    plain = httpx.get(url, headers=VERSION, timeout=10)
    assert plain.status_code == 200 and plain.headers["content-type"] == "application/json"
    asked = httpx.get(url, headers={**VERSION, "Accept": "application/a2a+json"}, timeout=10)
    assert asked.headers["content-type"] == "application/a2a+json"
    assert asked.json() == plain.json()


def _snake_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {k for k in value if _SNAKE.match(k)} | {k for v in value.values() for k in _snake_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _snake_keys(v)}
    return set()


def test_json_names_are_camel_case_usage_included(agent: ScenarioAgent) -> None:
    task = _task_in(agent, "tck-artifact-data")
    rest = httpx.get(f"{agent.interface('HTTP+JSON')}/tasks/{task.id}", headers=VERSION, timeout=10).json()
    body = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": task.id}}
    rpc = httpx.post(agent.interface("JSONRPC"), json=body, headers=VERSION, timeout=10).json()["result"]
    for answer in (rest, rpc):
        assert _snake_keys(answer) == set()
        assert answer["status"]["state"] == "TASK_STATE_COMPLETED"
        usage = answer["metadata"]["switchboard/usage"]
        assert {"promptTokens", "totalTokens"} <= set(usage) and int(usage["promptTokens"]) == 2


# -- gRPC reflection, both protocols ---------------------------------------------------------


def test_reflection_answers_v1_and_v1alpha(agent: ScenarioAgent) -> None:
    pool_file = reflection.v1_file()
    request_type = message_factory.GetMessageClass(pool_file.message_types_by_name["ServerReflectionRequest"])
    response_type = message_factory.GetMessageClass(pool_file.message_types_by_name["ServerReflectionResponse"])
    with grpc.insecure_channel(agent.target) as channel:
        v1 = channel.stream_stream(
            f"/{reflection.V1_SERVICE}/ServerReflectionInfo",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_type.FromString,
        )
        listed = next(iter(v1(iter([request_type(list_services="")]), timeout=10)))
        found = next(iter(v1(iter([request_type(file_containing_symbol="lf.a2a.v1.A2AService")]), timeout=10)))
        old = v1alpha_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([v1alpha_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        listed_v1alpha = next(old)
    names = {s.name for s in listed.list_services_response.service}
    assert {"lf.a2a.v1.A2AService", reflection.V1_SERVICE, reflection.V1ALPHA_SERVICE} <= names
    assert {s.name for s in listed_v1alpha.list_services_response.service} == names
    assert found.file_descriptor_response.file_descriptor_proto  # what grpcurl needs to call A2A


def test_grpcurl_and_buf_curl_find_the_services(agent: ScenarioAgent) -> None:
    grpcurl = ROOT / ".tools" / "bin" / "grpcurl"
    buf = ROOT / "node_modules" / ".bin" / "buf"
    assert grpcurl.exists() and buf.exists(), "run `make setup`"
    described = subprocess.run(
        [str(grpcurl), "-plaintext", agent.target, "describe", reflection.V1_SERVICE],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert described.returncode == 0, described.stderr
    assert "rpc ServerReflectionInfo" in described.stdout
    buf_curl = [str(buf), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect-protocol"]
    for protocol in ("grpc-v1", "grpc-v1alpha"):  # buf tries v1 first; each one alone answers
        listed = subprocess.run(
            [*buf_curl, protocol, "--list-services", f"http://{agent.target}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        assert "lf.a2a.v1.A2AService" in listed.stdout.split()
    body = json.dumps({"message": json_format.MessageToDict(_message("tck-complete-task"))})
    send = f"http://{agent.target}/lf.a2a.v1.A2AService/SendMessage"
    called = subprocess.run(
        [*buf_curl, "grpc-v1", "-H", "a2a-version: 1.0", "-d", body, send],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


# -- stopping ----------------------------------------------------------------------------------


def test_a_stop_ends_open_subscriptions_cleanly(tmp_path: Path) -> None:
    """A task may wait for a person for days; its subscribers must not hold a stop up, nor see an error."""
    stopping = start_scenario_agent(tmp_path)
    try:
        waiting = _task_in(stopping, "tck-input-required")

        async def subscribe(binding: str, subscribed: asyncio.Event) -> list[a2a_pb2.StreamResponse]:
            client = stopping.client(binding)
            try:
                transport = await client.connect()
                stream = transport.subscribe(a2a_pb2.SubscribeToTaskRequest(id=waiting.id))
                events = [await anext(stream)]
                subscribed.set()
                events += [e async for e in stream]
                return events
            finally:
                await client.close()

        async def main() -> list[list[a2a_pb2.StreamResponse]]:
            ready = {b: asyncio.Event() for b in BINDINGS}
            streams = [asyncio.create_task(subscribe(b, ready[b])) for b in BINDINGS]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready.values())), 20)
            stopping.proc.send_signal(signal.SIGTERM)
            return await asyncio.wait_for(asyncio.gather(*streams), 20)

        for events in asyncio.run(main()):
            assert [e.WhichOneof("payload") for e in events] == ["task"]
            assert events[0].task.status.state == _T.TASK_STATE_INPUT_REQUIRED
        assert stopping.proc.wait(timeout=20) == 0
    finally:
        stopping.stop()


@pytest.mark.parametrize(
    ("body", "reason", "param"),
    [
        (
            '{"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": ' + "[" * 5000 + "]" * 5000 + "}",
            "nesting_too_deep",
            None,
        ),
        (
            '{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": ' + "9" * 5000 + "}}",
            "number_out_of_range",
            "params.id",
        ),
        (
            '{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "\\ud800"}}',
            "invalid_unicode",
            "params.id",
        ),
        ('{"jsonrpc": "2.0", "id": 1, "method": "GetTask"', "invalid_json", None),
    ],
)
def test_json_rpc_bodies_no_hop_can_carry_are_parse_errors_not_internal_errors(
    agent: ScenarioAgent, body: str, reason: str, param: str | None
) -> None:
    headers = {"content-type": "application/json", **VERSION}
    response = httpx.post(agent.interface("JSONRPC"), content=body, headers=headers, timeout=30)
    assert response.status_code == 200
    error = response.json()["error"]
    assert error["code"] == -32700
    assert error["data"] == {"code": reason, "param": param}
    # The agent still answers a well-formed call at once, and logged no traceback for any of this.
    ok = {"jsonrpc": "2.0", "id": 2, "method": "GetTask", "params": {"id": "no-such-task"}}
    assert httpx.post(agent.interface("JSONRPC"), json=ok, headers=VERSION, timeout=30).json()["id"] == 2
    assert "Traceback" not in agent.log()
