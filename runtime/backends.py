"""Where the state and event ports get their adapters: the one place that picks them.

With ``SWITCHBOARD_DAPR_GRPC_PORT`` set, state and events go through the Dapr
sidecar on that port (components ``dapr_state_store`` and ``dapr_pubsub``).
Without it they stay embedded: each service keeps its state in its own SQLite
file under ``data_dir``, and all services share one event log file there.
"""

from __future__ import annotations

from runtime.config import Settings
from runtime.events import EventBus
from runtime.state import StateStore


def open_state(settings: Settings, service: str) -> StateStore:
    if settings.dapr_grpc_port:
        from runtime.state.dapr import DaprStateStore

        return DaprStateStore(settings.dapr_state_store, settings.dapr_grpc_port)
    from runtime.state.sqlite import SqliteStateStore

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteStateStore(settings.data_dir / f"state-{service}.db")


def open_shared_state(settings: Settings, name: str) -> StateStore:
    """A store every service reads alike (API keys): on Dapr the component without app-id key prefixes.

    Dapr prefixes a component's keys with the app id, so each service sees only its own records
    under ``dapr_state_store``; ``dapr_shared_state_store`` prefixes them with its name instead.
    Embedded, every process opens the same file, as :func:`open_state` does for any name.
    """
    if settings.dapr_grpc_port:
        from runtime.state.dapr import DaprStateStore

        return DaprStateStore(settings.dapr_shared_state_store, settings.dapr_grpc_port)
    return open_state(settings, name)


def open_events(settings: Settings) -> EventBus:
    if settings.dapr_grpc_port:
        from runtime.events.dapr import DaprEventBus

        return DaprEventBus(settings.dapr_pubsub, settings.dapr_grpc_port)
    from runtime.events.embedded import EmbeddedEventBus

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return EmbeddedEventBus(settings.data_dir / "events.db")
