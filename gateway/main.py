"""Process entry for the edge (``switchboard serve gateway``)."""

from __future__ import annotations

import uvicorn

from gateway.app import create_app
from runtime import http_server, observability
from runtime.config import Settings
from runtime.logs import configure_logging


def main(settings: Settings | None = None) -> None:
    settings = settings or Settings.from_env()
    configure_logging("gateway", settings.log_level, settings.log_format)
    observability.configure("gateway", settings)
    try:
        config = http_server.config(
            create_app(settings),
            settings,
            settings.gateway_port,
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        )
        uvicorn.Server(config).run()
    finally:
        observability.shutdown()
