"""Pricing in 元点: the seed's example, cached input, tiers, derived ratios and PRICING_FILE."""

from decimal import Decimal
from pathlib import Path

import pytest

from bot.pricing import MICRO, PricingError, format_points, load_price_table, points_to_micro


@pytest.fixture(scope="module")
def table():
    return load_price_table()


def test_seed_example_200_in_1000_out_is_exactly_6_points(table):
    price = table.get("kimi-k2-0905-preview")
    assert price.cost_micro(prompt_tokens=200, completion_tokens=1000) == 6 * MICRO
    assert not price.derived


def test_thinking_model_has_the_seed_ratios(table):
    price = table.get("kimi-k2-thinking")
    assert price.cost_micro(700, 175) == 2 * MICRO
    assert price.reasoning


def test_cached_input_is_charged_at_the_cached_ratio(table):
    price = table.get("kimi-k2-0905-preview")
    # 2800 cached tokens cost 1 元点 (¥1 per 1M at ¥0.0028 per 元点), 700 uncached cost 1 元点.
    assert price.cost_micro(prompt_tokens=3500, completion_tokens=0, cached_tokens=2800) == 2 * MICRO
    # cached never exceeds prompt
    assert price.cost_micro(100, 0, cached_tokens=500) == price.cost_micro(100, 0, cached_tokens=100)


def test_derived_ratio_from_yuan_price(table):
    price = table.get("kimi-k2-turbo-preview")
    assert price.derived
    # ¥8 per 1M input -> 350 tokens per 元点; ¥58 per 1M output -> 2800/58 tokens per 元点
    assert price.cost_micro(350, 0) == MICRO
    assert price.cost_micro(0, 58) == round(58 * 58 / 2800 * MICRO)


def test_moonshot_v1_has_no_cache_discount(table):
    price = table.get("moonshot-v1-8k")
    assert price.cost_micro(1400, 0, cached_tokens=1400) == price.cost_micro(1400, 0) == MICRO


def test_kimi_latest_is_billed_by_context_tier(table):
    price = table.get("kimi-latest")
    assert price.cost_micro(1400, 0) == MICRO  # <= 8k tier: ¥2 -> 1400 per 元点
    assert price.cost_micro(10_000, 0) == round(Decimal(10_000) / 560 * MICRO)  # 32k tier
    assert price.cost_micro(100_000, 0) == round(Decimal(100_000) / 280 * MICRO)  # 128k tier


def test_web_search_fee_is_three_fen_in_points(table):
    assert table.web_search_fee_micro == round(Decimal("0.03") / Decimal("0.0028") * MICRO)


def test_costs_add_up_exactly_without_float_drift(table):
    price = table.get("kimi-k2-0905-preview")
    total = sum(price.cost_micro(7, 3) for _ in range(1000))
    assert total == 1000 * price.cost_micro(7, 3)
    assert isinstance(total, int)


def test_affordable_output_tokens(table):
    price = table.get("kimi-k2-0905-preview")
    assert price.output_tokens_affordable(6 * MICRO, 200) == 1000
    assert price.output_tokens_affordable(0, 200) == 0


def test_formatting():
    assert format_points(6 * MICRO) == "6.00"
    assert format_points(1_234_567) == "1.23"
    assert format_points(3) == "0.000003"
    assert points_to_micro("2.5") == 2_500_000


def test_pricing_file_overrides_adds_and_disables(tmp_path: Path):
    path = tmp_path / "prices.toml"
    path.write_text(
        '[models."kimi-k2-0905-preview"]\ninput_ratio = 350\n\n'
        '[models."my-model"]\ncontext_length = 8192\ninput_price_cny = 2.8\noutput_price_cny = 28\n\n'
        '[models."moonshot-v1-8k"]\nenabled = false\n',
        encoding="utf-8",
    )
    table = load_price_table(path)
    assert table.get("kimi-k2-0905-preview").cost_micro(350, 0) == MICRO
    assert table.get("kimi-k2-0905-preview").context_length == 262144  # kept from the built-in
    mine = table.get("my-model")
    assert mine.derived and mine.cost_micro(1000, 100) == 2 * MICRO
    assert "moonshot-v1-8k" not in table


def test_malformed_pricing_file_names_the_line(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text('[models."x"]\ncontext_length = 10\ninput_ratio = = 3\n', encoding="utf-8")
    with pytest.raises(PricingError, match=r"bad.toml.*line 3"):
        load_price_table(path)


def test_semantically_bad_pricing_file_names_model_and_reason(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text('\n\n[models."x"]\ncontext_length = 10\noutput_ratio = 5\n', encoding="utf-8")
    with pytest.raises(PricingError, match=r"line 3: model 'x': needs input_ratio"):
        load_price_table(path)
    path.write_text('[models."y"]\ncontext_length = 10\ninput_ratio = 0\noutput_ratio = 1\n')
    with pytest.raises(PricingError, match="greater than 0"):
        load_price_table(path)
