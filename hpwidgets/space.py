"""Search spaces: typed dimensions keyed by name, validation and JSON round-trips.

Bounds are always in *value* space (``loguniform(1e-4, 1e-1)``), never in log space.
Every dimension maps values to and from the unit interval, so algorithms and sliders
can share one numeric view of the space without knowing the distribution.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Scalar = str | int | float | bool | None
_SCALAR_TYPES = (str, int, float, bool, type(None))


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _finite_number(name: str, value: Any) -> float:
    is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    _require(is_number, f"`{name}` must be a number, but got {name}={value!r}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int beyond a float's range, e.g. 10**400
        finite = False
    _require(finite, f"`{name}` must be finite, but got {name}={value!r}")
    return _plain(value)


def _plain(value: Any) -> Any:
    """Numpy scalars become the Python values users and JSON expect."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class Float:
    """A real dimension; ``log`` samples uniformly in log space, ``q`` rounds to a grid.

    It yields Python floats, also for int bounds (``uniform(0, 10)``); only a grid that is
    integral (``quniform(10, 200, 1)``) yields ints."""

    low: float
    high: float
    log: bool = False
    q: float | None = None
    kind = "float"

    def __post_init__(self) -> None:
        low, high = _finite_number("low", self.low), _finite_number("high", self.high)
        _require(low < high, f"`low < high` must hold, but got low={low!r}, high={high!r}")
        _require(math.isfinite(float(high) - float(low)),
                 f"`high - low` must be finite, but got low={low!r}, high={high!r}")
        if self.log:
            _require(low > 0, f"`low > 0` must hold for a log scale, but got low={low!r}")
        # Python floats, even for uniform(0, 10): a suggestion clipped to a bound must not be the int 0.
        _require(float(low) < float(high),
                 f"`low < high` must hold as floats, but got low={low!r}, high={high!r} (the same float)")
        object.__setattr__(self, "low", float(low))
        object.__setattr__(self, "high", float(high))
        if self.q is not None:
            q = _finite_number("q", self.q)
            _require(q > 0, f"`q > 0` must hold, but got q={q!r}")
            _require(q <= high - low, f"`q <= high - low` must hold, but got q={q!r}, high - low={high - low!r}")
            _require(math.isfinite(max(abs(low), abs(high)) / q),
                     f"the grid `max(|low|, |high|) / q` must be finite, but got q={q!r}")
            object.__setattr__(self, "q", q)

    @property
    def integral_grid(self) -> bool:
        """quniform(10, 200, 1) yields ints: the seed passes them to RandomForest directly."""
        return self.q is not None and all(float(v).is_integer() for v in (self.low, self.high, self.q))

    def from_unit(self, u: float) -> float | int:
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            x = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            x = self.low + u * (self.high - self.low)
        return self.snap(x)

    def to_unit(self, value: float) -> float:
        x = min(max(float(value), self.low), self.high)
        if self.log:
            return (math.log(x) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (x - self.low) / (self.high - self.low)

    def snap(self, x: float) -> float | int:
        """Clip into [low, high] and round to the q grid (hyperopt's rounding, clipped)."""
        x = min(max(float(x), self.low), self.high)
        if self.q is None:
            return x
        x = min(max(round(x / self.q) * self.q, self.low), self.high)
        return int(round(x)) if self.integral_grid else float(x)

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high

    @property
    def default(self) -> float | int:
        return self.from_unit(0.5)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "float", "low": self.low, "high": self.high, "log": self.log, "q": self.q}


@dataclass(frozen=True)
class Int:
    """An integer dimension on the grid ``low, low + step, ..., high`` (optionally log-scaled)."""

    low: int
    high: int
    log: bool = False
    step: int = 1
    kind = "int"

    def __post_init__(self) -> None:
        for name in ("low", "high", "step"):
            value = getattr(self, name)
            ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            _require(ok, f"`{name}` must be an integer, but got {name}={value!r}")
        low, high, step = int(self.low), int(self.high), int(self.step)
        _require(low < high, f"`low < high` must hold, but got low={low!r}, high={high!r}")
        _require(step >= 1, f"`step >= 1` must hold, but got step={step!r}")
        _require(-2**63 <= low and high < 2**63,
                 f"int bounds must fit in 64 bits, but got low={low!r}, high={high!r}")
        _require((high - low) % step == 0,
                 f"`step` must divide `high - low`, but got step={step!r}, high - low={high - low!r}")
        if self.log:
            _require(low > 0, f"`low > 0` must hold for a log scale, but got low={low!r}")
            _require(step == 1, f"a log-scaled int needs step=1, but got step={step!r}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "step", step)

    def from_unit(self, u: float) -> int:
        u = min(max(float(u), 0.0), 1.0)
        # Widen by half a step so the end points get their fair share of the unit interval.
        lo, hi = self.low - 0.5 * self.step, self.high + 0.5 * self.step
        if self.log:
            lo, hi = max(self.low - 0.5, 0.5), self.high + 0.5
            x = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
        else:
            x = lo + u * (hi - lo)
        return self.snap(x)

    def to_unit(self, value: float) -> float:
        x = min(max(float(value), self.low), self.high)
        if self.log:
            lo, hi = max(self.low - 0.5, 0.5), self.high + 0.5
            return (math.log(x) - math.log(lo)) / (math.log(hi) - math.log(lo))
        lo, hi = self.low - 0.5 * self.step, self.high + 0.5 * self.step
        return (x - lo) / (hi - lo)

    def snap(self, x: float) -> int:
        k = round((float(x) - self.low) / self.step)
        return int(min(max(self.low + k * self.step, self.low), self.high))

    def contains(self, value: Any) -> bool:
        is_int = isinstance(value, int) and not isinstance(value, bool)
        return is_int and self.low <= value <= self.high and (value - self.low) % self.step == 0

    @property
    def default(self) -> int:
        return self.from_unit(0.5)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "int", "low": self.low, "high": self.high, "log": self.log, "step": self.step}


