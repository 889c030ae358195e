"""An in-memory OTLP/gRPC metrics sink, served beside the trace collector (``otlp_collector.py``).

Keeps the latest data point of each series (exports are cumulative, so the latest is the total).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc


@dataclass(frozen=True)
class Point:
    service: str
    name: str
    attributes: dict[str, Any]
    value: float
    """A sum's or gauge's value; a histogram's sum."""
    count: int
    """A histogram's count (1 for a sum or gauge)."""


class OtlpMetrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self) -> None:
        self._points: dict[tuple[str, str, tuple[tuple[str, Any], ...]], Point] = {}
        self._lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:
        for resource in request.resource_metrics:
            service = next((a.value.string_value for a in resource.resource.attributes if a.key == "service.name"), "")
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in _points(service, metric):
                        key = (service, point.name, tuple(sorted(point.attributes.items())))
                        with self._lock:
                            self._points[key] = point
        return metrics_service_pb2.ExportMetricsServiceResponse()

    def points(self, name: str, service: str | None = None) -> list[Point]:
        with self._lock:
            return [p for p in self._points.values() if p.name == name and service in (None, p.service)]


def _points(service: str, metric: Any) -> list[Point]:
    kind = metric.WhichOneof("data")
    data = getattr(metric, kind)
    found = []
    for dp in data.data_points:
        attrs = {a.key: _value(a.value) for a in dp.attributes}
        if kind in ("histogram", "exponential_histogram"):
            found.append(Point(service, metric.name, attrs, dp.sum, dp.count))
        else:
            value = dp.as_double if dp.WhichOneof("value") == "as_double" else dp.as_int
            found.append(Point(service, metric.name, attrs, float(value), 1))
    return found


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None
