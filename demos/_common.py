"""Shared by the demo notebooks: the small-budget switch, where the data are, the article's models.

* ``HPW_DEMO_SMALL=1`` shrinks every demo (fewer trials, less data) so the test suite runs all
  of them in a few minutes; without it the demos run the article's budgets.
* ``HPW_DATA`` names a folder holding ``MNIST/raw`` and ``california_housing/cal_housing.data``.
  Without it, the ``shared/data`` folder beside this checkout is used when present; otherwise
  MNIST is downloaded by torchvision into ``./data`` and California housing by scikit-learn.
"""

from __future__ import annotations

import math
import os
import zlib
from pathlib import Path
from typing import Any

import hpwidgets as hw

SMALL = os.environ.get("HPW_DEMO_SMALL", "").strip() not in ("", "0")
HERE = Path(__file__).resolve().parent


def pick(small: Any, full: Any) -> Any:
    """``small`` under HPW_DEMO_SMALL=1, else ``full``."""
    return small if SMALL else full


def data_dir() -> Path | None:
    """$HPW_DATA, else ../shared/data next to the repository, else None (download)."""
    if os.environ.get("HPW_DATA"):
        return Path(os.environ["HPW_DATA"]).expanduser()
    beside = HERE.parent.parent / "shared" / "data"
    return beside if beside.is_dir() else None


def mnist(train: bool = True) -> hw.datasets.ArrayDataset:
    """MNIST from the data folder when it holds it, else torchvision's download into ./data."""
    root = data_dir()
    if root is not None and (root / "MNIST" / "raw").is_dir():
        return hw.datasets.mnist(root, train=train, download=False)
    return hw.datasets.mnist(HERE / "data", train=train, download=True)  # no data folder: fetch it


def california() -> hw.datasets.ArrayDataset:
    """California housing from the data folder's cal_housing.data, else scikit-learn's fetcher."""
    root = data_dir()
    path = None if root is None else root / "california_housing" / "cal_housing.data"
    return hw.datasets.california_housing(path if path is not None and path.is_file() else None, download=True)


def _first(dataset: hw.datasets.ArrayDataset, n: int) -> hw.datasets.ArrayDataset:
    return hw.datasets.ArrayDataset(dataset.data[:n], dataset.targets[:n], dataset.name,
                                    normalization=dataset.normalization)


def mnist_tensors(n_train: int, n_test: int, device: Any = "cpu") -> tuple[Any, Any, Any, Any]:
    """The first ``n_train`` training and ``n_test`` test images, normalised as the article does
    (``Normalize((0.1307,), (0.3081,))``), as tensors on ``device``: converted once, and every
    trial then cuts its batches there."""
    x_train, y_train = hw.data.from_torchvision(_first(mnist(train=True), n_train), device)
    x_test, y_test = hw.data.from_torchvision(_first(mnist(train=False), n_test), device)
    return x_train, y_train, x_test, y_test


def simple_nn() -> Any:
    """The article's SimpleNN: 784 -> 128 -> ReLU -> 10."""
    from torch import nn
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 128), nn.ReLU(), nn.Linear(128, 10))


def seeded(model: Any, *config: Any) -> Any:
    """``model`` with its Linear layers re-drawn (PyTorch's default bounds, 1/sqrt(fan_in)) from a
    generator seeded by ``config``: studies running side by side in threads share torch's global
    RNG, so only a private generator makes a trial repeatable."""
    import torch
    from torch import nn
    generator = torch.Generator().manual_seed(zlib.crc32(repr(config).encode()))
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.Linear):
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)
    return model


def train_epoch(model: Any, loader: Any, optimizer: Any) -> None:
    """One pass over ``loader`` with cross-entropy."""
    from torch.nn import functional as F
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        optimizer.step()


def evaluate(model: Any, x: Any, y: Any) -> float:
    """Share of ``x`` the model classifies as ``y`` (the data follow the model to its device)."""
    import torch
    device = next(model.parameters()).device
    x, y = hw.data.to_device(x, device), hw.data.to_device(y, device)
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(dim=1) == y).float().mean().item()
