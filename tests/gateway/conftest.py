"""The whole platform with the knowledge agent too, so every route of the gateway has a real agent behind it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.platform import Platform, free_port


@pytest.fixture(scope="session")
def full_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    workdir = tmp_path_factory.mktemp("full-platform")
    grpc_port, http_port = free_port(), free_port()
    p = Platform(
        workdir,
        extra_env={
            "SWITCHBOARD_KNOWLEDGE_GRPC_PORT": str(grpc_port),
            "SWITCHBOARD_KNOWLEDGE_HTTP_PORT": str(http_port),
        },
    )
    p.ports["knowledge_grpc"], p.ports["knowledge_http"] = grpc_port, http_port
    try:
        p.start_llm()
        for name in ("reasoning", "planner", "knowledge", "orchestrator", "gateway"):
            p.start_service(name)
        yield p
    finally:
        p.stop()
