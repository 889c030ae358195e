"""The one reader of JSON request bodies at the edge: every JSON route parses its body here.

A body is refused with an OpenAI-shaped error, never a 500, when it is:

- larger than the route's limit (413, checked against ``Content-Length`` and while reading);
- not UTF-8, not JSON, or not the JSON object the route needs (400 ``invalid_json``);
- nested deeper than :data:`MAX_DEPTH` (400 ``nesting_too_deep``): Python's decoder recurses,
  and each level becomes two levels of ``google.protobuf.Struct`` behind the edge, where
  protobuf's own limit is 100;
- holding a number no hop can carry (400 ``number_out_of_range``): an integer beyond
  ±(2**53 - 1) (every number in a ``Struct`` is a double; larger ones overflow or silently
  lose digits), ``NaN`` or ``Infinity``, or a float that overflows. Numbers are parsed by our
  own hooks, so a 5,000-digit integer never reaches ``int()`` and its 4,300-digit limit;
- holding a lone UTF-16 surrogate (``"\\ud800"``, 400 ``invalid_unicode``): valid JSON, but no
  UTF-8 string can hold it, so every later encode (a response, a gRPC message) would fail.

The parameter named in the error is the JSON path of the offending value (``max_tokens``,
``documents[0].metadata.size``) when there is one. A client that hangs up mid-body ends its
request quietly (an INFO line), not with a traceback.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import re
from typing import Any

from starlette.requests import ClientDisconnect, Request

from gateway.errors import APIError, invalid

log = logging.getLogger(__name__)

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects a body may have (the body itself is level 1)."""
MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer a double holds exactly; every JSON number behind the edge is one at some hop."""

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# A \u escape of a UTF-16 surrogate (D800-DFFF); a pair is fine, json joins it into one character.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Enough digits for any integer up to MAX_SAFE_INTEGER (16 digits) plus a sign; longer is refused unparsed.
_MAX_INT_CHARS = 17


class _Refused:
    """Stands in for a number the hooks refused, so its JSON path can be reported."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The request's body as a JSON object, or an :class:`APIError` saying what is wrong with it."""
    data = parse_json(await read_body(request, limit))
    if not isinstance(data, dict):
        raise invalid("The request body must be a JSON object.", code="invalid_json")
    return data


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 past ``limit`` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody is left to answer; the route's error response is dropped by the server.
        log.info("client disconnected while sending the request body", extra={"path": request.url.path})
        raise APIError(400, "The client disconnected while sending the request.", code="client_disconnected") from None
    return b"".join(chunks)


def too_large(limit: int) -> APIError:
    return APIError(413, f"The request body exceeds the limit of {limit} bytes.", code="request_too_large")


def parse_json(raw: bytes | str, param: str | None = None) -> Any:
    """Parse JSON text under the edge's rules; ``param`` prefixes reported paths (a JSON string inside a body)."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise invalid(
                f"The request body is not valid UTF-8 (byte {exc.start}): JSON must be UTF-8 encoded.",
                param=param,
                code="invalid_json",
            ) from None
    else:
        text = raw
    where = f"'{param}'" if param else "The request body"
    if not text.strip():
        raise invalid(f"{where} is empty; send a JSON object.", param=param, code="invalid_json")
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise invalid(
            f"{where} nests arrays and objects {depth} levels deep; at most {MAX_DEPTH} are accepted.",
            param=param,
            code="nesting_too_deep",
        )
    refused: list[_Refused] = []
    try:
        data = json.loads(
            text,
            parse_int=lambda s: _integer(s, refused),
            parse_float=lambda s: _float(s, refused),
            parse_constant=lambda s: _note(refused, f"{s} is not a JSON number"),
        )
    except json.JSONDecodeError as exc:
        said = f"{where} is not valid JSON" if param else "We could not parse the JSON body of your request"
        raise invalid(f"{said}: {exc}", param=param, code="invalid_json") from None
    except RecursionError:  # the depth check above should make this unreachable; never a 500 if not
        raise invalid(f"{where} nests too deeply.", param=param, code="nesting_too_deep") from None
    if refused:
        path = _path_of(data, lambda value: isinstance(value, _Refused), param)
        reason = refused[0].reason
        raise invalid(
            f"'{path}': {reason}." if path else f"{where}: {reason}.", param=path or param, code="number_out_of_range"
        )
    if _SURROGATE_ESCAPE.search(text):
        path = _path_of(data, _has_surrogate, param)
        if path is not None:
            raise invalid(
                f"'{path}' holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape without its pair), "
                "which is not valid Unicode.",
                param=path,
                code="invalid_unicode",
            )
    return data


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text``, brackets inside strings not counted."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0  # cannot be deeper than the number of brackets it opens: the common case, no scan
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(itertools.accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)


def _note(refused: list[_Refused], reason: str) -> _Refused:
    marker = _Refused(reason)
    refused.append(marker)
    return marker


def _integer(text: str, refused: list[_Refused]) -> int | _Refused:
    if len(text) > _MAX_INT_CHARS:
        digits = len(text.lstrip("-"))
        return _note(refused, f"an integer of {digits} digits is out of range (at most ±{MAX_SAFE_INTEGER})")
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        return _note(refused, f"the integer {value} is out of range (at most ±{MAX_SAFE_INTEGER})")
    return value


def _float(text: str, refused: list[_Refused]) -> float | _Refused:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 40 else text[:37] + "..."
        return _note(refused, f"the number {shown} is too large for a double")
    return value


def _has_surrogate(value: Any) -> bool:
    return isinstance(value, str) and _SURROGATE.search(value) is not None


def _shown(key: str) -> str:
    """A key as the error names it: escaped when it is not valid Unicode (the error must encode), and short."""
    safe = key.encode("utf-8", "backslashreplace").decode("utf-8")
    return safe if len(safe) <= 64 else safe[:61] + "..."


def _path_of(data: Any, bad: Any, prefix: str | None) -> str | None:
    """The JSON path of the first value (or object key) for which ``bad`` holds; None when none does."""
    stack: list[tuple[Any, str]] = [(data, prefix or "")]
    while stack:
        value, path = stack.pop()
        if bad(value):
            return path
        if isinstance(value, dict):
            children = []
            for key, item in value.items():
                child = f"{path}.{_shown(key)}" if path else _shown(key)
                if bad(key):
                    return child
                children.append((item, child))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend(reversed([(item, f"{path}[{i}]") for i, item in enumerate(value)]))
    return None
