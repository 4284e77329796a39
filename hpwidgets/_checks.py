"""The Study API's argument rules, each refused with the rule and the value that broke it."""

from __future__ import annotations

import numbers
from typing import Any


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def checked_seed(seed: Any) -> int | None:
    """An int seed (numpy ints too: random.Random and SQLite refuse them), or None."""
    if seed is not None and not is_int(seed):  # random.Random would take "x" or 1.5 and hide the typo
        raise ValueError(f"`seed` must be an int or None, but got seed={seed!r}")
    return None if seed is None else int(seed)


def check_max_failures(max_failures: Any) -> None:
    if max_failures is not None and not (is_int(max_failures) and max_failures >= 1):
        raise ValueError(f"`max_failures >= 1` must hold (or None), but got max_failures={max_failures!r}")


def check_run(objective: Any, trials: Any, timeout: Any) -> None:
    """``Study.optimize``'s own arguments (the runner checks where trials run)."""
    if not callable(objective):
        raise ValueError(f"`objective` must be callable, but got {objective!r}")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 0:
        raise ValueError(f"`trials >= 0` must hold, but got trials={trials!r}")
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"`timeout > 0` must hold, but got timeout={timeout!r}")
