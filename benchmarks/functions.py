"""Benchmark problems: each an objective over an hpwidgets SearchSpace with a known optimum.

Simple regret is ``f(best params) - f*``. Every objective takes the params dict that
``ask()`` returns (values, not indices) and is minimised.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import hpwidgets.space as hs

Params = Mapping[str, Any]


@dataclass(frozen=True)
class Problem:
    name: str
    space: hs.SearchSpace
    fn: Callable[[Params], float]
    optimum: float

    def regret(self, value: float) -> float:
        return value - self.optimum


def branin(p: Params) -> float:
    """Branin-Hoo on [-5, 10] x [0, 15]; three global minima of 0.397887."""
    x1, x2 = p["x1"], p["x2"]
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


_H6_ALPHA = (1.0, 1.2, 3.0, 3.2)
_H6_A = ((10, 3, 17, 3.5, 1.7, 8), (0.05, 10, 17, 0.1, 8, 14),
         (3, 3.5, 1.7, 10, 17, 8), (17, 8, 0.05, 10, 0.1, 14))
_H6_P = ((0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886), (0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991),
         (0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650), (0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381))


def hartmann6(p: Params) -> float:
    """Hartmann 6-D on [0, 1]^6; global minimum -3.32237."""
    x = [p[f"x{i}"] for i in range(6)]
    total = 0.0
    for alpha, a_row, p_row in zip(_H6_ALPHA, _H6_A, _H6_P, strict=True):
        total += alpha * math.exp(-sum(a * (xi - pi) ** 2 for a, xi, pi in zip(a_row, x, p_row, strict=True)))
    return -total


# Per activation: where the best `shift` lies and what the activation costs at best.
_ACTIVATIONS = {"relu": (0.30, 0.0), "tanh": (-0.50, 0.15), "sigmoid": (1.00, 0.40)}


def mixed(p: Params) -> float:
    """A 5-D stand-in for a training run; 0 at lr=10**-2.5, shift=0.3, layers=7, width=96, relu.

    lr and shift interact (a positive-definite quadratic, so the optimum stays put); the
    cosine term adds ripples along shift that vanish at each activation's optimum.
    """
    a = math.log10(p["lr"]) + 2.5
    x_opt, offset = _ACTIVATIONS[p["activation"]]
    b = p["shift"] - x_opt
    quad = a**2 + b**2 + a * b
    ripple = 0.2 * (1 - math.cos(4 * math.pi * b))
    ints = 0.02 * (p["layers"] - 7) ** 2 + 0.3 * ((p["width"] - 96) / 64) ** 2
    return quad + ripple + ints + offset


# The optima to full double precision (L-BFGS-B polished from the published minimisers): the
# 6-digit values would add 3.6e-7 (Branin) and 2.0e-6 (Hartmann6) to every regret, as much as
# the GP's own regret after 50 trials.
BRANIN_MIN = 0.39788735772973816
HARTMANN6_MIN = -3.3223680114155134

PROBLEMS: dict[str, Problem] = {
    "branin": Problem("branin", hs.SearchSpace({"x1": hs.uniform(-5, 10), "x2": hs.uniform(0, 15)}),
                      branin, BRANIN_MIN),
    "hartmann6": Problem("hartmann6", hs.SearchSpace({f"x{i}": hs.uniform(0, 1) for i in range(6)}),
                         hartmann6, HARTMANN6_MIN),
    "mixed5": Problem("mixed5", hs.SearchSpace({
        "lr": hs.loguniform(1e-4, 1e-1),
        "shift": hs.uniform(-2, 2),
        "layers": hs.integer(1, 20),
        "width": hs.integer(16, 256, step=16),
        "activation": hs.choice("relu", "tanh", "sigmoid"),
    }), mixed, 0.0),
}


def _check() -> None:
    """The stated optima are attained (a cheap guard against typos in the constants)."""
    assert abs(branin({"x1": math.pi, "x2": 2.275}) - BRANIN_MIN) < 1e-12
    h6 = {f"x{i}": v for i, v in enumerate((0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573))}
    assert abs(hartmann6(h6) - HARTMANN6_MIN) < 1e-9
    best = {"lr": 10**-2.5, "shift": 0.3, "layers": 7, "width": 96, "activation": "relu"}
    assert mixed(best) == 0.0 and PROBLEMS["mixed5"].space.contains(best)


if __name__ == "__main__":
    _check()
    print("optima check out:", ", ".join(PROBLEMS))
