"""Prices and costs in integer micro-USD. Floating point never touches money."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

MICROS_PER_USD = 1_000_000
TOKENS_PER_MTOK = 1_000_000


@dataclass(frozen=True)
class Price:
    """A model's list price, in micro-USD per million tokens."""

    input_micros_per_mtok: int
    output_micros_per_mtok: int

    @classmethod
    def from_usd_per_mtok(cls, input_usd: Decimal | str, output_usd: Decimal | str) -> Price:
        """Build from the USD-per-million-token figures that price lists and configs use."""
        return cls(usd_to_micros(input_usd), usd_to_micros(output_usd))

    def cost_micros(self, input_tokens: int, output_tokens: int) -> int:
        """What these tokens cost, rounded up to the next micro-USD."""
        numerator = (
            input_tokens * self.input_micros_per_mtok + output_tokens * self.output_micros_per_mtok
        )
        return -(-numerator // TOKENS_PER_MTOK)


def usd_to_micros(usd: Decimal | str) -> int:
    """An amount in USD as whole micro-USD; ValueError when it is finer than that."""
    amount = Decimal(usd)
    if not amount.is_finite():
        raise ValueError(f"{usd} USD is not an amount")
    # Exact, whatever the number of digits: the default context's 28 would round
    # 5.0000000000000000000000000000001 to a whole number of micro-USD and accept it.
    with localcontext() as context:
        context.prec = len(amount.as_tuple().digits) + 7
        micros = amount * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise ValueError(f"{usd} USD has more precision than one micro-USD")
    return int(micros)
