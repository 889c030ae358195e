"""The price table: defaults, lookups by snapshot name, overrides from a file or inline, unknown models."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.errors import ConfigError
from runtime.llm import TokenUsage
from runtime.metering.prices import DEFAULT_PRICES, Price, PriceTable


def test_the_default_table_prices_common_models_in_micros_per_million_tokens() -> None:
    table = PriceTable.from_setting("")
    # gpt-4o-mini: $0.15 in, $0.60 out per million: 1M prompt + 1M completion tokens = $0.75.
    assert table.cost("gpt-4o-mini", TokenUsage(1_000_000, 1_000_000)).micros == 750_000
    assert table.cost("gpt-4.1", TokenUsage(1000, 500)).micros == 2_000 + 4_000
    for model in ("gpt-4o", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "o4-mini"):
        assert table.price(model) == DEFAULT_PRICES[model]


def test_snapshots_and_provider_prefixes_find_their_family_and_the_longest_name_wins() -> None:
    table = PriceTable.from_setting("")
    assert table.price("gpt-4o-2024-08-06") == DEFAULT_PRICES["gpt-4o"]
    assert table.price("gpt-4o-mini-2024-07-18") == DEFAULT_PRICES["gpt-4o-mini"]
    assert table.price("openai/gpt-4.1-mini") == DEFAULT_PRICES["gpt-4.1-mini"]
    assert table.price("gpt-4omni") is None  # a prefix must end at a '-'


def test_an_unknown_model_costs_nothing_and_says_it_is_unpriced() -> None:
    table = PriceTable.from_setting("")
    cost = table.cost("smollm2-135m-instruct", TokenUsage(100, 100))
    assert (cost.micros, cost.priced) == (0, False)
    usage = table.priced_usage("", TokenUsage(3, 4))
    assert (usage.cost_micros, usage.currency, usage.total_tokens) == (0, "", 7)
    priced = table.priced_usage("gpt-4o", TokenUsage(3, 4))
    assert priced.currency == "USD" and priced.cost_micros == round((3 * 2_500_000 + 4 * 10_000_000) / 1e6)


def test_costs_round_half_up_once_per_record() -> None:
    table = PriceTable({"m": Price(input=1, output=0)})
    assert table.cost("m", TokenUsage(499_999, 0)).micros == 0
    assert table.cost("m", TokenUsage(500_000, 0)).micros == 1


def test_inline_json_adds_replaces_and_removes_prices() -> None:
    table = PriceTable.from_setting(
        '{"local": {"input": 0, "output": 0}, "gpt-4o": {"input": 1, "output": 2}, "o3": null}'
    )
    assert table.price("local") == Price(0, 0) and table.cost("local", TokenUsage(5, 5)).priced
    assert table.price("gpt-4o") == Price(1, 2)
    assert table.price("o3") is None and table.price("o3-mini") == DEFAULT_PRICES["o3-mini"]


def test_a_yaml_or_json_file_overrides_the_defaults(tmp_path: Path) -> None:
    yaml_file = tmp_path / "prices.yaml"
    yaml_file.write_text("scripted:\n  input: 1000000\n  output: 2000000\n")
    assert PriceTable.from_setting(str(yaml_file)).price("scripted") == Price(1_000_000, 2_000_000)
    json_file = tmp_path / "prices.json"
    json_file.write_text('{"scripted": {"input": 3}}')
    assert PriceTable.from_setting(str(json_file)).price("scripted") == Price(3, 0)


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ("/nonexistent/prices.json", "cannot read the price file"),
        ("{not json", "neither JSON nor YAML"),
        ('["gpt-4o"]', "must map model names"),
        ('{"m": {"input": 1.5}}', "whole micros"),
        ('{"m": {"input": -1}}', "whole micros"),
        ('{"m": {"in": 1}}', "must be"),
    ],
)
def test_a_bad_price_setting_is_a_config_error_that_says_why(setting: str, says: str) -> None:
    with pytest.raises(ConfigError) as refused:
        PriceTable.from_setting(setting)
    assert says in refused.value.message


def test_an_llm_span_is_priced_by_the_same_table_in_dollars() -> None:
    table = PriceTable.from_setting("")
    # gpt-4o-mini: $0.15 in, $0.60 out per million tokens.
    cost = table.span_cost("gpt-4o-mini-2024-07-18", 2_000_000, 500_000)
    assert cost is not None
    assert (cost.prompt, cost.completion) == pytest.approx((0.30, 0.30))
    assert table.span_cost("smollm2-135m-instruct", 10, 10) is None
