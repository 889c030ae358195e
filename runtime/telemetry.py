"""OpenTelemetry set-up: one tracer provider per process, W3C context across every hop.

gRPC hops are traced by ``opentelemetry-instrumentation-grpc`` interceptors added to
every server and channel the runtime creates; HTTP hops (the gateway's edge and the
LLM call) carry ``traceparent`` through :func:`inject_headers` / :func:`extract_context`.
Spans are recorded and exported over OTLP/gRPC when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is
set (set it for every service, as ``switchboard up`` does by passing its environment on).
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.instrumentation.grpc.filters import negate, service_name
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from runtime import span_attributes as attrs
from runtime.metrics import rpc as rpc_metrics

_configured = False

# Health probes would otherwise put a span in every trace store every few seconds.
_NOT_HEALTH = negate(service_name("grpc.health.v1.Health"))


def configure_tracing(service: str, enabled: bool = True, *, content: bool = True) -> None:
    """Install the process's tracer provider (idempotent).

    ``content``: record prompts, answers, tool arguments and passages in spans
    (``SWITCHBOARD_TRACE_CONTENT``, :mod:`runtime.span_attributes`).
    """
    global _configured
    if _configured:
        return
    attrs.set_record_content(content)
    strip_disabled_sdk_tracing()
    if not enabled:
        return
    # The project first, so that OTEL_RESOURCE_ATTRIBUTES (read by Resource.create) may override it.
    resource = Resource({attrs.PROJECT_NAME: attrs.PROJECT}).merge(
        Resource.create({attrs.SERVICE_NAME: f"switchboard-{service}"})
    )
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider = TracerProvider(resource=resource)
        provider.add_span_processor(ServiceOnEverySpan(str(resource.attributes[attrs.SERVICE_NAME])))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        # Nowhere to send spans: still mint trace and span ids (logs and traceparent carry them)
        # but record nothing, which saves about 1 ms of CPU per request across the hops.
        provider = TracerProvider(resource=resource, sampler=ALWAYS_OFF)
    trace.set_tracer_provider(provider)
    _configured = True


class ServiceOnEverySpan(SpanProcessor):
    """Write ``service.name`` on each span as well as on the resource.

    Phoenix keeps a span's own attributes and drops its resource's, so without this a trace in
    Phoenix would not say which process each span came from.
    """

    def __init__(self, service: str) -> None:
        self._service = service

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        span.set_attribute(attrs.SERVICE_NAME, self._service)

    def on_end(self, span: ReadableSpan) -> None:
        pass


# The a2a-sdk modules whose classes and functions carry its tracing decorators.
_A2A_TRACED_MODULES = (
    "a2a.server.request_handlers.default_request_handler",
    "a2a.server.request_handlers.default_request_handler_v2",
    "a2a.server.events.event_queue",
    "a2a.server.events.event_queue_v2",
    "a2a.server.events.event_consumer",
    "a2a.server.events.in_memory_queue_manager",
    "a2a.server.tasks.task_manager",
    "a2a.client.transports.grpc",
)


def strip_disabled_sdk_tracing() -> int:
    """Unwrap a2a-sdk's tracing decorators when its tracing is off; returns how many.

    With ``OTEL_INSTRUMENTATION_A2A_SDK_ENABLED=false`` (our default, see ``runtime/__init__``)
    the SDK still routes every queue, consumer and handler call through a wrapper that
    opens a no-op span: about 0.1 ms per event per hop, measured in ``bench/``. The
    decorators keep the original function in ``__wrapped__`` (``functools.wraps``), so
    putting it back changes nothing but the cost.
    """
    if os.environ.get("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "true").lower() == "true":
        return 0
    stripped = 0
    for name in _A2A_TRACED_MODULES:
        module = importlib.import_module(name)
        for attr, value in list(vars(module).items()):
            if inspect.isclass(value) and value.__module__ == name:
                for method_name, method in list(vars(value).items()):
                    if _is_sdk_trace_wrapper(method):
                        setattr(value, method_name, _unwrapped(method))
                        stripped += 1
            elif _is_sdk_trace_wrapper(value):
                setattr(module, attr, _unwrapped(value))
                stripped += 1
    return stripped


def _unwrapped(obj: Any) -> Any:
    # A subclass decorated like its base wraps the base's wrapper: peel every layer.
    while _is_sdk_trace_wrapper(obj):
        obj = obj.__wrapped__
    return obj


def _is_sdk_trace_wrapper(obj: object) -> bool:
    # isfunction first: the SDK's no-op stand-ins answer every attribute lookup.
    return (
        inspect.isfunction(obj)
        and hasattr(obj, "__wrapped__")
        and obj.__code__.co_filename.replace(os.sep, "/").endswith("a2a/utils/telemetry.py")
    )


def shutdown_tracing() -> None:
    """Flush spans still buffered; called on graceful shutdown."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:  # type: ignore[type-arg]
    return [StreamsClosedInTheirTask(), aio_server_interceptor(filter_=_NOT_HEALTH)]


class StreamsClosedInTheirTask(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Close each streaming handler's generator in the call's own task, when the call ends.

    The tracing interceptor's streaming handler is a generator that holds the call's span as
    the current context across its ``yield``. grpc drops a generator whose client stopped
    reading (e.g. an orchestrator that has the final event it needs) without closing it, and
    the event loop's finalizer closes it later in a task of its own, so OpenTelemetry cannot
    restore the context there and logs "Failed to detach context" at ERROR. Driven from here
    with ``context.write`` (grpc's writer API), the generator is closed in the task it ran in,
    as soon as the call ends, whatever ends it.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None or not handler.response_streaming:
            return handler
        if handler.request_streaming:
            if not inspect.isasyncgenfunction(handler.stream_stream):
                return handler
            return grpc.stream_stream_rpc_method_handler(
                _driven(handler.stream_stream), handler.request_deserializer, handler.response_serializer
            )
        if not inspect.isasyncgenfunction(handler.unary_stream):
            return handler  # already written with context.write (grpc's health Watch)
        return grpc.unary_stream_rpc_method_handler(
            _driven(handler.unary_stream), handler.request_deserializer, handler.response_serializer
        )


def _driven(behavior: Callable[[Any, Any], AsyncGenerator[Any, None]]) -> Callable[[Any, Any], Awaitable[None]]:
    async def drive(request: Any, context: Any) -> None:
        responses = behavior(request, context)
        try:
            async for response in responses:
                await context.write(response)
        finally:
            await responses.aclose()

    return drive


def client_interceptors() -> Sequence[grpc.aio.ClientInterceptor]:
    # Our channels only carry A2A calls, so unlike the servers they need no health filter
    # (whose method-name parsing runs on every call).
    return [*aio_client_interceptors(), *rpc_metrics.client_interceptors()]


def inject_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Return ``headers`` plus the W3C trace context of the current span."""
    carrier: dict[str, str] = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract_context(headers: Mapping[str, Any]) -> otel_context.Context:
    return propagate.extract(dict(headers))
