"""Exact money arithmetic for budgets.

Costs are kept as whole micro-dollars (``int``) so that sums never drift: the hard budget
invariant ("spent never exceeds the limit") must hold exactly, not within float error.
A price in USD per million tokens times a token count is, conveniently, micro-dollars.
"""

import math
from decimal import Decimal

MICROS_PER_USD = 1_000_000


def usd_to_micros(usd: float) -> int:
    """Convert a USD limit to micro-dollars, rounding down (a limit never grows)."""
    return math.floor(Decimal(str(usd)) * MICROS_PER_USD)


def micros_to_usd(micros: int) -> float:
    """Convert micro-dollars to USD for display and search attributes."""
    return micros / MICROS_PER_USD


def token_cost_micros(tokens: int, usd_per_million: float) -> int:
    """Cost of ``tokens`` at a per-million price, rounded up (a cost never shrinks)."""
    return math.ceil(Decimal(tokens) * Decimal(str(usd_per_million)))


def usd_cost_to_micros(usd: float) -> int:
    """Convert a USD cost to micro-dollars, rounding up (a cost never shrinks)."""
    return math.ceil(Decimal(str(usd)) * MICROS_PER_USD)


def format_usd(usd: float) -> str:
    """``$0.50``, ``$0.002``, ``$0.0123``: cents at least, and as many more decimals (up to
    micro-dollars) as the amount needs, so a small limit never shows as ``$0.00``."""
    text = f"{usd:.6f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"${whole}.{decimals.ljust(2, '0')}"
