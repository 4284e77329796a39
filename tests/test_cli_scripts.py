"""``hptune``: a script's own modules, its direction options, and reading stored studies whose
algorithm cannot be rebuilt (the user's class, object options)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import hpwidgets as hw
from hpwidgets import cli
from hpwidgets.algorithms import RandomSearch
from hpwidgets.algorithms.hyperband import Hyperband
from hpwidgets.algorithms.tpe_native import NativeTPE

HELPER = "hptune_beside_helper"  # a module name no other test imports
SCRIPT = (f"import hpwidgets as hw\nfrom {HELPER} import score\nSPACE = {{'x': hw.uniform(0, 1)}}\n"
          f"def objective(params):\n    import {HELPER} as late  # imported again while the trial runs\n"
          f"    return score(params['x']) + late.OFFSET\n")


class Mine(RandomSearch):
    name = "mine"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A script with a module beside it, run from another folder; sys.path and sys.modules restored."""
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / f"{HELPER}.py").write_text("OFFSET = 0.0\ndef score(x):\n    return (x - 0.3) ** 2\n")
    (folder / "train.py").write_text(SCRIPT)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, HELPER, raising=False)
    yield folder / "train.py"
    sys.modules.pop(HELPER, None)


def test_run_imports_the_modules_beside_the_script(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = list(sys.path)
    code = cli.main(["run", f"{project}:objective", "--algo", "random", "--trials", "3", "--storage", "none",
                     "--no-progress"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "") and out.startswith("best value ")
    assert sys.modules[HELPER].__file__ == str(project.parent / f"{HELPER}.py")
    assert sys.path == before  # the script's folder goes once the run ends


@pytest.mark.slow
def test_worker_processes_import_the_modules_beside_the_script(project: Path) -> None:
    script = Path(sys.executable).with_name("hptune")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "hpwidgets.cli"]
    done = subprocess.run([*command, "run", f"{project}:objective", "--trials", "2", "--parallel", "2",
                           "--executor", "process", "--name", "w", "--storage", "w.db", "--no-progress"],
                          cwd=project.parent.parent, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert [t.state for t in hw.load_study("w", project.parent.parent / "w.db").trials] == [hw.TrialState.COMPLETE] * 2


@pytest.mark.parametrize("option", ["--maximize", "--minimize"])
def test_an_empty_metric_name_is_refused_before_the_script_runs(
        tmp_path: Path, option: str, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "task.py"
    script.write_text("open(__file__ + '.ran', 'w').close()\ndef objective(params):\n    return params['x']\n")
    code = cli.main(["run", f"{script}:objective", "--space", hw.SearchSpace({"x": hw.uniform(0, 1)}).to_json(),
                     option, "", "--algo", "random", "--trials", "1", "--storage", "none", "--no-progress"])
    name = option.removeprefix("--")
    assert (code, capsys.readouterr().err) == (
        2, f"hptune run: `{name}` must be True or a metric name, but got {name}=''\n")
    assert not Path(f"{script}.ran").exists()


def test_the_default_report_file_of_a_name_with_a_slash_is_one_file_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    hw.tune(lambda p: p["x"], {"x": hw.uniform(0, 1)}, algo="random", trials=2, seed=0, name="exp/1",
            storage="s.db", progress=False)
    assert cli.main(["report", "exp/1", "--storage", "s.db"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "exp_1.html")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("s.db")) == ["exp_1.html"]


@pytest.mark.parametrize(("algo", "spec"), [(Mine(), "mine(...)"), (Hyperband(sampler=NativeTPE()), "hyperband(...)")])
def test_report_and_clean_read_a_study_whose_algorithm_cannot_be_rebuilt(
        tmp_path: Path, algo: hw.Algorithm, spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    def objective(params: dict, trial: hw.Trial) -> float:
        (trial.checkpoint_dir / "model.bin").write_bytes(b"w")
        return params["x"] / params["epochs"]
    db, out = tmp_path / "s.db", tmp_path / "r.html"
    hw.tune(objective, {"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)}, algo=algo, trials=4, seed=0, name="s",
            storage=db, progress=False)
    assert cli.main(["report", "s", "--storage", str(db), "-o", str(out)]) == 0
    assert f"algorithm {spec} · minimize · 4 trials" in out.read_text(encoding="utf-8")
    assert cli.main(["clean", "s", "--storage", str(db), "--all"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("removed ")
    assert list((tmp_path / "s.db.checkpoints" / "s").iterdir()) == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT algo FROM studies").fetchall() == [(spec,)]  # read, never rewritten
    with pytest.raises(ValueError, match=rf"last ran algorithm '{spec[:-5]}\(\.\.\.\)', which is not built in"):
        hw.load_study("s", db)  # a resume still needs algo=
    read = hw.load_study("s", db, read_only=True)
    with pytest.raises(ValueError, match="pass algo="):
        read.optimize(lambda p: p["x"], trials=5, progress=False)
    assert len(hw.load_study("s", db, read_only=True).trials) == 4  # nothing ran, nothing was written


PICKLING = """import argparse, pickle
import hpwidgets as hw
DEFAULTS = argparse.ArgumentParser().parse_args()  # its own argparse: it must not see hptune's arguments
SPACE = {'x': hw.uniform(0, 1)}

class Model:
    def __init__(self, x):
        self.x = x

def objective(params):
    return pickle.loads(pickle.dumps(Model(params['x']))).x  # as torch.save(model) pickles by reference
"""


def test_a_script_runs_as_python_would_run_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "pickles.py"
    script.write_text(PICKLING)
    code = cli.main(["run", f"{script}:objective", "--algo", "random", "--trials", "2", "--storage", "none",
                     "--no-progress"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "") and out.startswith("best value "), err


def test_a_resumed_run_whose_every_trial_fails_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    script, db = tmp_path / "flaky.py", tmp_path / "s.db"
    script.write_text("import os\nimport hpwidgets as hw\nSPACE = {'x': hw.uniform(0, 1)}\n"
                      "def objective(params):\n    if os.environ.get('BROKEN'):\n"
                      "        raise RuntimeError('CUDA driver missing')\n    return params['x']\n")
    run = ["run", f"{script}:objective", "--name", "s", "--storage", str(db), "--no-progress"]
    assert cli.main([*run, "--trials", "3"]) == 0
    monkeypatch.setenv("BROKEN", "1")
    assert cli.main([*run, "--trials", "6"]) == 1  # the earlier run's trials do not make this one good
    assert "CUDA driver missing" in capsys.readouterr().err
