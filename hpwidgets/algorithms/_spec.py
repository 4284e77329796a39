"""An algorithm's *spec*: its name and the options its constructor was given, as one string
(``hyperband(eta=2, sampler='tpe')``) that a study stores, so a resume rebuilds the same algorithm.

Options that are not plain literals (an Algorithm as a sampler, GP priors) cannot be written
down: such a spec ends in ``(...)``, and resuming it needs the object again.
"""

from __future__ import annotations

import ast
import functools
import inspect
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

UNWRITTEN = "(...)"  # options exist but are not literals: only the user's object rebuilds it
_LITERALS = (str, int, float, bool, type(None))


def record_options(cls: type) -> None:
    """Wrap ``cls.__init__`` so the most-derived constructor keeps the arguments it was called with."""
    init = cls.__dict__.get("__init__")
    if init is None:
        return
    signature = inspect.signature(init)

    @functools.wraps(init)
    def recorded(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if type(self).__init__ is recorded:  # a subclass's own constructor records its own arguments
            bound = signature.bind(self, *args, **kwargs)
            self._options = {k: v for k, v in list(bound.arguments.items())[1:]}

    cls.__init__ = recorded  # type: ignore[misc]


def _literal(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_literal(v) for v in value)
    return isinstance(value, (*_LITERALS, numbers.Real, np.bool_))


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones: ``repr(np.float64(0.1))`` would not read back as a literal."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value) if isinstance(value, str) else value


def spec_of(name: str, options: Mapping[str, Any], ours: bool) -> str:
    """``name`` alone without options; ``name(k=v, ...)`` with literal ones; ``name(...)`` otherwise.
    A class from outside hpwidgets that kept a built-in name is marked unwritten too."""
    if not ours:
        return f"{name}{UNWRITTEN}"
    if not options:
        return name
    if not all(_literal(v) for v in options.values()):
        return f"{name}{UNWRITTEN}"
    return f"{name}({', '.join(f'{k}={_plain(v)!r}' for k, v in options.items())})"


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """(name, options) from a spec; ValueError naming the spec when it is not one."""
    name, bracket, rest = spec.partition("(")
    if not bracket:
        return spec, {}
    if spec.endswith(UNWRITTEN):
        raise ValueError(f"algorithm {spec!r} was built from options that cannot be written down; "
                         f"pass the Algorithm object itself")
    try:
        call = ast.parse(f"f({rest}", mode="eval").body
        if not isinstance(call, ast.Call) or call.args or any(k.arg is None for k in call.keywords):
            raise ValueError("only keyword options")
        options = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    except (SyntaxError, ValueError) as error:
        raise ValueError(f"algorithm spec {spec!r} is not name(option=value, ...): {error}") from None
    return name, options
