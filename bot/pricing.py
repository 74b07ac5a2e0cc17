"""Prices in API 元点 and the exact cost of a call.

Amounts are integers of micro-元点 (1 元点 = 1_000_000). Ratios are kept as exact fractions and a
call's cost is rounded once, half up, to the micro-元点: no float ever touches money.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

MICRO = 1_000_000
DEFAULT_PRICES = "default_prices.toml"


class PricingError(Exception):
    """The price table is malformed; the message names where and why."""


@dataclass(frozen=True)
class PriceTier:
    """Ratios (tokens per 元点) that apply up to a request context length (None: no bound)."""

    up_to: int | None
    input_ratio: Fraction
    output_ratio: Fraction
    cached_ratio: Fraction


@dataclass(frozen=True)
class ModelPrice:
    model: str
    context_length: int
    tiers: tuple[PriceTier, ...]
    derived: bool
    source: str
    reasoning: bool = False
    max_output_tokens: int | None = None
    vision: bool = False  # accepts image parts (`vision = true` in the table)
    thinking_switch: bool = False  # thinking can be turned on and off per request

    def tier_for(self, context_tokens: int) -> PriceTier:
        for tier in self.tiers:
            if tier.up_to is None or context_tokens <= tier.up_to:
                return tier
        return self.tiers[-1]

    def cost_micro(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> int:
        """Exact cost of one call. `prompt_tokens` includes the cached ones, as Moonshot reports."""
        cached = min(max(cached_tokens, 0), prompt_tokens)
        tier = self.tier_for(prompt_tokens + completion_tokens)
        points = (
            Fraction(prompt_tokens - cached) / tier.input_ratio
            + Fraction(cached) / tier.cached_ratio
            + Fraction(completion_tokens) / tier.output_ratio
        )
        return round_half_up(points * MICRO)

    def output_tokens_affordable(self, budget_micro: int, prompt_tokens: int) -> int:
        """How many output tokens `budget_micro` pays for after an uncached prompt."""
        left = budget_micro - self.cost_micro(prompt_tokens, 0)
        if left <= 0:
            return 0
        # The tier can rise with the output; the highest tier's ratio is the safe bound.
        ratio = min(tier.output_ratio for tier in self.tiers)
        return int(Fraction(left, MICRO) * ratio)


@dataclass(frozen=True)
class PriceTable:
    models: Mapping[str, ModelPrice]
    web_search_fee_micro: int

    def get(self, model: str) -> ModelPrice | None:
        return self.models.get(model)

    def __contains__(self, model: object) -> bool:
        return model in self.models


def round_half_up(value: Fraction) -> int:
    return int((value * 2 + 1) // 2) if value >= 0 else -round_half_up(-value)


def format_points(micro: int, places: int = 2) -> str:
    """元点 for people: 6000000 -> '6.00'; amounts smaller than the precision keep more digits."""
    value = Decimal(micro) / MICRO
    if 0 < abs(value) < Decimal(10) ** -places:
        return f"{value.normalize():f}"
    return f"{value:.{places}f}"


def points_to_micro(points: Decimal | int | str) -> int:
    return round_half_up(Fraction(Decimal(points)) * MICRO)


# --- loading -----------------------------------------------------------------------------------


def load_price_table(pricing_file: Path | None = None) -> PriceTable:
    """The built-in table, with PRICING_FILE's models merged over it."""
    builtin_text = resources.files("bot").joinpath(DEFAULT_PRICES).read_text(encoding="utf-8")
    base = _parse_toml(builtin_text, DEFAULT_PRICES)
    merged_models: dict[str, Any] = dict(base.get("models", {}))
    top = {key: value for key, value in base.items() if key != "models"}
    name = DEFAULT_PRICES
    text = builtin_text
    if pricing_file is not None:
        try:
            text = pricing_file.read_text(encoding="utf-8")
        except OSError as error:
            raise PricingError(f"PRICING_FILE {pricing_file}: cannot read ({error.strerror})") from None
        name = str(pricing_file)
        override = _parse_toml(text, name)
        top.update({key: value for key, value in override.items() if key != "models"})
        overrides = override.get("models", {})
        if not isinstance(overrides, dict):
            raise PricingError(f"{name}: 'models' must be a table of models")
        for model, spec in overrides.items():
            if isinstance(spec, dict) and spec.get("enabled") is False:
                merged_models.pop(model, None)
            elif isinstance(spec, dict) and model in merged_models:
                merged_models[model] = {**merged_models[model], **spec}
            else:
                merged_models[model] = spec
    yuan_per_point = _positive_fraction(top.get("yuan_per_point", "0.0028"), name, "yuan_per_point")
    models = {
        model: _model_price(model, spec, yuan_per_point, name, text) for model, spec in merged_models.items()
    }
    fee_cny = _non_negative_fraction(top.get("web_search_fee_cny", "0.03"), name, "web_search_fee_cny")
    return PriceTable(models=models, web_search_fee_micro=round_half_up(fee_cny / yuan_per_point * MICRO))


