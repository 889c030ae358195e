"""The ``switchboard`` command.

``switchboard up``               run the whole platform on this machine
``switchboard serve <service>``  run one service, as a container would
"""

from __future__ import annotations

import argparse
import gc
import sys

from runtime.config import Settings
from runtime.errors import ConfigError

SERVICES = ("gateway", "orchestrator", "reasoning", "llm")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="switchboard", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start every service and print their addresses")
    serve = sub.add_parser("serve", help="run one service in the foreground")
    serve.add_argument("service", choices=SERVICES)
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2

    if args.command == "up":
        from runtime.supervisor import up

        return up(settings)
    return serve_one(args.service, settings)


def serve_one(service: str, settings: Settings) -> int:
    _import_service(service)
    settle_heap()
    if service == "gateway":
        from gateway.main import main as run_gateway

        run_gateway(settings)
    elif service == "llm":
        from runtime.llm.local_server import main as run_llm

        run_llm(settings)
    else:
        from runtime.agent_server import serve_agent

        if service == "orchestrator":
            from services.orchestrator.main import definition
        else:
            from services.reasoning.main import definition
        serve_agent(definition, service, settings)
    return 0


def settle_heap() -> None:
    """Move everything loaded at start-up out of the garbage collector's way.

    A service imports ~100 MB of modules; without this each full collection walks all
    of it again mid-request. Frozen objects are never scanned, so collections only see
    what requests allocate.
    """
    gc.collect()
    gc.freeze()


def _import_service(service: str) -> None:
    import gateway.app  # noqa: F401
    import runtime.agent_server  # noqa: F401

    if service in ("orchestrator", "reasoning"):
        import services.orchestrator.main
        import services.reasoning.main  # noqa: F401


if __name__ == "__main__":
    sys.exit(main())
