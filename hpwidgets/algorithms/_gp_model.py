"""An exact Gaussian process on numpy: Matérn-5/2 ARD kernel, MAP hyperparameters, log-EI.

Inputs are encoded rows (unit coordinates, choice indices); a choice contributes
``[x != x']`` to the squared distance, so each choice dimension has its own length scale
like any other. Hyperparameters are ``theta = [log rho_1..d, log signal, log noise]``
with ``rho = 1 / lengthscale**2``; they maximise the log marginal likelihood plus log
priors, by L-BFGS-B with the analytic gradient. Outputs are expected standardised.

The torch twin in ``_gp_torch`` has the same interface; ``gp_native`` picks one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import minimize
from scipy.special import erfcx, ndtr

SQRT5 = math.sqrt(5.0)
JITTER = 1e-9
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass(frozen=True)
class Priors:
    """Log-normal priors (on the log parameters) and the box the optimiser stays in.

    Numeric length scales centre on 0.2 of the unit range (short enough that a few
    points don't make the model overconfident), a choice's on 1 (categories start out
    correlated, so what is learnt about one value informs the others); the signal
    variance centres on 1 (standardised outputs); the noise centres on 1e-6, since most
    objectives here are deterministic, but may grow for noisy ones.
    """

    log_ls_mean: float = math.log(0.2)
    log_ls_std: float = 1.0
    log_ls_cat_mean: float = 0.0
    log_signal_std: float = 1.0
    log_noise_mean: float = math.log(1e-6)
    log_noise_std: float = 2.0
    ls_bounds: tuple[float, float] = (0.01, 10.0)
    signal_bounds: tuple[float, float] = (0.05, 20.0)
    noise_bounds: tuple[float, float] = (1e-9, 1.0)

    def ls_means(self, is_cat: np.ndarray) -> np.ndarray:
        return np.where(is_cat, self.log_ls_cat_mean, self.log_ls_mean)

    def initial(self, is_cat: np.ndarray) -> np.ndarray:
        return np.concatenate([-2.0 * self.ls_means(is_cat), [0.0, self.log_noise_mean]])

    def bounds(self, n_dims: int) -> list[tuple[float, float]]:
        lo_ls, hi_ls = self.ls_bounds
        rho = (-2.0 * math.log(hi_ls), -2.0 * math.log(lo_ls))
        return [rho] * n_dims + [tuple(map(math.log, self.signal_bounds)),
                                 tuple(map(math.log, self.noise_bounds))]

    def log_prior_and_grad(self, theta: np.ndarray, is_cat: np.ndarray) -> tuple[float, np.ndarray]:
        """The log prior of ``theta`` and its gradient (log ls = -log rho / 2)."""
        log_ls = -0.5 * theta[:-2]
        z_ls = (log_ls - self.ls_means(is_cat)) / self.log_ls_std
        z_s = theta[-2] / self.log_signal_std
        z_n = (theta[-1] - self.log_noise_mean) / self.log_noise_std
        value = -0.5 * (np.sum(z_ls**2) + z_s**2 + z_n**2)
        grad = np.concatenate([0.5 * z_ls / self.log_ls_std, [-z_s / self.log_signal_std,
                                                              -z_n / self.log_noise_std]])
        return float(value), grad


def sq_dists(A: np.ndarray, B: np.ndarray, is_cat: np.ndarray) -> np.ndarray:
    """Per-dimension squared distances, shape (len(A), len(B), d); choices count 0 or 1."""
    diff = A[:, None, :] - B[None, :, :]
    out = diff**2
    out[..., is_cat] = (diff[..., is_cat] != 0).astype(float)
    return out


def scaled_r2(A: np.ndarray, B: np.ndarray, rho: np.ndarray, is_cat: np.ndarray) -> np.ndarray:
    """``sq_dists(A, B) @ rho`` without the (len(A), len(B), d) tensor: numeric dimensions by
    one matrix product, choices one at a time (there are few)."""
    num = ~is_cat
    a, b = A[:, num] * np.sqrt(rho[num]), B[:, num] * np.sqrt(rho[num])
    r2 = np.sum(a**2, axis=1)[:, None] + np.sum(b**2, axis=1)[None, :] - 2.0 * a @ b.T
    r2 = np.maximum(r2, 0.0)
    for j in np.flatnonzero(is_cat):
        r2 += rho[j] * (A[:, j, None] != B[None, :, j])
    return r2


def matern52(r2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matérn-5/2 correlation as a function of r² and its derivative with respect to r²."""
    r = np.sqrt(np.maximum(r2, 0.0))
    e = np.exp(-SQRT5 * r)
    return (1.0 + SQRT5 * r + (5.0 / 3.0) * r2) * e, -(5.0 / 6.0) * (1.0 + SQRT5 * r) * e


def robust_cholesky(K: np.ndarray, diagonal: float | np.ndarray) -> np.ndarray:
    """Cholesky of ``K + diag(diagonal)``, adding jitter tenfold until it succeeds (duplicates)."""
    diagonal = np.broadcast_to(np.asarray(diagonal, dtype=float), (len(K),))
    for _ in range(10):
        try:
            return np.linalg.cholesky(K + np.diag(diagonal))
        except np.linalg.LinAlgError:
            diagonal = np.maximum(diagonal * 10.0, 1e-9)
    raise np.linalg.LinAlgError("the kernel matrix is not positive definite even with jitter")


def neg_log_posterior(theta: np.ndarray, D: np.ndarray, y: np.ndarray, priors: Priors,
                      is_cat: np.ndarray, noise_scale: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """-(log marginal likelihood + log prior) and its gradient in ``theta``. Observation i has
    noise variance ``noise * noise_scale[i]`` (default 1: homoscedastic)."""
    n = len(y)
    rho, signal, noise = np.exp(theta[:-2]), math.exp(theta[-2]), math.exp(theta[-1])
    scale = np.ones(n) if noise_scale is None else noise_scale
    corr, dcorr = matern52(D @ rho)
    K = signal * corr
    K[np.diag_indices(n)] += noise * scale + JITTER
    try:
        factor = cho_factor(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return 1e10, np.zeros_like(theta)
    alpha = cho_solve(factor, y, check_finite=False)
    nll = 0.5 * y @ alpha + np.log(np.diag(factor[0])).sum() + n * _HALF_LOG_2PI
    # d nll = 0.5 tr(W dK) with W = K^-1 - alpha alpha^T.
    W = cho_solve(factor, np.eye(n), check_finite=False) - np.outer(alpha, alpha)
    g_rho = 0.5 * rho * np.einsum("ij,ijd->d", W * (signal * dcorr), D)
    g_signal = 0.5 * np.sum(W * (signal * corr))
    g_noise = 0.5 * noise * (np.trace(W) if noise_scale is None else np.sum(np.diag(W) * scale))
    lp, g_lp = priors.log_prior_and_grad(theta, is_cat)
    return float(nll - lp), np.concatenate([g_rho, [g_signal, g_noise]]) - g_lp


def fit_theta(X: np.ndarray, y: np.ndarray, is_cat: np.ndarray, starts: list[np.ndarray],
              priors: Priors, maxiter: int = 200, noise_scale: np.ndarray | None = None) -> np.ndarray:
    """MAP hyperparameters by L-BFGS-B from each start (e.g. the previous fit and the prior's
    centre: a warm start alone can stay in a poor optimum); the best result wins."""
    D = sq_dists(X, X, is_cat)
    bounds = priors.bounds(X.shape[1])
    lo, hi = [b[0] for b in bounds], [b[1] for b in bounds]
    best_x, best_f = np.clip(starts[0], lo, hi), np.inf
    args = (D, y, priors, is_cat, noise_scale)
    for theta0 in starts:
        result = minimize(neg_log_posterior, np.clip(theta0, lo, hi), args=args, jac=True,
                          method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter})
        if np.all(np.isfinite(result.x)) and result.fun < best_f:
            best_x, best_f = result.x, result.fun
    return best_x


def log_h(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log(z Φ(z) + φ(z)) and Φ(z) / (z Φ(z) + φ(z)), stable far into the left tail.

    EI = σ h(z); for very negative z both terms of h nearly cancel, so there h is
    rewritten with the Mills ratio M = Φ/φ = sqrt(pi/2) erfcx(-z/√2) and, beyond -25,
    the asymptotic series 1 + zM = z⁻² - 3z⁻⁴ + 15z⁻⁶.
    """
    z = np.asarray(z, dtype=float)
    log_phi = -0.5 * z**2 - _HALF_LOG_2PI
    with np.errstate(all="ignore"):  # each branch is computed everywhere, used only where valid
        mills = math.sqrt(math.pi / 2) * erfcx(-z / math.sqrt(2))
        inv2 = 1.0 / z**2
        tail = inv2 * (1.0 - 3.0 * inv2 + 15.0 * inv2**2)
        one_plus = np.maximum(np.where(z < -25, tail, 1.0 + z * mills), 1e-300)
        direct = np.maximum(z * ndtr(z) + np.exp(log_phi), 1e-300)
        far = z <= -5
        value = np.where(far, log_phi + np.log(one_plus), np.log(direct))
        ratio = np.where(far, mills / one_plus, ndtr(z) / direct)
    return value, ratio


class Posterior:
    """The GP conditioned on (X, y) with fixed ``theta``: predictions and log-EI with gradients."""

    def __init__(self, X: np.ndarray, y: np.ndarray, theta: np.ndarray, is_cat: np.ndarray,
                 noise_scale: np.ndarray | None = None) -> None:
        self.X, self.y, self.theta, self.is_cat = X, y, theta, is_cat
        self.noise_scale = np.ones(len(y)) if noise_scale is None else noise_scale
        self.rho, self.signal = np.exp(theta[:-2]), math.exp(theta[-2])
        K = self.signal * matern52(sq_dists(X, X, is_cat) @ self.rho)[0]
        self.L = robust_cholesky(K, math.exp(theta[-1]) * self.noise_scale + JITTER)
        self.alpha = cho_solve((self.L, True), y, check_finite=False)

    def predict(self, Xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the latent function (no noise) at ``Xc``."""
        k = self.signal * matern52(scaled_r2(Xc, self.X, self.rho, self.is_cat))[0]
        v = solve_triangular(self.L, k.T, lower=True, check_finite=False)
        return k @ self.alpha, np.maximum(self.signal - np.sum(v**2, axis=0), 1e-12)

    def incumbent(self) -> float:
        """The best (smallest) value, fantasies included: a pending point then offers no
        improvement at its own spot, even where its believed mean beat the best observation."""
        return float(self.y.min())

    def with_fantasies(self, Xp: np.ndarray) -> Posterior:
        """Kriging believer: pending points told their own posterior mean, theta unchanged."""
        if len(Xp) == 0:
            return self
        mean, _ = self.predict(Xp)
        return Posterior(np.vstack([self.X, Xp]), np.concatenate([self.y, mean]), self.theta, self.is_cat,
                         np.concatenate([self.noise_scale, np.ones(len(Xp))]))

    def log_ei(self, Xc: np.ndarray, best: float) -> np.ndarray:
        mean, var = self.predict(Xc)
        sd = np.sqrt(var)
        return np.log(sd) + log_h((best - mean) / sd)[0]

    def log_ei_and_grad(self, Xc: np.ndarray, best: float) -> tuple[np.ndarray, np.ndarray]:
        """log-EI at each row and its gradient in the numeric coordinates (0 for choices)."""
        D = sq_dists(Xc, self.X, self.is_cat)
        corr, dcorr = matern52(D @ self.rho)
        k = self.signal * corr
        v = solve_triangular(self.L, k.T, lower=True, check_finite=False)
        mean, var = k @ self.alpha, np.maximum(self.signal - np.sum(v**2, axis=0), 1e-12)
        sd = np.sqrt(var)
        z = (best - mean) / sd
        value, ratio = log_h(z)
        # dk/dx_d = signal * dcorr * rho_d * 2 (x_d - X_d) for numeric dimensions.
        diff = Xc[:, None, :] - self.X[None, :, :]
        dk = (2.0 * self.signal * dcorr)[..., None] * self.rho * diff
        dk[..., self.is_cat] = 0.0
        kinv_k = solve_triangular(self.L.T, v, lower=False, check_finite=False)  # (n, m)
        d_mean = np.einsum("mnd,n->md", dk, self.alpha)
        d_sd = -np.einsum("mnd,nm->md", dk, kinv_k) / sd[:, None]
        grad = d_sd / sd[:, None] * (1.0 - z * ratio)[:, None] - (ratio / sd)[:, None] * d_mean
        return np.log(sd) + value, grad
