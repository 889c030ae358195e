"""The command line every test agent (``tests/support/*_agent.py``) shares: ports and data dir in, served.

Each agent passes its own ``definition`` (and, where it needs more, adds options to the parser); the
settings are the test's: the given data dir and a short shutdown grace.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import uvloop

from runtime.agent_server import AgentDefinition, AgentServer, run_until_signalled
from runtime.config import Settings

Definition = Callable[[Settings, int, int, argparse.Namespace], AgentDefinition]


def parser(description: str | None) -> argparse.ArgumentParser:
    """The options every test agent takes; an agent may add its own before :func:`serve`."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--grpc-port", type=int, required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    return p


def serve(args: argparse.Namespace, definition: Definition) -> None:
    """Serve ``definition(settings, grpc_port, http_port, args)`` until SIGTERM or SIGINT."""
    settings = Settings(data_dir=args.data_dir, shutdown_grace_seconds=0.5).resolved()

    async def run() -> None:  # the gRPC server binds to the loop it is created in
        defn = definition(settings, args.grpc_port, args.http_port, args)
        await run_until_signalled(AgentServer(defn, settings))

    uvloop.run(run())
