"""OpenTelemetry metrics: one meter provider per process, read as Prometheus text and exported over OTLP.

:func:`configure_metrics` installs the process's provider (``switchboard serve`` calls it beside
``telemetry.configure_tracing``). Two readers share its instruments:

- a Prometheus reader on the process's own registry, rendered in the text exposition format by
  :func:`exposition` at ``GET /metrics`` of the HTTP port the process already has
  (:mod:`runtime.metrics.asgi`): no extra port;
- with ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` set (and
  ``OTEL_METRICS_EXPORTER`` not ``none``), a periodic OTLP/gRPC exporter, every
  ``OTEL_METRIC_EXPORT_INTERVAL`` ms (the SDK's variable, 60 s by default).

Names and attributes follow OpenTelemetry's semantic conventions where one exists
(``http.server.request.duration``, ``rpc.server.call.duration``, ``gen_ai.client.*``,
``mcp.client.operation.duration``, ``db.client.operation.duration``,
``messaging.client.operation.duration``); the rest are ``switchboard.*``. No attribute ever holds
a task id, a session or a key: every label set is bounded (route templates, method names, models,
tenants, agents). The table is in ``docs/operations.md``.

Recording is a function call that does nothing until :func:`configure_metrics` ran with metrics on,
so code paths that record (the LLM port, the tools, the state port) need no switch of their own.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest

DEFAULT_TENANT = "default"
TENANT = "switchboard.tenant"
"""Attribute: the tenant a measurement was made for (the caller's key's; ``default`` with keys off)."""

# Bucket boundaries the semantic conventions advise for each kind of measurement.
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_GENAI_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
# Stores and buses answer in tens of microseconds embedded: finer buckets at the bottom.
_STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


@dataclass(frozen=True, slots=True)
class Instruments:
    http_server_duration: Histogram
    rpc_server_duration: Histogram
    rpc_client_duration: Histogram
    genai_duration: Histogram
    genai_tokens: Histogram
    tool_duration: Histogram
    store_duration: Histogram
    bus_duration: Histogram
    step_duration: Histogram
    refusals: Counter
    cost: Counter


_instruments: Instruments | None = None
_provider: MeterProvider | None = None
_registry: CollectorRegistry | None = None
_approvals_pending: dict[tuple[str, str], int] = {}
_tenant: ContextVar[str] = ContextVar("switchboard_metrics_tenant", default=DEFAULT_TENANT)


def configure_metrics(service: str, enabled: bool = True) -> None:
    """Install the process's meter provider and instruments (idempotent; nothing when disabled)."""
    global _instruments, _provider, _registry
    if _provider is not None or not enabled:
        return
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    registry = CollectorRegistry(auto_describe=False)
    # Scope labels would repeat the one meter's name on every series.
    readers: list[MetricReader] = [PrometheusMetricReader(scope_info_enabled=False, registry=registry)]
    if otlp_configured():
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    provider = MeterProvider(
        metric_readers=readers, resource=Resource.create({"service.name": f"switchboard-{service}"})
    )
    meter = provider.get_meter("switchboard")
    _instruments = Instruments(
        http_server_duration=meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=_HTTP_BUCKETS,
        ),
        rpc_server_duration=meter.create_histogram(
            "rpc.server.call.duration",
            unit="s",
            description="Duration of incoming gRPC calls (A2A hops and the platform's own services).",
            explicit_bucket_boundaries_advisory=_HTTP_BUCKETS,
        ),
        rpc_client_duration=meter.create_histogram(
            "rpc.client.call.duration",
            unit="s",
            description="Duration of outgoing gRPC calls (A2A hops and the platform's own services).",
            explicit_bucket_boundaries_advisory=_HTTP_BUCKETS,
        ),
        genai_duration=meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="Duration of GenAI operations: LLM chat calls and knowledge retrieval.",
            explicit_bucket_boundaries_advisory=_GENAI_BUCKETS,
        ),
        genai_tokens=meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Tokens used per LLM call, by token type (input, output).",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        ),
        tool_duration=meter.create_histogram(
            "mcp.client.operation.duration",
            unit="s",
            description="Duration of MCP requests (tool calls) as the calling agent sees them.",
            explicit_bucket_boundaries_advisory=_GENAI_BUCKETS,
        ),
        store_duration=meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of state port operations (task store, sessions, workflows, keys).",
            explicit_bucket_boundaries_advisory=_STORE_BUCKETS,
        ),
        bus_duration=meter.create_histogram(
            "messaging.client.operation.duration",
            unit="s",
            description="Duration of event bus operations (publish).",
            explicit_bucket_boundaries_advisory=_STORE_BUCKETS,
        ),
        step_duration=meter.create_histogram(
            "switchboard.workflow.step.duration",
            unit="s",
            description="Duration of one workflow step, retries included, by agent and outcome.",
            explicit_bucket_boundaries_advisory=_STEP_BUCKETS,
        ),
        refusals=meter.create_counter(
            "switchboard.gateway.refusals",
            unit="{request}",
            description="Requests the gateway refused for a key's limit (rate, tokens, concurrency, budget).",
        ),
        cost=meter.create_counter(
            "switchboard.gen_ai.cost",
            unit="{usd_micro}",
            description="Cost of LLM calls in millionths of a US dollar, by model and tenant.",
        ),
    )
    meter.create_observable_gauge(
        "switchboard.approvals.pending",
        callbacks=[_observe_approvals],
        unit="{approval}",
        description="Approvals waiting for a decision (pending or escalated), by tenant and status.",
    )
    _provider, _registry = provider, registry