@dataclass(frozen=True)
class Budget(Int):
    """Hyperband's resource (e.g. epochs); other algorithms fix it at ``high``."""

    kind = "budget"

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(self.low >= 1, f"`low >= 1` must hold for a budget, but got low={self.low!r}")

    @property
    def default(self) -> int:
        return self.high

    def to_dict(self) -> dict[str, Any]:
        return {"type": "budget", "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Choice:
    """One of a list of values; algorithms see the values themselves, never indices."""

    values: tuple[Scalar, ...]
    kind = "choice"

    def __post_init__(self) -> None:
        values = tuple(_plain(v) for v in self.values)
        _require(len(values) > 0, "`choice` needs at least one value, but got none")
        for v in values:
            _require(isinstance(v, _SCALAR_TYPES),
                     f"choice values must be str, int, float, bool or None, but got {v!r}")
        _require(not any(isinstance(v, float) and math.isnan(v) for v in values),
                 "choice values must not be NaN: NaN equals nothing, so it could never be matched")
        _require(len(set(map(repr, values))) == len(values), f"choice values must be distinct, but got {values!r}")
        object.__setattr__(self, "values", values)

    def index(self, value: Any) -> int:
        for i, v in enumerate(self.values):
            if type(v) is type(value) and v == value:
                return i
        for i, v in enumerate(self.values):  # 16.0 for 16 after a JSON round-trip
            if v == value:
                return i
        raise ValueError(f"{value!r} is not one of the choices {list(self.values)!r}")

    def from_unit(self, u: float) -> Scalar:
        i = min(int(float(u) * len(self.values)), len(self.values) - 1)
        return self.values[max(i, 0)]

    def to_unit(self, value: Any) -> float:
        return (self.index(value) + 0.5) / len(self.values)

    def contains(self, value: Any) -> bool:
        try:
            self.index(value)
        except ValueError:
            return False
        return True

    @property
    def default(self) -> Scalar:
        return self.values[0]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "choice", "values": list(self.values)}


Dimension = Float | Int | Budget | Choice
def _flag(spec: Mapping[str, Any], key: str) -> bool:
    """A JSON true/false: a hand-written "false" (a string) must not read as True."""
    value = spec.get(key, False)
    _require(isinstance(value, bool), f"`{key}` must be true or false, but got {key}={value!r}")
    return value


def _values(spec: Mapping[str, Any]) -> tuple[Any, ...]:
    values = spec["values"]
    _require(isinstance(values, list | tuple), f"`values` must be a list, but got values={values!r}")
    return tuple(values)


_FROM_DICT = {
    "float": lambda d: Float(d["low"], d["high"], _flag(d, "log"), d.get("q")),
    "int": lambda d: Int(d["low"], d["high"], _flag(d, "log"), d.get("step", 1)),
    "budget": lambda d: Budget(d["low"], d["high"]),
    "choice": lambda d: Choice(_values(d)),
}


def dimension_from_dict(spec: Mapping[str, Any]) -> Dimension:
    _require(isinstance(spec, Mapping), f"a dimension spec must be a mapping, but got {spec!r}")
    kind = spec.get("type")
    _require(isinstance(kind, str) and kind in _FROM_DICT,
             f"unknown dimension type {kind!r}; expected one of {sorted(_FROM_DICT)}")
    try:
        return _FROM_DICT[kind](spec)
    except (KeyError, TypeError) as error:
        raise ValueError(f"a {kind} dimension spec needs its fields, but got {dict(spec)!r} ({error})") from None


# --- the public constructors (`hw.uniform(...)` etc.) -------------------------------------

