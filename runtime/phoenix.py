"""A local Phoenix (Arize's trace viewer) for ``switchboard up --phoenix`` and the trace tests.

Phoenix runs as a process of its own from its own virtualenv, ``.tools/phoenix``, which
``make setup`` installs from ``tools/phoenix/uv.lock``: its ~150 dependencies never enter the
platform's. It receives spans over OTLP/gRPC and serves its UI and REST API over HTTP; every
service is pointed at it with the standard ``OTEL_EXPORTER_OTLP_*`` variables, so nothing in the
platform knows it is Phoenix rather than any other OTLP collector.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from runtime.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENT = ROOT / ".tools" / "phoenix"


def executable(environment: Path | None = None) -> Path:
    """The ``phoenix`` command of the pinned install; a :class:`ConfigError` naming ``make setup`` if absent."""
    environment = environment or ENVIRONMENT
    path = environment / "bin" / "phoenix"
    if not path.is_file():
        raise ConfigError(
            f"Phoenix is not installed at {environment}: run `make setup`, which installs the version pinned "
            "in tools/phoenix/uv.lock into its own virtualenv"
        )
    return path


def server_env(data_dir: Path, host: str, port: int, grpc_port: int) -> dict[str, str]:
    """The environment of a Phoenix server keeping its database in ``data_dir``.

    Built from this process's environment minus the ``OTEL_*`` variables: those are the
    platform's (pointing at Phoenix itself), not settings of Phoenix's own telemetry.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        PHOENIX_WORKING_DIR=str(data_dir),
        PHOENIX_HOST=host,
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(grpc_port),
        # No usage reports to Arize from a developer's machine, and none of its network lookups.
        PHOENIX_TELEMETRY_ENABLED="false",
    )
    return env


def exporter_env(host: str, grpc_port: int) -> Mapping[str, str]:
    """What points a Switchboard process's span exporter (OTLP/gRPC, ``runtime/telemetry.py``) at Phoenix.

    Only the traces' variables: Phoenix takes no metrics (it answers UNIMPLEMENTED), so metrics keep
    going where ``OTEL_EXPORTER_OTLP_ENDPOINT`` says, or only to ``/metrics`` when it is unset.
    """
    endpoint = f"http://{host}:{grpc_port}"
    return {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "true",
    }


def url(host: str, port: int) -> str:
    return f"http://{host}:{port}"
