"""GP: Bayesian optimisation with scikit-optimize's ``Optimizer`` behind ask/tell.

Encoding into skopt dimensions: ``Real`` (``prior="log-uniform"`` for log floats; a ``q``
grid is applied afterwards by ``dim.snap``), ``Integer`` over the index grid
``low + k * step`` (log ints, which always have step 1, use their values and a log prior),
``Categorical`` over choice indices mapped back to the values. The budget is not searched.

Speed: skopt's defaults score 10000 random candidates, polish the best 5 with L-BFGS for
each of the three ``gp_hedge`` acquisitions and refit the kernel from 3 starts, which
costs 1-5 s per trial at 100 trials here. We score 1000 candidates and polish the best 2,
refit the kernel from one start that is the previous fit's optimum (warm start), compute
the predictive std with a matrix product (skopt's einsum is the hot spot), keep one model
instead of all of them, and run with one BLAS thread. Scoring candidates without L-BFGS
was cheaper still but clearly worse on Hartmann6. ``benchmarks/RESULTS.md`` has the
timings and the regret.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np
from skopt import Optimizer
from skopt.learning import GaussianProcessRegressor
from skopt.learning.gaussian_process.kernels import Sum, WhiteKernel
from skopt.space import Categorical, Integer, Real
from skopt.utils import cook_estimator, has_gradients
from threadpoolctl import ThreadpoolController

from ..space import Choice, Dimension, Int, SearchSpace
from ..trial import FrozenTrial
from ._model_based import is_finite
from .base import Algorithm

_LIARS = ("cl_min", "cl_mean", "cl_max")
_F = TypeVar("_F", bound=Callable[..., Any])
_BLAS = ThreadpoolController()  # after the skopt/scipy imports, so their BLAS is known


def _one_blas_thread(method: _F) -> _F:
    """Run ``method`` with one BLAS thread.

    The matrices are small (trials x trials); threads buy nothing there, and on a shared
    2-core machine spinning OpenBLAS threads made each trial 2-3x slower (Optuna's GP
    limits its threads for the same reason).
    """
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _BLAS.limit(limits=1, user_api="blas"):
            return method(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
_ACQ_FUNCS = ("gp_hedge", "EI", "PI", "LCB")  # skopt's "...ps" variants want timings we don't have


def _skopt_dim(dim: Dimension) -> Real | Integer | Categorical:
    if isinstance(dim, Choice):
        return Categorical(list(range(len(dim.values))))
    if isinstance(dim, Int):
        if dim.log:
            return Integer(dim.low, dim.high, prior="log-uniform", base=10)
        return Integer(0, (dim.high - dim.low) // dim.step)
    return Real(float(dim.low), float(dim.high), prior="log-uniform" if dim.log else "uniform")


def _encode(dim: Dimension, value: Any) -> float | int:
    """Our value -> the point skopt would have suggested for it."""
    if isinstance(dim, Choice):
        return dim.index(value)
    if isinstance(dim, Int):
        return int(value) if dim.log else int((value - dim.low) // dim.step)
    return float(value)


def _decode(dim: Dimension, raw: Any) -> Any:
    """skopt's numpy number -> our plain Python value."""
    if isinstance(dim, Choice):
        return dim.values[int(raw)]
    if isinstance(dim, Int) and not dim.log:
        return dim.snap(dim.low + int(raw) * dim.step)
    return dim.snap(float(raw))


_LARGEST_LOSS = 1e150  # a bigger magnitude is told as this one (still the worst by far)


class _FastGPR(GaussianProcessRegressor):
    """skopt's GP regressor with a faster predictive std for many candidates at once.

    skopt computes the variance with a three-operand ``einsum`` (no BLAS, ~20 ms for 2000
    candidates at 100 trials) and ``gp_hedge`` predicts the same candidates three times,
    once per acquisition. Same formula here through a matrix product, and the last
    candidate batch is remembered (the array itself is the key, so no stale hits).
    """

    def predict(self, X: Any, return_std: bool = False, return_cov: bool = False,
                return_mean_grad: bool = False, return_std_grad: bool = False) -> Any:
        plain_std = return_std and not (return_cov or return_mean_grad or return_std_grad)
        if not plain_std or not hasattr(self, "X_train_"):
            return super().predict(X, return_std, return_cov, return_mean_grad, return_std_grad)
        cached = getattr(self, "_last_batch", None)
        if cached is not None and cached[0] is X:
            return cached[1], cached[2]
        points = np.asarray(X, dtype=float)
        k_trans = self.kernel_(points, self.X_train_)
        mean = k_trans @ self.alpha_ * self.y_train_std_ + self.y_train_mean_
        var = self.kernel_.diag(points) - np.sum((k_trans @ self.K_inv_) * k_trans, axis=1)
        std = np.sqrt(np.clip(var, 0.0, None) * self.y_train_std_**2)
        self._last_batch = (X, mean, std)
        return mean, std


