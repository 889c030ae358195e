"""What a model's tokens cost: a price table per model, in micros per million tokens.

Money is in micros (millionths of the currency unit, ``usage.proto``'s ``cost_micros``), so a
price per million tokens in micros is also the price of one token in micro-micros: cost is
``tokens * price // 1_000_000``, whole numbers all the way (rounded half up, once per record).

The default table is OpenAI's list prices for standard (not batch, not cached) text tokens, in
USD, as published on https://platform.openai.com/docs/pricing and checked against third-party
copies of that page on 2026-12-06. A deployment with other models or other prices sets
``SWITCHBOARD_PRICES``: a JSON or YAML file, or inline JSON, whose entries replace or add to the
defaults (a model mapped to ``null`` is removed)::

    {"gpt-4o": {"input": 2500000, "output": 10000000}, "my-local-model": {"input": 0, "output": 0}}

A model is looked up by its exact name, then without a provider prefix (``openai/gpt-4o``), then
by the longest table name it starts with followed by ``-`` (so a dated snapshot such as
``gpt-4o-2024-08-06`` costs what ``gpt-4o`` does, and ``gpt-4o-mini-...`` what ``gpt-4o-mini``
does). A model the table does not know costs 0 and is reported as unpriced: never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # installed with uvicorn[standard] (its --log-config reads YAML)

from runtime import span_attributes as attrs
from runtime.errors import ConfigError
from runtime.llm import TokenUsage
from switchboard.v1 import usage_pb2

CURRENCY = "USD"
MICROS = 1_000_000
"""Micros in one currency unit, and tokens in the million a price is quoted for."""


@dataclass(frozen=True, slots=True)
class Price:
    input: int
    """Micros per million prompt tokens."""
    output: int
    """Micros per million completion tokens."""


def _usd(input_per_million: float, output_per_million: float) -> Price:
    return Price(round(input_per_million * MICROS), round(output_per_million * MICROS))


DEFAULT_PRICES: dict[str, Price] = {
    # USD per 1M tokens, standard tier (docstring: source and date).
    "gpt-5": _usd(1.25, 10.00),
    "gpt-5-mini": _usd(0.25, 2.00),
    "gpt-5-nano": _usd(0.05, 0.40),
    "gpt-4.1": _usd(2.00, 8.00),
    "gpt-4.1-mini": _usd(0.40, 1.60),
    "gpt-4.1-nano": _usd(0.10, 0.40),
    "gpt-4o": _usd(2.50, 10.00),
    "gpt-4o-mini": _usd(0.15, 0.60),
    "o1": _usd(15.00, 60.00),
    "o1-mini": _usd(1.10, 4.40),
    "o3": _usd(2.00, 8.00),
    "o3-mini": _usd(1.10, 4.40),
    "o4-mini": _usd(1.10, 4.40),
    "gpt-4-turbo": _usd(10.00, 30.00),
    "gpt-4": _usd(30.00, 60.00),
    "gpt-3.5-turbo": _usd(0.50, 1.50),
    "text-embedding-3-small": _usd(0.02, 0.0),
    "text-embedding-3-large": _usd(0.13, 0.0),
}


@dataclass(frozen=True, slots=True)
class Cost:
    micros: int
    priced: bool
    """False when the model is not in the table (the cost is then 0)."""


class PriceTable:
    def __init__(self, prices: Mapping[str, Price], currency: str = CURRENCY) -> None:
        self._prices = dict(prices)
        self.currency = currency
        # Longest names first, so "gpt-4o-mini-2024-07-18" finds gpt-4o-mini before gpt-4o.
        self._by_length = sorted(self._prices, key=len, reverse=True)

    @classmethod
    def from_setting(cls, setting: str) -> PriceTable:
        """The defaults with ``SWITCHBOARD_PRICES`` (module docstring) over them."""
        prices = dict(DEFAULT_PRICES)
        for model, price in _overrides(setting).items():
            if price is None:
                prices.pop(model, None)
            else:
                prices[model] = price
        return cls(prices)

    def price(self, model: str) -> Price | None:
        if not model:
            return None
        found = self._prices.get(model)
        if found is not None:
            return found
        bare = model.rsplit("/", 1)[-1]
        found = self._prices.get(bare)
        if found is not None:
            return found
        for name in self._by_length:
            if bare.startswith(name + "-"):
                return self._prices[name]
        return None

    def cost(self, model: str, usage: TokenUsage) -> Cost:
        price = self.price(model)
        if price is None:
            return Cost(0, False)
        scaled = usage.prompt_tokens * price.input + usage.completion_tokens * price.output
        return Cost((scaled + MICROS // 2) // MICROS, True)

    def span_cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> attrs.Cost | None:
        """One LLM call's cost for its span (``llm.cost.*``, in the table's currency units); None when unpriced."""
        price = self.price(model)
        if price is None:
            return None
        per_unit = MICROS * MICROS  # prices are micros per million tokens
        return attrs.Cost(prompt_tokens * price.input / per_unit, completion_tokens * price.output / per_unit)

    def priced_usage(self, model: str, usage: TokenUsage) -> usage_pb2.Usage:
        """``usage`` as ``switchboard.v1.Usage`` with its cost (currency empty when unpriced, per the proto)."""
        cost = self.cost(model, usage)
        return usage_pb2.Usage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            cost_micros=cost.micros,
            currency=self.currency if cost.priced else "",
        )

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {name: {"input": p.input, "output": p.output} for name, p in sorted(self._prices.items())}


def _overrides(setting: str) -> dict[str, Price | None]:
    text = setting.strip()
    if not text:
        return {}
    where = "SWITCHBOARD_PRICES"
    if not text.startswith(("{", "[")):  # inline JSON; anything else names a file
        path = Path(text).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read the price file {str(path)!r}: {exc.strerror}") from exc
        where = f"the price file {str(path)!r}"
    try:
        raw: Any = yaml.safe_load(text)  # YAML is a superset of JSON: one parser for both
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is neither JSON nor YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f'{where} must map model names to {{"input": micros, "output": micros}}')
    prices: dict[str, Price | None] = {}
    for model, entry in raw.items():
        if not isinstance(model, str) or not model:
            raise ConfigError(f"{where}: model names must be non-empty strings (got {model!r})")
        if entry is None:
            prices[model] = None
            continue
        if not isinstance(entry, dict) or set(entry) - {"input", "output"}:
            raise ConfigError(f'{where}: {model!r} must be {{"input": micros, "output": micros}} (got {entry!r})')
        values = [entry.get("input", 0), entry.get("output", 0)]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise ConfigError(
                f"{where}: {model!r} prices must be whole micros (USD x 1,000,000) per million tokens, 0 or more"
            )
        prices[model] = Price(values[0], values[1])
    return prices
