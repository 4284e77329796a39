"""On-device data: every sample once per epoch, seeded shuffles, one shared copy per device, seed-exact values."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

import hpwidgets as hw
from hpwidgets import data
from hpwidgets.datasets import write_idx


@pytest.fixture(autouse=True)
def empty_cache():
    data.clear_cache()
    yield
    data.clear_cache()


def epoch_order(loader) -> list[int]:
    return [int(v) for _, yb in loader for v in yb]


def test_every_sample_once_per_epoch_in_a_new_order_each_epoch():
    X, y = torch.arange(103.0).reshape(-1, 1), torch.arange(103)
    loader = data.DeviceLoader(X, y, batch_size=16, shuffle=True, seed=0)
    first, second = epoch_order(loader), epoch_order(loader)
    assert sorted(first) == sorted(second) == list(range(103)) and first != second
    assert [len(xb) for xb, _ in loader] == [16] * 6 + [7] and len(loader) == 7
    assert all(torch.equal(xb[:, 0].long(), yb) for xb, yb in loader)  # rows stay paired


def test_a_seed_repeats_the_batches_and_another_seed_does_not():
    X = np.arange(50, dtype=np.float64).reshape(-1, 1)
    y = np.arange(50)
    runs = [epoch_order(data.DeviceLoader(X, y, batch_size=8, seed=seed)) for seed in (1, 1, 2)]
    assert runs[0] == runs[1] != runs[2]


def test_no_shuffle_keeps_order_and_drop_last_drops_the_short_batch():
    X = torch.arange(10.0)
    assert [b.tolist() for b in data.DeviceLoader(X, batch_size=4, shuffle=False)] == [
        [0.0, 1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [8.0, 9.0]]
    assert len(data.DeviceLoader(X, batch_size=4, drop_last=True)) == 2


def test_batches_are_on_the_loaders_device():
    X, y = torch.zeros(20, 3), torch.zeros(20, dtype=torch.long)
    loader = data.DeviceLoader(X, y, batch_size=8, device="meta", seed=0)  # a non-CPU device without CUDA
    assert {(xb.device.type, yb.device.type) for xb, yb in loader} == {("meta", "meta")}


def test_numpy_data_becomes_float32_features_and_int64_labels_on_the_device():
    X, y = np.random.default_rng(0).random((6, 2)), np.arange(6, dtype=np.int32)
    xb, yb = next(iter(data.DeviceLoader(X, y, batch_size=6, shuffle=False)))
    assert xb.dtype == torch.float32 and yb.dtype == torch.int64
    assert np.allclose(xb.numpy(), X.astype(np.float32))


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="`batch_size` must be an int >= 1, but got batch_size=0"):
        data.DeviceLoader(torch.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="same length, but got 3 and 2"):
        data.DeviceLoader(torch.zeros(3), torch.zeros(2))


def tiny_mnist(root, n: int = 40):
    """A torchvision-readable MNIST folder with ``n`` random images."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
    return root


def test_from_torchvision_matches_to_tensor_and_normalize_bit_for_bit(tmp_path):
    import torchvision
    from torchvision import transforms
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    dataset = torchvision.datasets.MNIST(str(tiny_mnist(tmp_path)), train=True, download=False, transform=transform)
    X, y = data.from_torchvision(dataset, "cpu")
    expected = torch.stack([dataset[i][0] for i in range(len(dataset))])
    assert X.shape == (40, 1, 28, 28) and torch.equal(X, expected)
    assert y.tolist() == [dataset[i][1] for i in range(len(dataset))]
    mine = hw.datasets.mnist(tmp_path)  # our reader carries the same normalisation
    assert torch.equal(data.from_torchvision(mine, "cpu")[0], expected)


def test_one_copy_per_dataset_and_device_even_under_concurrent_trials(tmp_path):
    dataset = hw.datasets.mnist(tiny_mnist(tmp_path))
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(data.from_torchvision(dataset, "cpu")))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r[0] is results[0][0] for r in results)
    assert data.from_torchvision(dataset, "meta")[0] is not results[0][0]
    other = hw.datasets.mnist(tmp_path)  # an equal but distinct dataset gets its own copy
    assert data.from_torchvision(other, "cpu")[0] is not results[0][0]


def test_a_copy_lives_as_long_as_its_source():
    per_trial = [np.random.default_rng(i).random((50, 3)) for i in range(20)]  # each trial's own split
    for X in per_trial:
        assert data.to_device(X, "cpu") is data.to_device(X, "cpu")  # float64 -> float32: a copy, shared
    assert len(data._cache) == 20
    del per_trial, X  # the trials ended: their copies go with their arrays
    assert len(data._cache) == 0 and not data._locks
    kept = np.ones(3)
    data.to_device(kept, "cpu")
    data.clear_cache()
    assert not data._cache and not data._locks


def test_per_trial_lists_are_converted_each_time_and_leave_no_copy_behind():
    for trial in range(5):  # each trial builds its labels as a list: nothing says when one is freed
        labels = [trial, 1, 2]
        loader = hw.data.DeviceLoader(np.zeros((3, 2)), labels, shuffle=False)
        assert epoch_order(loader) == labels
    del loader
    assert not data._cache and not data._locks
    labels[0] = 7  # a list changed in place shows: it was converted again, not read from a cache
    assert data.to_device(labels, "cpu").tolist() == [7, 1, 2]
    assert data.to_device((0.5, 1.5), "cpu").dtype == torch.float32 and not data._cache


def test_a_cpu_tensor_over_the_arrays_own_memory_is_not_cached():
    X = np.zeros((4, 2), np.float32)
    view = data.to_device(X, "cpu")
    X += 1  # an in-place change shows: there was nothing to copy
    assert float(view.sum()) == 8.0 and not data._cache


def test_explicit_mean_and_std_and_unnormalised_data():
    dataset = hw.datasets.ArrayDataset(np.full((2, 4, 4), 255, np.uint8), np.array([1, 2]), "ones")
    assert torch.equal(data.from_torchvision(dataset)[0], torch.ones(2, 1, 4, 4))
    assert torch.allclose(data.from_torchvision(dataset, mean=(0.5,), std=(0.25,))[0], torch.full((2, 1, 4, 4), 2.0))
    with pytest.raises(ValueError, match="give both `mean` and `std` or neither"):
        data.from_torchvision(dataset, mean=(0.5,))


def test_importing_hpwidgets_does_not_import_torch():
    code = "import sys, hpwidgets as hw; assert 'torch' not in sys.modules; hw.data; hw.datasets; " \
           "assert 'torch' not in sys.modules; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
