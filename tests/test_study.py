from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest

import hpwidgets as hw
from hpwidgets.events import StudyFinished, TrialFinished, TrialReported, TrialStarted
from hpwidgets.store import Store
from hpwidgets.trial import Report, TrialState

SPACE = {"x": hw.uniform(-2, 2), "n": hw.int(1, 5)}


def quiet_tune(objective, **kwargs) -> hw.Study:
    kwargs.setdefault("algo", "random")
    kwargs.setdefault("seed", 0)
    kwargs.setdefault("storage", None)
    return hw.tune(objective, kwargs.pop("space", SPACE), progress=False, **kwargs)


def test_tune_finds_the_minimum_and_returns_plain_results():
    study = quiet_tune(lambda p: (p["x"] - 1) ** 2 + p["n"], trials=40)
    assert len(study.trials) == 40 and all(t.state is TrialState.COMPLETE for t in study.trials)
    assert study.best_value == min(t.value for t in study.trials)
    assert study.best_params == dict(study.best_trial.params) and study.best_params["n"] in range(1, 6)
    frame = study.trials_dataframe()
    assert list(frame["number"]) == list(range(40))
    assert {"params_x", "params_n", "value", "state", "duration_s"} <= set(frame.columns)


def test_maximize_a_named_metric_from_a_dict():
    study = quiet_tune(lambda p: {"accuracy": -abs(p["x"]), "loss": abs(p["x"])}, maximize="accuracy", trials=25)
    assert study.best_value == max(t.metrics["accuracy"] for t in study.trials)
    assert study.best_trial.metrics["loss"] == -study.best_value


@pytest.mark.parametrize("returned, reason", [
    (float("nan"), "must be finite, but got nan"),
    (float("inf"), "must be finite, but got inf"),
    (None, "the objective returned None"),
    ("0.5", "must be a number, but got '0.5'"),
    ({"acc": 1.0, "loss": 2.0}, "returned several metrics ['acc', 'loss']"),
    (np.array([0.5]), "got array([0.5]) (ndarray); a one-element array: return .item() of it"),
    (np.array([0.5, 1.0]), "got array([0.5, 1. ]) (ndarray)"),
])
def test_bad_return_values_fail_the_trial_with_the_reason(returned, reason):
    study = quiet_tune(lambda p: returned, trials=3)
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 3
    assert reason in study.trials[0].error


def test_a_raising_objective_fails_its_trial_keeps_the_traceback_and_the_search_goes_on():
    def objective(params):
        if params["x"] > 0:
            raise RuntimeError("diverged")
        return params["x"]

    study = quiet_tune(objective, trials=20)
    failed = [t for t in study.trials if t.state is TrialState.FAIL]
    assert failed and len(study.trials) == 20
    assert failed[0].error.startswith("RuntimeError: diverged") and "Traceback" in failed[0].error
    assert all(t.value is None for t in failed) and study.best_value <= 0


def test_a_numpy_int_seed_works_like_the_same_int(tmp_path):
    import numpy as np
    runs = [quiet_tune(lambda p: p["x"], trials=4, seed=seed, name=f"s{i}", storage=tmp_path / "s.db")
            for i, seed in enumerate([np.int64(3), 3])]
    assert len(runs[0].trials) == 4 and runs[0].seed == 3 and type(runs[0].seed) is int
    assert [t.params for t in runs[0].trials] == [t.params for t in runs[1].trials]


def test_with_every_trial_failed_asking_for_the_best_names_the_first_failure():
    def objective(params):
        raise FloatingPointError(f"loss is nan at x={params['x']:.1f}")

    study = quiet_tune(objective, trials=3, name="nan", storage=None)
    with pytest.raises(ValueError) as refused:
        _ = study.best_params
    assert str(refused.value).startswith("study 'nan' has no complete trial yet (3 failed, the first (trial 0) "
                                         "with FloatingPointError: loss is nan at x=")


def test_max_failures_stops_the_search():
    study = quiet_tune(lambda p: 1 / 0, trials=50, max_failures=4)
    assert len(study.trials) == 4 and study.finish_reason == "max_failures"


