"""NativeGP: Bayesian optimisation with an exact GP and log expected improvement.

Per ask, once the start-up design (scrambled Sobol) is spent (pending asks count towards
it, so a parallel run spends no more asks on it than a sequential one):

1. Encode the in-space history: unit coordinates through each dimension's ``to_unit``
   (log dimensions are log-scaled there), choice indices for choices. Pull far outliers (a
   diverged run's loss, ``fence_outliers``) in towards the rest, standardise the losses (of any
   magnitude), pass them through a fitted Yeo-Johnson power transform (monotone) and put the
   prior mean at their 75th percentile (a pessimistic mean).
2. Fit the Matérn-5/2 ARD kernel's hyperparameters by maximising the marginal likelihood
   plus log priors (L-BFGS-B), warm-started from the previous ask's fit and started once
   more with the noise in its other mode (noisy losses are smoothed, exact ones interpolated). With
   ``fidelity=True``, where a pruner stopped trials early, their last reported step is one
   more input and EI is taken at the full step (``_gp_fidelity``).
3. Pending asks (parallel trials) join as kriging-believer fantasies: told their own
   posterior mean, which removes their variance and so their expected improvement.
4. Maximise log-EI: score thousands of random and locally perturbed points in one batch
   (while asks run, perturbed points only: ``pending_local``),
   polish the best few jointly with L-BFGS-B over the continuous coordinates, and move
   integer, grid and choice coordinates by exhaustive or doubling-step neighbour sweeps.
   Every scored point is snapped, so the acquisition sees exactly what can be suggested.

The model runs on numpy (``_gp_model``) or, with ``backend="torch"``, or under ``"auto"`` on a
CUDA machine once a study has ``GPU_FROM_TRIALS`` finished trials, on torch (``_gp_torch``);
torch is imported only then.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy.optimize import minimize

from ._encode import UnitEncoder
from ._gp_fidelity import AtFullFidelity, fidelity_of
from ._gp_model import Priors
from ._model_based import ModelBased

_FULL_SWEEP = 24  # grids up to this many levels are tried in full; larger ones by doubling steps


class PosteriorLike(Protocol):
    def log_ei(self, Xc: np.ndarray, best: float) -> np.ndarray: ...
    def log_ei_and_grad(self, Xc: np.ndarray, best: float) -> tuple[np.ndarray, np.ndarray]: ...
    def with_fantasies(self, Xp: np.ndarray) -> PosteriorLike: ...
    def incumbent(self) -> float: ...


def _torch_cuda() -> bool:
    """Whether torch sees a CUDA device; importing torch (seconds) only where a driver exists."""
    driver = os.name == "nt" or Path("/proc/driver/nvidia").exists()
    if importlib.util.find_spec("torch") is None or not driver:
        return False
    import torch

    return bool(torch.cuda.is_available())


# Below this many finished trials numpy beat the GPU. Measured on an H100 machine (2026-11-27,
# benchmarks/gp_device.py): ask+tell at n=100 numpy 44-56 ms, torch on the GPU 106-157 ms; at
# n=200 numpy 97-166 ms, torch 146-210 ms (the GPU ahead on one problem of three). Kernel
# launches, not arithmetic, set the GPU's cost at these sizes; the crossover is extrapolated.
GPU_FROM_TRIALS = 300


def resolve_backend(backend: str, n_trials: int = GPU_FROM_TRIALS) -> str:
    """The backend a suggestion from ``n_trials`` finished trials runs on: ``auto`` means torch
    on a GPU once there are ``GPU_FROM_TRIALS`` of them, numpy before that and on CPUs."""
    if backend not in ("auto", "numpy", "torch"):
        raise ValueError(f"backend must be 'auto', 'numpy' or 'torch', but got {backend!r}")
    if backend == "auto":
        return "torch" if n_trials >= GPU_FROM_TRIALS and _torch_cuda() else "numpy"
    return backend


_BLAS: Any = None  # a threadpoolctl controller, made once the BLAS libraries are loaded


def one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread while a suggestion is computed: the matrices are small (n x n for n
    trials), so threads only add start-up cost, and on a busy machine multi-threaded OpenBLAS
    spins against other jobs (a 10x slowdown was measured on a shared 2-core box)."""
    global _BLAS
    try:
        if _BLAS is None:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        return _BLAS.limit(limits=1, user_api="blas")
    except ImportError:  # threadpoolctl comes with scikit-learn; without it, leave BLAS alone
        return contextlib.nullcontext()


def _model_module(backend: str) -> Any:
    if backend == "torch":
        from . import _gp_torch
        return _gp_torch
    from . import _gp_model
    return _gp_model


