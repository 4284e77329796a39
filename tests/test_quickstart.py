"""``python -m hpwidgets.quickstart`` and ``hptune demo``: the same one-line errors, the same ``--storage none``
(in memory, as in ``hptune run`` and the magic)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpwidgets import cli, quickstart

PROGS = {"quickstart": "python -m hpwidgets.quickstart", "demo": "hptune demo"}


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """A one-line objective in place of the MLP: these tests are about the front ends, not the model."""
    monkeypatch.setattr(quickstart, "make_objective", lambda seed: lambda params: {"accuracy": params["lr"]})


def demo(entry: str, args: list[str]) -> int:
    return quickstart.main(args) if entry == "quickstart" else cli.main(["demo", *args])


@pytest.mark.parametrize("entry", PROGS)
def test_a_store_or_report_that_cannot_be_written_is_one_line_and_status_2(
        entry: str, tmp_path: Path, quick: None, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("mine")
    store = blocker / "s.db"
    assert demo(entry, ["--trials", "1", "--no-progress", "--storage", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{PROGS[entry]}: cannot create a store at {store}: ") and err.count("\n") == 1
    report = blocker / "r.html"
    assert demo(entry, ["--trials", "1", "--no-progress", "--storage", str(tmp_path / "s.db"), "-o", str(report)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{PROGS[entry]}: cannot write the report to {report}: ") and err.count("\n") == 1
    assert blocker.read_text() == "mine"


@pytest.mark.parametrize(("entry", "none"), [("quickstart", "none"), ("demo", "none"), ("demo", "None"),
                                             ("quickstart", ":memory:")])
def test_storage_none_keeps_the_study_in_memory(entry: str, none: str, tmp_path: Path, quick: None,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert demo(entry, ["--trials", "2", "--no-progress", "--storage", none, "-o", "r.html"]) == 0
    assert [path.name for path in tmp_path.iterdir()] == ["r.html"]  # no file called none, no checkpoint folder
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "2 trials kept in memory only (--storage none) as study 'quickstart-digits-mlp'"


def test_run_takes_none_in_any_case_as_the_magic_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "task.py").write_text("import hpwidgets as hw\nSPACE = {'x': hw.uniform(0, 1)}\n"
                                      "def objective(params):\n    return params['x']\n")
    assert cli.main(["run", "task.py:objective", "--trials", "2", "--storage", "None", "--no-progress"]) == 0
    assert [path.name for path in tmp_path.iterdir()] == ["task.py"]
