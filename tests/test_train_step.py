"""TrainStep: the plain loop's results, one recording per batch shape, recorded again when
settings or gradients change. On CPUs a stand-in replaces the CUDA graph (record = keep the
step, replay = run it); on a CUDA machine the last two tests record real graphs."""

from __future__ import annotations

import contextlib
import threading

import pytest
import torch
from torch import nn

import hpwidgets as hw
from hpwidgets.train_step import TrainStep, why_not_recordable

CUDA = torch.cuda.is_available()
_SEEDING = threading.Lock()  # torch.manual_seed is process-wide: threads must not interleave it


class StandInRecorder:
    """The smallest piece a GPU would do: records a step by keeping it, replays it by running it."""

    def __init__(self) -> None:
        self.recorded = self.synchronized = 0

    @contextlib.contextmanager
    def side_stream(self):
        yield

    def record(self, body):
        self.recorded += 1
        return body

    def synchronize(self):
        self.synchronized += 1


def model_and_data(seed: int = 0, device: str = "cpu"):
    with _SEEDING:
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).to(device)
        X, y = torch.randn(50, 4, device=device), torch.randint(0, 3, (50,), device=device)
    return model, [(X[i:i + 16], y[i:i + 16]) for i in range(0, 50, 16)]  # batches of 16, 16, 16 and 2


def run(model, optimizer, batches, epochs, step=None, between=None) -> list[torch.Tensor]:
    """The plain loop (``step`` None) or TrainStep; ``between(epoch)`` runs after each epoch."""
    losses = []
    for epoch in range(epochs):
        for xb, yb in batches:
            if step is None:
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(xb), yb)
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())
            else:
                losses.append(step(xb, yb))
        if between is not None:
            between(epoch)
    return losses


def twin_runs(make_optimizer, epochs=5, between=None, **step_options):
    """(plain losses, plain params, TrainStep losses, TrainStep params, the TrainStep)."""
    model_a, batches = model_and_data()
    opt_a = make_optimizer(model_a)
    plain = run(model_a, opt_a, batches, epochs, between=between and (lambda e: between(e, opt_a)))
    model_b, _ = model_and_data()
    opt_b = make_optimizer(model_b)
    step = TrainStep(model_b, opt_b, nn.functional.cross_entropy, **step_options)
    stepped = run(model_b, opt_b, batches, epochs, step, between=between and (lambda e: between(e, opt_b)))
    return plain, list(model_a.parameters()), stepped, list(model_b.parameters()), step


def adam(model):
    return torch.optim.Adam(model.parameters(), lr=0.01)


def assert_same(plain, plain_params, stepped, stepped_params):
    assert [float(v) for v in stepped] == [float(v) for v in plain]
    assert all(torch.equal(a, b) for a, b in zip(plain_params, stepped_params, strict=True))


def test_recorded_steps_give_the_plain_loops_losses_and_weights_with_one_recording_per_shape():
    recorder = StandInRecorder()
    plain, p_params, stepped, s_params, step = twin_runs(adam, recorder=recorder, warmup=3)
    assert_same(plain, p_params, stepped, s_params)
    # 16-row batches: 3 plain steps in epoch 1, recorded at the 4th; the 2-row batch once an epoch
    assert step.graphed and step.recordings == recorder.recorded == 2
    assert len({id(v) for v in stepped}) == len(stepped)  # each loss is a tensor of its own


def test_shapes_beyond_max_graphs_run_plain_and_eval_mode_is_a_shape_of_its_own():
    recorder = StandInRecorder()
    plain, p_params, stepped, s_params, step = twin_runs(adam, recorder=recorder, max_graphs=1)
    assert_same(plain, p_params, stepped, s_params)
    assert step.recordings == 1
    model, batches = model_and_data()
    step = TrainStep(model, adam(model), nn.functional.cross_entropy, recorder=StandInRecorder(), warmup=1)
    xb, yb = batches[0]
    step(xb, yb), step(xb, yb)
    model.eval()
    step(xb, yb), step(xb, yb)
    assert step.recordings == 2


def test_a_schedulers_new_learning_rate_is_recorded_again_and_followed():
    def decay(epoch, optimizer):
        for group in optimizer.param_groups:
            group["lr"] *= 0.5

    plain, p_params, stepped, s_params, step = twin_runs(adam, between=decay, recorder=StandInRecorder(),
                                                         warmup=1)
    assert_same(plain, p_params, stepped, s_params)
    # epoch 1: the 16-row step after its one plain step, the 2-row one not yet; then both shapes
    # again at each of the 4 new learning rates, with no plain step first
    assert step.recordings == 1 + 2 * 4


