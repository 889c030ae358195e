"""A real Phoenix server (from ``.tools/phoenix``, as ``switchboard up --phoenix`` runs it) on free ports."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runtime import phoenix
from runtime.errors import ConfigError
from tests.support.platform import free_port, wait_http


@dataclass
class PhoenixServer:
    workdir: Path
    port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return phoenix.url("127.0.0.1", self.port)

    def exporter_env(self) -> dict[str, str]:
        """What points a platform's services at this Phoenix, spans sent every 100 ms rather than 5 s."""
        return {**phoenix.exporter_env("127.0.0.1", self.grpc_port), "OTEL_BSP_SCHEDULE_DELAY": "100"}

    def start(self) -> None:
        """Start it without waiting (it takes ~20 s): :meth:`wait` when it is needed."""
        try:
            command = phoenix.executable()
        except ConfigError as exc:
            # `make setup` installs it: a machine without it is not set up, which is a failure, not a skip.
            pytest.fail(str(exc))
        data = self.workdir / "phoenix"
        data.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "phoenix.log").open("ab")
        self.proc = subprocess.Popen(
            [str(command), "serve"],
            env=phoenix.server_env(data, "127.0.0.1", self.port, self.grpc_port),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait(self, timeout: float = 90.0) -> None:
        try:
            wait_http(f"{self.url}/healthz", timeout=timeout, proc=self.proc)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"{exc}\n{self.log()[-3000:]}") from exc

    def log(self) -> str:
        return (self.workdir / "phoenix.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
