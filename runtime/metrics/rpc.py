"""gRPC call durations: ``rpc.server.call.duration`` and ``rpc.client.call.duration``.

Every A2A hop is a gRPC call, so these two histograms time each hop from both ends: the agent's
server interceptor (first on every agent's server, ``runtime/agent_server.py``) and the client
interceptor every channel carries (``telemetry.client_interceptors``). Attributes are the current
semantic conventions': ``rpc.system.name`` (grpc), ``rpc.method`` (``service/Method``, bounded by
the contracts) and ``rpc.response.status_code`` (the status name, ``OK`` included). A streaming
call lasts until its stream ends. Health checks are left out, as they are from traces: probes and
their long ``Watch`` streams say nothing about the hops.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from runtime import metrics

_HEALTH = "/grpc.health.v1.Health/"
_SYSTEM = "grpc"


def _attrs(method: str, code: str) -> dict[str, str]:
    return {"rpc.system.name": _SYSTEM, "rpc.method": method.lstrip("/"), "rpc.response.status_code": code}


def _server_code(context: Any, exc: BaseException | None) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED"
    code = context.code()  # set by abort() or set_code(); None when the handler simply returned
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
    return "OK" if exc is None else "UNKNOWN"


class ServerMetrics(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(_HEALTH):
            return handler
        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(
                _timed(handler.stream_stream, method), handler.request_deserializer, handler.response_serializer
            )
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(
                _timed(handler.stream_unary, method), handler.request_deserializer, handler.response_serializer
            )
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(
                _timed(handler.unary_stream, method), handler.request_deserializer, handler.response_serializer
            )
        return grpc.unary_unary_rpc_method_handler(
            _timed(handler.unary_unary, method), handler.request_deserializer, handler.response_serializer
        )


def _timed(behavior: Any, method: str) -> Any:
    """``behavior`` (a coroutine function, or an async generator function for a stream) timed."""
    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            start = time.perf_counter()
            failure: BaseException | None = None
            try:
                async for response in behavior(request, context):
                    yield response
            except BaseException as exc:
                failure = exc
                raise
            finally:
                _record_server(method, start, context, failure)

        return stream

    async def unary(request: Any, context: Any) -> Any:
        start = time.perf_counter()
        failure: BaseException | None = None
        try:
            return await behavior(request, context)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            _record_server(method, start, context, failure)

    return unary


def _record_server(method: str, start: float, context: Any, failure: BaseException | None) -> None:
    inst = metrics.instruments()
    if inst is not None:
        inst.rpc_server_duration.record(time.perf_counter() - start, _attrs(method, _server_code(context, failure)))


# -- client -----------------------------------------------------------------------------------


def _method_of(details: grpc.aio.ClientCallDetails) -> str:
    method = details.method
    return method.decode() if isinstance(method, bytes) else str(method)


def _record_client(method: str, start: float, code: str) -> None:
    inst = metrics.instruments()
    if inst is not None:
        inst.rpc_client_duration.record(time.perf_counter() - start, _attrs(method, code))


class UnaryClientMetrics(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        if metrics.instruments() is None:
            return await continuation(client_call_details, request)
        method = _method_of(client_call_details)
        start = time.perf_counter()
        try:
            call = await continuation(client_call_details, request)
            code = await call.code()  # waits for the call to end, without raising its error
        except grpc.aio.AioRpcError as exc:
            _record_client(method, start, exc.code().name)
            raise
        except asyncio.CancelledError:
            _record_client(method, start, "CANCELLED")
            raise
        _record_client(method, start, code.name)
        return call


class StreamClientMetrics(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        if metrics.instruments() is None:
            return await continuation(client_call_details, request)
        method = _method_of(client_call_details)
        start = time.perf_counter()
        call = await continuation(client_call_details, request)
        return _responses(call, method, start)


async def _responses(call: Any, method: str, start: float) -> AsyncIterator[Any]:
    code = "OK"
    try:
        async for response in call:
            yield response
    except grpc.aio.AioRpcError as exc:
        code = exc.code().name
        raise
    except (asyncio.CancelledError, GeneratorExit):
        # The caller stopped reading (as it does once it has a task's final event): the call is
        # cancelled with the stream, unless the server had already ended it.
        code = "OK" if call.done() else "CANCELLED"
        raise
    finally:
        _record_client(method, start, code)


# With metrics off no interceptor is added at all: an interceptor costs a little even when it passes through.


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:  # type: ignore[type-arg]
    return [ServerMetrics()] if metrics.enabled() else []


def client_interceptors() -> list[Any]:
    """``grpc.aio.ClientInterceptor``s (the stubs leave that type partial)."""
    return [UnaryClientMetrics(), StreamClientMetrics()] if metrics.enabled() else []
