"""One ask/tell interface over our algorithms and the raw libraries they are compared with.

The raw peers are set up the way a user of that library would write the space (hyperopt
``scope.int(hp.quniform(...))`` for ints, skopt ``Categorical`` over the choice values,
Optuna ``suggest_*`` distributions) and run with the library's defaults unless a runner
is given options. Optuna is a benchmark-only dependency; its GP needs torch (see
RESULTS.md for how it was provided).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import hyperopt
import numpy as np
import skopt
from hyperopt import hp
from hyperopt.pyll import scope

import hpwidgets.space as hs
from hpwidgets.algorithms import make_algorithm
from hpwidgets.algorithms.base import Algorithm
from hpwidgets.algorithms.gp import GP
from hpwidgets.algorithms.tpe import TPE
from hpwidgets.trial import FrozenTrial, TrialState

Params = dict[str, Any]


class Runner(Protocol):
    def ask(self) -> Params: ...
    def tell(self, params: Params, loss: float) -> None: ...


class Ours:
    """An hpwidgets algorithm, told COMPLETE trials."""

    def __init__(self, algo: str | Algorithm, space: hs.SearchSpace, seed: int) -> None:
        self.algo = make_algorithm(algo)
        self.algo.setup(space, seed=seed)
        self.n = 0

    def ask(self) -> Params:
        return self.algo.ask()

    def tell(self, params: Params, loss: float) -> None:
        self.algo.tell(FrozenTrial(self.n, TrialState.COMPLETE, params, value=loss))
        self.n += 1


def _hyperopt_node(name: str, dim: hs.Dimension) -> Any:
    if isinstance(dim, hs.Choice):
        return hp.choice(name, list(dim.values))
    if isinstance(dim, hs.Int):
        if dim.log:
            return scope.int(hp.qloguniform(name, math.log(dim.low), math.log(dim.high), 1))
        return scope.int(hp.quniform(name, dim.low, dim.high, dim.step))
    if dim.log:
        return hp.loguniform(name, math.log(dim.low), math.log(dim.high))
    return hp.uniform(name, dim.low, dim.high)


class RawHyperopt:
    """hyperopt's own Trials + tpe.suggest, the documents inserted as fmin would."""

    def __init__(self, space: hs.SearchSpace, seed: int, **tpe_options: Any) -> None:
        self.expr = {name: _hyperopt_node(name, d) for name, d in space.searched().items()}
        self.domain = hyperopt.Domain(lambda _: 0.0, self.expr)
        self.trials = hyperopt.Trials()
        self.rng = np.random.default_rng(seed)
        self.suggest: Callable[..., Any] = lambda *a: hyperopt.tpe.suggest(*a, **tpe_options)
        self.last: dict[str, Any] | None = None
        self.suggest_seconds = 0.0  # the tpe.suggest call alone, for the overhead bar

    def ask(self) -> Params:
        new_ids = self.trials.new_trial_ids(1)
        start = time.perf_counter()
        docs = self.suggest(new_ids, self.domain, self.trials, int(self.rng.integers(2**31 - 1)))
        self.suggest_seconds = time.perf_counter() - start
        self.last = docs[0]
        vals = {k: v[0] for k, v in docs[0]["misc"]["vals"].items()}
        return dict(hyperopt.space_eval(self.expr, vals))

    def tell(self, params: Params, loss: float) -> None:
        if self.last is None:  # history from elsewhere: write the document ourselves
            tid = self.trials.new_trial_ids(1)[0]
            misc = {"tid": tid, "cmd": None, "workdir": None, "idxs": {k: [tid] for k in self.expr},
                    "vals": {k: [_hyperopt_value(self.expr[k], v)] for k, v in params.items() if k in self.expr}}
            self.last = self.trials.new_trial_docs([tid], [None], [{"status": "new"}], [misc])[0]
        doc, self.last = self.last, None
        doc["state"], doc["result"] = hyperopt.JOB_STATE_DONE, {"status": "ok", "loss": float(loss)}
        self.trials.insert_trial_doc(doc)
        self.trials.refresh()


def _hyperopt_value(node: Any, value: Any) -> Any:
    """hyperopt stores a choice as its index."""
    if node.name == "switch":
        options = [o.obj for o in node.pos_args[1:]]
        return options.index(value)
    return value


