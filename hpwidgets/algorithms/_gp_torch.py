"""The torch twin of ``_gp_model``: the same GP and log-EI, with gradients from autograd.

Used when a CUDA device exists (or with ``NativeGP(backend="torch")``): the screening
of thousands of candidates and the kernel matrices then run on the GPU in float64.
Inputs and outputs stay numpy arrays, so ``gp_native`` and scipy's L-BFGS-B are shared.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize

from ._gp_model import JITTER, SQRT5, Priors, log_h

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
DTYPE = torch.float64
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=DTYPE, device=DEVICE)


def sq_dists(A: torch.Tensor, B: torch.Tensor, is_cat: torch.Tensor) -> torch.Tensor:
    """Per-dimension squared distances (len(A), len(B), d); choices count 0 or 1."""
    diff = A[:, None, :] - B[None, :, :]
    return torch.where(is_cat, (diff != 0).to(DTYPE), diff**2)


def matern52(r2: torch.Tensor) -> torch.Tensor:
    # Clamped away from 0 so the square root's gradient stays finite on the diagonal.
    r = torch.sqrt(torch.clamp(r2, min=1e-30))
    return (1.0 + SQRT5 * r + (5.0 / 3.0) * r2) * torch.exp(-SQRT5 * r)


def _prior(theta: torch.Tensor, priors: Priors, is_cat: torch.Tensor) -> torch.Tensor:
    means = torch.where(is_cat, priors.log_ls_cat_mean, priors.log_ls_mean)
    z_ls = (-0.5 * theta[:-2] - means) / priors.log_ls_std
    z_s = theta[-2] / priors.log_signal_std
    z_n = (theta[-1] - priors.log_noise_mean) / priors.log_noise_std
    return -0.5 * (torch.sum(z_ls**2) + z_s**2 + z_n**2)


def _neg_log_posterior(theta_np: np.ndarray, D: torch.Tensor, y: torch.Tensor, priors: Priors,
                       is_cat: torch.Tensor, scale: torch.Tensor) -> tuple[float, np.ndarray]:
    theta = _t(theta_np).requires_grad_(True)
    n = len(y)
    K = torch.exp(theta[-2]) * matern52(D @ torch.exp(theta[:-2]))
    K = K + torch.diag(torch.exp(theta[-1]) * scale + JITTER)
    L, info = torch.linalg.cholesky_ex(K)
    if int(info) != 0:
        return 1e10, np.zeros_like(theta_np)
    alpha = torch.cholesky_solve(y[:, None], L)[:, 0]
    nll = 0.5 * y @ alpha + torch.log(torch.diagonal(L)).sum() + n * _HALF_LOG_2PI
    loss = nll - _prior(theta, priors, is_cat)
    loss.backward()
    assert theta.grad is not None
    return float(loss.detach()), theta.grad.cpu().numpy()


def fit_theta(X: np.ndarray, y: np.ndarray, is_cat: np.ndarray, starts: list[np.ndarray],
              priors: Priors, maxiter: int = 200, noise_scale: np.ndarray | None = None) -> np.ndarray:
    """MAP hyperparameters by L-BFGS-B from each start; the best result wins."""
    cat = torch.as_tensor(is_cat, device=DEVICE)
    D, yt = sq_dists(_t(X), _t(X), cat), _t(y)
    scale = _t(np.ones(len(y)) if noise_scale is None else noise_scale)
    bounds = priors.bounds(X.shape[1])
    lo, hi = [b[0] for b in bounds], [b[1] for b in bounds]
    best_x, best_f = np.clip(starts[0], lo, hi), np.inf
    for theta0 in starts:
        result = minimize(_neg_log_posterior, np.clip(theta0, lo, hi), args=(D, yt, priors, cat, scale), jac=True,
                          method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter})
        if np.all(np.isfinite(result.x)) and result.fun < best_f:
            best_x, best_f = result.x, result.fun
    return best_x


class _LogH(torch.autograd.Function):
    """log h(z) with h(z) = z Φ(z) + φ(z), evaluated by the stable numpy routine; its
    derivative Φ(z) / h(z) comes from the same routine, so no tail branch leaks NaNs."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor) -> torch.Tensor:
        value, ratio = log_h(z.detach().cpu().numpy())
        ctx.save_for_backward(_t(ratio))
        return _t(value)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (ratio,) = ctx.saved_tensors
        return grad * ratio


class Posterior:
    """The GP conditioned on (X, y) with fixed ``theta``; the interface of ``_gp_model``."""

    def __init__(self, X: np.ndarray, y: np.ndarray, theta: np.ndarray, is_cat: np.ndarray,
                 noise_scale: np.ndarray | None = None) -> None:
        self.X_np, self.y, self.theta, self.is_cat_np = X, y, theta, is_cat
        self.noise_scale = np.ones(len(y)) if noise_scale is None else noise_scale
        self.X, self.is_cat = _t(X), torch.as_tensor(is_cat, device=DEVICE)
        self.rho, self.signal = torch.exp(_t(theta[:-2])), math.exp(theta[-2])
        K = self.signal * matern52(sq_dists(self.X, self.X, self.is_cat) @ self.rho)
        diagonal = _t(math.exp(theta[-1]) * self.noise_scale + JITTER)
        for _ in range(10):  # more jitter until duplicates stop breaking the factorisation
            L, info = torch.linalg.cholesky_ex(K + torch.diag(diagonal))
            if int(info) == 0:
                break
            diagonal = torch.clamp(diagonal * 10.0, min=1e-9)
        self.L = L
        self.alpha = torch.cholesky_solve(_t(y)[:, None], L)[:, 0]

    def _mean_sd(self, Xc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.signal * matern52(sq_dists(Xc, self.X, self.is_cat) @ self.rho)
        v = torch.linalg.solve_triangular(self.L, k.T, upper=False)
        var = torch.clamp(self.signal - torch.sum(v**2, dim=0), min=1e-12)
        return k @ self.alpha, torch.sqrt(var)

    def predict(self, Xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            mean, sd = self._mean_sd(_t(Xc))
        return mean.cpu().numpy(), (sd**2).cpu().numpy()

    def incumbent(self) -> float:
        return float(self.y.min())

    def with_fantasies(self, Xp: np.ndarray) -> Posterior:
        """Kriging believer: pending points told their own posterior mean, theta unchanged."""
        if len(Xp) == 0:
            return self
        mean, _ = self.predict(Xp)
        return Posterior(np.vstack([self.X_np, Xp]), np.concatenate([self.y, mean]), self.theta,
                         self.is_cat_np, np.concatenate([self.noise_scale, np.ones(len(Xp))]))

    def _log_ei(self, Xc: torch.Tensor, best: float) -> torch.Tensor:
        mean, sd = self._mean_sd(Xc)
        return torch.log(sd) + _LogH.apply((best - mean) / sd)

    def log_ei(self, Xc: np.ndarray, best: float) -> np.ndarray:
        with torch.no_grad():
            return self._log_ei(_t(Xc), best).cpu().numpy()

    def log_ei_and_grad(self, Xc: np.ndarray, best: float) -> tuple[np.ndarray, np.ndarray]:
        """log-EI at each row and its gradient in the numeric coordinates (0 for choices)."""
        x = _t(Xc).requires_grad_(True)
        value = self._log_ei(x, best)
        value.sum().backward()
        assert x.grad is not None
        grad = x.grad.cpu().numpy()
        grad[:, self.is_cat_np] = 0.0
        return value.detach().cpu().numpy(), grad