def _parse_toml(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise PricingError(f"{name}: {error}") from None


def _model_price(model: str, spec: object, yuan_per_point: Fraction, name: str, text: str) -> ModelPrice:
    where = f"{name}{_line_of(model, text)}: model {model!r}"
    if not isinstance(spec, dict):
        raise PricingError(f"{where}: expected a table")
    context_length = spec.get("context_length")
    if not isinstance(context_length, int) or context_length <= 0:
        raise PricingError(f"{where}: context_length must be a positive integer")
    derived = False

    def ratio(table: dict[str, Any], kind: str, fallback: Fraction | None) -> Fraction:
        nonlocal derived
        if f"{kind}_ratio" in table:
            return _positive_fraction(table[f"{kind}_ratio"], where, f"{kind}_ratio")
        if f"{kind}_price_cny" in table:
            # Only the main ratios decide "derived": the seeds never price cache hits in 元点.
            derived = derived or kind != "cached"
            price = _positive_fraction(table[f"{kind}_price_cny"], where, f"{kind}_price_cny")
            return 1 / (price / 1_000_000 / yuan_per_point)
        if fallback is not None:
            return fallback
        raise PricingError(f"{where}: needs {kind}_ratio or {kind}_price_cny")

    tier_specs = spec.get("tiers")
    if tier_specs is None:
        tier_specs = [{"up_to": None}]
    if not isinstance(tier_specs, list) or not tier_specs:
        raise PricingError(f"{where}: tiers must be a non-empty list of tables")
    tiers = []
    for tier_spec in tier_specs:
        if not isinstance(tier_spec, dict):
            raise PricingError(f"{where}: each tier must be a table")
        merged = {**{k: v for k, v in spec.items() if k != "tiers"}, **tier_spec}
        up_to = tier_spec.get("up_to")
        if up_to is not None and (not isinstance(up_to, int) or up_to <= 0):
            raise PricingError(f"{where}: tier up_to must be a positive integer")
        input_ratio = ratio(merged, "input", None)
        tiers.append(
            PriceTier(
                up_to=up_to,
                input_ratio=input_ratio,
                output_ratio=ratio(merged, "output", None),
                cached_ratio=ratio(merged, "cached", input_ratio),
            )
        )
    tiers.sort(key=lambda tier: (tier.up_to is None, tier.up_to or 0))
    max_output = spec.get("max_output_tokens")
    if max_output is not None and (not isinstance(max_output, int) or max_output <= 0):
        raise PricingError(f"{where}: max_output_tokens must be a positive integer")
    return ModelPrice(
        model=model,
        context_length=context_length,
        tiers=tuple(tiers),
        derived=derived,
        source=str(spec.get("source", name)),
        reasoning=bool(spec.get("reasoning", False)),
        max_output_tokens=max_output,
        vision=_flag(spec, "vision", where),
        thinking_switch=_flag(spec, "thinking_switch", where),
    )


def _flag(spec: dict[str, Any], key: str, where: str) -> bool:
    value = spec.get(key, False)
    if not isinstance(value, bool):
        raise PricingError(f"{where}: {key} must be true or false")
    return value


def _line_of(model: str, text: str) -> str:
    """' line N' of the model's table header, so an operator finds the bad entry."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.replace(" ", "")
        if stripped.startswith(("[models.", "[[models.")) and (
            f'"{model}"' in stripped or f".{model}]" in stripped
        ):
            return f" line {number}"
    return ""


def _positive_fraction(value: object, where: str, key: str) -> Fraction:
    number = _non_negative_fraction(value, where, key)
    if number == 0:
        raise PricingError(f"{where}: {key} must be greater than 0")
    return number


def _non_negative_fraction(value: object, where: str, key: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise PricingError(f"{where}: {key} must be a number")
    try:
        number = Fraction(Decimal(value))
    except (ArithmeticError, ValueError):
        raise PricingError(f"{where}: {key} must be a number, got {value!r}") from None
    if number < 0:
        raise PricingError(f"{where}: {key} must not be negative")
    return number
