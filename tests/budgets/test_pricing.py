"""Prices and costs: integer micro-USD, rounded up, never floating point."""

from decimal import Decimal

import pytest

from fareway.budgets.pricing import Price, usd_to_micros
from fareway.config.loader import load_config


def test_from_usd_per_mtok_converts_to_integer_micros() -> None:
    price = Price.from_usd_per_mtok("3.00", Decimal("15"))

    assert price == Price(input_micros_per_mtok=3_000_000, output_micros_per_mtok=15_000_000)
    assert isinstance(price.input_micros_per_mtok, int)


def test_one_micro_usd_per_mtok_is_the_finest_price() -> None:
    assert Price.from_usd_per_mtok("0.000001", "0").input_micros_per_mtok == 1


@pytest.mark.parametrize("usd", ["0.0000005", "1.0000001", Decimal("0.1234567")])
def test_from_usd_per_mtok_rejects_sub_micro_precision(usd: str | Decimal) -> None:
    with pytest.raises(ValueError, match="more precision than one micro-USD"):
        Price.from_usd_per_mtok(usd, "1")
    with pytest.raises(ValueError, match="more precision than one micro-USD"):
        Price.from_usd_per_mtok("1", usd)


def test_cost_is_exact_when_it_is_a_whole_number_of_micros() -> None:
    price = Price.from_usd_per_mtok("3", "15")

    # 1,000 input tokens at $3/Mtok = 3,000 micro-USD; 200 output at $15/Mtok = 3,000.
    assert price.cost_micros(1_000, 200) == 6_000
    assert price.cost_micros(0, 0) == 0


@pytest.mark.parametrize(
    ("input_tokens", "output_tokens", "expected"),
    [
        (1, 0, 1),  # 0.5 micro-USD rounds up to 1
        (3, 0, 2),  # 1.5 -> 2
        (0, 1, 1),  # 0.25 -> 1
        (2, 2, 2),  # 1.0 + 0.5 = 1.5 -> 2: rounded once, on the sum
    ],
)
def test_cost_rounds_up_to_the_next_micro(
    input_tokens: int, output_tokens: int, expected: int
) -> None:
    price = Price.from_usd_per_mtok("0.5", "0.25")

    assert price.cost_micros(input_tokens, output_tokens) == expected


@pytest.mark.parametrize(
    ("model_id", "expected_micros"),
    [
        # 10,000 input + 2,000 output tokens at the list prices (USD per million tokens).
        ("claude-haiku-4-5", 10_000 * 1 + 2_000 * 5),  # $1 / $5
        ("claude-sonnet-4-6", 10_000 * 3 + 2_000 * 15),  # $3 / $15
        ("claude-opus-4-6", 10_000 * 5 + 2_000 * 25),  # $5 / $25
    ],
)
def test_default_claude_list_prices(model_id: str, expected_micros: int) -> None:
    models = {m.id: m.spec() for m in load_config().models}

    assert models[model_id].price.cost_micros(10_000, 2_000) == expected_micros


def test_default_haiku_request_costs_a_known_amount_in_usd() -> None:
    haiku = next(m.spec() for m in load_config().models if m.id == "claude-haiku-4-5")

    # 1,234 in and 567 out: 1,234 + 2,835 = 4,069 micro-USD, i.e. $0.004069.
    assert haiku.price.cost_micros(1_234, 567) == 4_069


def test_usd_finer_than_a_micro_is_refused_however_many_digits_it_has() -> None:
    # 32 significant digits: past the default decimal context, which would round it to 5 USD.
    with pytest.raises(ValueError, match="precision"):
        usd_to_micros("5.0000000000000000000000000000001")
    assert usd_to_micros("123456789012345678901234567890.000001") == (
        123456789012345678901234567890_000001
    )
    with pytest.raises(ValueError, match="not an amount"):
        usd_to_micros("NaN")