def otlp_configured() -> bool:
    """Whether metrics go out over OTLP too: an endpoint is set and the SDK's exporter switch allows it."""
    if os.environ.get("OTEL_METRICS_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))


def enabled() -> bool:
    return _instruments is not None


def shutdown_metrics() -> None:
    """Export what the OTLP reader still holds; called on graceful shutdown."""
    global _instruments, _provider, _registry
    if _provider is not None:
        _provider.shutdown()
    _instruments = _provider = _registry = None


def exposition() -> tuple[bytes, str]:
    """The Prometheus text exposition (format 0.0.4, which every scraper reads) and its content type."""
    if _registry is None:
        return b"", CONTENT_TYPE_PLAIN_0_0_4
    return generate_latest(_registry), CONTENT_TYPE_PLAIN_0_0_4


# -- the tenant measurements are made for -----------------------------------------------------


@contextlib.contextmanager
def tenant_scope(tenant: str) -> Iterator[None]:
    """Attribute what is recorded inside (and in tasks started inside) to ``tenant``."""
    token = _tenant.set(tenant or DEFAULT_TENANT)
    try:
        yield
    finally:
        _tenant.reset(token)


def current_tenant() -> str:
    return _tenant.get()


# -- recording ----------------------------------------------------------------------------------


def instruments() -> Instruments | None:
    """The instruments, or None while metrics are off (callers then skip their measurement)."""
    return _instruments


def record_llm_call(
    model: str, seconds: float, *, input_tokens: int = 0, output_tokens: int = 0, error: str = ""
) -> None:
    """One LLM chat call: its duration, and its tokens by type (a failed call records no tokens)."""
    inst = _instruments
    if inst is None:
        return
    attrs: dict[str, str] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        TENANT: _tenant.get(),
    }
    if error:
        inst.genai_duration.record(seconds, {**attrs, "error.type": error})
        return
    inst.genai_duration.record(seconds, attrs)
    inst.genai_tokens.record(input_tokens, {**attrs, "gen_ai.token.type": "input"})
    inst.genai_tokens.record(output_tokens, {**attrs, "gen_ai.token.type": "output"})


def record_cost(model: str, tenant: str, micros: int) -> None:
    """Add ``micros`` (millionths of a US dollar, as ``usage.proto``) to the cost of ``model`` for ``tenant``.

    Called by the usage ledger for each record it stores (``runtime/metering/ledger.py``): this
    module keeps no price table.
    """
    inst = _instruments
    if inst is not None and micros > 0:
        inst.cost.add(micros, {"gen_ai.request.model": model, TENANT: tenant or DEFAULT_TENANT})


def record_refusal(limit: str, tenant: str) -> None:
    """A request refused for a key's ``limit`` (``requests``, ``tokens``, ``concurrency``, ``budget``...)."""
    inst = _instruments
    if inst is not None:
        inst.refusals.add(1, {"switchboard.limit": limit or "unknown", TENANT: tenant or DEFAULT_TENANT})


def set_approvals_pending(counts: Mapping[tuple[str, str], int]) -> None:
    """The open approvals as last read, by (tenant, status); the gauge reports them at each collection.

    A (tenant, status) seen before and now without approvals reads 0 rather than vanishing, so a
    graph falls to zero instead of stopping.
    """
    global _approvals_pending
    _approvals_pending = {**dict.fromkeys(_approvals_pending, 0), **counts}


def _observe_approvals(_: CallbackOptions) -> list[Observation]:
    return [
        Observation(count, {TENANT: tenant, "switchboard.approval.status": status})
        for (tenant, status), count in _approvals_pending.items()
    ]


P = ParamSpec("P")
R = TypeVar("R")


def timed(
    pick: Callable[[Instruments], Histogram], attributes: Callable[..., dict[str, str]]
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Decorate a coroutine function to record its duration in ``pick(instruments)``.

    ``attributes`` receives the call's arguments and returns the measurement's attributes; an
    exception adds ``error.type`` (the platform error's code, else the exception's class name).
    """

    def decorate(func: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            inst = _instruments
            if inst is None:
                return await func(*args, **kwargs)
            start = time.perf_counter()
            try:
                result = await func(*args, **kwargs)
            except BaseException as exc:
                attrs = {**attributes(*args, **kwargs), "error.type": error_type(exc)}
                pick(inst).record(time.perf_counter() - start, attrs)
                raise
            pick(inst).record(time.perf_counter() - start, attributes(*args, **kwargs))
            return result

        return wrapper

    return decorate


def error_type(exc: BaseException) -> str:
    """A bounded name for what went wrong: a platform error's code, else the exception's class."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) and code else type(exc).__name__


def attributes_of(**fixed: str) -> Callable[..., dict[str, str]]:
    """An ``attributes`` function for :func:`timed` that ignores the call and returns ``fixed``."""

    def attrs(*_: Any, **__: Any) -> dict[str, str]:
        return fixed

    return attrs
