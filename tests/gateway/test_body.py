"""The edge's JSON reader (runtime.json_text behind it): what it refuses, what it names, what it lets through."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.body import parse_json
from gateway.errors import APIError
from runtime.json_text import MAX_DEPTH, MAX_SAFE_INTEGER

DIGITS_400 = "1" + "0" * 400
DIGITS_5000 = "9" * 5000


def _refused(text: str | bytes) -> APIError:
    with pytest.raises(APIError) as info:
        parse_json(text)
    assert info.value.status == 400
    return info.value


@pytest.mark.parametrize(
    ("text", "param"),
    [
        (f'{{"max_tokens": {DIGITS_400}}}', "max_tokens"),
        (f'{{"seed": -{DIGITS_400}}}', "seed"),
        (f'{{"seed": {DIGITS_5000}}}', "seed"),  # past int()'s 4,300-digit limit: never handed to int()
        (f'{{"a": [1, {{"b": {MAX_SAFE_INTEGER + 1}}}]}}', "a[1].b"),
        ('{"chunking": {"max_chars": 1e999}}', "chunking.max_chars"),
        ('{"x": -1e400}', "x"),
        ('{"x": NaN}', "x"),
        ('{"x": [Infinity]}', "x[0]"),
        ('{"x": -Infinity}', "x"),
        (DIGITS_400, None),
    ],
)
def test_numbers_no_hop_can_carry_are_refused_with_their_path(text: str, param: str | None) -> None:
    error = _refused(text)
    assert error.code == "number_out_of_range"
    assert error.param == param
    assert "out of range" in error.message or "too large" in error.message or "not a JSON number" in error.message


def test_numbers_within_range_are_kept_exactly() -> None:
    data = parse_json(f'{{"a": {MAX_SAFE_INTEGER}, "b": -{MAX_SAFE_INTEGER}, "c": 1e308, "d": 1e-400, "e": 0.5}}')
    assert data == {"a": MAX_SAFE_INTEGER, "b": -MAX_SAFE_INTEGER, "c": 1e308, "d": 0.0, "e": 0.5}


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000, 100_000])
def test_nesting_past_the_limit_is_refused_before_parsing(depth: int) -> None:
    error = _refused("[" * depth + "]" * depth)
    assert error.code == "nesting_too_deep"
    assert str(depth) in error.message


def test_nesting_at_the_limit_is_accepted() -> None:
    text = '{"a":' * (MAX_DEPTH - 1) + "[1]" + "}" * (MAX_DEPTH - 1)
    value: Any = parse_json(text)
    for _ in range(MAX_DEPTH - 1):
        value = value["a"]
    assert value == [1]


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"content": "[" * 10_000 + '\\"{' * 100})
    assert parse_json(text) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "param"),
    [
        ('{"model": "\\ud800"}', "model"),
        ('{"messages": [{"role": "user", "content": "ok \\udfff"}]}', "messages[0].content"),
        ('{"metadata": {"\\udbff": 1}}', "metadata.\\udbff"),  # a key: named escaped, so the error still encodes
        ('{"x": "\\udc00\\ud800"}', "x"),  # a low surrogate before a high one is no pair
    ],
)
def test_lone_surrogates_are_refused_with_their_path(text: str, param: str) -> None:
    error = _refused(text)
    assert error.code == "invalid_unicode"
    assert error.param == param
    json.dumps(error.body(), ensure_ascii=False).encode()  # the error itself is valid UTF-8


def test_a_surrogate_pair_is_one_character_and_accepted() -> None:
    assert parse_json('{"emoji": "\\ud83d\\ude00", "escaped": "\\\\ud800"}') == {"emoji": "😀", "escaped": "\\ud800"}


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b'{"model": "\xff\xfe"}', "not valid UTF-8"),
        (b"\xef\xbb\xbf{}", "BOM"),
        (b"{not json", "could not parse"),
        (b'{"a": 1} trailing', "could not parse"),
    ],
)
def test_text_that_is_not_json_is_refused(raw: bytes, says: str) -> None:
    error = _refused(raw)
    assert error.code == "invalid_json"
    assert says in error.message


def test_json_inside_a_string_is_read_under_the_same_rules_and_named_by_its_parameter() -> None:
    error = _refused_with_param("[" * 5000, "metadata.plan")
    assert (error.code, error.param) == ("nesting_too_deep", "metadata.plan")
    error = _refused_with_param('{"steps": [{"timeout": 1e999}]}', "metadata.plan")
    assert (error.code, error.param) == ("number_out_of_range", "metadata.plan.steps[0].timeout")


def _refused_with_param(text: str, param: str) -> APIError:
    with pytest.raises(APIError) as info:
        parse_json(text, param=param)
    return info.value
