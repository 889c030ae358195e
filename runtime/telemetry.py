"""OpenTelemetry set-up: one tracer provider per process, W3C context across every hop.

gRPC hops are traced by ``opentelemetry-instrumentation-grpc`` interceptors added to
every server and channel the runtime creates; HTTP hops (the gateway's edge and the
LLM call) carry ``traceparent`` through :func:`inject_headers` / :func:`extract_context`.
Spans are exported over OTLP/gRPC when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.instrumentation.grpc.filters import negate, service_name
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_configured = False

# Health probes would otherwise put a span in every trace store every few seconds.
_NOT_HEALTH = negate(service_name("grpc.health.v1.Health"))


def configure_tracing(service: str, enabled: bool = True) -> None:
    """Install the process's tracer provider (idempotent)."""
    global _configured
    if _configured or not enabled:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"switchboard-{service}"}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True


def shutdown_tracing() -> None:
    """Flush spans still buffered; called on graceful shutdown."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:  # type: ignore[type-arg]
    return [aio_server_interceptor(filter_=_NOT_HEALTH)]


def client_interceptors() -> Sequence[grpc.aio.ClientInterceptor]:
    return list(aio_client_interceptors(filter_=_NOT_HEALTH))


def inject_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Return ``headers`` plus the W3C trace context of the current span."""
    carrier: dict[str, str] = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract_context(headers: Mapping[str, Any]) -> otel_context.Context:
    return propagate.extract(dict(headers))
