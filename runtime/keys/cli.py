"""``switchboard keys create|list|get|revoke``: virtual API keys through the orchestrator's ``KeyService``.

The orchestrator is reached at ``SWITCHBOARD_ADVERTISE_HOST``/``HOST`` and
``SWITCHBOARD_ORCHESTRATOR_GRPC_PORT``; ``SWITCHBOARD_ADMIN_API_KEY``, when set, is sent as the
Bearer token the service requires. Output is JSON (one object, or one per line for ``list``), so
scripts can read it; ``create`` prints the secret once, in ``key``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from runtime.config import Settings
from runtime.errors import InvalidUsageRequestError, SwitchboardError
from runtime.keys.client import KeyClient
from switchboard.v1 import keys_pb2

MICROS = 1_000_000


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="create, list and revoke virtual API keys (docs/operations.md)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; its secret is printed once")
    create.add_argument("--name", required=True, help="who uses the key (the principal)")
    create.add_argument("--tenant", default="", help="the key's tenant (default: default)")
    create.add_argument("--model", action="append", default=[], help="a model the key may use (repeat; none: all)")
    create.add_argument("--rpm", type=int, default=0, help="requests per minute (0: no limit)")
    create.add_argument("--tpm", type=int, default=0, help="tokens per minute (0: no limit)")
    create.add_argument("--max-concurrency", type=int, default=0, help="requests at once (0: no limit)")
    create.add_argument("--expires-in", type=float, default=0.0, help="seconds until the key expires (0: never)")
    create.add_argument("--budget-usd-day", type=float, default=0.0, help="money per UTC day (0: no budget)")
    create.add_argument("--budget-usd-month", type=float, default=0.0, help="money per UTC month (0: no budget)")
    create.add_argument("--max-request-tokens", type=int, default=0, help="tokens per request (0: no ceiling)")
    budget = keys_sub.add_parser("budget", help="show a tenant's budget and spend, or set it with the flags")
    budget.add_argument("tenant")
    budget.add_argument("--usd-day", type=float, default=None, help="money per UTC day (0: none)")
    budget.add_argument("--usd-month", type=float, default=None, help="money per UTC month (0: none)")
    budget.add_argument("--max-request-tokens", type=int, default=None, help="tokens per request (0: none)")
    listing = keys_sub.add_parser("list", help="list keys (without secrets)")
    listing.add_argument("--tenant", default="", help="only this tenant's keys")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    get = keys_sub.add_parser("get", help="show one key")
    get.add_argument("id")
    revoke = keys_sub.add_parser("revoke", help="revoke a key: requests with it fail from then on")
    revoke.add_argument("id")


def keys_main(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return asyncio.run(_run(args, settings))
    except SwitchboardError as exc:
        print(f"switchboard: {exc.code}: {exc.message}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    client = KeyClient(f"{settings.advertise_host}:{settings.orchestrator_grpc_port}")
    metadata = [("authorization", f"Bearer {settings.admin_api_key}")] if settings.admin_api_key else []
    try:
        if args.keys_command == "create":
            for flag in ("rpm", "tpm", "max_concurrency", "budget_usd_day", "budget_usd_month", "max_request_tokens"):
                if getattr(args, flag) < 0:
                    print(f"switchboard: --{flag.replace('_', '-')} must be 0 or more", file=sys.stderr)
                    return 2
            request = keys_pb2.CreateKeyRequest(
                name=args.name,
                tenant=args.tenant,
                models=args.model,
                rpm=args.rpm,
                tpm=args.tpm,
                max_concurrency=args.max_concurrency,
                day_budget_micros=round(args.budget_usd_day * MICROS),
                month_budget_micros=round(args.budget_usd_month * MICROS),
                max_request_tokens=args.max_request_tokens,
            )
            if args.expires_in > 0:
                request.expire_time.FromNanoseconds(int((time.time() + args.expires_in) * 1e9))
            reply = await client.create(request, metadata)
            _print({**_view(reply.key), "key": reply.secret})
        elif args.keys_command == "list":
            page = await client.list(keys_pb2.ListKeysRequest(tenant=args.tenant, include_revoked=args.all), metadata)
            for key in page.keys:
                _print(_view(key))
        elif args.keys_command == "budget":
            await _budget(client, args, metadata)
        elif args.keys_command == "get":
            _print(_view(await client.get(args.id, metadata)))
        else:
            _print(_view(await client.revoke(args.id, metadata)))
    finally:
        await client.close()
    return 0


async def _budget(client: KeyClient, args: argparse.Namespace, metadata: list[tuple[str, str]]) -> None:
    from gateway.keys import budget_view  # one JSON shape for REST and the CLI

    given = [v for v in (args.usd_day, args.usd_month, args.max_request_tokens) if v is not None]
    if any(v < 0 for v in given):
        raise InvalidUsageRequestError("budgets must be 0 (none) or more")
    if given:
        budget = (await client.get_tenant_budget(args.tenant, metadata)).budget
        if args.usd_day is not None:
            budget.day_budget_micros = round(args.usd_day * MICROS)
        if args.usd_month is not None:
            budget.month_budget_micros = round(args.usd_month * MICROS)
        if args.max_request_tokens is not None:
            budget.max_request_tokens = args.max_request_tokens
        await client.set_tenant_budget(budget, metadata)
    reply = await client.get_tenant_budget(args.tenant, metadata)
    _print(budget_view(reply.budget, reply.spend))


def _view(key: keys_pb2.ApiKey) -> dict[str, Any]:
    from gateway.keys import view  # one JSON shape for REST and the CLI

    return view(key)


def _print(body: dict[str, Any]) -> None:
    print(json.dumps(body, sort_keys=True), flush=True)