def test_gradients_set_to_none_from_outside_are_recorded_again_after_one_plain_step():
    model, batches = model_and_data()
    optimizer = adam(model)
    recorder = StandInRecorder()
    step = TrainStep(model, optimizer, nn.functional.cross_entropy, recorder=recorder, warmup=2)
    xb, yb = batches[0]
    for _ in range(3):
        step(xb, yb)
    assert recorder.recorded == 1
    optimizer.zero_grad()  # sets the gradients to None: the recorded step would write into freed memory
    step(xb, yb)
    assert recorder.recorded == 1 and all(p.grad is not None for p in model.parameters())
    assert recorder.synchronized == 1  # the dropped graph's last replay finished before its memory went
    step(xb, yb)
    assert recorder.recorded == 2


def test_sgd_with_momentum_is_recordable_and_matches_the_plain_loop():
    def sgd(model):
        return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    assert why_not_recordable(sgd(nn.Linear(2, 2))) is None
    plain, p_params, stepped, s_params, step = twin_runs(sgd, recorder=StandInRecorder())
    assert_same(plain, p_params, stepped, s_params)
    assert step.recordings == 2


@pytest.mark.skipif(CUDA, reason="checks the CPU choice; this machine has CUDA")
def test_on_a_cpu_auto_runs_the_plain_loop_and_true_says_why_it_cannot():
    plain, p_params, stepped, s_params, step = twin_runs(adam)
    assert not step.graphed
    assert_same(plain, p_params, stepped, s_params)
    model, _ = model_and_data()
    with pytest.raises(ValueError, match="graph=True cannot be honoured: the model is on cpu, and CUDA graphs need"):
        TrainStep(model, adam(model), nn.functional.cross_entropy, graph=True)


def test_bad_settings_and_unrecordable_optimizers_are_named():
    model, batches = model_and_data()
    loss = nn.functional.cross_entropy
    with pytest.raises(ValueError, match="graph must be True, False or 'auto', but got graph='yes'"):
        TrainStep(model, adam(model), loss, graph="yes")
    with pytest.raises(ValueError, match=r"`warmup >= 1` must hold, but got warmup=0"):
        TrainStep(model, adam(model), loss, warmup=0)
    with pytest.raises(ValueError, match=r"`max_graphs >= 0` must hold, but got max_graphs=-1"):
        TrainStep(model, adam(model), loss, max_graphs=-1)
    with pytest.raises(ValueError, match="LBFGS has no `capturable` setting"):
        TrainStep(model, torch.optim.LBFGS(model.parameters()), loss, graph=True, recorder=StandInRecorder())
    used = adam(model)
    run(model, used, batches[:1], 1)
    with pytest.raises(ValueError, match="Adam has already taken steps"):
        TrainStep(model, used, loss, graph=True, recorder=StandInRecorder())
    assert not TrainStep(model, used, loss, recorder=StandInRecorder()).graphed  # auto: plain steps
    assert hw.data.TrainStep is TrainStep


def cuda_twins(seed: int) -> tuple[float, float, int]:
    """(largest loss gap, largest weight gap, recordings) of the plain loop and a real recording."""
    results = []
    for graph in (False, True):
        model, batches = model_and_data(seed, "cuda")
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01, capturable=True)
        step = TrainStep(model, optimizer, nn.functional.cross_entropy, graph=graph)
        losses = torch.stack(run(model, optimizer, batches, 20, step))
        results.append((losses, torch.cat([p.detach().flatten() for p in model.parameters()]), step.recordings))
    (l0, w0, _), (l1, w1, recordings) = results
    return float((l0 - l1).abs().max()), float((w0 - w1).abs().max()), recordings


@pytest.mark.skipif(not CUDA, reason="records real CUDA graphs: needs a CUDA GPU")
def test_real_cuda_graphs_follow_the_plain_loop():
    loss_gap, weight_gap, recordings = cuda_twins(0)
    assert recordings == 2 and loss_gap < 1e-5 and weight_gap < 1e-5


@pytest.mark.skipif(not CUDA, reason="records real CUDA graphs: needs a CUDA GPU")
def test_real_cuda_graphs_record_in_several_threads_at_once():
    gaps: dict[int, tuple[float, float, int]] = {}
    threads = [threading.Thread(target=lambda s=s: gaps.__setitem__(s, cuda_twins(s))) for s in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(gaps) == [0, 1, 2, 3]
    assert all(r == 2 and lg < 1e-5 and wg < 1e-5 for lg, wg, r in gaps.values())