def uniform(low: float, high: float) -> Float:
    """A real value drawn uniformly from [low, high]. ``hw.uniform(0.01, 0.99)``"""
    return Float(low, high)


def loguniform(low: float, high: float) -> Float:
    """A positive real, uniform in log space; bounds in value space. ``hw.loguniform(1e-4, 1e-1)``"""
    return Float(low, high, log=True)


def quniform(low: float, high: float, q: float = 1) -> Float:
    """``round(uniform(low, high) / q) * q`` clipped to [low, high]; ints when all three are ints."""
    return Float(low, high, q=q)


def integer(low: int, high: int, *, log: bool = False, step: int = 1) -> Int:
    """An integer in [low, high] on a ``step`` grid (exported as ``hw.int``)."""
    return Int(low, high, log=log, step=step)


def choice(*values: Scalar) -> Choice:
    """One of the given values: ``hw.choice(16, 32, 64)`` or ``hw.choice([16, 32, 64])``."""
    if len(values) == 1 and isinstance(values[0], (list, tuple)):
        values = tuple(values[0])
    return Choice(tuple(values))


def budget(low: int, high: int) -> Budget:
    """Hyperband's resource, e.g. epochs: ``hw.budget(1, 27)``."""
    return Budget(low, high)


class SearchSpace(Mapping[str, Dimension]):
    """An ordered, immutable mapping of parameter name to dimension."""

    def __init__(self, dimensions: Mapping[str, Dimension]) -> None:
        _require(isinstance(dimensions, Mapping), f"a search space must be a mapping of name to dimension, "
                                                   f"but got {type(dimensions).__name__}")
        self._dims: dict[str, Dimension] = {}
        for name, dim in dimensions.items():
            _require(isinstance(name, str) and name != "",
                     f"parameter names must be non-empty strings, but got {name!r}")
            _require(isinstance(dim, (Float, Int, Choice)),
                     f"parameter {name!r} must be a dimension such as hw.uniform(0, 1), but got {dim!r}")
            self._dims[name] = dim
        _require(len(self._dims) > 0, "a search space needs at least one dimension, but got none")
        budgets = [n for n, d in self._dims.items() if isinstance(d, Budget)]
        _require(len(budgets) <= 1, f"a search space may hold at most one budget, but got {budgets!r}")

    @classmethod
    def coerce(cls, space: SearchSpace | Mapping[str, Dimension]) -> SearchSpace:
        return space if isinstance(space, SearchSpace) else cls(space)

    def __getitem__(self, name: str) -> Dimension:
        return self._dims[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dims)

    def __len__(self) -> int:
        return len(self._dims)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self._dims == other._dims

    def __hash__(self) -> int:
        # Equal spaces must hash alike: dimensions compare as Python values (choice(0, 1) equals
        # choice(False, True)), so the hash uses the names alone, not the JSON form.
        return hash(frozenset(self._dims))

    def __repr__(self) -> str:
        return f"SearchSpace({self._dims!r})"

    @property
    def budget_name(self) -> str | None:
        return next((n for n, d in self._dims.items() if isinstance(d, Budget)), None)

    def searched(self) -> dict[str, Dimension]:
        """The dimensions an algorithm chooses (everything but the budget)."""
        return {n: d for n, d in self._dims.items() if not isinstance(d, Budget)}

    def with_budget_at_max(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Complete a suggestion: algorithms without a resource schedule run at full budget."""
        out = dict(params)
        if self.budget_name is not None:
            out.setdefault(self.budget_name, self._dims[self.budget_name].high)
        return out

    def validate_params(self, params: Mapping[str, Any]) -> None:
        unknown = sorted(set(params) - set(self._dims))
        _require(not unknown, f"unknown parameter names {unknown!r}; the space has {list(self._dims)!r}")
        missing = [n for n in self._dims if n not in params]
        _require(not missing, f"missing parameters {missing!r}")

    def contains(self, params: Mapping[str, Any]) -> bool:
        """True when every parameter is inside its dimension (the rule for greyed-out trials)."""
        return all(n in params and d.contains(params[n]) for n, d in self._dims.items())

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dim.to_dict() for name, dim in self._dims.items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, spec: Mapping[str, Mapping[str, Any]]) -> SearchSpace:
        _require(isinstance(spec, Mapping), f"a space spec must be a mapping of name to dimension, but got {spec!r}")
        return cls({name: dimension_from_dict(d) for name, d in spec.items()})

    @classmethod
    def from_json(cls, text: str) -> SearchSpace:
        return cls.from_dict(json.loads(text))

    def replace(self, **dimensions: Dimension) -> SearchSpace:
        """A copy with some dimensions changed (slider edits); names must already exist."""
        self.validate_params({**{n: None for n in self._dims}, **dimensions})
        return SearchSpace({**self._dims, **dimensions})
