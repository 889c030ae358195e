"""Fixtures that start real Switchboard processes on loopback sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.support.otlp_collector import OtlpCollector
from tests.support.platform import Platform


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The scripted LLM alone, no agents: for a module's tests of an adapter or agent against it."""
    p = Platform(tmp_path_factory.mktemp("scripted-llm"))
    try:
        p.start_llm()
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="session")
def collector() -> Iterator[OtlpCollector]:
    c = OtlpCollector()
    c.start()
    yield c
    c.stop()


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory, collector: OtlpCollector) -> Iterator[Platform]:
    """The whole platform (scripted LLM, reasoning, orchestrator, gateway), shared by read-only tests."""
    workdir: Path = tmp_path_factory.mktemp("platform")
    p = Platform(
        workdir,
        extra_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        },
        llm_delay_ms=2,
    )
    try:
        p.start()
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="session")
def client(platform: Platform) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{platform.gateway_url}/v1", api_key="unused", max_retries=0, timeout=30)


@pytest.fixture(scope="session")
def async_client(platform: Platform) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{platform.gateway_url}/v1", api_key="unused", max_retries=0, timeout=60)
