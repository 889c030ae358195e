"""Real Switchboard processes on loopback ports, started the way ``switchboard serve`` starts them."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


# Below Linux's ephemeral range (32768-60999): a port picked here stays free until the service
# that is given it binds it, whereas one the kernel handed out for bind(0) can be handed out again
# meanwhile, e.g. to a daprd picking its own internal ports.
_LOWEST, _HIGHEST = 20_000, 32_768


def _port_range() -> range:
    """This process's share of the range: pytest-xdist workers each pick from their own slice.

    A port is checked free when it is picked but bound later by the service it is given to;
    two workers picking from one range could hand out the same port in that window.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or count < 2:
        return range(_LOWEST, _HIGHEST)
    share = (_HIGHEST - _LOWEST) // count
    start = _LOWEST + int(worker[2:]) * share
    return range(start, start + share)


_PORTS = _port_range()
_handed_out: set[int] = set()


def free_port() -> int:
    for _ in range(200):
        port = random.choice(_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError, http.client.HTTPException):
            # HTTPException: something else answers on the port (the service is still binding,
            # or failed to); the process check above says which.
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout}s")


@dataclass
class Platform:
    """Scripted LLM + reasoning + planner (+ knowledge) + orchestrator + gateway, each its own process."""

    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    llm_delay_ms: float = 0.0
    dapr_resources: Path | None = None
    """Components for ``serve --dapr``: each service runs beside a daprd; None keeps state embedded."""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ports = {
            "llm": free_port(),
            "gateway": free_port(),
            "orchestrator_grpc": free_port(),
            "orchestrator_http": free_port(),
            "reasoning_grpc": free_port(),
            "reasoning_http": free_port(),
            "planner_grpc": free_port(),
            "planner_http": free_port(),
            # Allocated even when no knowledge agent runs: the orchestrator looks for one at these ports.
            "knowledge_grpc": free_port(),
            "knowledge_http": free_port(),
        }
        self.env = {
            **os.environ,
            "SWITCHBOARD_HOST": "127.0.0.1",
            "SWITCHBOARD_GATEWAY_PORT": str(self.ports["gateway"]),
            "SWITCHBOARD_ORCHESTRATOR_GRPC_PORT": str(self.ports["orchestrator_grpc"]),
            "SWITCHBOARD_ORCHESTRATOR_HTTP_PORT": str(self.ports["orchestrator_http"]),
            "SWITCHBOARD_REASONING_GRPC_PORT": str(self.ports["reasoning_grpc"]),
            "SWITCHBOARD_REASONING_HTTP_PORT": str(self.ports["reasoning_http"]),
            "SWITCHBOARD_PLANNER_GRPC_PORT": str(self.ports["planner_grpc"]),
            "SWITCHBOARD_PLANNER_HTTP_PORT": str(self.ports["planner_http"]),
            "SWITCHBOARD_KNOWLEDGE_GRPC_PORT": str(self.ports["knowledge_grpc"]),
            "SWITCHBOARD_KNOWLEDGE_HTTP_PORT": str(self.ports["knowledge_http"]),
            "SWITCHBOARD_LLM_BASE_URL": f"http://127.0.0.1:{self.ports['llm']}/v1",
            "SWITCHBOARD_LLM_MODEL": "scripted",
            "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS": "3",
            "SWITCHBOARD_DATA_DIR": str(self.workdir / "data"),
            # Every platform's knowledge agent loads the embedding graph built once, not its own build.
            "SWITCHBOARD_EMBEDDING_GRAPH_DIR": str(Path(tempfile.gettempdir()) / "switchboard-embedding-graphs"),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def llm_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['llm']}"

    def llm_requests(self, kind: str = "messages") -> list[dict[str, Any]]:
        """The body of every request the scripted LLM received with a ``kind`` field, oldest first.

        ``messages`` picks chat completions, ``input`` embeddings.
        """
        with urllib.request.urlopen(f"{self.llm_url}/_requests", timeout=10) as response:
            requests = json.loads(response.read())
        return [r["body"] for r in requests if kind in r["body"]]

    def llm_request(self, marker: str) -> dict[str, Any]:
        """The last chat completion request the scripted LLM received whose messages mention ``marker``."""
        found = [body for body in self.llm_requests() if marker in json.dumps(body["messages"])]
        assert found, f"no LLM request mentions {marker}"
        return found[-1]

    def clear_llm_requests(self) -> None:
        """Forget the requests the scripted LLM has recorded."""
        request = urllib.request.Request(f"{self.llm_url}/_requests", method="DELETE")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def llm_user_inputs(self) -> list[str]:
        """The last user message of every chat request the scripted LLM received, oldest first."""
        found = []
        for body in self.llm_requests():
            users = [m["content"] for m in body["messages"] if m["role"] == "user"]
            found.append(users[-1] if users else "")
        return found

    def agent_url(self, agent: str) -> str:
        return f"http://127.0.0.1:{self.ports[agent + '_http']}"

    def grpc_target(self, agent: str) -> str:
        return f"127.0.0.1:{self.ports[agent + '_grpc']}"

    def start(self, *, knowledge: bool = False) -> None:
        """Start the LLM, the agents and the gateway; ``knowledge`` adds the knowledge agent."""
        self.start_llm()
        for name in ("reasoning", "planner", *(("knowledge",) if knowledge else ()), "orchestrator"):
            self.start_service(name)
        self.start_service("gateway")

    def ingest(self, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """``switchboard ingest FOLDER ARGS`` against this platform's data (or its running knowledge agent)."""
        return subprocess.run(
            [sys.executable, "-m", "runtime.cli", "ingest", str(folder), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def start_llm(self) -> None:
        self.spawn(
            "llm",
            [
                sys.executable,
                "-m",
                "tests.support.scripted_llm",
                "--port",
                str(self.ports["llm"]),
                "--delay-ms",
                str(self.llm_delay_ms),
            ],
            f"{self.llm_url}/healthz",
        )

    def start_service(self, name: str) -> None:
        ready = f"{self.gateway_url}/readyz" if name == "gateway" else f"{self.agent_url(name)}/readyz"
        dapr = ["--dapr", "--dapr-resources", str(self.dapr_resources)] if self.dapr_resources else []
        self.spawn(name, [sys.executable, "-m", "runtime.cli", "serve", name, *dapr], ready)

    def spawn(self, name: str, argv: list[str], ready_url: str) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        wait_http(ready_url, timeout=60, proc=proc)

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def terminate(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        return proc.wait(timeout=timeout)

    def stop(self) -> None:
        core = ("gateway", "orchestrator", "planner", "reasoning", "llm")
        extra = [name for name in self.procs if name not in core]  # e.g. a knowledge agent a test started
        for name in (*core[:2], *extra, *core[2:]):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
