"""%hptune's line commands (list, show, stop, resume, report, clean) and re-run cells, in a real InteractiveShell."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from magic_harness import QUICK, SLOW_CELL, run_in_thread, start_in_thread, tune
from store_harness import refuse_to_unlink

import hpwidgets as hw
from hpwidgets.checkpoints import config_key
from hpwidgets.magic import _is_line_command
from hpwidgets.magic_commands import without_comment


def test_stop_and_resume_of_a_study_not_running_say_why(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError, match=r"^study 'nope' is not running in this session; nothing to stop$"):
        ip.run_line_magic("hptune", "stop nope")
    tune(ip, f"{QUICK} --name done --maximize acc")
    with pytest.raises(UsageError, match=r"^study 'done' is not running in this session \(it ended: complete\); "
                                         r"re-run its %%hptune cell \(same --name\) to continue it$"):
        ip.run_line_magic("hptune", "resume done")


def test_list_shows_stored_studies(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    tune(ip, f"{QUICK} --name listed --maximize acc")
    capsys.readouterr()
    ip.run_line_magic("hptune", "list")
    header, row = capsys.readouterr().out.strip().splitlines()
    assert header.split() == ["name", "trials", "best", "algo", "direction", "status"]
    assert row.split()[:2] == ["listed", "4"] and row.split()[3:] == ["random", "maximize"]


def test_list_without_storage_file_says_so(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("hptune", "list --storage nowhere.db")
    assert "no studies in nowhere.db" in capsys.readouterr().out


def test_stop_ends_a_running_study(ip: InteractiveShell) -> None:
    cell = "x = hp.uniform(0, 1)\nimport time\ntime.sleep(0.02)\nx\n"
    thread, study = start_in_thread(ip, "--algo random --trials 500 --name slow1 --storage none", cell)
    ip.run_line_magic("hptune", "stop slow1")
    thread.join(10)
    assert not thread.is_alive() and study.finish_reason == "stopped" and len(study.trials) < 500


def test_resume_continues_a_paused_study(ip: InteractiveShell) -> None:
    cell = "x = hp.uniform(0, 1)\nimport time\ntime.sleep(0.02)\nx\n"
    thread, study = start_in_thread(ip, "--algo random --trials 500 --name slow2 --storage none", cell)
    study.pause()
    time.sleep(0.1)  # a trial that was running when paused finishes
    paused_at = len(study.trials)
    time.sleep(0.15)
    assert len(study.trials) == paused_at and study.running
    ip.run_line_magic("hptune", "resume slow2")
    deadline = time.monotonic() + 10
    while len(study.trials) <= paused_at:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    ip.run_line_magic("hptune", "stop slow2")
    thread.join(10)


def test_rerunning_a_cell_stops_the_search_it_started(ip: InteractiveShell, capsys) -> None:
    thread, first = run_in_thread(ip, f"%%hptune --algo random --trials 500 -o first\n{SLOW_CELL}", "first", "cell-1")
    other, elsewhere = run_in_thread(ip, f"%%hptune --algo random --trials 500 -o other\n{SLOW_CELL}", "other",
                                     "cell-2")
    ip.run_cell(f"%%hptune --algo random --trials 2 -o second\n{SLOW_CELL}", cell_id="cell-1")
    thread.join(30)
    assert first.finish_reason == "stopped" and len(first.trials) < 500
    assert len(ip.user_ns["second"].trials) == 2 and ip.user_ns["second"].name != first.name
    assert f"hpwidgets: stopped this cell's previous search {first.name!r} after" in capsys.readouterr().out
    assert elsewhere.running  # another cell's search goes on
    elsewhere.stop()
    other.join(30)


def test_rerunning_a_named_cell_stops_its_search_then_resumes_it(ip: InteractiveShell, capsys) -> None:
    code = f"%%hptune --algo random --trials 500 --name again --storage again.db -o first\n{SLOW_CELL}"
    thread, first = run_in_thread(ip, code, "first", "cell-1")
    result = ip.run_cell(code.replace("--trials 500", "--trials 3").replace("-o first", "-o second"), cell_id="cell-1")
    thread.join(30)
    assert result.success, result.error_in_exec
    assert first.finish_reason == "stopped" and "waiting for its running trials to end" in capsys.readouterr().out
    assert len(ip.user_ns["second"].trials) == max(3, len(first.trials))  # resumed: the same study, extended
    assert ip.user_ns["second"].name == "again"


def test_searches_launched_in_one_run_of_a_cell_all_go_on(ip: InteractiveShell) -> None:
    """A loop in one cell that launches several searches is one run of that cell, not re-runs."""
    ip.execution_count += 1
    thread, first = run_in_thread(ip, f"%%hptune --algo random --trials 500 -o first\n{SLOW_CELL}", "first", "c")
    ip.execution_count -= 1  # what follows is the same run of cell "c"
    second = ip.run_cell("get_ipython().run_cell_magic('hptune', '--algo random --trials 2 -o second', "
                         f"{SLOW_CELL!r})", cell_id="c")
    assert second.success and first.running
    first.stop()
    thread.join(30)
    assert first.finish_reason == "stopped" and len(ip.user_ns["second"].trials) == 2


def test_interrupting_the_wait_of_a_re_run_says_the_old_search_is_stopping(ip: InteractiveShell, capsys) -> None:
    code = f"%%hptune --algo random --trials 500 --name again --storage none -o first\n{SLOW_CELL}"
    thread, first = run_in_thread(ip, code, "first", "cell-1")

    def interrupted(timeout: float | None = None) -> bool:
        raise KeyboardInterrupt  # as the frontend's interrupt would, while the re-run waits
    first.wait = interrupted
    result = ip.run_cell(code, cell_id="cell-1")
    thread.join(30)
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    error = capsys.readouterr().err
    assert "study 'again' is stopping: its running trials end at their next report" in error
    assert "paused" not in error


def test_show_prints_a_stored_study_outside_a_notebook(ip: InteractiveShell,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    tune(ip, f"{QUICK} --name shown --storage shown.db --maximize acc")
    capsys.readouterr()
    ip.run_line_magic("hptune", "show shown --storage shown.db")
    assert "study 'shown': 4 trials" in capsys.readouterr().out


def test_show_unknown_study_is_a_usage_error(ip: InteractiveShell) -> None:
    tune(ip, QUICK)
    with pytest.raises(UsageError, match="no study named 'ghost'"):
        ip.run_line_magic("hptune", "show ghost")
    with pytest.raises(UsageError, match="no study named 'ghost'"):
        ip.run_line_magic("hptune", "show ghost --storage missing.db")


def test_report_writes_html(ip: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tune(ip, f"{QUICK} --name rep")
    ip.run_line_magic("hptune", "report rep --path rep.html")
    assert "rep" in (tmp_path / "rep.html").read_text(encoding="utf-8")
    assert f"wrote {tmp_path / 'rep.html'}" in capsys.readouterr().out
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match=f"cannot write the report to {tmp_path / 'notes.txt' / 'rep.html'}"):
        ip.run_line_magic("hptune", "report rep --path notes.txt/rep.html")


def test_report_reads_a_stored_study_whose_algorithm_only_the_user_can_rebuild(
        ip: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hpwidgets.algorithms.hyperband import Hyperband
    from hpwidgets.algorithms.tpe_native import NativeTPE
    hw.tune(lambda p: p["x"] / p["epochs"], {"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)},
            algo=Hyperband(sampler=NativeTPE()), trials=4, seed=0, name="exp/1", storage="hptune.db", progress=False)
    ip.run_line_magic("hptune", "report exp/1")  # not run in this session: read from the store
    assert "algorithm hyperband(" in (tmp_path / "exp_1.html").read_text(encoding="utf-8")
    assert f"wrote {tmp_path / 'exp_1.html'}" in capsys.readouterr().out


def test_clean_removes_checkpoint_folders_but_the_best_trials(ip: InteractiveShell,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    cell = "x = hp.uniform(0, 1)\n(hp.checkpoint_dir / 'model.bin').write_bytes(b'w')\n(x - 0.3) ** 2\n"
    study = tune(ip, f"{QUICK} --name ck", cell)
    root = study.checkpoints.root
    assert len(list(root.iterdir())) == 4
    capsys.readouterr()  # the cell's own summary
    ip.run_line_magic("hptune", "clean ck")
    assert capsys.readouterr().out.startswith("removed 3 checkpoint folders")
    assert [folder.name for folder in root.iterdir()] == [config_key(study.best_params, None)]
    ip.run_line_magic("hptune", "clean ck --all")
    assert list(root.iterdir()) == []


def test_clean_that_cannot_remove_a_folder_is_one_usage_error(ip: InteractiveShell,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cell = "x = hp.uniform(0, 1)\n(hp.checkpoint_dir / 'locked.bin').write_bytes(b'w')\n(x - 0.3) ** 2\n"
    tune(ip, f"{QUICK} --name ck", cell)
    refuse_to_unlink(monkeypatch, "locked.bin")
    with pytest.raises(UsageError, match=r"^could not remove 4 checkpoint folder\(s\) in .*removed 0, 0.0 MB$"):
        ip.run_line_magic("hptune", "clean ck --all")


def test_clean_refuses_a_running_study(ip: InteractiveShell) -> None:
    cell = "x = hp.uniform(0, 1)\nimport time\ntime.sleep(0.02)\nx\n"
    thread, study = start_in_thread(ip, "--algo random --trials 500 --name busy --storage none", cell)
    try:
        with pytest.raises(UsageError, match="stop it before cleaning its checkpoints"):
            ip.run_line_magic("hptune", "clean busy")
    finally:
        study.stop()
        thread.join(10)


@pytest.mark.parametrize(("line", "message"), [
    ("", "required: command"), ("show", "needs a study name"), ("frobnicate x", "invalid choice"),
    ("--trials 30 --algo tpe", r"^`%hptune` \(one %\) manages studies: list, show, stop, resume, report, clean; to "
                               r"tune, start a cell with `%%hptune --trials 30 --algo tpe` and put the code below it$"),
])
def test_bad_line_commands_are_usage_errors(ip: InteractiveShell, line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ip.run_line_magic("hptune", line)


def test_a_line_commands_own_option_may_come_first(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("hptune", "--storage none list")
    assert capsys.readouterr().out.startswith("name")



@pytest.mark.parametrize(("line", "expected"), [
    ("--trials 5  # a quick look", "--trials 5"), ("# all defaults", ""), ("--name 'run #3' # mine", "--name 'run #3'"),
    ('--name "a # b"', '--name "a # b"'), ("--name run#3", "--name run#3"), ("--trials 5", "--trials 5"),
])
def test_a_magic_lines_trailing_comment_is_not_an_argument(line: str, expected: str) -> None:
    assert without_comment(line) == expected


def test_options_and_line_commands_take_a_trailing_comment(ip: InteractiveShell,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_cell_magic("hptune", f"{QUICK} --name 'run #3' -o st  # a first look", "x = hp.uniform(0, 1)\nx")
    assert ip.user_ns["st"].name == "run #3" and len(ip.user_ns["st"].trials) == 4
    ip.run_line_magic("hptune", "list  # what is stored")
    assert "run #3" in capsys.readouterr().out


@pytest.mark.parametrize(("cell", "is_command"), [
    ("%hptune stop nb", True), ("\n  %hptune list", True), ("# end the search\n\n%hptune stop nb\n", True),
    ("x = 1\n%hptune stop nb", False), ("%%hptune --trials 2\nx = hp.uniform(0, 1)\nx", False),
    ("# %hptune stop nb", False),
])
def test_a_line_command_cell_is_known_behind_comments(cell: str, is_command: bool) -> None:
    # Such a cell is not held while a headless search runs, so `%hptune stop` can reach it.
    assert _is_line_command(cell) is is_command
