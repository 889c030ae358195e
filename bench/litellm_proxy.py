"""LiteLLM's proxy as a reference target for ``bench/latency.py --litellm``: installed and run only when asked.

``litellm[proxy]`` is not a dependency of Switchboard: it goes into its own throwaway virtualenv,
``.tools/litellm-venv``, from the pins in ``bench/litellm/requirements.txt`` (every package pinned,
frozen from an install of ``requirements.in``), and is reinstalled only when that file changes.
The proxy runs with one worker and one model, ``scripted``, pointed at the same scripted LLM the
platform calls, behind a master key (the proxy refuses to start without one).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "bench" / "litellm" / "requirements.txt"
VENV = ROOT / ".tools" / "litellm-venv"
MASTER_KEY = "sk-bench-" + "0123456789abcdef" * 2
"""Any key will do: the proxy only compares it; the benchmark sends it as a client would."""
MODEL = "scripted"


class LiteLLMUnavailableError(RuntimeError):
    """The proxy could not be installed or started; the message says why."""


def ensure_installed() -> Path:
    """The ``litellm`` executable of the virtualenv, installing it first when missing or out of date."""
    marker = VENV / ".requirements-sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    exe = VENV / "bin" / "litellm"
    if exe.exists() and marker.exists() and marker.read_text().strip() == wanted:
        return exe
    uv = Path(sys.executable).with_name("uv")
    steps = [
        [str(uv), "venv", "--quiet", "--allow-existing", "--python", sys.executable, str(VENV)],
        [str(uv), "pip", "install", "--quiet", "--python", str(VENV / "bin" / "python"), "-r", str(REQUIREMENTS)],
    ]
    print(f"installing LiteLLM's proxy into {VENV} from {REQUIREMENTS.relative_to(ROOT)}", flush=True)
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise LiteLLMUnavailableError(f"{' '.join(argv[:3])} failed:\n{done.stderr.strip() or done.stdout.strip()}")
    marker.write_text(wanted + "\n")
    return exe


@dataclass(frozen=True)
class Proxy:
    proc: subprocess.Popen[bytes]
    url: str
    """Its chat completions endpoint."""

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start(port: int, llm_base_url: str, workdir: Path) -> Proxy:
    """The proxy on ``127.0.0.1:port``, one worker, ready to answer; its log is ``workdir/litellm.log``."""
    exe = ensure_installed()
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {llm_base_url}\n"
        "      api_key: none\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
    )
    # No network here and none needed: the cost map ships with the package.
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    log = open(workdir / "litellm.log", "ab")  # noqa: SIM115 - the process holds it until it ends
    argv = [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (workdir / "litellm.log").read_text(errors="replace")[-2000:]
            raise LiteLLMUnavailableError(f"the LiteLLM proxy exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/liveliness", timeout=1) as response:
                if response.status == 200:
                    return Proxy(proc, f"http://127.0.0.1:{port}/v1/chat/completions")
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    proc.kill()
    raise LiteLLMUnavailableError("the LiteLLM proxy did not answer /health/liveliness within 120 s")
