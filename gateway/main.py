"""Process entry for the edge (``switchboard serve gateway``)."""

from __future__ import annotations

import uvicorn

from gateway.app import create_app
from runtime import telemetry
from runtime.config import Settings
from runtime.logs import configure_logging


def main(settings: Settings | None = None) -> None:
    settings = settings or Settings.from_env()
    configure_logging("gateway", settings.log_level, settings.log_format)
    telemetry.configure_tracing("gateway", settings.tracing)
    try:
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.gateway_port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        )
    finally:
        telemetry.shutdown_tracing()
