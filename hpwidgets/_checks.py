"""The Study API's argument rules, each refused with the rule and the value that broke it."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def checked_seed(seed: Any) -> int | None:
    """An int seed (numpy ints too: random.Random and SQLite refuse them), or None."""
    if seed is not None and not is_int(seed):  # random.Random would take "x" or 1.5 and hide the typo
        raise ValueError(f"`seed` must be an int or None, but got seed={seed!r}")
    return None if seed is None else int(seed)


def checked_name(name: Any) -> str | None:
    """A study name: a non-empty string, or None (a generated one)."""
    if name is None or (isinstance(name, str) and name):
        return name
    hint = "; the space goes second, or as `space=`" if isinstance(name, Mapping) else ""
    raise ValueError(f"`name` must be a non-empty string or None, but got name={name!r}{hint}")


def count(name: str, value: Any, least: int) -> int:
    """An int count of at least ``least`` (numpy ints too), else the rule and the value."""
    if not (is_int(value) and value >= least):
        raise ValueError(f"`{name}` must be an int >= {least}, but got {name}={value!r}")
    return int(value)


def check_max_failures(max_failures: Any) -> None:
    if max_failures is not None:
        count("max_failures", max_failures, 1)


def check_run(objective: Any, trials: Any, timeout: Any) -> int:
    """``Study.optimize``'s own arguments (the runner checks where trials run); ``trials`` as an int."""
    if not callable(objective):
        raise ValueError(f"`objective` must be callable, but got {objective!r}")
    trials = count("trials", trials, 0)
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"`timeout > 0` must hold, but got timeout={timeout!r}")
    return trials
