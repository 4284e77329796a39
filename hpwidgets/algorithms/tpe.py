"""TPE: hyperopt's ``tpe.suggest`` driven through ask/tell.

hyperopt normally owns the loop (``fmin``); here we keep its ``Trials`` database ourselves.
Each told trial is turned into a hyperopt trial document once and appended, so an ``ask``
costs one ``tpe.suggest`` call and nothing that grows with the history beyond what
hyperopt itself does. The hyperopt ``Domain`` is built once per search space.

Encoding (our bounds are in value space, hyperopt's log bounds are in log space):

* ``Float``: ``hp.uniform`` / ``hp.loguniform``; with ``q``: ``hp.quniform`` /
  ``hp.qloguniform``, then ``dim.snap`` clips hyperopt's rounding back into bounds.
* ``Int``: an index ``k`` on the grid ``low + k * step`` through ``hp.quniform`` over
  ``[-0.5, K + 0.5]`` so both end points get a full cell; log ints use ``hp.qloguniform``
  on the values themselves (log ints always have step 1).
* ``Choice``: ``hp.choice`` over indices, mapped back to the values.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from hyperopt import STATUS_FAIL, STATUS_OK, Domain, Trials, hp, tpe
from hyperopt.base import JOB_STATE_DONE

from ..space import Choice, Dimension, Int, SearchSpace
from ..trial import FrozenTrial
from .base import Algorithm


def _hp_node(name: str, dim: Dimension) -> Any:
    """The hyperopt expression that samples ``dim`` in hyperopt's own encoding."""
    if isinstance(dim, Choice):
        return hp.choice(name, list(range(len(dim.values))))
    if isinstance(dim, Int):
        if dim.log:
            lo, hi = max(dim.low - 0.5, 0.5), dim.high + 0.5  # same cells as Int.from_unit
            return hp.qloguniform(name, math.log(lo), math.log(hi), 1)
        n_steps = (dim.high - dim.low) // dim.step
        return hp.quniform(name, -0.5, n_steps + 0.5, 1)
    if dim.q is not None:
        if dim.log:
            return hp.qloguniform(name, math.log(dim.low), math.log(dim.high), dim.q)
        return hp.quniform(name, dim.low, dim.high, dim.q)
    if dim.log:
        return hp.loguniform(name, math.log(dim.low), math.log(dim.high))
    return hp.uniform(name, dim.low, dim.high)


def _decode(dim: Dimension, raw: Any) -> Any:
    """hyperopt's sampled number -> our plain Python value."""
    if isinstance(dim, Choice):
        return dim.values[min(max(int(raw), 0), len(dim.values) - 1)]
    if isinstance(dim, Int) and not dim.log:
        return dim.snap(dim.low + round(float(raw)) * dim.step)
    return dim.snap(float(raw))


def _encode(dim: Dimension, value: Any) -> float | int:
    """Our value -> the number hyperopt would have sampled for it."""
    if isinstance(dim, Choice):
        return dim.index(value)
    if isinstance(dim, Int) and not dim.log:
        return float((value - dim.low) // dim.step)
    return float(value)


def _no_objective(*_: Any) -> None:
    """Domain needs a function; we never let hyperopt evaluate anything."""


class TPE(Algorithm):
    """Tree-structured Parzen Estimator (hyperopt) behind the ask/tell contract.

    Options are passed through to ``hyperopt.tpe.suggest``: ``n_startup_trials`` random
    trials first (hyperopt's ``n_startup_jobs``; failed trials count, as in hyperopt),
    then ``n_ei_candidates`` draws from the good-trials density ranked by expected
    improvement, ``gamma`` the good/bad split, ``prior_weight`` the prior's share.
    """

    name = "tpe-hyperopt"

    def __init__(self, n_startup_trials: int = 10, n_ei_candidates: int = 24, gamma: float = 0.25,
                 prior_weight: float = 1.0) -> None:
        super().__init__()
        self.n_startup_trials = n_startup_trials
        self.n_ei_candidates = n_ei_candidates
        self.gamma = gamma
        self.prior_weight = prior_weight
        self._suggest: Callable[..., list[dict[str, Any]]] = functools.partial(
            tpe.suggest, n_startup_jobs=n_startup_trials, n_EI_candidates=n_ei_candidates,
            gamma=gamma, prior_weight=prior_weight, verbose=False)
        self._dims: dict[str, Dimension] = {}
        self._domain: Domain | None = None
        self._trials = Trials()
        self._next_tid = 0

    def _on_setup(self) -> None:
        assert self.space is not None
        self._rebuild(self.space)

    def _rebuild(self, space: SearchSpace) -> None:
        """A fresh domain and an empty trial database for ``space``."""
        self._dims = space.searched()
        nodes = {name: _hp_node(name, d) for name, d in self._dims.items()} or {"_": hp.uniform("_", 0, 1)}
        self._domain = Domain(_no_objective, nodes)
        self._trials = Trials()
        self._next_tid = 0

    def ask(self) -> dict[str, Any]:
        assert self._domain is not None, "setup() must be called before ask()"
        if not self._dims:  # only a budget: nothing for hyperopt to choose
            return {}
        # The id only has to be new to this database; suggest() never stores it.
        docs = self._suggest([self._next_tid], self._domain, self._trials, self.next_seed())
        vals = docs[0]["misc"]["vals"]
        return {name: _decode(dim, vals[name][0]) for name, dim in self._dims.items()}

    def tell(self, trial: FrozenTrial) -> None:
        super().tell(trial)
        if self._domain is not None and self.in_space(trial):
            self._insert(trial)
            self._trials.refresh()

    def set_space(self, space: SearchSpace) -> None:
        """Refit on the in-space history only: out-of-range points would bias the densities."""
        super().set_space(space)
        self._rebuild(space)
        # FAIL trials stay in, as tell() keeps them: hyperopt ranks them as infinitely bad.
        for trial in self.history:
            if self.in_space(trial):
                self._insert(trial)
        self._trials.refresh()

    def _insert(self, trial: FrozenTrial) -> None:
        """Append one finished trial as a hyperopt document (no refresh)."""
        tid = self._next_tid
        self._next_tid += 1
        loss = self.loss(trial)
        # A fail document has no loss; tpe.suggest ranks it as +inf, hyperopt's own rule.
        result = {"status": STATUS_FAIL} if loss is None else {"status": STATUS_OK, "loss": float(loss)}
        misc = {"tid": tid, "cmd": None, "workdir": None,
                "idxs": {name: [tid] for name in self._dims},
                "vals": {name: [_encode(dim, trial.params[name])] for name, dim in self._dims.items()}}
        doc = self._trials.new_trial_docs([tid], [None], [result], [misc])[0]
        doc["state"] = JOB_STATE_DONE
        self._trials.insert_trial_doc(doc)