def test_max_failures_counts_the_failures_of_the_run_only(tmp_path):
    db = tmp_path / "s.db"
    quiet_tune(lambda p: 1 / 0, trials=3, name="s", storage=db)  # an earlier run that failed throughout
    study = quiet_tune(lambda p: p["x"], trials=6, name="s", storage=db, max_failures=1)
    assert study.finish_reason == "complete" and [t.state for t in study.trials] == [TrialState.FAIL] * 3 + [
        TrialState.COMPLETE] * 3
    study.optimize(lambda p: 1 / 0, trials=9, progress=False)
    assert study.finish_reason == "max_failures" and len(study.trials) == 7  # this run's first failure
    study.optimize(lambda p: p["x"], trials=9, progress=False)
    assert study.finish_reason == "complete" and len(study.trials) == 9


def test_a_missing_target_metric_fails_the_trial():
    study = quiet_tune(lambda p: {"loss": 1.0}, maximize="accuracy", trials=2)
    assert "but not the target 'accuracy'" in study.trials[0].error


def test_reports_are_kept_and_published_and_pruning_raises():
    events = []

    def objective(params, trial):
        for epoch in range(3):
            trial.report(epoch, loss=params["x"] + epoch)
        return params["x"]

    study = hw.Study(space=SPACE, algo="random", seed=0, minimize="loss")
    study.subscribe(events.append)
    study.optimize(objective, trials=2, progress=False)
    assert [r.step for r in study.trials[0].reports] == [0, 1, 2]
    kinds = [type(e) for e in events]
    assert kinds == [TrialStarted, TrialReported, TrialReported, TrialReported, TrialFinished] * 2 + [StudyFinished]


def test_reports_without_a_step_count_epochs_trained_from_1_as_the_rungs_do():
    def objective(params, trial):
        for _ in range(4):
            trial.report(loss=params["x"])
        return params["x"]

    study = quiet_tune(objective, trials=1)
    assert [r.step for r in study.trials[0].reports] == [1, 2, 3, 4]


def test_stop_prunes_a_running_trial_at_its_next_report_and_starts_no_more():
    started = threading.Event()

    def objective(params, trial):
        started.set()
        for step in range(1000):
            time.sleep(0.005)
            trial.report(step, loss=1.0 / (step + 1))
        return 0.0

    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.optimize(objective, trials=10, background=True, progress=False)
    assert started.wait(5)
    study.stop()
    assert study.wait(10)
    assert len(study.trials) == 1 and study.trials[0].state is TrialState.PRUNED
    assert study.trials[0].value == study.trials[0].reports[-1].metrics["loss"]
    assert study.finish_reason == "stopped"


def test_pause_holds_new_trials_and_resume_continues():
    gate = threading.Event()

    def objective(params):
        gate.wait(5)
        return params["x"]

    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.optimize(objective, trials=6, background=True, progress=False)
    study.pause()
    gate.set()
    time.sleep(0.3)
    held = len(study.trials)
    time.sleep(0.3)
    assert len(study.trials) == held <= 1 and study.running
    study.resume()
    assert study.wait(10) and len(study.trials) == 6


def test_parallel_trials_overlap_and_add_trials_extends_a_running_search():
    running, peak, lock = [0], [0], threading.Lock()

    def objective(params):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.2)  # long enough that all four slots fill even on a loaded machine
        with lock:
            running[0] -= 1
        return params["x"]

    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.optimize(objective, trials=8, parallel=4, background=True, progress=False)
    study.add_trials(4)
    assert study.wait(20)
    assert len(study.trials) == 12 and peak[0] == 4
    assert sorted(t.number for t in study.trials) == list(range(12))


def test_timeout_stops_starting_trials():
    study = quiet_tune(lambda p: time.sleep(0.05) or p["x"], trials=1000, timeout=0.3)
    assert 1 <= len(study.trials) < 1000 and study.finish_reason == "timeout"


def test_a_failing_subscriber_never_kills_the_search():
    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.subscribe(lambda event: 1 / 0)
    study.optimize(lambda p: p["x"], trials=5, progress=False)
    assert len(study.trials) == 5


def test_keyboard_interrupt_fails_the_running_trial_stops_the_study_and_propagates():
    def objective(params):
        if params["x"] > 0:
            raise KeyboardInterrupt
        return params["x"]

    study = hw.Study(space=SPACE, algo="random", seed=0)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, trials=30, progress=False)
    last = study.trials[-1]
    assert last.state is TrialState.FAIL and "KeyboardInterrupt" in last.error
    assert study.finish_reason == "interrupted" and len(study.trials) < 30


