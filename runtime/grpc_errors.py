"""Typed errors across our own gRPC services, both ways.

A service aborts a call with the gRPC status it chose and the error's ``code`` in the
``switchboard-error-code`` trailer (:func:`abort`); a client turns the failed call back into
the typed error the service raised (:func:`typed_error`), so every edge maps typed errors once,
from the same types, whichever process raised them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import grpc

from runtime.errors import AgentCallError, AgentUnavailableError, SwitchboardError

ERROR_CODE_KEY = "switchboard-error-code"
"""gRPC trailing metadata carrying a typed error's ``code``."""

if TYPE_CHECKING:
    ServicerContext = grpc.aio.ServicerContext[Any, Any]
else:  # the class is generic only to type checkers
    ServicerContext = grpc.aio.ServicerContext

StatusTable = Sequence[tuple[type[SwitchboardError], grpc.StatusCode]]
"""A service's typed errors and the status each ends a call with; the first that matches wins."""


def known(*kinds: type[SwitchboardError]) -> dict[str, type[SwitchboardError]]:
    """The error types a client expects from a service, by code."""
    return {kind.code: kind for kind in kinds}


def status_in(table: StatusTable, exc: SwitchboardError) -> grpc.StatusCode:
    """The status ``table`` gives ``exc``; INTERNAL for an error the service does not expect."""
    return next((code for kind, code in table if isinstance(exc, kind)), grpc.StatusCode.INTERNAL)


async def abort_with(context: Any, table: StatusTable, exc: SwitchboardError) -> NoReturn:
    """:func:`abort` with the status ``table`` gives ``exc``."""
    await abort(context, status_in(table, exc), exc)


async def abort(context: Any, status: grpc.StatusCode, exc: SwitchboardError) -> NoReturn:
    """End the call with ``status``, ``exc``'s message, and its code in the trailer."""
    await context.abort(status, exc.message, trailing_metadata=((ERROR_CODE_KEY, exc.code),))
    raise AssertionError("unreachable: abort raises")


def error_code(exc: grpc.aio.AioRpcError) -> str:
    """The ``switchboard-error-code`` trailer of a failed call; empty when the service sent none."""
    trailers: Iterable[Any] = exc.trailing_metadata() or ()
    return next((str(value) for key, value in trailers if key == ERROR_CODE_KEY), "")


def typed_error(
    exc: grpc.aio.AioRpcError, service: str, kinds: Mapping[str, type[SwitchboardError]]
) -> SwitchboardError:
    """The typed error behind a failed call to ``service``; transport failures are ``AgentUnavailableError``."""
    kind = kinds.get(error_code(exc))
    if kind is not None:
        return kind(exc.details() or kind.code)
    if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return AgentUnavailableError(f"the {service} is unreachable: {exc.details()}")
    return AgentCallError(f"the {service} refused the call: {exc.code().name}: {exc.details()}")
