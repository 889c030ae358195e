"""OpenAI-shaped errors: the only error format the edge ever returns.

Every failure at the edge becomes an :class:`APIError` and is rendered once, by
:func:`error_response`, as ``{"error": {"message", "type", "param", "code"}}``
with the status code OpenAI uses for the same situation.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.errors import (
    AgentCallError,
    AgentTaskFailedError,
    AgentUnavailableError,
    ApprovalClosedError,
    ApprovalForbiddenError,
    ApprovalNotFoundError,
    BudgetExceededError,
    CollectionNotFoundError,
    DocumentRejectedError,
    DuplicateAgentError,
    EmbeddingError,
    InvalidAgentCardError,
    InvalidApprovalError,
    InvalidKeyRequestError,
    InvalidKnowledgeRequestError,
    InvalidRequestError,
    InvalidUsageRequestError,
    InvalidWorkflowRequestError,
    KeyNotFoundError,
    NotAuthenticatedError,
    PlanInvalidError,
    StateUnavailableError,
    SwitchboardError,
    UpstreamLLMError,
    UsageForbiddenError,
    VectorStoreError,
    WorkflowNotFoundError,
)

log = logging.getLogger(__name__)


class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def from_platform_error(exc: SwitchboardError) -> APIError:
    """Map a runtime error from behind the edge to what the client sees."""
    if isinstance(exc, AgentUnavailableError | StateUnavailableError | EmbeddingError | VectorStoreError):
        return APIError(503, exc.message, type="service_unavailable_error", code=exc.code)
    if isinstance(exc, UpstreamLLMError):
        return APIError(502, exc.message, type="api_error", code=exc.code)
    if isinstance(exc, DuplicateAgentError):
        return APIError(409, exc.message, code=exc.code)
    if isinstance(exc, InvalidRequestError):  # a parameter this path (or its LLM) cannot honour
        return APIError(400, exc.message, param=exc.param, code=exc.code)
    if isinstance(exc, InvalidAgentCardError | PlanInvalidError):
        return APIError(400, exc.message, code=exc.code)
    if isinstance(exc, AgentTaskFailedError | AgentCallError):
        return APIError(502, exc.message, type="api_error", code=exc.code)
    if isinstance(exc, CollectionNotFoundError):
        return APIError(404, exc.message, type="not_found", code=exc.code)
    if isinstance(exc, InvalidKnowledgeRequestError | DocumentRejectedError | InvalidWorkflowRequestError):
        return APIError(400, exc.message, code=exc.code)
    if isinstance(exc, InvalidKeyRequestError | InvalidUsageRequestError):
        return APIError(400, exc.message, code=exc.code)
    if isinstance(exc, BudgetExceededError):  # OpenAI's shape for a spent quota (retrying does not help)
        return APIError(429, exc.message, type="insufficient_quota", code="insufficient_quota")
    if isinstance(exc, ApprovalNotFoundError | WorkflowNotFoundError | KeyNotFoundError):
        return APIError(404, exc.message, type="not_found", code=exc.code)
    if isinstance(exc, ApprovalClosedError):  # already decided, or expired
        return APIError(409, exc.message, type="conflict", code=exc.code)
    if isinstance(exc, InvalidApprovalError):
        return APIError(400, exc.message, code=exc.code)
    if isinstance(exc, ApprovalForbiddenError | UsageForbiddenError):
        return APIError(403, exc.message, type="permission_error", code=exc.code)
    if isinstance(exc, NotAuthenticatedError):
        return APIError(401, exc.message, type="authentication_error", code=exc.code)
    return APIError(500, exc.message, type="api_error", code=exc.code)


def error_response(exc: APIError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


class UnexpectedErrorMiddleware:
    """The last resort: an exception no route mapped becomes OpenAI's 500, and the connection stays open.

    Starlette's own last resort (``ServerErrorMiddleware``) answers too, then re-raises the
    exception into the server, which logs it a second time and closes the client's keep-alive
    connection, so the client's next request on it fails. Here the exception ends with the
    answer. A client that hung up mid-body (``ClientDisconnect``) gets no answer and no traceback.
    Once the response has started nothing more can be said in it: the exception goes on and the
    server closes the connection, so the client sees a broken response, not a complete-looking one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except ClientDisconnect:
            log.info("client disconnected mid-request", extra={"path": scope.get("path", "")})
            if started:
                raise
        except Exception:
            if started:
                raise
            log.exception("unhandled error at the edge", extra={"path": scope.get("path", "")})
            internal = APIError(500, "Internal error; the request was not completed.", type="api_error")
            await error_response(internal)(scope, receive, send)
