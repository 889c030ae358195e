"""JSON text parsed under the platform's rules: one parser for every JSON body a process takes in.

Python's decoder accepts text nothing behind it can carry, and fails on some of it in ways that
look like server faults. Text is refused here, with a :class:`JSONTextError` naming what is wrong
and where, when it is:

- not UTF-8, empty, or not JSON (``invalid_json``);
- nested deeper than :data:`MAX_DEPTH` (``nesting_too_deep``): the decoder recurses, and each
  level becomes two levels of ``google.protobuf.Struct`` further on, where protobuf's own limit
  is 100;
- holding a number no hop can carry (``number_out_of_range``): an integer beyond
  ±(2**53 - 1) (every number in a ``Struct`` is a double; larger ones overflow or silently
  lose digits), ``NaN`` or ``Infinity``, or a float that overflows. Numbers are parsed by our
  own hooks, so a 5,000-digit integer never reaches ``int()`` and its 4,300-digit limit;
- holding a lone UTF-16 surrogate (``"\\ud800"``, ``invalid_unicode``): valid JSON, but no
  UTF-8 string can hold it, so every later encode (a response, a gRPC message) would fail.

The error's ``param`` is the JSON path of the offending value (``max_tokens``,
``documents[0].metadata.size``) when there is one. Each boundary maps the error once: the
gateway to an OpenAI-shaped 400 (``gateway/body.py``), an agent's JSON-RPC endpoint to a
JSON-RPC parse error (``runtime/agent_server.py``).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any

from runtime.errors import InvalidRequestError

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


class JSONTextError(InvalidRequestError):
    """JSON text refused by :func:`parse_json`; ``reason`` is the machine-readable kind."""

    def __init__(self, message: str, reason: str, param: str | None = None) -> None:
        super().__init__(message, param)
        self.reason = reason


def parse_json(raw: bytes | str, param: str | None = None) -> Any:
    """Parse JSON text under the rules above; ``param`` prefixes reported paths (a JSON string inside a body)."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONTextError(
                f"The request body is not valid UTF-8 (byte {exc.start}): JSON must be UTF-8 encoded.",
                "invalid_json",
                param,
            ) from None
    else:
        text = raw
    where = f"'{param}'" if param else "The request body"
    if not text.strip():
        raise JSONTextError(f"{where} is empty; send a JSON object.", "invalid_json", param)
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise JSONTextError(
            f"{where} nests arrays and objects {depth} levels deep; at most {MAX_DEPTH} are accepted.",
            "nesting_too_deep",
            param,
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
        raise JSONTextError(f"{said}: {exc}", "invalid_json", param) from None
    except RecursionError:  # the depth check above should make this unreachable; never a 500 if not
        raise JSONTextError(f"{where} nests too deeply.", "nesting_too_deep", param) from None
    if refused:
        path = _path_of(data, lambda value: isinstance(value, _Refused), param)
        reason = refused[0].reason
        raise JSONTextError(
            f"'{path}': {reason}." if path else f"{where}: {reason}.", "number_out_of_range", path or param
        )
    if _SURROGATE_ESCAPE.search(text):
        path = _path_of(data, _has_surrogate, param)
        if path is not None:
            raise JSONTextError(
                f"'{path}' holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape without its pair), "
                "which is not valid Unicode.",
                "invalid_unicode",
                path,
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
