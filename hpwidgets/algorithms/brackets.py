"""Hyperband's bracket arithmetic (Li et al., JMLR 2018): how many configs each rung of each
bracket evaluates, at which budget. Pure, exact (rational) and shared with the explainers."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..space import SearchSpace


@dataclass(frozen=True)
class RungSpec:
    n: int       # configs evaluated at this rung
    budget: int  # resource each of them gets


@dataclass(frozen=True)
class BracketSpec:
    s: int  # the paper's bracket index: s rounds of successive halving
    rungs: tuple[RungSpec, ...]


def as_eta(eta: Any) -> Fraction:
    ok = isinstance(eta, numbers.Real) and not isinstance(eta, bool) and math.isfinite(eta) and eta > 1
    if not ok:
        raise ValueError(f"`eta` must be a number > 1, but got eta={eta!r}")
    return Fraction(eta.item() if hasattr(eta, "item") else eta)  # numpy scalars as Python numbers


def bracket_table(min_budget: int, max_budget: int, eta: float = 3) -> tuple[BracketSpec, ...]:
    """Hyperband's brackets s = s_max..0 (Li et al. 2018, Algorithm 1 and Table 1).

    s_max = floor(log_eta(R / r)); bracket s starts n = ceil((s_max + 1) / (s + 1) * eta^s)
    configs (the paper's ceil(B / R * eta^s / (s + 1)) with B = (s_max + 1) R); rung i keeps
    floor(n * eta^-i) of them at budget R * eta^(i - s), rounded and clipped to [r, R].
    Rational arithmetic on purpose: in floats log_3(243) = 4.999... and 5/3 * 9 = 15.000...2,
    which would shift s_max and the ceilings.
    """
    integers = all(isinstance(v, int) and not isinstance(v, bool) for v in (min_budget, max_budget))
    if not integers or not 1 <= min_budget <= max_budget:
        raise ValueError(f"`1 <= min_budget <= max_budget` must hold for integers, but got "
                         f"min_budget={min_budget!r}, max_budget={max_budget!r}")
    e, hi = as_eta(eta), Fraction(max_budget)
    s_max = 0
    while min_budget * e ** (s_max + 1) <= hi:
        s_max += 1
    table = []
    for s in range(s_max, -1, -1):
        n = math.ceil(Fraction(s_max + 1, s + 1) * e**s)
        budgets = [min(max(math.floor(hi * e ** (i - s) + Fraction(1, 2)), min_budget), max_budget)
                   for i in range(s + 1)]  # rounded half up, then clipped
        table.append(BracketSpec(s, tuple(RungSpec(math.floor(n / e**i), int(b)) for i, b in enumerate(budgets))))
    return tuple(table)


def check_budget_space(space: SearchSpace) -> str:
    """The budget's name, or a ValueError naming the rule a Hyperband space breaks."""
    if space.budget_name is None:
        raise ValueError("hyperband needs a budget dimension such as hw.budget(1, 27); "
                         f"the space has no budget among {list(space)!r}")
    if not space.searched():
        raise ValueError("hyperband needs at least one searched dimension besides the budget")
    return space.budget_name