def skopt_dimensions(space: hs.SearchSpace) -> list[Any]:
    dims: list[Any] = []
    for dim in space.searched().values():
        if isinstance(dim, hs.Choice):
            dims.append(skopt.space.Categorical(list(dim.values)))
        elif isinstance(dim, hs.Int):
            # skopt has no step: a user would search the index of a stepped grid.
            hi = dim.high if dim.step == 1 else (dim.high - dim.low) // dim.step
            lo = dim.low if dim.step == 1 else 0
            dims.append(skopt.space.Integer(lo, hi, prior="log-uniform" if dim.log else "uniform"))
        else:
            dims.append(skopt.space.Real(dim.low, dim.high, prior="log-uniform" if dim.log else "uniform"))
    return dims


class RawSkopt:
    """skopt.Optimizer with every default (gp, gp_hedge, L-BFGS acquisition, 10 initial)."""

    def __init__(self, space: hs.SearchSpace, seed: int, **options: Any) -> None:
        self.dims = space.searched()
        self.opt = skopt.Optimizer(skopt_dimensions(space), random_state=seed, **options)

    def _value(self, dim: hs.Dimension, raw: Any) -> Any:
        if isinstance(dim, hs.Int) and dim.step > 1:
            return dim.low + int(raw) * dim.step
        return raw.item() if isinstance(raw, np.generic) else raw

    def ask(self) -> Params:
        x = self.opt.ask()
        return {name: self._value(d, v) for (name, d), v in zip(self.dims.items(), x, strict=True)}

    def tell(self, params: Params, loss: float) -> None:
        x = []
        for name, d in self.dims.items():
            v = params[name]
            x.append((v - d.low) // d.step if isinstance(d, hs.Int) and d.step > 1 else v)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "objective has been evaluated at point" on repeats
            self.opt.tell(x, float(loss))


def optuna_distributions(space: hs.SearchSpace) -> dict[str, Any]:
    import optuna.distributions as od

    out: dict[str, Any] = {}
    for name, dim in space.searched().items():
        if isinstance(dim, hs.Choice):
            out[name] = od.CategoricalDistribution(list(dim.values))
        elif isinstance(dim, hs.Int):
            out[name] = od.IntDistribution(dim.low, dim.high, log=dim.log, step=dim.step)
        else:
            out[name] = od.FloatDistribution(dim.low, dim.high, log=dim.log)
    return out


class RawOptuna:
    """An Optuna study through ask-and-tell with fixed distributions ("tpe" or "gp" sampler)."""

    def __init__(self, space: hs.SearchSpace, seed: int, sampler: str = "tpe") -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        make = optuna.samplers.TPESampler if sampler == "tpe" else optuna.samplers.GPSampler
        self.optuna = optuna
        self.study = optuna.create_study(sampler=make(seed=seed))
        self.distributions = optuna_distributions(space)
        self.pending: list[Any] = []

    def ask(self) -> Params:
        trial = self.study.ask(self.distributions)
        self.pending.append(trial)
        return dict(trial.params)

    def tell(self, params: Params, loss: float) -> None:
        if self.pending:
            self.study.tell(self.pending.pop(0), float(loss))
            return
        self.study.add_trial(self.optuna.trial.create_trial(
            params=dict(params), distributions=self.distributions, value=float(loss)))


def optuna_gp_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# name -> factory(space, seed); the order is the order of the tables. Our wrappers are built
# from their classes: the registry names "tpe" and "gp" may point at other implementations.
METHODS: dict[str, Callable[[hs.SearchSpace, int], Runner]] = {
    "ours tpe-hyperopt": lambda space, seed: Ours(TPE(), space, seed),
    # hyperopt's own default start-up (20 random trials), to compare like with like:
    "ours tpe-hyperopt (n_startup_trials=20)": lambda space, seed: Ours(TPE(n_startup_trials=20), space, seed),
    "ours gp-skopt": lambda space, seed: Ours(GP(), space, seed),
    "ours random": lambda space, seed: Ours("random", space, seed),
    "hyperopt tpe (defaults)": lambda space, seed: RawHyperopt(space, seed),
    "skopt gp (defaults)": lambda space, seed: RawSkopt(space, seed),
    "optuna tpe": lambda space, seed: RawOptuna(space, seed, "tpe"),
    "optuna gp": lambda space, seed: RawOptuna(space, seed, "gp"),
}
