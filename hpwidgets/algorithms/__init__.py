"""Search algorithms behind one ask/tell contract (see ``base``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._spec import UNWRITTEN, parse_spec
from .base import Algorithm
from .random import RandomSearch


def _tpe(**options: Any) -> Algorithm:
    from .tpe_native import NativeTPE
    return NativeTPE(**options)


def _gp(**options: Any) -> Algorithm:
    from .gp_native import NativeGP
    return NativeGP(**options)


def _tpe_hyperopt(**options: Any) -> Algorithm:
    from .tpe import TPE
    return TPE(**options)


def _gp_skopt(**options: Any) -> Algorithm:
    from .gp import GP
    return GP(**options)


def _hyperband(**options: Any) -> Algorithm:
    from .hyperband import Hyperband
    return Hyperband(**options)


# Model-based algorithms import heavy libraries, so they are built lazily by name. "tpe" and "gp"
# are our own (they beat hyperopt's and scikit-optimize's regret, see benchmarks/RESULTS.md);
# the wrapped libraries stay reachable under their own names.
_REGISTRY: dict[str, Callable[..., Algorithm]] = {
    "random": RandomSearch,
    "tpe": _tpe,
    "gp": _gp,
    "hyperband": _hyperband,
    "tpe-hyperopt": _tpe_hyperopt,
    "gp-skopt": _gp_skopt,
}
ALGORITHMS = tuple(_REGISTRY)


def make_algorithm(algo: str | Algorithm) -> Algorithm:
    """An algorithm object from a name (``"tpe"``), a spec with options (``"hyperband(eta=2)"``,
    what ``Algorithm.spec()`` writes) or the object itself."""
    if isinstance(algo, Algorithm):
        return algo
    name, options = parse_spec(algo) if isinstance(algo, str) else (algo, {})
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown algorithm {algo!r}; expected one of {list(ALGORITHMS)} or an Algorithm object")
    try:
        return _REGISTRY[name](**options)
    except TypeError as error:  # an option the constructor does not take
        raise ValueError(f"algorithm {algo!r}: {error}") from None


def stored_algorithm(spec: str, study: str) -> Algorithm:
    """The built-in algorithm that a stored study last ran, rebuilt from the spec its record keeps."""
    name = spec.partition("(")[0]
    if name not in _REGISTRY or spec.endswith(UNWRITTEN):  # the user's object: only they can rebuild it
        raise ValueError(_not_rebuilt(spec, study))
    return make_algorithm(spec)


def _not_rebuilt(spec: str, study: str) -> str:
    return (f"study {study!r} last ran algorithm {spec!r}, which is not built in or has options that "
            f"cannot be stored; pass algo= (that Algorithm object, or a name) to resume it")


def readable_algorithm(spec: str, study: str) -> Algorithm | None:
    """For reading a stored study (report, clean): None when ``stored_algorithm`` rebuilds its
    algorithm, else a ``StoredSpec`` standing in for the object only the user can rebuild."""
    try:
        stored_algorithm(spec, study)
    except ValueError:
        return StoredSpec(spec, study)
    return None


class StoredSpec(Algorithm):
    """A stored study's algorithm as its spec's text: enough to read the study (its ``spec()`` is
    the stored one, so nothing is rewritten), never to run it (``ask`` asks for ``algo=``)."""

    def __init__(self, spec: str, study: str) -> None:
        super().__init__()
        self.name = spec.partition("(")[0]
        self._spec, self._study = spec, study

    def spec(self) -> str:
        return self._spec

    def ask(self) -> dict[str, Any]:
        raise ValueError(_not_rebuilt(self._spec, self._study))


__all__ = ["ALGORITHMS", "Algorithm", "RandomSearch", "make_algorithm"]
