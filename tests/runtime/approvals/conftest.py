"""One ``backend`` fixture: a state store and an event bus, embedded or real Dapr + Redis.

The Dapr side is one ``redis-server`` and one ``daprd`` with ``state.redis`` and
``pubsub.redis`` components written here, started once per session; each test works in a
namespace (key prefix) of its own because Redis outlives the test. Missing binaries fail the
run with a pointer to ``make setup``; nothing is skipped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from runtime.approvals.store import ApprovalPolicy, ApprovalStore
from runtime.events import EventBus
from runtime.events.dapr import DaprEventBus
from runtime.events.embedded import EmbeddedEventBus
from runtime.state import StateStore
from runtime.state.dapr import DaprStateStore
from runtime.state.sqlite import SqliteStateStore
from tests.support.dapr import Sidecar, require_binaries, start_redis, start_sidecar, wait_ready

_COMPONENTS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.redis
  version: v1
  metadata:
    - name: redisHost
      value: "127.0.0.1:{redis_port}"
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.redis
  version: v1
  metadata:
    - name: redisHost
      value: "127.0.0.1:{redis_port}"
    - name: processingTimeout
      value: "2s"
    - name: redeliverInterval
      value: "1000"
    - name: concurrency
      value: "1"
"""


@pytest.fixture(scope="session")
def approvals_sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    what = "the Dapr approval-store tests"
    require_binaries(what)
    base = tmp_path_factory.mktemp("dapr-approvals")
    cluster = start_redis(base, what)
    try:
        resources = base / "resources"
        resources.mkdir()
        (resources / "components.yaml").write_text(_COMPONENTS.format(redis_port=cluster.redis_port))
        sidecar = start_sidecar(cluster, base, "approvals-contract", resources)
        wait_ready(sidecar)
        yield sidecar
    finally:
        cluster.stop()


@dataclass
class Backend:
    kind: str
    state: StateStore
    events: EventBus
    namespace: str
    stores: list[ApprovalStore] = field(default_factory=list)

    def store(self, policy: ApprovalPolicy | None = None, clock: Callable[[], float] | None = None) -> ApprovalStore:
        """An approval store on this backend's namespace (several share one namespace)."""
        s = ApprovalStore(self.state, self.events, namespace=self.namespace, policy=policy, clock=clock or time.time)
        self.stores.append(s)
        return s


@pytest_asyncio.fixture(params=["embedded", "dapr"], loop_scope="function")
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    namespace = f"approvals-{uuid.uuid4().hex[:12]}"
    state: StateStore
    events: EventBus
    if request.param == "embedded":
        state = SqliteStateStore(tmp_path / "state.db")
        events = EmbeddedEventBus(tmp_path / "events.db")
    else:
        sidecar: Sidecar = request.getfixturevalue("approvals_sidecar")
        state = DaprStateStore("statestore", sidecar.grpc_port)
        events = DaprEventBus("pubsub", sidecar.grpc_port)
    try:
        yield Backend(request.param, state, events, namespace)
    finally:
        await events.close()
        await state.close()
