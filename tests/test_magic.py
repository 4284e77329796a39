"""%%hptune / %hptune in a real InteractiveShell (terminal mode: every search blocks)."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from magic_harness import CELL, QUICK, tune

import hpwidgets as hw
from hpwidgets.magic import hp


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


def test_leading_blank_lines_keep_magic_lines_and_line_numbers(ip: InteractiveShell) -> None:
    calls: list[str] = []
    ip.register_magic_function(lambda line: calls.append(line), "line", "hpw_count")
    tune(ip, f"{QUICK} --trials 2", "\n  \nx = hp.uniform(0, 1)\n%hpw_count seen\nx")  # IPython drops such lines
    assert calls == ["seen"] * 2
    with pytest.raises(UsageError, match=r"^line 4: hp\.lognormal\(1, 2\): unknown distribution"):
        ip.run_cell_magic("hptune", QUICK, "\n\nlr = hp.lognormal(1, 2)\n%hpw_count seen\nlr")


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


def test_a_trial_that_never_sets_the_metric_fails_even_if_the_user_has_one(ip: InteractiveShell) -> None:
    ip.run_cell("acc = 99.0")  # e.g. the cell was run once as plain Python
    study = tune(ip, f"{QUICK} --storage none --maximize acc", "x = hp.uniform(0, 1)\nif x > 2:\n    acc = x\n")
    assert {t.state for t in study.trials} == {hw.TrialState.FAIL}
    assert "the cell ended without setting `acc`" in study.trials[0].error and ip.user_ns["acc"] == 99.0


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
    ("--gpus 0,0", CELL, "--gpus must name each GPU once, but got '0,0'"),
    ("--maximize acc", "x = hp.uniform(0, 1)\ndef f():\n    acc = x\n    return acc\nf()",
     r"^line 1: --maximize acc: the cell never sets .*'acc'"),
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


def test_a_gpu_index_that_no_visible_gpu_has_is_refused_before_a_study_is_made(
        ip: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hpwidgets.devices as devices
    monkeypatch.setattr(devices, "discover_gpus", lambda: [devices.GpuInfo(0, "Stand-in GPU", 2**34, 2**34)])
    with pytest.raises(UsageError, match=r"^--gpus 1: gpus=\[1\] asks for \['cuda:1'\], but only \['cuda:0'\]"):
        ip.run_cell_magic("hptune", f"{QUICK} --gpus 1 -o st", CELL)
    assert "st" not in ip.user_ns and not (tmp_path / "hptune.db").exists()


def test_both_spellings_of_the_thread_executor_share_the_users_objects(ip: InteractiveShell) -> None:
    ip.run_cell("import threading\nlock = threading.Lock()")  # cannot be pickled: threads share it as it is
    for spelling in ("thread", "threads"):
        cell = "x = hp.uniform(0, 1)\nwith lock:\n    y = x\ny"
        study = tune(ip, f"{QUICK} --storage none --executor {spelling}", cell)
        assert [t.state for t in study.trials] == [hw.TrialState.COMPLETE] * 4, study.trials[0].error


def test_quoted_option_values_lose_their_quotes(ip: InteractiveShell) -> None:
    ip.run_cell_magic("hptune", f'{QUICK} --storage none --maximize "acc" -o "quoted"', CELL)
    assert ip.user_ns["quoted"].target == "acc" and ip.user_ns["quoted"].maximize
    line = """--algo "random" --seed 0 --trials 2 --storage 'none' --executor "thread" --gpus 'none' """
    ip.run_cell_magic("hptune", f"""{line} --per-gpu "1" --prune 'asha' -o again""", CELL)
    assert ip.user_ns["again"].algorithm.name == "random" and len(ip.user_ns["again"].trials) == 2


@pytest.mark.parametrize("line", ['--name "my run', "show 'my run", "report mnist --path 'out.html"])
def test_an_unclosed_quote_is_a_usage_error_that_shows_the_line(ip: InteractiveShell, line: str) -> None:
    is_command = line.split()[0] in ("show", "report")
    magic, full = ("%hptune", line) if is_command else ("%%hptune", f"{QUICK} {line}")
    with pytest.raises(UsageError, match=f"^{re.escape(magic)} {re.escape(full)}: no closing quotation$"):
        if is_command:
            ip.run_line_magic("hptune", full)
        else:
            ip.run_cell_magic("hptune", full, CELL)


def test_an_edit_panel_shows_the_cells_trial_target_before_start(ip: InteractiveShell,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import hpwidgets.magic as magic
    shown = []
    monkeypatch.setattr(magic, "_in_kernel", lambda shell: True)  # so the panel is made, as in a kernel
    monkeypatch.setattr(magic, "_show_dashboard", lambda study, start, edit: shown.append(study.n_target) or None)
    ip.run_cell_magic("hptune", "--algo random --seed 0 --trials 25 --storage none --edit -o st", CELL)
    ip.user_ns["st"].wait(30)  # no panel to click Start: the cell runs as declared
    assert shown == [25] and len(ip.user_ns["st"].trials) == 25