@pytest.mark.parametrize("kwargs, message", [
    ({"maximize": "acc", "minimize": "loss"}, "give `maximize` or `minimize`, not both"),
    ({"trials": -1}, "`trials` must be an int >= 0, but got trials=-1"),
    ({"trials": 2.5}, "`trials` must be an int >= 0, but got trials=2.5"),
    ({"parallel": 0}, "`parallel` must be an int >= 1, but got parallel=0"),
    ({"parallel": True}, "`parallel` must be an int >= 1, but got parallel=True"),
    ({"storage": 123}, "`storage` must be a file path, a Store or None, but got storage=123"),
    ({"timeout": 0}, "`timeout > 0` must hold, but got timeout=0"),
    ({"algo": "annealing"}, "unknown algorithm 'annealing'"),
    ({"seed": "42"}, "`seed` must be an int or None, but got seed='42'"),
    ({"seed": 1.5}, "`seed` must be an int or None, but got seed=1.5"),
    ({"max_failures": 0}, "`max_failures` must be an int >= 1, but got max_failures=0"),
    ({"name": 5}, "`name` must be a non-empty string or None, but got name=5"),
    ({"name": ""}, "`name` must be a non-empty string or None, but got name=''"),
])
def test_bad_arguments_are_refused_before_anything_runs(kwargs, message):
    calls = []
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("`", "`")):
        quiet_tune(lambda p: calls.append(p) or 0.0, **kwargs)
    assert calls == []


def test_a_space_given_where_the_name_goes_is_named_as_such():
    with pytest.raises(ValueError, match=r"but got name=\{'x': Float.*; the space goes second, or as `space=`$"):
        hw.Study(SPACE)


def test_numpy_counts_are_taken_as_ints():
    study = quiet_tune(lambda p: p["x"], trials=np.int64(3), parallel=np.int32(2), max_failures=np.int64(2))
    assert len(study.trials) == 3 and study.n_target == 3 and type(study.n_target) is int


def test_set_space_moves_the_next_suggestions_and_keeps_the_history():
    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.optimize(lambda p: p["x"], trials=10, progress=False)
    study.set_space({"x": hw.uniform(1.5, 2), "n": hw.int(1, 5)})
    study.optimize(lambda p: p["x"], trials=20, progress=False)
    assert len(study.trials) == 20
    assert all(1.5 <= t.params["x"] <= 2 for t in study.trials[10:])
    with pytest.raises(ValueError, match="must keep the names"):
        study.set_space({"y": hw.uniform(0, 1)})


def test_progress_bar_shows_best_and_import_prints_nothing(capsys):
    hw.tune(lambda p: p["x"], SPACE, algo="random", trials=5, seed=0, storage=None)
    err = capsys.readouterr().err
    assert "5/5" in err and "best=" in err and "failed=" not in err
    hw.tune(lambda p: p["x"] if p["x"] < 0 else 1 / 0, SPACE, algo="random", trials=6, seed=0, storage=None)
    last = capsys.readouterr().err.split("\r")[-1]
    assert "6/6" in last and "best=" in last and re.search(r"failed=[1-5]\b", last)
    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.optimize(lambda p: p["x"], trials=4, progress=False)
    study.optimize(lambda p: 10 + p["x"], trials=6)  # resumed: no new trial beats the first four
    assert f"best={study.best_value:.6g}" in capsys.readouterr().err.split("\r")[-1]
    out = subprocess.run([sys.executable, "-c", "import hpwidgets"], capture_output=True, text=True, check=True)
    assert out.stdout == "" and out.stderr == ""


def test_budget_is_given_to_ordinary_algorithms_at_its_maximum():
    space = {"x": hw.uniform(0, 1), "epochs": hw.budget(1, 27)}
    study = quiet_tune(lambda p: p["x"] * p["epochs"], space=space, trials=3)
    assert {t.params["epochs"] for t in study.trials} == {27}


def test_non_finite_reports_are_refused_inside_the_trial():
    def objective(params, trial):
        trial.report(0, loss=math.nan)
        return 1.0

    study = quiet_tune(objective, trials=1)
    assert "metric 'loss' must be finite" in study.trials[0].error


