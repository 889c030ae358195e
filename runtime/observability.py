"""A process's observability, set up and shut down in one place: traces, metrics, and span prices.

The gateway (``gateway/main.py``) and every agent (``runtime/agent_server.py``) call these, so each
process exports the same way: spans over OTLP when configured (``runtime/telemetry.py``), metrics at
``/metrics`` and over OTLP (``runtime/metrics``), and LLM spans priced by the same table that
meters usage (``runtime/metering/prices.py``), so Phoenix shows the cost the budgets count.
"""

from __future__ import annotations

from runtime import metrics, telemetry
from runtime import span_attributes as attrs
from runtime.config import Settings
from runtime.metering.prices import PriceTable


def configure(service: str, settings: Settings) -> None:
    telemetry.configure_tracing(service, settings.tracing, content=settings.trace_content)
    metrics.configure_metrics(service, settings.metrics)
    attrs.set_cost_function(PriceTable.from_setting(settings.prices).span_cost)


def shutdown() -> None:
    """Flush what is buffered (spans, the last metrics export) before the process exits."""
    telemetry.shutdown_tracing()
    metrics.shutdown_metrics()