class GP(Algorithm):
    """Gaussian-process Bayesian optimisation (scikit-optimize).

    ``n_initial_points`` random trials come first; then each suggestion maximises
    ``acq_func`` (skopt's names: "gp_hedge", "EI", "PI", "LCB") over ``n_points`` random
    candidates, the best ``lbfgs_starts`` of them polished by L-BFGS (``acq_optimizer=
    "sampling"``: no polish). ``gp_restarts``: extra random starts for the kernel fit
    (0: warm start only).
    Asks made before the earlier ones are told are pushed apart with a constant liar
    (``liar``: the pending points are told the best, mean or worst loss seen).
    """

    name = "gp-skopt"

    def __init__(self, n_initial_points: int = 10, acq_func: str = "gp_hedge", n_points: int = 1000,
                 gp_restarts: int = 0, liar: str = "cl_min", acq_optimizer: str = "lbfgs",
                 lbfgs_starts: int = 2) -> None:
        super().__init__()
        if acq_func not in _ACQ_FUNCS:
            raise ValueError(f"`acq_func` must be one of {list(_ACQ_FUNCS)}, but got acq_func={acq_func!r}")
        if acq_optimizer not in ("lbfgs", "sampling"):
            raise ValueError(f"`acq_optimizer` must be 'lbfgs' or 'sampling', but got {acq_optimizer!r}")
        if liar not in _LIARS:
            raise ValueError(f"`liar` must be one of {list(_LIARS)}, but got liar={liar!r}")
        self.n_initial_points = n_initial_points
        self.acq_func = acq_func
        self.n_points = n_points
        self.gp_restarts = gp_restarts
        self.liar = liar
        self.acq_optimizer = acq_optimizer
        self.lbfgs_starts = lbfgs_starts
        self._dims: dict[str, Dimension] = {}
        self._xs: list[list[Any]] = []
        self._ys: list[float] = []
        self._pending: list[dict[str, Any]] = []
        self._opt: Optimizer | None = None

    @_one_blas_thread
    def _on_setup(self) -> None:
        assert self.space is not None
        self._dims = self.space.searched()
        self._xs, self._ys, self._pending = [], [], []
        self._opt = self._build(self._xs, self._ys)

    def _build(self, xs: list[list[Any]], ys: list[float], kernel: Any = None) -> Optimizer | None:
        """A fresh optimizer fitted once on ``xs, ys`` (None when nothing is searched).

        ``kernel``: where the kernel fit starts (the live model's, for the liar's refit).
        """
        if not self._dims:
            return None
        dims = [_skopt_dim(d) for d in self._dims.values()]
        seed = self.next_seed()
        recipe = cook_estimator("GP", space=dims, random_state=seed, n_restarts_optimizer=self.gp_restarts)
        settings = recipe.get_params(deep=False)
        if kernel is not None:
            settings["kernel"] = kernel
        estimator = _FastGPR(**settings)
        # An all-choice space gets skopt's Hamming kernel, which has no gradients for L-BFGS.
        acq_optimizer = self.acq_optimizer if has_gradients(estimator) else "sampling"
        opt = Optimizer(dims, base_estimator=estimator, n_initial_points=self.n_initial_points,
                        acq_func=self.acq_func, acq_optimizer=acq_optimizer, random_state=seed,
                        model_queue_size=1, acq_optimizer_kwargs={"n_points": self.n_points,
                                                                  "n_restarts_optimizer": self.lbfgs_starts})
        if xs:
            opt.tell(xs, ys)
            self._warm_start(opt)
        return opt

    @staticmethod
    def _warm_start(opt: Optimizer) -> None:
        """Start the next kernel fit from this fit's hyperparameters.

        They move little from one trial to the next, so one L-BFGS run from there finds
        what skopt's three cold starts find, in a fraction of the iterations.
        """
        model = opt.models[-1] if opt.models else None
        if model is None or getattr(model, "noise_", None) is None:
            return
        # skopt appends a WhiteKernel for the noise, then zeroes it in ``kernel_`` and keeps
        # the fitted level in ``noise_``: put the level back, inside WhiteKernel's bounds.
        noise = WhiteKernel(noise_level=min(max(float(model.noise_), 1e-5), 1e5))
        opt.base_estimator_.set_params(kernel=Sum(model.kernel_.k1, noise))

    @_one_blas_thread
    def ask(self) -> dict[str, Any]:
        assert self.space is not None, "setup() must be called before ask()"
        if self._opt is None:
            return {}
        model_ready = len(self._ys) >= self.n_initial_points
        opt = self._liar_optimizer() if self._pending and model_ready else self._opt
        x = opt.ask()
        params = {name: _decode(dim, v) for (name, dim), v in zip(self._dims.items(), x, strict=True)}
        self._pending.append(params)
        # The study keeps at most ``parallel`` trials in flight, so older entries can only be
        # asks that will never be told; they must not haunt the liar forever.
        del self._pending[:-max(2 * self.parallel, 8)]
        return params

    def _liar_optimizer(self) -> Optimizer:
        """The model refitted with each pending point told a made-up loss, so asks differ."""
        lie = {"cl_min": min, "cl_max": max, "cl_mean": lambda ys: sum(ys) / len(ys)}[self.liar](self._ys)
        xs = self._xs + [self._to_x(p) for p in self._pending]
        assert self._opt is not None
        opt = self._build(xs, self._ys + [lie] * len(self._pending), self._opt.base_estimator_.kernel)
        assert opt is not None
        return opt

    @_one_blas_thread
    def tell(self, trial: FrozenTrial) -> None:
        super().tell(trial)
        self._drop_pending(trial.params)
        if self._opt is None or not self.in_space(trial):
            return
        loss = self._model_loss(trial, self._ys)
        if loss is None:
            return
        x = self._to_x(trial.params)
        self._xs.append(x)
        self._ys.append(loss)
        self._opt.tell(x, loss)
        self._warm_start(self._opt)

    def _model_loss(self, trial: FrozenTrial, ys: list[float]) -> float | None:
        """The loss the GP sees; FAIL (and pruned-without-value) trials and diverged ones (NaN,
        +-inf: ranked last, as ``ModelBased`` and the pruners rank them) get the worst seen.

        Not telling a failure at all would leave skopt's cached next point unchanged, so the
        GP would suggest the crashing point again and again. Worst-seen (not +inf) keeps the
        normalised targets finite. Before any real loss there is nothing to compare with,
        and suggestions are random anyway, so the failure is skipped.
        """
        loss = self.loss(trial)
        if loss is not None and is_finite(loss):  # skopt squares the losses: beyond 1e150 they overflow
            return math.copysign(min(abs(float(loss)), _LARGEST_LOSS), float(loss))
        return max(ys) if ys else None

    @_one_blas_thread
    def set_space(self, space: SearchSpace) -> None:
        """Rebuild the optimizer for ``space`` and refit it on the in-space history."""
        super().set_space(space)
        self._dims = space.searched()
        self._xs, self._ys = [], []
        for trial in self.history:
            if self.in_space(trial):
                loss = self._model_loss(trial, self._ys)
                if loss is not None:
                    self._xs.append(self._to_x(trial.params))
                    self._ys.append(loss)
        # An ask without a value for an added dimension is dropped: p.get(n) would read None,
        # which a choice may well contain, and the liar could not encode the ask.
        self._pending = [p for p in self._pending if all(n in p and d.contains(p[n]) for n, d in self._dims.items())]
        self._opt = self._build(self._xs, self._ys)

    def withdraw(self, params: dict[str, Any]) -> None:
        self._drop_pending(params)

    def _to_x(self, params: Mapping[str, Any]) -> list[Any]:
        return [_encode(dim, params[name]) for name, dim in self._dims.items()]

    def _drop_pending(self, params: Mapping[str, Any]) -> None:
        """Forget the ask this trial answers (trials we never asked match nothing)."""
        for i, pending in enumerate(self._pending):
            if all(params.get(name) == value for name, value in pending.items()):
                del self._pending[i]
                return
