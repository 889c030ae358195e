"""Switchboard's metadata names fields in camelCase; what earlier versions wrote in snake_case still reads."""

from __future__ import annotations

from runtime import messages
from runtime.llm import GenerationOptions


def test_json_names_are_proto3_json_names_all_the_way_down() -> None:
    assert messages.json_name("max_tokens") == "maxTokens"
    assert messages.json_name("seed") == "seed"
    written = messages.json_names({"top_p": 0.5, "section_path": ["A", "B"], "citation_check": {"cited_by": [1]}})
    assert written == {"topP": 0.5, "sectionPath": ["A", "B"], "citationCheck": {"citedBy": [1]}}


def test_a_field_reads_in_either_form() -> None:
    assert messages.field({"maxTokens": 64}, "max_tokens") == 64
    assert messages.field({"max_tokens": 64}, "max_tokens") == 64  # as stored by earlier versions
    assert messages.field({}, "max_tokens") is None


def test_the_reasoning_agent_takes_generation_options_in_both_forms() -> None:
    expected = GenerationOptions(max_tokens=64, temperature=0.5, top_p=0.9, stop=["END"], seed=7)
    new = {"maxTokens": 64, "temperature": 0.5, "topP": 0.9, "stop": "END", "seed": 7}
    old = {"max_tokens": 64, "temperature": 0.5, "top_p": 0.9, "stop": ["END"], "seed": 7}
    assert GenerationOptions.from_dict(new) == expected
    assert GenerationOptions.from_dict(old) == expected
