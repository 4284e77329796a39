"""Every demo notebook, executed for real by nbclient with the small budget (HPW_DEMO_SMALL=1).

The notebooks run in a temporary copy of ``demos/`` (their ``hptune.db`` and reports land there).
Data: ``../shared/data`` beside the repository when it holds MNIST and California housing; else
(a fresh clone) small synthetic files in the same formats, MNIST as IDX and ``cal_housing.data``
as StatLib's CSV. ``HPW_TEST_SYNTHETIC_DATA=1`` forces the synthetic files.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import time
from pathlib import Path

import ipykernel  # noqa: F401 - a dev dependency: missing means a broken install
import nbclient
import nbformat
import numpy as np
import pytest
import torch

import hpwidgets as hw

REPO = Path(__file__).resolve().parents[1]
DEMOS = sorted((REPO / "demos").glob("[0-9][0-9]_*.ipynb"))
SHARED_DATA = REPO.parent / "shared" / "data"
KERNEL = "hpwidgets-demos"
BEST = re.compile(r"^best (\w+): (-?[0-9.]+(?:e-?[0-9]+)?)", re.MULTILINE)
SANE = {"accuracy": (0.5, 1.0), "mse": (0.0, 5.0)}  # small budgets, but far better than chance


def write_synthetic_mnist(root: Path, n_train: int = 2000, n_test: int = 1000, seed: int = 0) -> Path:
    """IDX files like MNIST's whose class shows as a bright bar (learnable in one epoch)."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 3 + 2 * label: 5 + 2 * label, 4:24] = 255
        hw.datasets.write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        hw.datasets.write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return raw


def write_synthetic_california(root: Path, n: int = 800, seed: int = 0) -> Path:
    """StatLib's 9 columns (longitude ... median value) with the value driven by income."""
    rng = np.random.default_rng(seed)
    households = rng.uniform(100, 1000, n)
    income = rng.uniform(0.5, 10, n)
    columns = [rng.uniform(-124, -114, n), rng.uniform(32, 42, n), rng.integers(1, 52, n),
               households * rng.uniform(4, 7, n), households * rng.uniform(0.9, 1.2, n),
               households * rng.uniform(2, 4, n), households, income,
               np.clip(income * 40000 + rng.normal(0, 20000, n), 15000, 500001)]
    path = root / "california_housing" / "cal_housing.data"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, np.column_stack(columns), delimiter=",", fmt="%.6f")
    return path


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A kernelspec for this interpreter, the small budget and a data folder for the kernels."""
    tmp = tmp_path_factory.mktemp("demos-env")
    spec_dir = tmp / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "hpwidgets demos", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    real = (SHARED_DATA / "MNIST" / "raw").is_dir() and (SHARED_DATA / "california_housing").is_dir()
    if real and os.environ.get("HPW_TEST_SYNTHETIC_DATA", "") in ("", "0"):
        data = SHARED_DATA
    else:
        data = tmp / "data"
        write_synthetic_mnist(data)
        write_synthetic_california(data)
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))  # this checkout, installed or not
    return {"JUPYTER_PATH": str(tmp / "jupyter"), "IPYTHONDIR": str(tmp / "ipython"), "HPW_DEMO_SMALL": "1",
            "HPW_DATA": str(data), "PYTHONPATH": path, "HPWIDGETS_DASHBOARD": "widget"}


def run_notebook(path: Path, workdir: Path, timeout: int = 300) -> tuple[object, float]:
    """Execute ``path`` in ``workdir`` (a copy of demos/); returns the executed notebook and seconds."""
    for helper in path.parent.glob("_*.py"):
        shutil.copy(helper, workdir / helper.name)
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=timeout,
                                     resources={"metadata": {"path": str(workdir)}})
    start = time.monotonic()
    client.execute()
    return nb, time.monotonic() - start


def outputs(nb: object, kind: str, name: str | None = None) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs  # type: ignore[attr-defined]
            if out["output_type"] == kind and (name is None or out.get("name") == name)]


def test_there_are_eight_demos() -> None:
    assert [p.name[:2] for p in DEMOS] == ["01", "02", "03", "04", "05", "06", "07", "08"]


@pytest.mark.slow
@pytest.mark.parametrize("path", DEMOS, ids=[p.stem for p in DEMOS])
def test_demo_runs_with_the_small_budget(path: Path, demo_env: dict[str, str], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in demo_env.items():
        monkeypatch.setenv(key, value)
    nb, seconds = run_notebook(path, tmp_path)
    assert outputs(nb, "error") == []
    stderr = "".join(out.get("text", "") for out in outputs(nb, "stream", "stderr"))
    assert "Traceback" not in stderr and "Error in callback" not in stderr and "failed" not in stderr
    stdout = "".join(out.get("text", "") for out in outputs(nb, "stream", "stdout"))
    found = BEST.findall(stdout)
    assert found, f"no 'best METRIC: VALUE' line in {stdout!r}"
    metric, value = found[-1]
    low, high = SANE[metric]
    assert math.isfinite(float(value)) and low <= float(value) <= high, (metric, value)
    assert seconds < 120, f"{path.name} took {seconds:.0f} s with the small budget"


def test_synthetic_files_read_like_the_real_ones(tmp_path: Path) -> None:
    write_synthetic_mnist(tmp_path, n_train=30, n_test=20)
    write_synthetic_california(tmp_path, n=50)
    train, test = hw.datasets.mnist(tmp_path, download=False), hw.datasets.mnist(tmp_path, train=False, download=False)
    assert train.data.shape == (30, 28, 28) and test.targets.shape == (20,) and train.targets.max() <= 9
    X, y = hw.datasets.california_housing(tmp_path / "california_housing" / "cal_housing.data")
    assert X.shape == (50, 8) and np.all((y > 0) & (y <= 5.00001))


def test_seeded_weights_repeat_per_config_and_keep_pytorchs_bounds() -> None:
    sys.path.insert(0, str(REPO / "demos"))
    try:
        from _common import seeded
    finally:
        sys.path.remove(str(REPO / "demos"))
    from torch import nn

    def weights(*config: object) -> list[torch.Tensor]:
        model = seeded(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), *config)
        return [p.detach().clone() for p in model.parameters()]

    torch.manual_seed(1)  # the global RNG plays no part
    first = weights(0.01, 32)
    torch.manual_seed(2)
    assert all(torch.equal(a, b) for a, b in zip(first, weights(0.01, 32), strict=True))
    assert not torch.equal(first[0], weights(0.01, 33)[0])
    assert first[0].abs().max() <= 1 / math.sqrt(64) and first[2].abs().max() <= 1 / math.sqrt(32)
