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

from tests.support.platform import ROOT, free_port


def test_up_serves_chats_with_the_bundled_model_and_stops_cleanly(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("gateway", "og", "oh", "rg", "rh", "llm")}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")},
        "SWITCHBOARD_GATEWAY_PORT": str(ports["gateway"]),
        "SWITCHBOARD_ORCHESTRATOR_GRPC_PORT": str(ports["og"]),
        "SWITCHBOARD_ORCHESTRATOR_HTTP_PORT": str(ports["oh"]),
        "SWITCHBOARD_REASONING_GRPC_PORT": str(ports["rg"]),
        "SWITCHBOARD_REASONING_HTTP_PORT": str(ports["rh"]),
        "SWITCHBOARD_LLM_PORT": str(ports["llm"]),
        "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "up"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        banner = b""
        deadline = time.monotonic() + 180
        assert proc.stdout is not None
        while b"Press Ctrl-C to stop." not in banner:
            assert time.monotonic() < deadline, banner.decode(errors="replace")[-3000:]
            assert proc.poll() is None, banner.decode(errors="replace")[-3000:]
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                banner += os.read(proc.stdout.fileno(), 65536)
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