def test_trials_is_the_total_of_a_study_shared_with_another_writer(tmp_path):
    db = tmp_path / "shared.db"
    late = hw.Study("shared", SPACE, algo="random", seed=1, storage=db)  # opened while the file is empty
    early = hw.Study("shared", SPACE, algo="random", seed=0, storage=db)
    early.optimize(lambda p: p["x"], trials=4, progress=False)
    late.optimize(lambda p: p["x"], trials=6, progress=False)  # knows none of early's 4 trials
    assert [t.number for t in late.trials] == [4, 5] and late.finish_reason == "complete"
    reopened = hw.Study("shared", storage=db)
    assert [t.number for t in reopened.trials] == list(range(6))  # 6 in total, not 4 + 6


def test_an_ask_a_full_shared_study_cannot_run_is_withdrawn_from_the_algorithm(tmp_path):
    db = tmp_path / "shared.db"
    late = hw.Study("shared", SPACE, algo="tpe", seed=1, storage=db)
    hw.Study("shared", SPACE, algo="tpe", seed=0, storage=db).optimize(lambda p: p["x"], trials=4, progress=False)
    late.optimize(lambda p: p["x"], trials=4, progress=False)  # its one ask finds the study full
    assert late.trials == [] and late.finish_reason == "complete"
    assert late.algorithm._pending == []  # no stale ask biasing a later optimize() of this object


def test_a_finished_trial_knows_its_curve_and_the_budget_it_used():
    reports = (Report(1, {"loss": 0.9, "acc": 0.1}), Report(2, {"acc": 0.2}), Report(3, {"loss": 0.5}))
    pruned = hw.FrozenTrial(0, TrialState.PRUNED, {"x": 0.5, "epochs": 9}, reports=reports)
    assert pruned.reported("loss") == [(1, 0.9), (3, 0.5)] and pruned.reported("acc") == [(1, 0.1), (2, 0.2)]
    assert pruned.budget_used("epochs") == 3  # stopped after 3 reports of its 9 epochs
    assert pruned.evolve(state=TrialState.COMPLETE).budget_used("epochs") == 9
    assert pruned.budget_used(None) is None and pruned.budget_used("x") == 0.5
    assert pruned.evolve(params={"epochs": "9"}).budget_used("epochs") is None


