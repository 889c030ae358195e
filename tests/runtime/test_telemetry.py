"""The SDK's disabled tracing wrappers are stripped without changing what the methods are."""

from __future__ import annotations

import inspect

from a2a.server.events.event_consumer import EventConsumer
from a2a.server.request_handlers import LegacyRequestHandler

from runtime import telemetry


def test_disabled_sdk_tracing_wrappers_are_unwrapped() -> None:
    telemetry.strip_disabled_sdk_tracing()
    for method in (EventConsumer.consume_all, LegacyRequestHandler.on_message_send_stream):
        assert not method.__code__.co_filename.endswith("a2a/utils/telemetry.py")
    # The originals keep their kind: async generators stay async generators.
    assert inspect.isasyncgenfunction(LegacyRequestHandler.on_message_send_stream)
    # A second pass finds nothing left to strip.
    assert telemetry.strip_disabled_sdk_tracing() == 0
