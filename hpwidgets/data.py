"""On-device data: put a dataset on the trial's device once, then cut shuffled batches there.

The seed's ``DataLoader`` + per-sample ``transforms`` loop spends most of a trial converting
images one by one on the CPU. Here a dataset is converted in one vectorised step, copied to
each device once and shared by every trial on that device (a cache keyed by the dataset's
identity and the device), and batches are index gathers on the device.

>>> import torch, hpwidgets as hw
>>> X, y = torch.arange(10.0).reshape(5, 2), torch.arange(5)
>>> [len(xb) for xb, yb in hw.data.DeviceLoader(X, y, batch_size=2, shuffle=True, seed=0)]
[2, 2, 1]

Trials in threads share one copy per device; each worker process (``executor="processes"``,
Dask) keeps its own. A copy goes when its source is freed, or with ``clear_cache()``. Python lists
and tuples are converted on each call instead: nothing says when one is freed, so a cached copy
would outlive the trial that built the list. ``TrainStep`` (``train_step.py``) is the
other half of a fast small-model trial on a GPU: the step itself, replayed as a CUDA graph.
"""

from __future__ import annotations

import math
import sys
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from ._checks import count
from .train_step import TrainStep  # noqa: F401  (hw.data.TrainStep: the step, replayed on GPUs)

MNIST_NORMALIZATION = ((0.1307,), (0.3081,))  # the seed's Normalize((0.1307,), (0.3081,))

_cache: dict[tuple[Any, ...], Any] = {}  # (id of the source, device, dtype) -> the copy on the device
_locks: dict[tuple[Any, ...], threading.Lock] = {}
_guard = threading.RLock()  # re-entrant: a source freed while it is held runs _forget on this thread


def _torch() -> Any:
    try:
        import torch
    except ImportError as error:
        raise ImportError("hpwidgets.data needs PyTorch: pip install 'hpwidgets[torch]'") from error
    return torch


def _cached(key: tuple[Any, ...], source: Any, build: Any) -> Any:
    """``build()`` once per key, even when several trials ask at the same moment; a source
    without weak references (a list, a tuple) is built each time, as nothing would free its copy."""
    if not _weakly_referable(source):
        return build()
    with _guard:
        if key in _cache:
            return _cache[key]
        lock = _locks.setdefault(key, threading.Lock())
    with lock:  # one builder per key; others wait for its result instead of copying again
        with _guard:
            if key in _cache:
                return _cache[key]
        value = build()
        if _is_a_view_of(source, value):  # nothing was copied, and caching it would keep the source alive
            with _guard:
                _locks.pop(key, None)
            return value
        with _guard:
            _cache[key] = value
            _forget_with(source, key)
        return value


def _is_a_view_of(source: Any, value: Any) -> bool:
    """A CPU tensor that ``torch.as_tensor`` made over a numpy array's own memory."""
    numpy = sys.modules.get("numpy")
    return (numpy is not None and isinstance(source, numpy.ndarray) and getattr(value, "device", None) is not None
            and value.device.type == "cpu" and numpy.shares_memory(source, value.numpy()))


def _weakly_referable(source: Any) -> bool:
    try:
        weakref.ref(source)
    except TypeError:
        return False
    return True


def _forget_with(source: Any, key: tuple[Any, ...]) -> None:
    """Drop the copy when its source is freed: a trial's own split (``train_test_split`` in the
    objective) must not keep every trial's copy on the GPU, and a freed source's id may come back."""
    weakref.finalize(source, _forget, key)


def _forget(key: tuple[Any, ...]) -> None:
    with _guard:
        _cache.pop(key, None)
        _locks.pop(key, None)


def clear_cache(device: str | None = None) -> None:
    """Forget the on-device copies (of one device, or all), so their memory can be freed."""
    with _guard:
        for key in [k for k in _cache if device is None or k[1] == str(device)]:
            _forget(key)


def _default_dtype(array: Any) -> Any:
    """float32 for floating data (models' dtype), int64 for labels, else unchanged."""
    torch = _torch()
    kind = getattr(getattr(array, "dtype", None), "kind", None)  # numpy dtypes only
    if kind == "f":
        return torch.float32
    if kind in ("i", "u") and getattr(array, "ndim", 0) == 1:
        return torch.int64
    return None


def to_device(array: Any, device: Any = "cpu", *, dtype: Any = None) -> Any:
    """``array`` (numpy, tensor or list) as a tensor on ``device``; an array or tensor is copied once and shared.

    A tensor already on ``device`` with the right dtype is returned as it is, and so is a CPU tensor
    over a numpy array's own memory (nothing to copy). A copy belongs to this array object while it
    lives: after changing the array in place, ``clear_cache()``. A list or tuple is converted on
    each call (nothing would free a cached copy of it): convert a large one to an array once.
    """
    torch = _torch()
    device = torch.device(device)
    if isinstance(array, torch.Tensor) and array.device == device and (dtype is None or array.dtype == dtype):
        return array
    dtype = dtype if dtype is not None else _default_dtype(array)

    def build() -> Any:
        return torch.as_tensor(array).to(device=device, dtype=dtype)

    return _cached((id(array), str(device), str(dtype)), array, build)