def test_a_refused_algorithm_and_space_pair_leaves_the_store_as_it_was(tmp_path):
    db, budgeted = tmp_path / "s.db", {"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)}
    with pytest.raises(ValueError, match="hyperband needs a budget dimension"):
        hw.Study("new", SPACE, algo="hyperband", storage=db)
    assert Store(db).get_study("new") is None  # else load_study("new") would fail on it forever
    hw.Study("kept", budgeted, algo="hyperband", storage=db)
    with pytest.raises(ValueError, match="hyperband needs a budget dimension"):
        hw.Study("kept", SPACE, algo="hyperband", storage=db)  # the cell lost its budget line
    assert hw.load_study("kept", db).space == hw.SearchSpace(budgeted)


def test_a_choice_of_bools_replacing_equal_ints_is_stored(tmp_path):
    db = tmp_path / "s.db"
    quiet_tune(lambda p: float(p["flag"]), space={"flag": hw.choice(0, 1)}, trials=2, name="s", storage=db)
    quiet_tune(lambda p: float(p["flag"]), space={"flag": hw.choice(False, True)}, trials=4, name="s", storage=db)
    assert hw.load_study("s", db).space.to_json() == '{"flag": {"type": "choice", "values": [false, true]}}'


def test_a_study_resumed_with_another_algorithm_is_loaded_with_it_next_time(tmp_path):
    db = tmp_path / "s.db"
    quiet_tune(lambda p: p["x"], trials=3, algo="random", name="s", storage=db)
    quiet_tune(lambda p: p["x"], trials=6, algo="tpe", name="s", storage=db)
    assert hw.load_study("s", db).algorithm.name == "tpe"  # not the algorithm it was created with
    study = hw.load_study("s", db)
    study.set_algorithm("gp")  # the panel's dropdown
    assert hw.load_study("s", db).algorithm.name == "gp"
    assert hw.Study("s", storage=db).algorithm.name == "gp"  # opening it to look changes nothing
    again = quiet_tune(lambda p: p["x"], trials=8, algo=None, name="s", storage=db)  # algo not named
    assert again.algorithm.name == "gp" and len(again.trials) == 8
    assert hw.Study(space=SPACE, storage=None).algorithm.name == "tpe"  # a new study's default


def test_a_pruner_beside_a_stored_hyperband_study_is_refused(tmp_path):
    db, space = tmp_path / "s.db", {"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)}
    hw.Study("hb", space, algo="hyperband", storage=db)
    with pytest.raises(ValueError, match=r"does not combine with algo='hyperband'.*\(study 'hb' last ran "
                                         r"'hyperband'; name another algorithm to change it\)"):
        hw.Study("hb", space, storage=db, pruner="asha")  # resumed as hyperband, which has its own rungs
    with pytest.raises(ValueError, match=r"needs a budget dimension.*last ran 'hyperband'"):
        hw.Study("hb", {"x": hw.uniform(0, 1)}, storage=db)  # the budget line gone from the cell
    assert hw.Study("hb", space, algo="random", storage=db, pruner="asha").algorithm.name == "random"


def test_torch_scalars_count_and_a_one_element_tensor_names_the_fix():
    import torch  # a dev dependency, imported here so this file's other tests stay torch-free
    study = quiet_tune(lambda p: torch.tensor(p["x"], requires_grad=True) * 2, trials=2)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert study.trials[0].value == pytest.approx(2 * study.trials[0].params["x"], rel=1e-6)
    study = quiet_tune(lambda p: torch.tensor([p["x"]]), trials=1)
    assert "(Tensor); a one-element array: return .item() of it" in study.trials[0].error


def test_a_study_of_the_users_own_algorithm_asks_for_it_on_resume(tmp_path):
    from hpwidgets.algorithms import RandomSearch

    class Mine(RandomSearch):
        name = "mine"

    db = tmp_path / "s.db"
    quiet_tune(lambda p: p["x"], trials=2, algo=Mine(), name="own", storage=db)
    with pytest.raises(ValueError, match=r"study 'own' last ran algorithm 'mine\(\.\.\.\)', which is not built in"):
        hw.load_study("own", db)
    assert len(hw.load_study("own", db, algo=Mine()).trials) == 2


FAKE_TORCH = """
import time
time.sleep(0.5)  # torch's own import takes seconds: other trials start meanwhile
calls = []


def set_num_threads(threads):
    calls.append(threads)
"""

IMPORTS_TORCH_ITSELF = """
import sys, time
import hpwidgets as hw
from hpwidgets.events import TrialStarted


def after_the_import_began(event):
    # trials 1 and 2 reach the runner's torch preamble while trial 0 is still importing torch
    while isinstance(event, TrialStarted) and event.number > 0 and "torch" not in sys.modules:
        time.sleep(0.001)


def objective(params):
    import torch
    return params["x"]


study = hw.Study(space={"x": hw.uniform(0, 1)}, algo="random", seed=0, storage=None)
study.subscribe(after_the_import_began)
study.optimize(objective, trials=3, parallel=3, progress=False)
import torch
print([(t.state.name, t.error) for t in study.trials], len(torch.calls))
"""


def test_parallel_trials_importing_torch_themselves_all_complete(tmp_path):
    (tmp_path / "torch.py").write_text(FAKE_TORCH)
    package = str(Path(hw.__file__).resolve().parent.parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(tmp_path), package])}
    child = subprocess.run([sys.executable, "-c", IMPORTS_TORCH_ITSELF], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=60)
    assert child.returncode == 0, child.stderr
    # not FAIL "runner failed: AttributeError: partially initialized module 'torch'"; each later
    # trial waited for the import and set its share of the threads
    assert child.stdout.strip() == f"{[('COMPLETE', None)] * 3} 2"


def test_a_torch_refusing_a_thread_count_costs_no_trial(monkeypatch):
    def set_num_threads(threads):
        raise RuntimeError("set_num_threads: cannot set the number of threads after parallel work started")

    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(set_num_threads=set_num_threads))
    study = quiet_tune(lambda p: p["x"], trials=4, parallel=2)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
