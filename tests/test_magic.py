"""%%hptune / %hptune in a real InteractiveShell (terminal mode: every search blocks)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import hpwidgets as hw
from hpwidgets.checkpoints import config_key
from hpwidgets.magic import hp, load_ipython_extension, unload_ipython_extension

QUICK = "--algo random --seed 0 --trials 4"
CELL = "x = hp.uniform(0, 1)\nm = 0.1  # @hp uniform(0.01, 0.99)\nacc = 1 - (x - 0.3) ** 2 + m\nacc\n"


@pytest.fixture
def ip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)  # the default storage, hptune.db, lands in the test's own folder
    shell = InteractiveShell.instance()
    shell.reset(new_session=False)
    shell.user_ns.setdefault("__spec__", None)  # reset() drops it; Dask's nanny (spawn) reads __main__.__spec__
    load_ipython_extension(shell)
    yield shell
    for value in list(shell.user_ns.values()):
        if isinstance(value, hw.Study) and value.running:
            value.stop()
            value.wait()
    unload_ipython_extension(shell)


def tune(ip: InteractiveShell, line: str, cell: str = CELL) -> hw.Study:
    ip.run_cell_magic("hptune", f"{line} -o st", cell)
    return ip.user_ns["st"]


def start_in_thread(ip: InteractiveShell, line: str, cell: str) -> tuple[threading.Thread, hw.Study]:
    """A blocking %%hptune on another thread, so this one can stop or resume it."""
    thread = threading.Thread(target=ip.run_cell_magic, args=("hptune", f"{line} -o slow", cell), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not ("slow" in ip.user_ns and len(ip.user_ns["slow"].trials) >= 1):
        assert time.monotonic() < deadline, "the study never finished a trial"
        time.sleep(0.01)
    return thread, ip.user_ns["slow"]


def test_both_declaration_forms_are_searched(ip: InteractiveShell) -> None:
    study = tune(ip, f"{QUICK} --maximize acc")
    assert len(study.trials) == 4 and all(t.state is hw.TrialState.COMPLETE for t in study.trials)
    assert study.space == hw.SearchSpace({"x": hw.uniform(0, 1), "m": hw.uniform(0.01, 0.99)})
    assert len({t.params["m"] for t in study.trials}) == 4  # the Colab default 0.1 is replaced per trial
    assert study.maximize and study.target == "acc"
    assert study.best_value == max(t.value for t in study.trials)


def test_load_ext_registers_the_magics() -> None:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "hpwidgets")
    assert shell.find_cell_magic("hptune") is not None and shell.find_line_magic("hptune") is not None


def test_magic_lines_in_the_cell_run_in_each_trial_and_a_cell_magic_is_refused(ip: InteractiveShell) -> None:
    calls: list[str] = []
    ip.register_magic_function(lambda line: calls.append(line), "line", "hpw_count")
    tune(ip, f"{QUICK} --trials 3", "x = hp.uniform(0, 1)\n%hpw_count seen\nx")
    assert calls == ["seen"] * 3  # IPython's transforms turned the line into a call, line for line
    with pytest.raises(UsageError, match=r"^line 2: %%time: this IPython line \(% or !\) cannot run as part of "):
        ip.run_cell_magic("hptune", QUICK, "%%time\nx = hp.uniform(0, 1)\nx")


def test_default_metric_is_the_last_expression_minimised(ip: InteractiveShell) -> None:
    study = tune(ip, QUICK, "x = hp.uniform(-1, 1)\n(x - 0.3) ** 2")
    assert not study.maximize and study.target is None
    assert study.best_value == min((t.params["x"] - 0.3) ** 2 for t in study.trials)


def test_maximize_alone_uses_the_last_expression_and_its_name(ip: InteractiveShell) -> None:
    study = tune(ip, f"{QUICK} --maximize")
    assert study.maximize and study.target == "acc"


def test_minimize_names_a_variable(ip: InteractiveShell) -> None:
    study = tune(ip, f"{QUICK} --minimize loss", "x = hp.uniform(0, 1)\nloss = x ** 2\n")
    assert not study.maximize and study.target == "loss"
    assert study.best_value == min(t.params["x"] ** 2 for t in study.trials)


def test_trials_see_user_data_and_functions_but_do_not_leak(ip: InteractiveShell) -> None:
    ip.run_cell("DATA = [1, 2, 3]\nSEEN = []\ndef score(x):\n    return x * len(DATA)\n")
    cell = "x = hp.uniform(0, 1)\nsecret = 42\nDATA = None\nSEEN.append(str(device))\nscore(x)\n"
    study = tune(ip, QUICK, cell)
    assert all(t.state is hw.TrialState.COMPLETE for t in study.trials)
    assert "secret" not in ip.user_ns and "x" not in ip.user_ns
    assert ip.user_ns["DATA"] == [1, 2, 3]  # rebinding a name in a trial does not reach the user
    assert ip.user_ns["SEEN"] == ["cpu"] * 4  # a shallow copy: the user's objects are shared


def test_hp_report_goes_to_the_right_trial_when_parallel(ip: InteractiveShell) -> None:
    cell = ("x = hp.uniform(0, 1)\nimport time\nfor step in range(3):\n"
            "    time.sleep(0.01)\n    hp.report(step=step, seen=x)\nx\n")
    study = tune(ip, "--algo random --seed 1 --trials 6 --parallel 3", cell)
    for trial in study.trials:
        assert [r.step for r in trial.reports] == [0, 1, 2]
        assert {r.metrics["seen"] for r in trial.reports} == {trial.params["x"]}


def test_failing_trial_is_marked_fail_and_the_search_goes_on(ip: InteractiveShell) -> None:
    cell = "x = hp.uniform(0, 1)\nif x > 0.5:\n    raise ValueError('too big')\nx\n"
    study = tune(ip, "--algo random --seed 0 --trials 8", cell)
    states = {t.state for t in study.trials}
    assert len(study.trials) == 8 and states == {hw.TrialState.FAIL, hw.TrialState.COMPLETE}
    failed = next(t for t in study.trials if t.state is hw.TrialState.FAIL)
    assert "too big" in failed.error and "line 4" in failed.error  # the %%hptune line is line 1


def test_metric_missing_at_run_time_fails_that_trial(ip: InteractiveShell) -> None:
    study = tune(ip, f"{QUICK} --maximize acc", "x = hp.uniform(0, 1)\nif x > 2:\n    acc = x\n")
    assert {t.state for t in study.trials} == {hw.TrialState.FAIL}
    assert "`acc`" in study.trials[0].error


def test_name_and_storage_persist_and_rerun_resumes(ip: InteractiveShell, tmp_path: Path) -> None:
    first = tune(ip, "--algo random --seed 0 --trials 3 --name res --storage runs.db")
    assert (tmp_path / "runs.db").exists() and first.name == "res"
    second = tune(ip, "--algo random --seed 0 --trials 5 --name res --storage runs.db")
    assert [t.number for t in second.trials] == [0, 1, 2, 3, 4]
    assert [dict(t.params) for t in second.trials[:3]] == [dict(t.params) for t in first.trials]


def test_default_storage_is_hptune_db_in_the_cwd(ip: InteractiveShell, tmp_path: Path) -> None:
    tune(ip, QUICK)
    assert (tmp_path / "hptune.db").exists()


def test_storage_none_keeps_the_study_in_memory(ip: InteractiveShell, tmp_path: Path) -> None:
    study = tune(ip, f"{QUICK} --storage none")
    assert study.store is None and not (tmp_path / "hptune.db").exists()


def test_seed_makes_the_search_reproducible(ip: InteractiveShell) -> None:
    first = [dict(t.params) for t in tune(ip, f"{QUICK} --storage none --seed 7").trials]
    assert first == [dict(t.params) for t in tune(ip, f"{QUICK} --storage none --seed 7").trials]


def test_wait_returns_a_finished_study(ip: InteractiveShell) -> None:
    study = tune(ip, f"{QUICK} --wait")
    assert not study.running and len(study.trials) == 4 and study.finish_reason == "complete"


def test_timeout_stops_starting_trials(ip: InteractiveShell) -> None:
    cell = "x = hp.uniform(0, 1)\nimport time\ntime.sleep(0.05)\nx\n"
    study = tune(ip, "--algo random --trials 1000 --timeout 0.3 --storage none", cell)
    assert study.finish_reason == "timeout" and 1 <= len(study.trials) < 50


@pytest.mark.parametrize("algo", ["tpe", "gp", "hyperband"])
def test_every_algorithm_runs_a_cell(ip: InteractiveShell, algo: str) -> None:
    cell = ("x = hp.uniform(0, 1)\nepochs = hp.budget(1, 9)\nfor e in range(epochs):\n"
            "    hp.report(step=e, acc=x * (e + 1) / 9)\nacc = x\n")
    study = tune(ip, f"--algo {algo} --seed 0 --trials 3 --maximize acc --storage none", cell)
    assert len(study.trials) == 3 and study.algorithm.name == algo


def test_a_cell_resumes_a_promoted_config_from_hp_checkpoint_dir(ip: InteractiveShell) -> None:
    ip.run_cell("TRAINED = []")
    cell = ("x = hp.uniform(0, 1)\nepochs = hp.budget(1, 9)\nsaved = hp.checkpoint_dir / 'epochs.txt'\n"
            "start = int(saved.read_text()) if saved.exists() else 0\nTRAINED.append(epochs - start)\n"
            "saved.write_text(str(epochs))\nloss = (x - 0.3) ** 2 + 1 / epochs\n")
    study = tune(ip, "--algo hyperband --seed 0 --trials 13 --minimize loss --storage none", cell)
    assert len(study.trials) == 13 and sum(ip.user_ns["TRAINED"]) == 9 * 1 + 3 * 2 + 1 * 6  # not 27


def test_prune_asha_stops_the_worse_cells_at_rungs(ip: InteractiveShell,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    cell = ("x = hp.uniform(0, 1)\nepochs = hp.budget(1, 27)\nfor e in range(1, epochs + 1):\n"
            "    acc = 1 - (x - 0.7) ** 2 - 1 / e\n    hp.report(step=e, acc=acc)\nacc\n")
    study = tune(ip, "--algo tpe --prune asha --seed 0 --trials 20 --maximize acc --storage none --wait", cell)
    pruned = [t for t in study.trials if t.state is hw.TrialState.PRUNED]
    assert len(pruned) >= 8 and {t.reports[-1].step for t in pruned} <= {1, 3, 9}
    best_x = min((t.params["x"] for t in study.trials), key=lambda x: abs(x - 0.7))
    assert study.best_params["x"] == best_x
    assert f"20 trials ({20 - len(pruned)} complete, {len(pruned)} pruned)" in capsys.readouterr().out


def test_summary_line_is_printed_after_a_blocking_run(ip: InteractiveShell,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    tune(ip, f"{QUICK} --name summ --maximize acc")
    assert "study 'summ': 4 trials (4 complete), best acc=" in capsys.readouterr().out


def test_a_best_trial_the_changed_cell_no_longer_allows_is_named_so(ip: InteractiveShell,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    line = "--algo random --seed 0 --name moved --minimize loss"
    tune(ip, f"{line} --trials 4", "x = hp.uniform(0, 1)\nloss = x\n")
    assert "outside the current space" not in capsys.readouterr().out
    study = tune(ip, f"{line} --trials 8", "x = hp.uniform(2, 3)\nloss = x\n")
    best = study.best_trial
    assert best.number < 4 and best.params["x"] < 1  # the resumed study keeps the earlier trials
    assert capsys.readouterr().out.rstrip().endswith(f"(trial {best.number}, outside the current space)")


def test_a_cell_re_run_without_algo_continues_with_the_algorithm_the_study_last_ran(ip: InteractiveShell) -> None:
    assert tune(ip, "--seed 0 --trials 3 --name algo --maximize acc").algorithm.name == "tpe"  # a new study
    assert tune(ip, "--algo gp --seed 0 --trials 5 --name algo --maximize acc").algorithm.name == "gp"
    study = tune(ip, "--seed 0 --trials 7 --name algo --maximize acc")
    assert study.algorithm.name == "gp" and len(study.trials) == 7


def test_summary_line_names_the_first_failure(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    cell = "x = hp.uniform(0, 1)\nif x > 0.5:\n    raise ValueError(f'x={x:.2f} is too big')\nacc = x\nacc\n"
    study = tune(ip, "--algo random --seed 1 --trials 6 --name half --maximize acc", cell)
    failed = [t for t in study.trials if t.state is hw.TrialState.FAIL]
    assert 0 < len(failed) < 6
    out = capsys.readouterr().out
    assert f"{6 - len(failed)} complete), best acc=" in out
    assert f"; {len(failed)} failed, the first (trial {failed[0].number}) with ValueError: x=" in out
    capped = tune(ip, "--algo random --seed 1 --trials 20 --name capped --max-failures 2 --maximize acc", cell)
    assert sum(t.state is hw.TrialState.FAIL for t in capped.trials) == 2 and len(capped.trials) < 20
    assert "2 failed, the first (trial " in (out := capsys.readouterr().out)
    assert out.rstrip().endswith("; stopped at --max-failures 2")


@pytest.mark.parametrize(("line", "cell", "message"), [
    ("", "x = 1\nlr = hp.lognormal(1e-4, 1e-1)\nlr", r"^line 3: hp\.lognormal\(1e-4, 1e-1\): unknown distribution"),
    ("", "lr = hp.uniform(5, 1)\nlr", r"^line 2: hp\.uniform\(5, 1\): `low < high` must hold, but got low=5, high=1"),
    ("", "lr = hp.uniform(low, 1)\nlr", r"^line 2: .*must be literals.*`low`"),
    ("", "a = hp.uniform(0, 1)\na = hp.int(1, 3)\na", r"^line 3: .*already declared on line 2"),
    ("", "a = hp.uniform(0, 1\na", r"^line 2: .*invalid Python"),
    ("", "m = 0.1  # @hp uniform(1, 0)\nm", r"^line 2: uniform\(1, 0\): `low < high`"),
    ("", "y = 2\ny", r"^line 2: y = 2: no hyperparameters"),
    ("", "x = hp.uniform(0, 1)\ny = x", r"^line 1: .*no metric"),
    ("--maximize acc", "x = hp.uniform(0, 1)\nx", r"^line 1: --maximize acc: the cell never sets .*'acc'"),
    ("--maximize a --minimize b", CELL, "not both"),
    ("--bogus", CELL, "unrecognized arguments: --bogus"),
    ("--trials 0", CELL, "--trials: must be a positive int"),
    ("--trials x", CELL, "--trials: must be a positive int"),
    ("--parallel -1", CELL, "--parallel"),
    ("--timeout 0", CELL, "--timeout: must be a positive float"),
    ("--algo sa", CELL, "invalid choice: 'sa'"),
    ("--prune percentile", CELL, "invalid choice: 'percentile'"),
    ("--algo hyperband --prune asha", CELL, "pruner='asha' does not combine with algo='hyperband'"),
    ("--gpus many", CELL, "--gpus must be auto, none or GPU indices"),
    ("--per-gpu 0", CELL, "--per-gpu must be a positive int or auto, but got '0'"),
    ("", "x = hp.uniform(0, 1)\nprint(x)\n", r"line 3: print\(x\): print\(\) returns None, so no trial"),
    ("--executor mpi", CELL, "--executor must be thread, process or dask://host:port, but got 'mpi'"),
    ("--edit", CELL, "--edit needs the widget panel"),
    ("--edit --wait", CELL, "use one"),
    ("--name ''", CELL, "--name must not be empty"),
    ("-o 1x", CELL, "-o needs a variable name"),
])
def test_bad_input_raises_usage_error_and_starts_nothing(ip: InteractiveShell, tmp_path: Path, line: str,
                                                         cell: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ip.run_cell_magic("hptune", f"--maximize acc {line}" if line == "--bogus" else line, cell)
    assert not (tmp_path / "hptune.db").exists()


def test_usage_error_in_run_cell_shows_no_traceback(ip: InteractiveShell,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    result = ip.run_cell("%%hptune\nlr = hp.lognormal(1, 2)\nlr")
    out = capsys.readouterr()
    assert isinstance(result.error_in_exec, UsageError)
    assert "UsageError: line 2: hp.lognormal(1, 2): unknown distribution" in out.err + out.out
    assert "Traceback" not in out.err + out.out


def test_an_unreachable_dask_scheduler_is_a_usage_error(ip: InteractiveShell, capsys) -> None:
    import dask
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"dask://127.0.0.1:{probe.getsockname()[1]}"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        result = ip.run_cell(f"%%hptune {QUICK} --storage none --executor {address}\n{CELL}")
    out = capsys.readouterr()
    assert isinstance(result.error_in_exec, UsageError)
    assert f"UsageError: cannot reach the Dask scheduler at {address!r} (" in out.err + out.out
    assert "Traceback" not in out.err + out.out


def test_stop_and_resume_of_a_study_not_running_say_why(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError, match=r"^study 'nope' is not running in this session; nothing to stop$"):
        ip.run_line_magic("hptune", "stop nope")
    tune(ip, f"{QUICK} --name done --maximize acc")
    with pytest.raises(UsageError, match=r"^study 'done' is not running in this session \(it ended: complete\); "
                                         r"re-run its %%hptune cell \(same --name\) to continue it$"):
        ip.run_line_magic("hptune", "resume done")


def test_conflicting_stored_direction_is_a_usage_error(ip: InteractiveShell) -> None:
    tune(ip, f"{QUICK} --name dir --maximize acc")
    with pytest.raises(UsageError, match="direction"):
        ip.run_cell_magic("hptune", f"{QUICK} --name dir --minimize acc", CELL)


def test_help_shows_the_options_and_line_commands(ip: InteractiveShell) -> None:
    doc = ip.find_cell_magic("hptune").__doc__
    for option in ("--algo", "--prune", "--trials", "--maximize", "--wait", "--edit", "-o VAR", "%hptune list",
                   "stop NAME"):
        assert option in doc


def test_hp_outside_a_trial_gives_defaults_and_ignores_reports(ip: InteractiveShell) -> None:
    assert ip.user_ns["hp"] is hp
    assert hp.uniform(0, 1) == 0.5 and hp.choice(16, 32) == 16 and hp.budget(1, 27) == 27
    assert hp.report(step=0, acc=1.0) is None and hp.trial is None and not hp.should_stop()
    with pytest.raises(AttributeError, match="lognormal"):
        hp.lognormal(1, 2)


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


SLOW_CELL = "x = hp.uniform(0, 1)\nimport time\ntime.sleep(0.05)\nx\n"


def run_in_thread(ip: InteractiveShell, code: str, cell_id: str, variable: str) -> tuple[threading.Thread, hw.Study]:
    """A cell (a blocking %%hptune in terminal IPython) run from a frontend's cell ``cell_id``, on
    another thread; returns once its study has finished a trial."""
    thread = threading.Thread(target=ip.run_cell, args=(code,), kwargs={"cell_id": cell_id}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not (variable in ip.user_ns and len(ip.user_ns[variable].trials) >= 1):
        assert time.monotonic() < deadline, "the study never finished a trial"
        time.sleep(0.01)
    return thread, ip.user_ns[variable]


def test_rerunning_a_cell_stops_the_search_it_started(ip: InteractiveShell, capsys) -> None:
    thread, first = run_in_thread(ip, f"%%hptune --algo random --trials 500 -o first\n{SLOW_CELL}", "cell-1", "first")
    other, elsewhere = run_in_thread(ip, f"%%hptune --algo random --trials 500 -o other\n{SLOW_CELL}", "cell-2",
                                     "other")
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
    thread, first = run_in_thread(ip, code, "cell-1", "first")
    result = ip.run_cell(code.replace("--trials 500", "--trials 3").replace("-o first", "-o second"), cell_id="cell-1")
    thread.join(30)
    assert result.success, result.error_in_exec
    assert first.finish_reason == "stopped" and "waiting for its running trials to end" in capsys.readouterr().out
    assert len(ip.user_ns["second"].trials) == max(3, len(first.trials))  # resumed: the same study, extended
    assert ip.user_ns["second"].name == "again"


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
])
def test_bad_line_commands_are_usage_errors(ip: InteractiveShell, line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ip.run_line_magic("hptune", line)


def test_process_executor_runs_the_cell_in_worker_processes(ip: InteractiveShell) -> None:
    ip.run_cell("import os\ndef shift(v):\n    return v + 1\nparent = os.getpid()")
    cell = "x = hp.uniform(0, 1)\nfar = os.getpid() != parent\nacc = shift(x) if far else -1.0\nacc\n"
    study = tune(ip, f"{QUICK} --maximize acc --executor process --parallel 2", cell)
    assert [t.state for t in study.trials] == [hw.TrialState.COMPLETE] * 4, study.trials[0].error
    assert all(1 <= t.value <= 2 for t in study.trials)  # ran away from the kernel, user function visible
    assert "far" not in ip.user_ns


def test_gpu_options_reach_the_runner_and_fall_back_to_the_cpu(ip: InteractiveShell,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import hpwidgets.devices as devices
    monkeypatch.setattr(devices, "discover_gpus", lambda: [])  # this machine's truth, without importing torch
    with pytest.warns(RuntimeWarning, match="no CUDA GPU is visible"):
        study = tune(ip, f"{QUICK} --maximize acc --gpus 0 --per-gpu 2")
    assert {t.device for t in study.trials} == {"cpu"} and len(study.trials) == 4
