"""Search algorithms behind one ask/tell contract (see ``base``)."""

from __future__ import annotations

from collections.abc import Callable

from .base import Algorithm
from .random import RandomSearch


def _tpe() -> Algorithm:
    from .tpe_native import NativeTPE
    return NativeTPE()


def _gp() -> Algorithm:
    from .gp_native import NativeGP
    return NativeGP()


def _tpe_hyperopt() -> Algorithm:
    from .tpe import TPE
    return TPE()


def _gp_skopt() -> Algorithm:
    from .gp import GP
    return GP()


def _hyperband() -> Algorithm:
    from .hyperband import Hyperband
    return Hyperband()


# Model-based algorithms import heavy libraries, so they are built lazily by name. "tpe" and "gp"
# are our own (they beat hyperopt's and scikit-optimize's regret, see benchmarks/RESULTS.md);
# the wrapped libraries stay reachable under their own names.
_REGISTRY: dict[str, Callable[[], Algorithm]] = {
    "random": RandomSearch,
    "tpe": _tpe,
    "gp": _gp,
    "hyperband": _hyperband,
    "tpe-hyperopt": _tpe_hyperopt,
    "gp-skopt": _gp_skopt,
}
ALGORITHMS = tuple(_REGISTRY)


def make_algorithm(algo: str | Algorithm) -> Algorithm:
    """An algorithm object from a name (``"tpe"``) or the object itself (for options)."""
    if isinstance(algo, Algorithm):
        return algo
    if not isinstance(algo, str) or algo not in _REGISTRY:
        raise ValueError(f"unknown algorithm {algo!r}; expected one of {list(ALGORITHMS)} or an Algorithm object")
    return _REGISTRY[algo]()


def stored_algorithm(name: str, study: str) -> Algorithm:
    """The built-in algorithm that a stored study last ran, from the name its record keeps."""
    if name not in _REGISTRY:  # an Algorithm object of the user's: only they can rebuild it
        raise ValueError(f"study {study!r} last ran algorithm {name!r}, which is not built in; pass algo= "
                         f"(that Algorithm object, or a name) to resume it")
    return _REGISTRY[name]()


__all__ = ["ALGORITHMS", "Algorithm", "RandomSearch", "make_algorithm"]