# --- acquisition optimisation ----------------------------------------------------------------

def neighbours(enc: UnitEncoder, row: np.ndarray, j: int) -> np.ndarray:
    """Values coordinate ``j`` of ``row`` may move to: all levels of small grids and choices,
    else steps of 1, 2, 4, ... levels either way (a coarse-to-fine line search)."""
    if enc.is_cat[j]:
        return np.arange(enc.n_choices[j], dtype=float)
    grid = enc.grids[j]
    assert grid is not None
    if len(grid) <= _FULL_SWEEP:
        return grid
    i = int(np.argmin(np.abs(grid - row[j])))
    steps = 2 ** np.arange(int(np.log2(len(grid))) + 1)
    idx = np.concatenate([i - steps, i + steps])
    return grid[idx[(idx >= 0) & (idx < len(grid))]]


def discrete_sweep(post: PosteriorLike, enc: UnitEncoder, starts: np.ndarray, scores: np.ndarray,
                   best: float, rounds: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Greedy coordinate moves on discrete dimensions, every start's moves scored in one batch."""
    dims = [j for j in range(enc.n_dims) if enc.is_cat[j] or enc.grids[j] is not None]
    for _ in range(rounds if dims else 0):
        rows, owner = [], []
        for i, row in enumerate(starts):
            for j in dims:
                values = neighbours(enc, row, j)
                moved = np.repeat(row[None], len(values), axis=0)
                moved[:, j] = values
                rows.append(moved)
                owner.append(np.full(len(values), i))
        cand, who = np.vstack(rows), np.concatenate(owner)
        values = post.log_ei(cand, best)
        improved = False
        for i in range(len(starts)):
            mine = np.flatnonzero(who == i)
            k = mine[np.argmax(values[mine])]
            if values[k] > scores[i] + 1e-12:
                starts[i], scores[i], improved = cand[k], values[k], True
        if not improved:
            break
    return starts, scores


def polish_continuous(post: PosteriorLike, enc: UnitEncoder, starts: np.ndarray, scores: np.ndarray,
                      best: float, maxiter: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """L-BFGS-B on the sum of the starts' log-EI over their continuous coordinates.

    The starts are independent, so the summed problem is separable: one call polishes all of
    them, and each start keeps its polished point only where that scores better.
    """
    cont = enc.is_continuous
    if not cont.any():
        return starts, scores
    base = starts.copy()

    def negative(z: np.ndarray) -> tuple[float, np.ndarray]:
        base[:, cont] = z.reshape(len(base), -1)
        value, grad = post.log_ei_and_grad(base, best)
        return -float(value.sum()), -grad[:, cont].ravel()

    z0 = starts[:, cont].ravel()
    result = minimize(negative, z0, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(z0),
                      options={"maxiter": maxiter})
    polished = starts.copy()
    polished[:, cont] = np.clip(result.x, 0.0, 1.0).reshape(len(starts), -1)
    new_scores = post.log_ei(polished, best)
    better = new_scores > scores
    starts[better], scores[better] = polished[better], new_scores[better]
    return starts, scores


def perturb(enc: UnitEncoder, rng: np.random.Generator, anchors: np.ndarray, n: int) -> np.ndarray:
    """Points near the best observations: Gaussian steps of many sizes, occasional choice flips."""
    rows = anchors[rng.integers(len(anchors), size=n)].copy()
    num = ~enc.is_cat
    scale = np.exp(rng.uniform(np.log(1e-3), np.log(0.3), size=(n, 1)))
    rows[:, num] += scale * rng.standard_normal((n, int(num.sum())))
    for j in np.flatnonzero(enc.is_cat):
        flip = rng.random(n) < 1.0 / enc.n_dims
        rows[flip, j] = rng.integers(enc.n_choices[j], size=int(flip.sum()))
    return enc.snap(rows)


def maximise_log_ei(post: PosteriorLike, enc: UnitEncoder, rng: np.random.Generator, best: float,
                    anchors: np.ndarray, n_random: int, n_local: int, n_starts: int) -> np.ndarray:
    """The snapped row with the largest log-EI found: batch screen, then polish the best few."""
    pool = np.vstack([enc.random(rng, n_random), perturb(enc, rng, anchors, n_local)])
    scores = post.log_ei(pool, best)
    _, first = np.unique(pool, axis=0, return_index=True)
    order = first[np.argsort(-scores[first], kind="stable")][:n_starts]
    starts, top = pool[order].copy(), scores[order].copy()
    for _ in range(2):
        starts, top = polish_continuous(post, enc, starts, top, best)
        starts, top = discrete_sweep(post, enc, starts, top, best)
    return starts[int(np.argmax(top))]


# --- the algorithm --------------------------------------------------------------------------

class NativeGP(ModelBased):
    """GP-EI with a Matérn-5/2 ARD kernel, MAP hyperparameters and kriging-believer batches.

    ``n_startup_trials`` Sobol points first; then ``n_random`` random and ``n_local``
    perturbed candidates screen log-EI and the best ``n_starts`` are polished.
    ``backend``: "auto" (torch on CUDA from ``GPU_FROM_TRIALS`` trials, else numpy), "numpy" or
    "torch". ``priors``: the
    hyperparameter priors (``_gp_model.Priors``); ``fit_restarts``: extra fits from the
    prior's centre besides the warm start; ``warp``: the Yeo-Johnson output transform;
    ``mean_quantile``: where the prior mean sits among the transformed losses (0.75: a
    pessimistic mean). 15 start-up points (not 10) left fewer runs in a local basin.
    ``fidelity``: under a pruner, model the step each stopped trial reached (``_gp_fidelity``);
    off by default, since on the synthetic benchmark (``benchmarks/pruning_synthetic.py``) it
    cost Branin and, once the fit also started from a noisy model, no longer helped Hartmann6.
    ``noisy_start``: besides the warm start, each fit starts once more with the noise moved to
    the other of its two modes (this variance, in standardised units, or the prior's near-zero
    noise), so a noisy objective is smoothed rather than interpolated; None turns it off.
    ``pending_local``: while other asks run, every screened candidate is a perturbation of the
    best points (none is drawn uniformly; the polish and the discrete sweeps still range
    freely), so a batch refines what is known to be good, as the next asks of a one-at-a-time
    run would, while the believer keeps its asks apart. With uniform candidates the
    believer's asks went where variance was large, and a batch refined once, not once per ask.
    Asks never told (a crashed worker) stay as fantasies, at most the last 64.
    """

    name = "gp"

    def __init__(self, n_startup_trials: int = 15, n_random: int = 2048, n_local: int = 512,
                 n_starts: int = 8, backend: str = "auto", priors: Priors | None = None,
                 fit_restarts: int = 0, warp: bool = True, mean_quantile: float = 0.75,
                 fidelity: bool = False, noisy_start: float | None = 1e-2,
                 pending_local: bool = True) -> None:
        super().__init__()
        self.pending_local = pending_local
        if noisy_start is not None and not noisy_start > 0:
            raise ValueError(f"`noisy_start > 0` must hold, but got noisy_start={noisy_start!r}")
        self.noisy_start = noisy_start
        self.fidelity = fidelity
        self.mean_quantile = mean_quantile
        self.warp = warp
        self.fit_restarts = fit_restarts
        self.n_startup_trials = n_startup_trials
        self.n_random, self.n_local, self.n_starts = n_random, n_local, n_starts
        self.backend = backend
        self.priors = priors or Priors()
        self._theta: np.ndarray | None = None

    def _on_setup(self) -> None:
        super()._on_setup()
        self._theta = None
        resolve_backend(self.backend, 0)  # a misspelt backend fails here, not at the first model

    def _suggest(self, rng: np.random.Generator) -> np.ndarray:
        with one_blas_thread():
            return self._suggest_row(rng)

    def _suggest_row(self, rng: np.random.Generator) -> np.ndarray:
        enc, history, unreported = self._encoder, self._model_history(), self._unreported()
        assert enc is not None
        X, losses, _ = history.arrays()
        y = self._fit_targets(losses)
        fidelity = fidelity_of(*history.last_steps()) if self.fidelity else None
        X_fit, is_cat, scale = X, enc.is_cat, None
        if fidelity is not None:  # trials stopped early: model the steps too (``_gp_fidelity``)
            (X_fit, is_cat), scale = fidelity.augment(X, enc.is_cat), fidelity.noise_scale
        starts = self._fit_starts(is_cat)
        model = _model_module(resolve_backend(self.backend, len(X)))
        self._theta = model.fit_theta(X_fit, y, is_cat, starts, self.priors, noise_scale=scale)
        post = model.Posterior(X_fit, y, self._theta, is_cat, scale)
        if fidelity is not None:
            post = AtFullFidelity(post, fidelity.column == 1.0)
        post = post.with_fantasies(enc.encode_many(unreported))
        anchors = X[np.argsort(y, kind="stable")[:5]]
        n_random, n_local = self.n_random, self.n_local
        if unreported and self.pending_local:  # asks running: refine near the best (class doc)
            n_random, n_local = 0, n_random + n_local
        return maximise_log_ei(post, enc, rng, post.incumbent(), anchors, n_random, n_local, self.n_starts)

    def _fit_starts(self, is_cat: np.ndarray) -> list[np.ndarray]:
        """Where the hyperparameter fit starts: the previous fit (else the prior's centre), the
        centre again ``fit_restarts`` times, and the first start with its noise in the other mode.

        The marginal likelihood of noisy losses has two modes, interpolation (tiny noise, short
        length scales) and smoothing (noise, longer ones), and L-BFGS-B stays in the mode it
        starts in. From the near-zero prior noise alone, on Hartmann6 with noise of sd 0.1 (40
        runs, 35 fits each) no fit left it; with this start 40% of them did."""
        centre = self.priors.initial(is_cat)
        starts = [centre]
        if self._theta is not None and len(self._theta) == len(is_cat) + 2:
            starts = [self._theta, *starts[:self.fit_restarts]]
        if self.noisy_start is not None:
            other = starts[0].copy()
            quiet = other[-1] < 0.5 * (math.log(self.noisy_start) + centre[-1])  # nearer the prior's noise
            other[-1] = math.log(self.noisy_start) if quiet else centre[-1]
            starts.append(other)
        return starts

    def _fit_targets(self, losses: np.ndarray) -> np.ndarray:
        """Standardised (and warped) losses, shifted so the prior mean sits at ``mean_quantile``:
        unexplored regions are presumed as bad as that quantile, not the average, so EI stops
        spending trials on the cube's corners (where variance alone makes it large)."""
        # Fenced first: rescaling would flush small losses to 0.
        y = standardise(fence_outliers(diverged_as_worst(losses)))
        if self.warp:
            y = standardise(warp_outputs(y))
        return y - np.quantile(y, self.mean_quantile)


def diverged_as_worst(losses: np.ndarray) -> np.ndarray:
    """Each +inf loss (a diverged run, ``ModelBased.loss``) as the worst finite one (0 where none
    is): worse than that, the GP would have to fit an infinite gap, and it ranks last either way."""
    finite = np.isfinite(losses)
    if finite.all():
        return losses
    return np.where(finite, losses, losses[finite].max() if finite.any() else 0.0)


def rescaled(y: np.ndarray) -> np.ndarray:
    """``y`` divided by its largest magnitude when that is beyond 1e±100, where squares overflow
    (1e160) or vanish (1e-170); elsewhere ``y`` itself, untouched to the last bit."""
    top = float(np.max(np.abs(y))) if y.size else 0.0
    return y / top if math.isfinite(top) and top > 0 and not 1e-100 < top < 1e100 else y


def standardise(y: np.ndarray) -> np.ndarray:
    y = rescaled(y)
    sd = y.std()
    return (y - y.mean()) / (sd if sd > 0 else 1.0)


FENCE_IQRS = 50.0  # far beyond the spread of the benchmarks' losses: only real outliers are pulled in


def fence_outliers(y: np.ndarray) -> np.ndarray:
    """Losses more than ``FENCE_IQRS`` interquartile ranges above the upper quartile (a diverged
    run's 1e6 among losses of 0.1) pulled in to a little above that fence, in the same order.

    Standardising with such a value in the set squeezes every other loss into a sliver of the
    scale (1e-5 of it for one 1e6), and the model then sees a flat function and learns nothing.
    The pull is log-log, so 1e3 and 1e200 both land within about 3 IQRs of the fence."""
    with np.errstate(over="ignore", invalid="ignore"):  # losses near 1e308: the fence is inf, none is over
        q25, q75 = np.quantile(y, [0.25, 0.75])
        spread = q75 - q25
        fence = q75 + FENCE_IQRS * spread
        over = y > fence
        if not 0 < spread < math.inf or not over.any():
            return y
        ratio = np.minimum((y[over] - fence) / spread, np.finfo(float).max)  # 1e300 over 1e-20: inf
    pulled = y.copy()
    pulled[over] = fence + spread * np.log1p(np.log1p(ratio))
    return pulled


def warp_outputs(y: np.ndarray) -> np.ndarray:
    """A Yeo-Johnson power transform fitted to the losses: skewed losses (a few deep basins
    among many flat ones, or a few huge values) become closer to Gaussian, which the GP
    assumes; the map is monotone, so the ranking and the incumbent are unchanged."""
    from scipy.stats import yeojohnson

    if np.ptp(y) == 0:
        return y
    return np.asarray(yeojohnson(y)[0], dtype=float)
