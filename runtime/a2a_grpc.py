"""The SDK's A2A gRPC servicer, held to the A2A v1.0 gRPC binding where it drifts.

``a2a-sdk`` 1.3.0's ``GrpcHandler`` differs from the specification (§5.4) in two
ways that clients can observe, both checked by ``tests/services``:

- "push notifications not supported", "unsupported operation" and "version not
  supported" come back as FAILED_PRECONDITION; the binding says UNIMPLEMENTED;
- the ``a2a-version`` request metadata is not checked over gRPC, while the SDK's
  HTTP+JSON binding rejects anything but 1.x (a missing header means 0.3).

This subclass fixes both. It also maps our own errors, which the SDK would send
as UNKNOWN "Unexpected <class ...>": a state store that is down is UNAVAILABLE (the
caller may retry), a write that lost a concurrency check is ABORTED, anything else
of ours is INTERNAL with its message; the error's code travels in the ``switchboard-error-code``
trailer, so our clients raise the same type. Otherwise the SDK still builds the status, its
``ErrorInfo`` and field violations.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from typing import TypeVar

import grpc
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import GrpcHandler
from a2a.utils.constants import PROTOCOL_VERSION_0_3, VERSION_HEADER
from a2a.utils.errors import (
    A2A_ERROR_REASONS,
    A2AError,
    PushNotificationNotSupportedError,
    UnsupportedOperationError,
    VersionNotSupportedError,
)
from a2a.utils.grpc_status import status_to_grpc
from google.protobuf import any_pb2, message
from google.rpc import error_details_pb2, status_pb2

from runtime import grpc_errors
from runtime.errors import StateConflictError, StateUnavailableError, SwitchboardError

T = TypeVar("T")

SUPPORTED_MAJOR = 1
DOMAIN = "a2a-protocol.org"
_UNIMPLEMENTED = (PushNotificationNotSupportedError, UnsupportedOperationError, VersionNotSupportedError)


class SpecGrpcHandler(GrpcHandler):
    def _build_call_context(self, context: grpc.aio.ServicerContext, request: message.Message) -> ServerCallContext:  # type: ignore[type-arg]
        version = _metadata(context, VERSION_HEADER.lower()) or PROTOCOL_VERSION_0_3
        if _major(version) != SUPPORTED_MAJOR:
            raise VersionNotSupportedError(
                message=f"A2A version {version!r} is not supported; this agent speaks 1.0. "
                f"Send the request metadata '{VERSION_HEADER.lower()}: 1.0'."
            )
        return super()._build_call_context(context, request)

    async def _handle_unary(
        self,
        request: message.Message,
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
        handler_func: Callable[[ServerCallContext], Awaitable[T]],
        default_response: T,
    ) -> T:
        try:
            return await super()._handle_unary(request, context, handler_func, default_response)
        except SwitchboardError as exc:
            await grpc_errors.abort(context, _status_of(exc), exc)

    async def _handle_stream(
        self,
        request: message.Message,
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
        handler_func: Callable[[ServerCallContext], AsyncIterable[T]],
    ) -> AsyncIterable[T]:
        try:
            async for item in super()._handle_stream(request, context, handler_func):
                yield item
        except SwitchboardError as exc:
            await grpc_errors.abort(context, _status_of(exc), exc)

    async def abort_context(self, error: A2AError, context: grpc.aio.ServicerContext) -> None:  # type: ignore[type-arg]
        if not isinstance(error, _UNIMPLEMENTED):
            await super().abort_context(error, context)
            return
        # Same rich status the SDK sends (google.rpc.Status + ErrorInfo), with the code the spec names;
        # the code inside grpc-status-details-bin must match the call's status or clients reject it.
        info = any_pb2.Any()
        info.Pack(
            error_details_pb2.ErrorInfo(reason=A2A_ERROR_REASONS.get(type(error), "UNKNOWN_ERROR"), domain=DOMAIN)
        )
        status = status_pb2.Status(code=grpc.StatusCode.UNIMPLEMENTED.value[0], message=error.message, details=[info])
        rich = status_to_grpc(status)
        context.set_trailing_metadata(tuple(rich.trailing_metadata))
        await context.abort(rich.code, rich.details)


def _status_of(error: SwitchboardError) -> grpc.StatusCode:
    if isinstance(error, StateUnavailableError):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(error, StateConflictError):
        return grpc.StatusCode.ABORTED
    return grpc.StatusCode.INTERNAL


def _metadata(context: grpc.aio.ServicerContext, key: str) -> str:  # type: ignore[type-arg]
    for k, v in context.invocation_metadata() or ():
        if k.lower() == key:
            return v if isinstance(v, str) else v.decode()
    return ""


def _major(version: str) -> int | None:
    try:
        return int(version.strip().split(".", 1)[0])
    except ValueError:
        return None
