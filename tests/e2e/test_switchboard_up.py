"""`switchboard up` on embedded defaults: the bundled local model answers through the OpenAI SDK."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import redis

from runtime.sidecar import redis_answers
from tests.support.platform import ROOT, free_port


def _env(tmp_path: Path, ports: dict[str, int]) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")},
        "SWITCHBOARD_GATEWAY_PORT": str(ports["gateway"]),
        "SWITCHBOARD_ORCHESTRATOR_GRPC_PORT": str(ports["og"]),
        "SWITCHBOARD_ORCHESTRATOR_HTTP_PORT": str(ports["oh"]),
        "SWITCHBOARD_REASONING_GRPC_PORT": str(ports["rg"]),
        "SWITCHBOARD_REASONING_HTTP_PORT": str(ports["rh"]),
        "SWITCHBOARD_PLANNER_GRPC_PORT": str(ports.get("pg") or free_port()),
        "SWITCHBOARD_PLANNER_HTTP_PORT": str(ports.get("ph") or free_port()),
        "SWITCHBOARD_LLM_PORT": str(ports["llm"]),
        "SWITCHBOARD_REDIS_PORT": str(ports.get("redis", 6379)),
        "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
    }


def _running(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, waiting for a parent to reap it) is not running."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _read_until(proc: subprocess.Popen[bytes], marker: bytes, seen: bytes = b"", timeout: float = 180) -> bytes:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while marker not in seen:
        assert time.monotonic() < deadline, seen.decode(errors="replace")[-3000:]
        assert proc.poll() is None, seen.decode(errors="replace")[-3000:]
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            seen += os.read(proc.stdout.fileno(), 65536)
    return seen


def test_up_serves_chats_with_the_bundled_model_and_stops_cleanly(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("gateway", "og", "oh", "rg", "rh", "llm")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "up"],
        cwd=ROOT,
        env=_env(tmp_path, ports),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        banner = _read_until(proc, b"Press Ctrl-C to stop.")
        text = banner.decode(errors="replace")
        assert f"http://127.0.0.1:{ports['gateway']}/v1" in text
        assert "tiny demo model" in text

        client = openai.OpenAI(base_url=f"http://127.0.0.1:{ports['gateway']}/v1", api_key="none", timeout=120)
        reply = client.chat.completions.create(
            model="switchboard", messages=[{"role": "user", "content": "Say hello."}], max_tokens=16, temperature=0
        )
        assert reply.choices[0].message.content and reply.choices[0].message.content.strip()
        assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 16
        chunks = list(
            client.chat.completions.create(
                model="switchboard",
                messages=[{"role": "user", "content": "Count to three."}],
                max_tokens=12,
                stream=True,
            )
        )
        assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 2
        card = httpx.get(f"http://127.0.0.1:{ports['rh']}/.well-known/agent-card.json").json()
        assert card["name"] == "reasoning"
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    assert code == 0
    # Every service is gone: the ports are free again.
    for port in ports.values():
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            raise AssertionError(f"port {port} still answers after shutdown")
        except httpx.TransportError:
            pass


def test_up_dapr_keeps_state_in_redis_and_survives_kill_9_of_any_service(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("gateway", "og", "oh", "rg", "rh", "llm", "redis")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "up", "--dapr"],
        cwd=ROOT,
        env=_env(tmp_path, ports),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so a failed run can take the whole tree down
    )
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    try:
        output = _read_until(proc, b"Press Ctrl-C to stop.")
        assert f"Dapr sidecars, Redis on 127.0.0.1:{ports['redis']}".encode() in output

        client = openai.OpenAI(base_url=f"{gateway}/v1", api_key="none", timeout=120)
        raw = client.chat.completions.with_raw_response.create(
            model="switchboard",
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=8,
            extra_headers={"X-Session-ID": "kept"},
        )
        answer = raw.parse().choices[0].message.content
        task_id = raw.parse().id.removeprefix("chatcmpl-")
        assert answer

        # The records are in Redis, under each service's app id (Dapr's key prefix).
        keys = redis.Redis(port=ports["redis"]).keys("*")
        assert f"orchestrator||orchestrator/task//{task_id}".encode() in keys
        assert b"gateway||gateway/session/kept" in keys
        assert not list((tmp_path / "data").glob("state-*.db")), "nothing may go to the embedded store"

        for name in ("reasoning", "orchestrator", "gateway"):
            found = subprocess.run(
                ["pgrep", "-P", str(proc.pid), "-f", f"serve {name} "], capture_output=True, text=True
            )
            (pid,) = [int(p) for p in found.stdout.split()]
            sidecars = subprocess.run(["pgrep", "-P", str(pid), "daprd"], capture_output=True, text=True)
            (daprd,) = [int(p) for p in sidecars.stdout.split()]
            os.kill(pid, signal.SIGKILL)
            output = _read_until(proc, f"{name} exited with code -9; restarting it".encode(), output)
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{gateway}/readyz", timeout=2).status_code == 200:
                        view = httpx.get(f"{gateway}/v1/sessions/kept", timeout=10)
                        if view.status_code == 200 and view.json()["tasks"][0]["state"] == "completed":
                            break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"no session view after {name} restarted"
                time.sleep(0.5)
            body = view.json()
            # The orphaned sidecar got SIGTERM; it takes up to its graceful-shutdown time to go.
            gone_by = time.monotonic() + 15
            while _running(daprd) and time.monotonic() < gone_by:
                time.sleep(0.2)
            assert not _running(daprd), f"the killed {name}'s daprd is still running"
            assert body["tasks"][0]["id"] == task_id
            assert body["messages"][1]["content"] == answer

        again = client.chat.completions.create(
            model="switchboard", messages=[{"role": "user", "content": "Again."}], max_tokens=4
        )
        assert again.choices[0].message.content
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert code == 0
    assert not redis_answers(ports["redis"]), "up --dapr stops the Redis it started"
