"""``hptune``: demo end to end (a real subprocess), list, report, run and lab (in process)."""

from __future__ import annotations

import contextlib
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from store_harness import one_trial_running, refuse_to_unlink

import hpwidgets as hw
from hpwidgets import cli
from hpwidgets.checkpoints import config_key

REPO = Path(__file__).resolve().parents[1]


def hptune_command() -> list[str]:
    """The installed console script, else the module (an uninstalled checkout)."""
    script = Path(sys.executable).with_name("hptune")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hpwidgets.cli"]


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    """A storage file holding one small finished study named "stored"."""
    path = tmp_path / "studies.db"
    hw.tune(lambda p: (p["x"] - 0.3) ** 2, {"x": hw.uniform(0, 1)}, algo="random", trials=3, seed=0,
            name="stored", storage=path, progress=False)
    return path


@pytest.mark.slow
def test_demo_runs_headless_with_a_progress_bar_then_writes_the_report(tmp_path: Path) -> None:
    result = subprocess.run([*hptune_command(), "demo", "--trials", "3", "--storage", "demo.db", "-o", "out.html"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last == f"report: {tmp_path / 'out.html'}"
    assert "3/3" in result.stderr  # tqdm's bar: trials done / total
    text = (tmp_path / "out.html").read_text(encoding="utf-8")
    assert text.count("window.Plotly = Plotly") == 1 and "quickstart-digits-mlp" in text
    listing = subprocess.run([*hptune_command(), "list", "--storage", "demo.db"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120)
    assert "quickstart-digits-mlp  3" in listing.stdout


def test_list_shows_the_stored_studies(stored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list", "--storage", str(stored)]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert header.split() == ["name", "trials", "complete", "best", "algo", "direction"]
    assert row.split()[:3] == ["stored", "3", "3"] and row.split()[4:] == ["random", "minimize"]


def test_list_takes_the_file_as_an_argument_too(stored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list", str(stored)]) == 0  # `hptune list FILE`, as `ls` would take it
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["stored", "3"]


def test_list_without_a_storage_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list", "--storage", str(tmp_path / "none.db")]) == 2
    assert "no storage file" in capsys.readouterr().err


def test_list_of_a_file_that_is_not_a_store_is_one_line_and_leaves_it_alone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "notes.db"
    junk.write_bytes(b"not a database, just some bytes" * 100)
    assert cli.main(["list", str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hptune list: {junk} is not a readable SQLite database") and err.count("\n") == 1
    assert junk.read_bytes() == b"not a database, just some bytes" * 100


def test_report_writes_the_named_study(stored: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "stored.html"
    assert cli.main(["report", "stored", "--storage", str(stored), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out) and "stored" in out.read_text(encoding="utf-8")


def test_a_report_that_cannot_be_written_is_one_line(stored: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    out = tmp_path / "notes.txt" / "r.html"
    assert cli.main(["report", "stored", "--storage", str(stored), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hptune report: cannot write the report to {out}: ") and err.count("\n") == 1


def test_report_of_an_unknown_study_is_one_line(stored: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "nope", "--storage", str(stored)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hptune report: no study named 'nope'") and "Traceback" not in err


def test_clean_removes_checkpoint_folders_but_the_best_trials(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    def objective(params: dict, trial: hw.Trial) -> float:
        (trial.checkpoint_dir / "model.bin").write_bytes(b"w" * 1000)  # the folder exists once asked for
        return params["x"]
    db = tmp_path / "c.db"
    study = hw.tune(objective, {"x": hw.uniform(0, 1)}, algo="random", trials=4, seed=0, name="c", storage=db,
                    progress=False)
    root = study.checkpoints.root
    assert cli.main(["clean", "c", "--storage", str(db)]) == 0
    assert capsys.readouterr().out.startswith(f"removed 3 checkpoint folders, 0.0 MB, from {root} (kept the best")
    assert [folder.name for folder in root.iterdir()] == [config_key(study.best_params, None)]
    assert cli.main(["clean", "c", "--storage", str(db), "--all"]) == 0 and list(root.iterdir()) == []
    assert cli.main(["clean", "nope", "--storage", str(db)]) == 2
    assert capsys.readouterr().err.startswith("hptune clean: no study named 'nope'")


def test_clean_of_a_study_without_a_complete_trial_says_it_kept_nothing(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    def objective(params: dict, trial: hw.Trial) -> float:
        (trial.checkpoint_dir / "model.bin").write_bytes(b"w")
        raise RuntimeError("diverged")
    db = tmp_path / "c.db"
    hw.tune(objective, {"x": hw.uniform(0, 1)}, algo="random", trials=3, seed=0, name="c", storage=db, progress=False)
    capsys.readouterr()
    assert cli.main(["clean", "c", "--storage", str(db)]) == 0
    assert capsys.readouterr().out.rstrip().endswith(" (no trial completed: none kept)")


def test_clean_while_another_process_runs_the_study_is_one_line(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "busy.db"
    with one_trial_running(db, "busy", {"x": hw.uniform(0, 1)}):
        status = cli.main(["clean", "busy", "--storage", str(db)])
    err = capsys.readouterr().err
    assert status == 2 and err == ("hptune clean: study 'busy' has trials [0] running elsewhere; "
                                   "clean its checkpoints once they finish\n")


def test_clean_says_which_folders_could_not_be_removed_and_counts_only_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def objective(params: dict, trial: hw.Trial) -> float:
        name = "locked.bin" if params["x"] > 0.5 else "model.bin"  # locked: another user's file, say
        (trial.checkpoint_dir / name).write_bytes(b"w" * 100_000)
        return params["x"]
    db = tmp_path / "c.db"
    study = hw.tune(objective, {"x": hw.uniform(0, 1)}, algo="random", trials=6, seed=0, name="c", storage=db,
                    progress=False)
    refuse_to_unlink(monkeypatch, "locked.bin")
    locked = sum(trial.params["x"] > 0.5 for trial in study.trials)
    assert 0 < locked < 6
    assert cli.main(["clean", "c", "--storage", str(db), "--all"]) == 2
    out, err = capsys.readouterr()
    gone = 6 - locked
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"hptune clean: could not remove {locked} checkpoint folder(s) in {study.checkpoints.root}")
    assert err.endswith(f"; removed {gone}, {gone * 0.1:.1f} MB\n")
    assert len(list(study.checkpoints.root.iterdir())) == locked


def test_run_tunes_a_function_from_a_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "task.py"
    script.write_text("import hpwidgets as hw\nSPACE = {'x': hw.uniform(-2, 2)}\n"
                      "def objective(params):\n    return {'loss': (params['x'] - 1) ** 2}\n")
    out = tmp_path / "run.html"
    code = cli.main(["run", f"{script}:objective", "--algo", "random", "--trials", "4", "--seed", "0",
                     "--minimize", "loss", "--storage", "none", "--no-progress", "-o", str(out)])
    assert code == 0 and out.is_file()
    assert capsys.readouterr().out.startswith("best loss ")


def test_run_takes_a_json_space(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "task.py"
    script.write_text("def objective(params):\n    return params['n'] * 1.0\n")
    space = hw.SearchSpace({"n": hw.int(1, 5)}).to_json()
    code = cli.main(["run", f"{script}:objective", "--space", space, "--algo", "random", "--trials", "3",
                     "--storage", "none", "--no-progress"])
    assert code == 0 and capsys.readouterr().out.startswith("best value ")


def test_run_names_a_best_trial_from_before_the_space_changed(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    script, db = tmp_path / "task.py", tmp_path / "s.db"
    script.write_text("import hpwidgets as hw\nSPACE = {'x': hw.uniform(0, 1)}\nLATER = {'x': hw.uniform(2, 3)}\n"
                      "def objective(params):\n    return params['x']\n")
    args = ["run", f"{script}:objective", "--algo", "random", "--name", "m", "--storage", str(db), "--no-progress"]
    assert cli.main([*args, "--trials", "3"]) == 0
    assert "outside" not in capsys.readouterr().out
    assert cli.main([*args, "--trials", "6", "--space", "LATER"]) == 0
    best = hw.load_study("m", db).best_trial
    assert capsys.readouterr().out.rstrip().endswith(f"(trial {best.number}, outside the current space)")


def test_run_prunes_with_asha(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "task.py"
    script.write_text("def objective(params, trial):\n    for step in range(1, 10):\n"
                      "        trial.report(step, loss=(params['x'] - 1) ** 2 + 1 / step)\n"
                      "    return (params['x'] - 1) ** 2\n")
    db, space = tmp_path / "s.db", hw.SearchSpace({"x": hw.uniform(-2, 2)}).to_json()
    args = ["run", f"{script}:objective", "--space", space, "--algo", "random", "--trials", "12", "--seed", "0",
            "--name", "p", "--storage", str(db), "--no-progress"]
    assert cli.main([*args, "--prune", "asha"]) == 0
    states = [t.state for t in hw.load_study("p", db).trials]
    assert len(states) == 12 and states.count(hw.TrialState.PRUNED) >= 4
    assert cli.main([*args, "--algo", "hyperband", "--prune", "asha", "--name", "q"]) == 2
    assert "does not combine with algo='hyperband'" in capsys.readouterr().err


def test_run_names_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "task.py"
    script.write_text("x = 1\n")
    assert cli.main(["run", f"{script}:objective", "--storage", "none"]) == 2
    assert "defines no function 'objective'" in capsys.readouterr().err
    assert cli.main(["run", f"{script}:x", "--storage", "none"]) == 2  # e.g. the SPACE dict named by mistake
    assert f"'x' in {script} is not a function: it is 1" in capsys.readouterr().err
    assert cli.main(["run", "task.py", "--storage", "none"]) == 2
    assert "script.py:function" in capsys.readouterr().err


def test_run_names_the_first_failure_and_exits_1_when_every_trial_failed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "task.py"
    script.write_text("import hpwidgets as hw\nSPACE = {'x': hw.uniform(0, 1)}\n"
                      "def always(params):\n    raise RuntimeError('no GPU memory left')\n"
                      "def half(params):\n    if params['x'] > 0.5:\n        raise KeyError('lr')\n"
                      "    return params['x']\n")
    common = ["--algo", "random", "--seed", "1", "--trials", "6", "--storage", "none", "--no-progress"]
    assert cli.main(["run", f"{script}:always", *common]) == 1
    captured = capsys.readouterr()
    assert captured.out == "no trial completed (6 ran)\n"
    assert captured.err == "hptune run: 6 failed, the first (trial 0) with RuntimeError: no GPU memory left\n"
    assert cli.main(["run", f"{script}:half", *common]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("best value ")
    assert re.fullmatch(r"hptune run: [1-5] failed, the first \(trial \d\) with KeyError: 'lr'\n", captured.err)
    db = tmp_path / "s.db"
    assert cli.main(["run", f"{script}:always", *common[:-3], "--storage", str(db), "--name", "cap",
                     "--max-failures", "2", "--no-progress"]) == 1
    assert capsys.readouterr().err == ("hptune run: 2 failed, the first (trial 0) with RuntimeError: no GPU memory "
                                       "left; stopped at --max-failures 2\n")
    assert len(hw.load_study("cap", db).trials) == 2


def test_run_shows_a_warning_as_one_line(tmp_path: Path) -> None:
    script = tmp_path / "task.py"
    script.write_text("import hpwidgets as hw\nSPACE = {'x': hw.uniform(0, 1)}\n"
                      "def objective(params):\n    return params['x']\n")
    command = [*hptune_command(), "run", f"{script}:objective", "--prune", "asha", "--trials", "3",
               "--storage", "none", "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("best value ")
    assert done.stderr == ("hptune run: UserWarning: pruner 'asha' stops trials from what they report, but the "
                           "objective takes no `trial` argument to call trial.report with, so every trial runs "
                           "to its end\n")


PID_TASK = ("import os\nimport hpwidgets as hw\nSPACE = {'x': hw.uniform(-2, 2)}\n"
            "def objective(params):\n    return {'loss': (params['x'] - 1) ** 2, 'pid': os.getpid()}\n")


@pytest.mark.parametrize(("option", "value", "rule"), [
    ("--gpus", "0;1", "--gpus must be auto, none or GPU indices like 0,1, but got '0;1'"),
    ("--per-gpu", "0", "--per-gpu must be a positive int or auto, but got '0'"),
    ("--executor", "procs", "--executor must be thread, process or dask://host:port, but got 'procs'"),
])
def test_run_refuses_a_bad_placement_in_one_line_before_anything_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, rule: str) -> None:
    script, db = tmp_path / "task.py", tmp_path / "s.db"
    script.write_text("raise SystemExit('the script must not even be read')\n")
    assert cli.main(["run", f"{script}:objective", option, value, "--storage", str(db)]) == 2
    assert capsys.readouterr().err == f"hptune run: {rule}\n"
    assert not db.exists()


@pytest.mark.parametrize(("option", "value", "kind"), [("--trials", "0", "int"), ("--parallel", "-2", "int"),
                                                       ("--timeout", "nan", "float"), ("--max-failures", "0", "int")])
def test_run_refuses_counts_and_times_that_are_not_positive(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, kind: str) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", f"{tmp_path / 'task.py'}:objective", option, value])
    assert stop.value.code == 2
    assert f"argument {option}: must be a positive {kind}, but got '{value}'" in capsys.readouterr().err


def test_demo_refuses_a_trial_count_that_is_not_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["demo", "--trials", "0"])
    assert stop.value.code == 2 and "argument --trials: must be a positive int, but got '0'" in capsys.readouterr().err


@pytest.mark.slow
def test_run_on_worker_processes_stores_every_trial(tmp_path: Path) -> None:
    """The console script in its own process, as a user runs it: trials in spawned workers."""
    script, db = tmp_path / "task.py", tmp_path / "s.db"
    script.write_text(PID_TASK)
    command = [*hptune_command(), "run", f"{script}:objective", "--minimize", "loss", "--trials", "4",
               "--parallel", "2", "--executor", "process", "--name", "w", "--storage", str(db), "--no-progress"]
    with subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as cli_run:
        out, err = cli_run.communicate(timeout=120)
    assert cli_run.returncode == 0, err
    assert out.startswith("best loss ")
    trials = hw.load_study("w", db).trials
    assert [t.state for t in trials] == [hw.TrialState.COMPLETE] * 4
    assert cli_run.pid not in {t.metrics["pid"] for t in trials}


def test_ctrl_c_keeps_the_finished_trials_and_says_how_to_resume(tmp_path: Path) -> None:
    """A real SIGINT to the console script once two trials are stored; no --name given."""
    script, db = tmp_path / "task.py", tmp_path / "s.db"
    script.write_text("import time\nimport hpwidgets as hw\nSPACE = {'x': hw.uniform(0, 1)}\n"
                      "def objective(params):\n    time.sleep(0.2)\n    return params['x']\n")
    command = [*hptune_command(), "run", f"{script}:objective", "--trials", "200", "--storage", str(db),
               "--no-progress"]
    with subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as cli_run:
        deadline = time.monotonic() + 60
        while not (db.exists() and _completed_trials(db) >= 2):
            assert time.monotonic() < deadline and cli_run.poll() is None, "no two trials were stored"
            time.sleep(0.05)
        cli_run.send_signal(signal.SIGINT)
        _out, err = cli_run.communicate(timeout=60)
    assert cli_run.returncode == 130
    name = re.fullmatch(r"hptune run: interrupted; study '(study-[\w-]+)' keeps its finished trials in (.+); "
                        r"the same command with --name \1 resumes it\n", err)
    assert name is not None, err
    assert name.group(2) == str(db)
    study = hw.load_study(name.group(1), db)
    assert sum(t.state is hw.TrialState.COMPLETE for t in study.trials) >= 2


def _completed_trials(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        try:
            return connection.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
        except sqlite3.OperationalError:  # the tables are not created yet
            return 0


def test_lab_opens_the_demos_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["lab", "--dry-run"]) == 0
    command = capsys.readouterr().out.split()
    assert Path(command[0]).name == "jupyter" and command[1:] == ["lab", str(REPO / "demos")]


def test_lab_with_a_missing_folder_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["lab", str(tmp_path / "nowhere"), "--dry-run"]) == 2
    assert "no demos folder" in capsys.readouterr().err


def test_the_console_script_is_declared() -> None:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'hptune = "hpwidgets.cli:entry"' in text
    assert cli.build_parser().prog == "hptune"


def test_a_second_ctrl_c_ends_the_command_though_trial_threads_still_run(tmp_path: Path) -> None:
    """Trials that never report cannot be stopped on their threads: the command leaves them, at once."""
    script, db = tmp_path / "slow.py", tmp_path / "s.db"
    script.write_text("import time\nimport hpwidgets as hw\nSPACE = {'x': hw.uniform(0, 1)}\n"
                      "def objective(params):\n    time.sleep(60)\n    return params['x']\n")
    command = [*hptune_command(), "run", f"{script}:objective", "--trials", "4", "--parallel", "2",
               "--name", "my study", "--storage", str(db), "--no-progress"]
    with subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as cli_run:
        deadline = time.monotonic() + 60
        while not (db.exists() and _rows(db, "RUNNING") >= 2):
            assert time.monotonic() < deadline and cli_run.poll() is None, "two trials never started"
            time.sleep(0.05)
        cli_run.send_signal(signal.SIGINT)  # the first: stop starting trials, wait for the running ones
        time.sleep(1)
        sent = time.monotonic()
        cli_run.send_signal(signal.SIGINT)  # the second: stop waiting
        _out, err = cli_run.communicate(timeout=50)
    assert cli_run.returncode == 130 and time.monotonic() - sent < 20, err
    assert "the same command with --name 'my study' resumes it" in err and "Traceback" not in err
    study = hw.load_study("my study", db)  # the rows left running are failed when it is opened again
    assert [t.state for t in study.trials] == [hw.TrialState.FAIL] * 2
    assert all(t.error.startswith("interrupted") for t in study.trials)


def _rows(db: Path, state: str) -> int:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        try:
            return connection.execute("SELECT COUNT(*) FROM trials WHERE state = ?", (state,)).fetchone()[0]
        except sqlite3.OperationalError:  # the tables are not created yet
            return 0