def normalization_of(dataset: Any) -> tuple[Sequence[float], Sequence[float]] | None:
    """(mean, std) of a ``Normalize`` in the dataset's transform, or its ``normalization`` attribute."""
    found = getattr(dataset, "normalization", None)
    stack = [getattr(dataset, "transform", None)]
    while stack and found is None:
        transform = stack.pop()
        if transform is None:
            continue
        if type(transform).__name__ == "Normalize" and hasattr(transform, "mean") and hasattr(transform, "std"):
            found = (transform.mean, transform.std)
        stack.extend(getattr(transform, "transforms", []) or [])
    return found


def _images(data: Any, device: Any) -> Any:
    """uint8 images -> float N x C x H x W in [0, 1] on ``device``, as ``ToTensor`` makes them."""
    torch = _torch()
    raw = torch.as_tensor(data)
    x = raw.to(device)  # copy the uint8 bytes, a quarter of the float size
    if x.ndim == 3:
        x = x.unsqueeze(1)  # grey images: one channel
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        x = x.permute(0, 3, 1, 2)  # torchvision keeps CIFAR as N x H x W x C
    x = x.contiguous().to(torch.get_default_dtype())
    return x.div(255) if raw.dtype == torch.uint8 else x


def from_torchvision(dataset: Any, device: Any = "cpu", *, mean: Sequence[float] | None = None,
                     std: Sequence[float] | None = None) -> tuple[Any, Any]:
    """(images, labels) of a torchvision-style dataset on ``device``, once per (dataset, device).

    Images become float N x C x H x W exactly as ``ToTensor()`` then ``Normalize(mean, std)`` make
    them; mean/std default to the dataset's own ``Normalize`` (none: only the /255 scaling).
    Works with any object with ``.data`` and ``.targets`` (e.g. ``hw.datasets.mnist()``).
    """
    torch = _torch()
    device = torch.device(device)
    if mean is None and std is None:
        mean, std = normalization_of(dataset) or (None, None)
    if (mean is None) != (std is None):
        raise ValueError(f"give both `mean` and `std` or neither, but got mean={mean!r}, std={std!r}")

    def build() -> tuple[Any, Any]:
        x = _images(dataset.data, device)
        if mean is not None:
            shape = (1, -1, 1, 1)
            m = torch.as_tensor(mean, dtype=x.dtype, device=device).reshape(shape)
            s = torch.as_tensor(std, dtype=x.dtype, device=device).reshape(shape)
            x = x.sub(m).div(s)  # Normalize's own order of operations, so values match bit for bit
        y = torch.as_tensor(dataset.targets).to(device=device, dtype=torch.int64)
        return x, y

    key = (id(dataset), str(device), "torchvision", repr(mean), repr(std))
    return _cached(key, dataset, build)


class DeviceLoader:
    """Mini-batches of ``(X, y)`` cut on the device: every sample once per epoch.

    ``X``/``y`` may be numpy arrays or tensors; they are copied to ``device`` once (shared with
    other loaders and trials on that device); lists are converted for this loader alone. ``shuffle``
    draws a new order each epoch from a generator seeded by ``seed`` (None: a random seed), so a
    seeded loader repeats exactly.
    """

    def __init__(self, X: Any, y: Any = None, *, batch_size: int = 64, shuffle: bool = True,
                 device: Any = None, seed: int | None = None, drop_last: bool = False) -> None:
        torch = _torch()
        batch_size = count("batch_size", batch_size, 1)
        if device is None:
            device = X.device if isinstance(X, torch.Tensor) else "cpu"
        self.device = torch.device(device)
        self.X = to_device(X, self.device)
        self.y = None if y is None else to_device(y, self.device)
        if self.y is not None and len(self.y) != len(self.X):
            raise ValueError(f"X and y must have the same length, but got {len(self.X)} and {len(self.y)}")
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.X)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        torch = _torch()
        n = len(self.X)
        # The order is drawn on the CPU (one small tensor per epoch) so it is the same on every device.
        order = torch.randperm(n, generator=self.generator).to(self.device) if self.shuffle else None
        for batch in range(len(self)):
            start = batch * self.batch_size
            if order is None:  # plain slices are views: no copy at all
                xb = self.X[start:start + self.batch_size]
                yb = None if self.y is None else self.y[start:start + self.batch_size]
            else:
                index = order[start:start + self.batch_size]
                xb = self.X.index_select(0, index)
                yb = None if self.y is None else self.y.index_select(0, index)
            yield xb if yb is None else (xb, yb)

    def __repr__(self) -> str:
        return (f"DeviceLoader(n={len(self.X)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"device={str(self.device)!r})")
