"""The article's MNIST MLP for the Hyperband benchmark: data, deterministic training, the objective.

784-128-10 with Adam. Training is seeded per (repetition, config) and per epoch, so a model
trained to k epochs and continued to m equals one trained to m from scratch: one run gives both
the restart and the resume accounting of ``hyperband_mnist.py``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

import hpwidgets as hw


@dataclass(frozen=True)
class Data:
    """Flattened, normalised float images and int64 labels, all in memory."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]


def load_mnist(root: Path, n_val: int = 10000) -> Data:
    """MNIST from the IDX files; the last ``n_val`` of a fixed permutation of train is validation."""
    def prepare(ds: Any) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(ds.data).float().div(255).sub(0.1307).div(0.3081)
        return x.reshape(len(x), -1), torch.from_numpy(ds.targets)

    x, y = prepare(hw.datasets.mnist(root, train=True, download=False))
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(12345))
    tr, va = order[:-n_val], order[-n_val:]
    return Data((x[tr], y[tr]), (x[va], y[va]), prepare(hw.datasets.mnist(root, train=False, download=False)))


def synthetic_data(seed: int = 0) -> Data:
    """A tiny 10-class MNIST-shaped problem (noisy class prototypes) for --quick."""
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.randn(10, 784, generator=g)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 10, (n,), generator=g)
        return prototypes[y] + 12.0 * torch.randn(n, 784, generator=g), y

    return Data(draw(800), draw(300), draw(300))


def config_seed(rep: int, lr: float, batch_size: int) -> int:
    return zlib.crc32(f"{rep}|{float(lr)!r}|{int(batch_size)}".encode())


def unpack(params: dict[str, Any], rep: int) -> tuple[float, int, int, int]:
    """(lr, batch size, epochs, the config's seed) of a trial's params."""
    lr, bs = float(params["lr"]), int(params["batch_size"])
    return lr, bs, int(params["epochs"]), config_seed(rep, lr, bs)


def new_model(seed: int, lr: float) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)  # one trial at a time per process, so the global RNG is ours
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    return model, torch.optim.Adam(model.parameters(), lr=lr)


def train_epoch(model: nn.Module, opt: torch.optim.Optimizer, data: Data, batch_size: int, seed: int) -> None:
    x, y = data.train
    # The order depends on (config, epoch) only: resuming at epoch k replays restart's epoch k.
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    for start in range(0, len(y), batch_size):
        idx = order[start:start + batch_size]
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()


@torch.no_grad()
def accuracy(model: nn.Module, xy: tuple[torch.Tensor, torch.Tensor]) -> float:
    return float((model(xy[0]).argmax(1) == xy[1]).float().mean())


class Objective:
    """Trains a config to ``epochs``; with ``resume`` it continues its own earlier checkpoint."""

    def __init__(self, data: Data, rep: int, resume: bool = True) -> None:
        self.data, self.rep, self.resume = data, rep, resume
        self.checkpoints: dict[tuple[float, int], tuple[int, nn.Module, torch.optim.Optimizer]] = {}

    def __call__(self, params: dict[str, Any]) -> dict[str, float]:
        torch.set_num_threads(1)
        lr, bs, budget, seed = unpack(params, self.rep)
        done, model, opt = self.checkpoints.get((lr, bs), (0, None, None))
        if model is None or not self.resume or done > budget:  # nothing to continue: from scratch
            done, (model, opt) = 0, new_model(seed, lr)
        for epoch in range(done, budget):
            train_epoch(model, opt, self.data, bs, seed + 7919 * (epoch + 1))
        self.checkpoints[(lr, bs)] = (budget, model, opt)
        return {"accuracy": accuracy(model, self.data.val), "test_accuracy": accuracy(model, self.data.test),
                "trained_epochs": float(budget - done)}


class FreshTrainer:
    """What the trial-taking MNIST objectives share: the data, the repetition, and each call's
    config with a freshly seeded model (one torch thread: trials run side by side)."""

    def __init__(self, data: Data, rep: int) -> None:
        self.data, self.rep = data, rep

    def start(self, params: dict[str, Any]) -> tuple[int, int, int, nn.Module, torch.optim.Optimizer]:
        """(batch size, budget, seed, model, optimizer) for ``params``."""
        torch.set_num_threads(1)
        lr, bs, budget, seed = unpack(params, self.rep)
        return (bs, budget, seed, *new_model(seed, lr))


class Curve(FreshTrainer):
    """Trains a config epoch by epoch to ``epochs``, reporting validation accuracy at step =
    epochs trained, for a pruner to stop it. Seeds as in ``Objective``, so the accuracy after
    k epochs equals a k-epoch ``Objective`` trial's (random search's results carry over)."""

    def __call__(self, params: dict[str, Any], trial: hw.Trial) -> dict[str, float]:
        bs, budget, seed, model, opt = self.start(params)
        for epoch in range(budget):
            train_epoch(model, opt, self.data, bs, seed + 7919 * (epoch + 1))
            trial.report(epoch + 1, accuracy=accuracy(model, self.data.val))
        return {"accuracy": trial.reports[-1].metrics["accuracy"], "test_accuracy": accuracy(model, self.data.test)}
