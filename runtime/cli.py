"""The ``switchboard`` command.

``switchboard up [--dapr] [--phoenix]``   run the whole platform on this machine (--phoenix: and Phoenix for traces)
``switchboard serve <service> [--dapr]``  run one service, as a container would
``switchboard mcp``                       serve Switchboard's MCP server over stdio (for desktop hosts)
``switchboard keys create|list|get|revoke``  virtual API keys (docs/operations.md)

With ``--dapr`` state and events go through Dapr: ``serve`` starts a ``daprd`` sidecar
beside its service, and ``up`` starts Redis and every service that way.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
from pathlib import Path

from runtime.config import Settings
from runtime.errors import ConfigError

SERVICES = ("gateway", "orchestrator", "reasoning", "planner", "knowledge", "llm")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="switchboard", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up_cmd = sub.add_parser("up", help="start every service and print their addresses")
    up_cmd.add_argument("--dapr", action="store_true", help="start Redis and run every service beside a daprd")
    up_cmd.add_argument(
        "--phoenix",
        action="store_true",
        help="also start a local Phoenix (installed by `make setup` in .tools/phoenix) and send every service's "
        "traces to it; its URL is in the banner (docs/operations.md, Traces in Phoenix)",
    )
    serve = sub.add_parser("serve", help="run one service in the foreground")
    serve.add_argument("service", choices=SERVICES)
    serve.add_argument("--dapr", action="store_true", help="run beside a daprd sidecar of its own")
    serve.add_argument("--dapr-resources", type=Path, help="component directory (default: dapr/components)")
    serve.add_argument("--dapr-config", type=Path, help="Dapr Configuration file (default: dapr/config.yaml)")
    sub.add_parser(
        "mcp",
        help="serve Switchboard's MCP server over stdin/stdout, for a desktop MCP host (docs/tools.md)",
        description="Serve the MCP tools and resources of a running platform over stdio; it reaches the "
        "platform the way the gateway does (SWITCHBOARD_* settings). SWITCHBOARD_MCP_API_KEY is the key it "
        "acts with on approvals.",
    )
    from runtime.keys.cli import add_commands as add_key_commands
    from runtime.knowledge.cli import add_commands

    add_commands(sub)
    add_key_commands(sub)
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2

    if args.command in ("ingest", "eval"):
        from runtime.knowledge.cli import eval_main, ingest_main

        return ingest_main(args, settings) if args.command == "ingest" else eval_main(args, settings)
    if args.command == "keys":
        from runtime.keys.cli import keys_main

        return keys_main(args, settings)
    if args.command == "mcp":
        return serve_mcp(settings)
    if args.command == "up":
        from runtime.supervisor import up

        return up(settings, dapr=args.dapr, with_phoenix=args.phoenix)
    if args.dapr:
        return serve_with_sidecar(args.service, settings, args.dapr_resources, args.dapr_config)
    return serve_one(args.service, settings)


def serve_with_sidecar(service: str, settings: Settings, resources: Path | None, config: Path | None) -> int:
    """Start a ``daprd`` for ``service``, then serve it with state and events through it."""
    from runtime import sidecar

    app_port = {
        "orchestrator": settings.orchestrator_grpc_port,
        "reasoning": settings.reasoning_grpc_port,
        "planner": settings.planner_grpc_port,
        "knowledge": settings.knowledge_grpc_port,
    }
    try:
        dapr = sidecar.start_daprd(
            service,
            [resources or sidecar.DAPR_DIR / "components"],
            settings.data_dir / "dapr" / f"{service}.log",
            config=config or sidecar.DAPR_DIR / "config.yaml",
            app_port=app_port.get(service, 0),
            grpc_port=settings.dapr_grpc_port,
            redis_host=f"127.0.0.1:{settings.redis_port}",
        )
    except sidecar.SidecarError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    try:
        sidecar.wait_ready(dapr)
        return serve_one(service, dataclasses.replace(settings, dapr_grpc_port=dapr.grpc_port))
    except sidecar.SidecarError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    finally:
        sidecar.stop(dapr.proc)


def serve_mcp(settings: Settings) -> int:
    """``switchboard mcp``: stdout carries the protocol, so logs go to stderr only."""
    import asyncio

    from gateway.mcp import serve_stdio
    from runtime import telemetry
    from runtime.logs import configure_logging

    configure_logging("mcp", settings.log_level, settings.log_format)
    telemetry.configure_tracing("mcp", settings.tracing, content=settings.trace_content)
    try:
        asyncio.run(serve_stdio(settings))
    except KeyboardInterrupt:
        pass
    finally:
        telemetry.shutdown_tracing()
    return 0


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
        elif service == "planner":
            from services.planner.main import definition
        elif service == "knowledge":
            from services.knowledge.main import definition
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

    if service == "knowledge":
        import services.knowledge.main
    if service in ("orchestrator", "reasoning", "planner"):
        import services.orchestrator.main
        import services.planner.main
        import services.reasoning.main  # noqa: F401


if __name__ == "__main__":
    sys.exit(main())
