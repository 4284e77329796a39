"""A real notebook run headless by nbclient: later cells must see the finished study.

In a kernel the search runs in the background and the cell returns; with no frontend to
render the panel, the extension's pre_run_cell hook must hold the next cell until it ends.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import ipykernel  # noqa: F401 - a dev dependency: missing means a broken install
import nbclient
import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
KERNEL = "hpwidgets-test"


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec for this very interpreter, in a temp JUPYTER_PATH (nothing installed)."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "hpwidgets test", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    # The kernel runs in tmp_path; make sure it imports this checkout whatever the install mode.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return KERNEL


def notebook() -> object:
    cells = [
        "%load_ext hpwidgets",
        "def objective(x):\n    return 1 - (x - 0.3) ** 2",
        "%%hptune --trials 5 --algo random --seed 0 --maximize acc --name nb -o study\n"
        "x = hp.uniform(0, 1)\nimport time\ntime.sleep(0.1)  # the next cell starts before this search ends\n"
        "acc = objective(x)",
        "print(len(study.trials), study.best_value, study.running)",
        "%hptune list",
        "%%hptune --edit --trials 3 --algo random --maximize acc --name edited -o edited\n"
        "x = hp.uniform(0, 1)\nacc = objective(x)",
        "print(len(edited.trials))",
        "%%hptune --trials 12 --algo tpe --prune asha --seed 0 --maximize acc --name pruned -o pruned\n"
        "x = hp.uniform(0, 1)\nfor epoch in range(1, 10):\n    acc = objective(x) - 1 / epoch\n"
        "    hp.report(step=epoch, acc=acc)",
        "print(len(pruned.trials), sum(t.state.value == 'PRUNED' for t in pruned.trials))",
    ]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])


def text_of(cell: dict) -> str:
    return "".join(out.get("text", "") for out in cell["outputs"] if out["output_type"] == "stream"
                   and out.get("name") == "stdout")


def test_headless_notebook_holds_the_finished_study(tmp_path: Path, kernel_env: str) -> None:
    nb = notebook()
    client = nbclient.NotebookClient(nb, kernel_name=kernel_env, timeout=60,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    path = tmp_path / "tuned.ipynb"
    nbformat.write(nb, path)
    saved = nbformat.read(path, as_version=4)

    errors = [out for cell in saved.cells for out in cell["outputs"] if out["output_type"] == "error"]
    assert errors == []
    stderr = "".join(out.get("text", "") for cell in saved.cells for out in cell["outputs"]
                     if out.get("name") == "stderr")
    assert "Traceback" not in stderr and "Error in callback" not in stderr

    n_trials, best, running = text_of(saved.cells[3]).split()
    assert n_trials == "5" and 0 < float(best) <= 1 and running == "False"
    _header, row = text_of(saved.cells[4]).strip().splitlines()
    name, trials, stored_best = row.split()[:3]
    assert (name, trials) == ("nb", "5") and float(stored_best) == pytest.approx(float(best), rel=1e-5)
    assert (tmp_path / "hptune.db").exists()
    assert text_of(saved.cells[6]).strip() == "3"  # --edit with nobody to click Start runs as declared
    n_trials, n_pruned = map(int, text_of(saved.cells[8]).split())
    assert n_trials == 12 and n_pruned >= 4  # the ASHA pruner stopped trials from their reports
