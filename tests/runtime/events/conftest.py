"""Fixtures: each event-bus adapter behind one harness, and real Redis + daprd for the Dapr one.

The Dapr adapter is tested against the real thing, never a fake: a ``redis-server`` on a
spare port and two ``daprd`` sidecars (two app ids, hence two Redis Streams consumer groups)
with a ``pubsub.redis`` component and a resiliency policy written here. Missing binaries fail
the Dapr tests with a pointer to ``make setup``; they are never skipped, so a green run means
both adapters were exercised.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from runtime.events import EventBus
from runtime.events.dapr import DaprEventBus
from runtime.events.embedded import EmbeddedEventBus
from tests.support.dapr import Sidecar, require_binaries, start_redis, start_sidecar, wait_ready

PUBSUB = "pubsub"
APP_IDS = ("events-contract", "events-contract-2")

# Component settings chosen for the tests (the committed dapr/components/pubsub.yaml is tuned
# for production):
# - concurrency 1: pubsub.redis otherwise hands events to 10 workers at once, and per-key order
#   is lost; with one worker daprd sends the next event only after the previous one is answered;
# - processingTimeout 2s / redeliverInterval 1s: an event left unanswered (consumer crashed)
#   comes back within seconds instead of the production 15 s + 15 s. pubsub.redis
#   (components-contrib 1.18.3) takes redeliverInterval only as a bare number of milliseconds:
#   a duration string such as "1s" is silently ignored and its default, 15 s, applies
#   (processingTimeout accepts both forms).
_COMPONENT = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: {name}
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

# A nack is a RETRY answer, which daprd retries itself under the component's inbound policy;
# without one, pubsub.redis acknowledges the event and it is lost. 12 x 250 ms outlasts the
# 2 s processingTimeout, so an event nacked more often than that is left pending in Redis (and
# redelivered) rather than acknowledged. The same policy decides how long a sidecar keeps
# retrying a delivery to a stream that has gone away (a consumer crash): about 3 s here.
_RESILIENCY = """\
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: events-contract
spec:
  policies:
    retries:
      redeliver:
        policy: constant
        duration: 250ms
        maxRetries: 12
  targets:
    components:
      {name}:
        inbound:
          retry: redeliver
"""


@dataclass
class DaprSidecars:
    redis_port: int
    sidecars: list[Sidecar]


@pytest.fixture(scope="session")
def dapr_sidecars(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaprSidecars]:
    """Redis and two daprd sidecars sharing it, for the whole session."""
    what = "the Dapr event-bus tests"
    require_binaries(what)
    base = tmp_path_factory.mktemp("dapr-events")
    cluster = start_redis(base, what)
    try:
        resources = base / "resources"
        resources.mkdir()
        (resources / "pubsub.yaml").write_text(_COMPONENT.format(name=PUBSUB, redis_port=cluster.redis_port))
        (resources / "resiliency.yaml").write_text(_RESILIENCY.format(name=PUBSUB))
        for app_id in APP_IDS:
            start_sidecar(cluster, base, app_id, resources)
        for sidecar in cluster.sidecars:
            wait_ready(sidecar, timeout=20.0)
        yield DaprSidecars(redis_port=cluster.redis_port, sidecars=cluster.sidecars)
    finally:
        cluster.stop()


@dataclass
class BusHarness:
    """One adapter as the contract tests see it: buses per consumer group, a fresh topic."""

    kind: str
    topic: str
    groups: tuple[str, str]
    db_path: Path | None = None
    sidecars: DaprSidecars | None = None
    buses: list[EventBus] = field(default_factory=list)

    def bus(self, group: int = 0) -> EventBus:
        """A new bus instance whose subscriptions belong to ``self.groups[group]``."""
        new: EventBus
        if self.kind == "embedded":
            assert self.db_path is not None
            new = EmbeddedEventBus(self.db_path)
        else:
            assert self.sidecars is not None
            new = DaprEventBus(PUBSUB, self.sidecars.sidecars[group].grpc_port)
        self.buses.append(new)
        return new

    async def aclose(self) -> None:
        for bus in self.buses:
            await bus.close()


@pytest_asyncio.fixture(params=["embedded", "dapr"], loop_scope="function")
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BusHarness]:
    # A topic of its own per test: on Redis, streams and consumer groups outlive the test.
    topic = f"contract-{uuid.uuid4().hex[:12]}"
    if request.param == "embedded":
        h = BusHarness(kind="embedded", topic=topic, groups=("group-a", "group-b"), db_path=tmp_path / "events.db")
    else:
        sidecars: DaprSidecars = request.getfixturevalue("dapr_sidecars")
        # The Dapr consumer group is the sidecar's app id; the names are passed for the record.
        h = BusHarness(kind="dapr", topic=topic, groups=APP_IDS, sidecars=sidecars)
    try:
        yield h
    finally:
        await h.aclose()
