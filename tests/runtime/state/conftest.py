"""Fixtures: each state adapter behind one ``store`` fixture, and real Redis + daprd for the Dapr one.

The Dapr adapter is tested against the real thing, never a fake: a ``redis-server`` on a
spare port and one ``daprd`` with a ``state.redis`` component written here, started once per
session, and every test works under a key prefix of its own. Missing binaries fail the Dapr tests with
a pointer to ``make setup``; they are never skipped, so a green run means both adapters ran.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from runtime.state import StateStore
from runtime.state.dapr import DaprStateStore
from runtime.state.sqlite import SqliteStateStore
from tests.support.dapr import require_binaries, start_redis, start_sidecar, wait_ready

STORE_NAME = "statestore"
APP_ID = "state-contract"

_COMPONENT = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: {name}
spec:
  type: state.redis
  version: v1
  metadata:
    - name: redisHost
      value: "127.0.0.1:{redis_port}"
"""


@dataclass(frozen=True)
class StateSidecar:
    grpc_port: int
    http_port: int
    redis_port: int


@pytest.fixture(scope="session")
def state_sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StateSidecar]:
    """Redis and one daprd with a ``state.redis`` component named ``statestore``, for the session."""
    require_binaries("the Dapr state-store tests")
    base = tmp_path_factory.mktemp("dapr-state")
    cluster = start_redis(base, "the Dapr state-store tests")
    try:
        resources = base / "resources"
        resources.mkdir()
        (resources / "statestore.yaml").write_text(_COMPONENT.format(name=STORE_NAME, redis_port=cluster.redis_port))
        sidecar = start_sidecar(cluster, base, APP_ID, resources)
        wait_ready(sidecar)
        yield StateSidecar(grpc_port=sidecar.grpc_port, http_port=sidecar.http_port, redis_port=cluster.redis_port)
    finally:
        cluster.stop()


@pytest.fixture
def key_prefix() -> str:
    """A namespace of its own per test: on Redis, records outlive the test."""
    return f"contract/{uuid.uuid4().hex[:12]}/"


@pytest_asyncio.fixture(params=["sqlite", "dapr"], loop_scope="function")
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    s: SqliteStateStore | DaprStateStore
    if request.param == "sqlite":
        s = SqliteStateStore(tmp_path / "state.db")
    else:
        sidecar: StateSidecar = request.getfixturevalue("state_sidecar")
        s = DaprStateStore(STORE_NAME, sidecar.grpc_port)
    try:
        yield s
    finally:
        await s.close()
