"""Where metrics go: the banner's line, and when OTLP export is on (the OTEL_* variables)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from runtime import metrics
from runtime.config import Settings
from runtime.supervisor import banner


def test_the_banner_says_where_metrics_are_or_that_they_are_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_METRICS_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings().resolved()
    line = next(line for line in banner(settings).splitlines() if line.strip().startswith("metrics"))
    assert "http://127.0.0.1:8080/metrics" in line and "http://127.0.0.1:8081/metrics" in line
    assert "OTLP" not in line
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    assert "also over OTLP" in banner(settings)
    assert "metrics        off (SWITCHBOARD_METRICS=false)" in banner(replace(settings, metrics=False))
    assert not Settings.from_env({"SWITCHBOARD_METRICS": "false"}).metrics


@pytest.mark.parametrize(
    ("env", "exported"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4317"}, False),  # traces only
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_METRICS_EXPORTER": "none"}, False),
    ],
)
def test_otlp_export_follows_the_standard_variables(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], exported: bool
) -> None:
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_METRICS_EXPORTER",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert metrics.otlp_configured() is exported
