"""One training step that a GPU replays as a single launch: ``hw.data.TrainStep``.

A small model's trial on a GPU waits on the CPU, not on the maths: each step launches some
forty kernels (forward, backward, optimizer), and for the seed's 784-128-10 MLP on an H100
machine a step took 0.78 ms whatever the batch size. ``TrainStep`` does exactly

    optimizer.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); optimizer.step()

and, on a CUDA device, records that once per batch shape as a CUDA graph which later steps
replay. One rule per case:

- the first ``warmup`` steps of a new batch shape run as usual (on a side stream, as CUDA
  graphs need), then the step is recorded and replayed;
- a changed optimizer setting (a scheduler's new ``lr``) or ``model.train()/eval()`` records
  again; so do gradients replaced from outside (``optimizer.zero_grad()`` sets them to None);
- at most ``max_graphs`` shapes are recorded; other shapes run as usual;
- gradients are zeroed in place, so recorded and plain steps share one set of gradient tensors;
- on a CPU, with ``graph=False``, or with an optimizer that cannot be recorded (``graph="auto"``),
  every step runs as usual and the result is that of the plain loop.

>>> step = hw.data.TrainStep(model, optimizer, torch.nn.CrossEntropyLoss())
>>> for xb, yb in loader:
...     loss = step(xb, yb)   # a 0-d tensor of its own; .item() waits for the GPU

Not recorded: mixed precision with a ``GradScaler``, closures (LBFGS), models whose Python code
branches on the data. Use ``graph=False`` there.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, Protocol

# Optimizers whose step keeps no counter on the CPU once ``capturable`` is set (or keeps none).
_CAPTURABLE_FLAG = "capturable"
_NO_COUNTER = ("SGD",)
# One recording at a time per process: torch.cuda.graph synchronises the device and empties the
# cache on entry, which must not meet another thread's recording in progress.
_RECORDING = threading.Lock()


class Recorder(Protocol):
    """What TrainStep needs from CUDA graphs; tests on CPUs pass a stand-in."""

    def side_stream(self) -> contextlib.AbstractContextManager[Any]: ...
    def record(self, body: Callable[[], None]) -> Callable[[], None]: ...
    def synchronize(self) -> None: ...


class CudaRecorder:
    """Records on a stream of its own, so trials recording in other threads never share one."""

    def __init__(self, device: Any) -> None:
        import torch

        self._torch = torch
        self._stream = torch.cuda.Stream(device)

    @contextlib.contextmanager
    def side_stream(self) -> Iterator[None]:
        cuda = self._torch.cuda
        current = cuda.current_stream(self._stream.device)
        self._stream.wait_stream(current)
        with cuda.stream(self._stream):
            yield
        current.wait_stream(self._stream)

    def record(self, body: Callable[[], None]) -> Callable[[], None]:
        graph = self._torch.cuda.CUDAGraph()
        # thread_local: trials in other threads may keep launching work while this one records.
        with _RECORDING, self._torch.cuda.graph(graph, stream=self._stream, capture_error_mode="thread_local"):
            body()
        return graph.replay

    def synchronize(self) -> None:
        # A graph dropped while its replay is in flight would hand its memory back too early.
        self._torch.cuda.synchronize(self._stream.device)


def why_not_recordable(optimizer: Any) -> str | None:
    """None when ``optimizer`` can be recorded in a CUDA graph, else the reason."""
    name = type(optimizer).__name__
    groups = optimizer.param_groups
    if not (all(_CAPTURABLE_FLAG in g for g in groups) or name in _NO_COUNTER):
        return f"{name} has no `capturable` setting"
    if optimizer.state:
        return f"{name} has already taken steps (make the TrainStep before the first step)"
    return None


class _Recorded:
    """One recorded step: its static inputs, and where its loss lands after each replay."""

    def __init__(self, x: Any, y: Any) -> None:
        self.x, self.y = x.clone(), y.clone()
        self.loss: Any = None
        self.replay: Callable[[], None] = lambda: None


class TrainStep:
    """``zero_grad -> loss_fn(model(x), y) -> backward -> step``, replayed as a CUDA graph on GPUs."""

    def __init__(self, model: Any, optimizer: Any, loss_fn: Callable[[Any, Any], Any], *,
                 graph: bool | str = "auto", warmup: int = 3, max_graphs: int = 4,
                 recorder: Recorder | None = None) -> None:
        if graph not in (True, False, "auto"):
            raise ValueError(f"graph must be True, False or 'auto', but got graph={graph!r}")
        for name, value, low in (("warmup", warmup, 1), ("max_graphs", max_graphs, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"`{name} >= {low}` must hold, but got {name}={value!r}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.warmup, self.max_graphs = warmup, max_graphs
        self.recordings = 0  # how many times a step was recorded (new shape, new settings)
        self._graphs: dict[tuple[Any, ...], _Recorded] = {}
        self._seen: Counter[tuple[Any, ...]] = Counter()
        self._settings: Any = None
        self._grads: list[Any] = []
        self._recorder = self._choose_recorder(graph, recorder)

    @property
    def graphed(self) -> bool:
        """Whether steps are recorded (else every step runs as the plain loop does)."""
        return self._recorder is not None

    def _choose_recorder(self, graph: bool | str, recorder: Recorder | None) -> Recorder | None:
        if graph is False:
            return None
        device = next(iter(self.model.parameters())).device
        reason = why_not_recordable(self.optimizer)
        if reason is None and recorder is None and device.type != "cuda":
            reason = f"the model is on {device}, and CUDA graphs need a CUDA device"
        if reason is not None:
            if graph is True:
                raise ValueError(f"graph=True cannot be honoured: {reason}")
            return None
        if device.type == "cuda":  # keep the optimizer's step counters on the GPU
            for group in self.optimizer.param_groups:
                if _CAPTURABLE_FLAG in group:
                    group[_CAPTURABLE_FLAG] = True
        return recorder if recorder is not None else CudaRecorder(device)

    def __call__(self, x: Any, y: Any) -> Any:
        if self._recorder is None:
            return self._plain_step(x, y)
        self._forget_stale_graphs()
        key = (tuple(x.shape), x.dtype, tuple(y.shape), y.dtype, x.device, self.model.training)
        recorded = self._graphs.get(key)
        if recorded is None:
            self._seen[key] += 1
            if self._seen[key] <= self.warmup or len(self._graphs) >= self.max_graphs:
                with self._recorder.side_stream():
                    return self._plain_step(x, y)
            recorded = self._graphs[key] = self._record(x, y)
        recorded.x.copy_(x)
        recorded.y.copy_(y)
        recorded.replay()
        return recorded.loss.clone()  # the static loss is overwritten by the next replay

    def _plain_step(self, x: Any, y: Any) -> Any:
        self.optimizer.zero_grad(set_to_none=False)  # in place: recorded steps hold these tensors
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _record(self, x: Any, y: Any) -> _Recorded:
        recorded = _Recorded(x, y)

        def body() -> None:
            recorded.loss = self._plain_step(recorded.x, recorded.y)

        with self._recorder.side_stream():  # type: ignore[union-attr]
            recorded.replay = self._recorder.record(body)  # type: ignore[union-attr]
        self.recordings += 1
        self._grads = self._current_grads()
        return recorded

    def _current_grads(self) -> list[Any]:
        return [p.grad for group in self.optimizer.param_groups for p in group["params"]]

    def _forget_stale_graphs(self) -> None:
        """Graphs hold the settings and gradient tensors they were recorded with."""
        settings = [tuple((k, v) for k, v in sorted(g.items()) if k != "params" and not hasattr(v, "shape"))
                    for g in self.optimizer.param_groups]
        grads = self._current_grads()
        grads_replaced = bool(self._graphs) and (
            len(grads) != len(self._grads) or any(a is not b for a, b in zip(grads, self._grads, strict=True)))
        if settings != self._settings or grads_replaced:
            if self._graphs:
                self._recorder.synchronize()  # type: ignore[union-attr]
            self._graphs.clear()
            self._settings = settings
            if grads_replaced:  # record again only after a plain step has made gradients again
                self._seen = Counter({key: self.warmup - 1 for key in self._seen})
