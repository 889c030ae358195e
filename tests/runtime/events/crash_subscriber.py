"""A subscriber process for the crash tests: ``python -m tests.runtime.events.crash_subscriber``.

It consumes ``--topic`` in a consumer group through one event-bus adapter and keeps a record
of what it did in two append-only files, every line flushed and fsynced on its own, so that
whatever it wrote survives a ``kill -9``:

- ``--received``: ``subscribed`` once the subscription is open, then ``<event id> <attempt>``
  for each delivery, on disk *before* the delivery is acked (the consumer's durable side
  effect: at-least-once means an event is processed before it is acknowledged, so an event
  missing from this file after a crash was lost by the bus, not by the consumer);
- ``--acked``: ``<event id>`` once ``Delivery.ack`` has returned.

Each file has its own writer thread, and ``acked`` lines are not waited for, so their fsync does
not hold up the next delivery (a Dapr sidecar sends the next event only once the previous one is
answered).

``--ack-delay`` makes it slow; with ``--stop-acking-after N`` it acks N deliveries, records the
next one and then holds it without answering until it is killed (a handler stuck mid-batch, at a
point the test can see). ``--ack-concurrency N`` lets up to N acks run while the next deliveries
are taken (default 1: each ack returns before the next delivery is asked for). SIGTERM leaves the
subscription and closes the bus cleanly, exit 0.

Never collected by pytest (the name has no ``test_`` prefix).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from runtime.events import Delivery, EventBus
from runtime.events.dapr import DaprEventBus
from runtime.events.embedded import EmbeddedEventBus


class LineLog:
    """An append-only file of lines, written in call order by one thread, each line fsynced."""

    def __init__(self, path: Path) -> None:
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"record-{path.name}")
        self._failure: BaseException | None = None

    async def write(self, line: str) -> None:
        """Return once ``line`` is on disk."""
        await asyncio.get_running_loop().run_in_executor(self._writer, self._write_sync, line)

    def write_soon(self, line: str) -> None:
        """Queue ``line`` without waiting for it; a failure is raised by :meth:`close`."""
        self._writer.submit(self._write_sync, line)

    def _write_sync(self, line: str) -> None:
        try:
            self._file.write(line + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except BaseException as exc:
            self._failure = self._failure or exc
            raise

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._file.close()
        if self._failure is not None:
            raise self._failure


def make_bus(args: argparse.Namespace) -> EventBus:
    if args.bus == "embedded":
        if args.db is None:
            raise SystemExit("--db is required with --bus embedded")
        return EmbeddedEventBus(Path(args.db))
    if args.grpc_port is None:
        raise SystemExit("--grpc-port is required with --bus dapr")
    return DaprEventBus(args.pubsub, args.grpc_port)


async def consume(args: argparse.Namespace, received: LineLog, acked: LineLog) -> None:
    bus = make_bus(args)
    acking: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []
    slots = asyncio.Semaphore(max(1, args.ack_concurrency))
    answered = 0

    def settled(task: asyncio.Task[None]) -> None:
        acking.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            failures.append(exc)

    async def ack(delivery: Delivery) -> None:
        try:
            if args.ack_delay > 0:
                await asyncio.sleep(args.ack_delay)
            await delivery.ack()
            # Not waited for: the next delivery need not wait for this fsync.
            acked.write_soon(delivery.envelope.id)
        finally:
            slots.release()

    try:
        async with bus.subscribe(args.topic, args.group) as subscription:
            await received.write("subscribed")
            async for delivery in subscription:
                if failures:
                    raise failures[0]  # an ack failed: exit non-zero, with the traceback in the log
                await received.write(f"{delivery.envelope.id} {delivery.attempt}")
                if args.stop_acking_after is not None and answered >= args.stop_acking_after:
                    # Holding the delivery unanswered until SIGKILL.
                    await asyncio.Event().wait()
                answered += 1
                await slots.acquire()
                task = asyncio.create_task(ack(delivery))
                acking.add(task)
                task.add_done_callback(settled)
                if args.ack_concurrency <= 1:
                    await task
    finally:
        for task in acking:
            task.cancel()
        await asyncio.gather(*acking, return_exceptions=True)
        await bus.close()


async def main(args: argparse.Namespace) -> None:
    received, acked = LineLog(Path(args.received)), LineLog(Path(args.acked))
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await consume(args, received, acked)
    finally:
        try:
            received.close()
        finally:
            acked.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A subscriber process for the event-bus crash tests.")
    parser.add_argument("--bus", choices=("embedded", "dapr"), required=True)
    parser.add_argument("--db", help="the embedded bus's SQLite file")
    parser.add_argument("--grpc-port", type=int, help="the Dapr sidecar's gRPC port")
    parser.add_argument("--pubsub", default="pubsub", help="the Dapr pub/sub component")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--received", required=True, help="file of the deliveries, each recorded before its ack")
    parser.add_argument("--acked", required=True, help="file of the event ids whose ack returned")
    parser.add_argument("--ack-delay", type=float, default=0.0, help="seconds between receiving and acking")
    parser.add_argument("--ack-concurrency", type=int, default=1, help="acks allowed to run at once")
    parser.add_argument("--stop-acking-after", type=int, help="hold the delivery after this many acks, unanswered")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
