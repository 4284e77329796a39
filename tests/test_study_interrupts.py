"""How a run ends: Ctrl-C anywhere in the loop, stop/pause while the driver waits for a slot,
add_trials from the last trial's subscriber, and what wait() and StudyFinished see afterwards."""

from __future__ import annotations

import ast
import contextlib
import signal
import threading
import types
from pathlib import Path

import pytest

import hpwidgets as hw
from hpwidgets import _locks
from hpwidgets.devices import SlotPool
from hpwidgets.events import StudyFinished, TrialFinished, TrialStarted
from hpwidgets.runner import InlineRunner, ThreadRunner, make_runner
from hpwidgets.store import Store
from hpwidgets.trial import TrialState

SPACE = {"x": hw.uniform(0, 1)}


def ctrl_c() -> None:
    """The user's Ctrl-C: SIGINT to the main thread, wherever it is blocked."""
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


def stored_states(study: hw.Study) -> dict[int, str]:
    return {t.number: t.state.value for t in study.store.load_trials(study._record.id)}


def assert_resumable(study: hw.Study, trials: int) -> None:
    """Nothing is left running: the study runs again, and nothing stays RUNNING on disk."""
    assert not study.running and study.running_trials == {}
    study.optimize(lambda p: p["x"], trials=trials, progress=False)
    assert study.finish_reason == "complete" and len(study.trials) == trials
    assert "RUNNING" not in stored_states(study).values()
    assert study.clean_checkpoints() == (0, 0)


# --- item 1: Ctrl-C outside the objective call ---------------------------------------------------
def test_ctrl_c_in_a_trial_started_subscriber_fails_that_trial_interrupted_and_the_study_resumes(tmp_path):
    study = hw.Study("s", space=SPACE, algo="random", seed=0, storage=tmp_path / "h.db")
    study.subscribe(lambda e: isinstance(e, TrialStarted) and e.number == 3 and ctrl_c())
    with pytest.raises(KeyboardInterrupt):
        study.optimize(lambda p: p["x"], trials=10, progress=False)
    assert study.finish_reason == "interrupted"
    assert [(t.number, t.state, t.error) for t in study.trials][-1] == (3, TrialState.FAIL, "interrupted")
    assert stored_states(study) == {0: "COMPLETE", 1: "COMPLETE", 2: "COMPLETE", 3: "FAIL"}
    assert_resumable(study, 10)


@pytest.mark.parametrize("when", ["before the write", "after the commit"])
def test_ctrl_c_in_the_store_write_keeps_the_finished_trial(tmp_path, when):
    study = hw.Study("s", space=SPACE, algo="random", seed=0, storage=tmp_path / "h.db")
    write = study.store.finish_trial

    def finish_trial(study_id, trial):
        if trial.number == 2 and trial.state is TrialState.COMPLETE and not hit:
            hit.append(True)
            if when == "after the commit":
                write(study_id, trial)
            raise KeyboardInterrupt
        write(study_id, trial)

    hit: list[bool] = []
    study.store.finish_trial = finish_trial
    with pytest.raises(KeyboardInterrupt):
        study.optimize(lambda p: p["x"], trials=10, progress=False)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3  # trial 2 is not lost
    assert stored_states(study) == {0: "COMPLETE", 1: "COMPLETE", 2: "COMPLETE"}
    assert_resumable(study, 5)


def test_the_loops_locks_are_entered_without_python_code_between_acquire_and_with():
    # Condition.__enter__ is Python: a Ctrl-C right after it took the lock would skip the `with`,
    # leave the lock held and hang every trial thread. The C locks' own __enter__ leaves no gap.
    study = hw.Study(space=SPACE, algo="random", seed=0)
    for lock in (study._lock, SlotPool({"cpu": 1})._lock):
        assert not isinstance(type(lock).__enter__, types.FunctionType)
    package = Path(hw.__file__).parent
    for module in ("study.py", "_study_loop.py", "results.py", "devices.py"):
        tree = ast.parse((package / module).read_text(encoding="utf-8"))
        entered = [ast.unparse(item.context_expr) for node in ast.walk(tree) if isinstance(node, ast.With)
                   for item in node.items]
        assert not [e for e in entered if e.endswith("_cond")], module


class GapCondition(threading.Condition):
    """A Condition whose first wait meets a Ctrl-C just after it released its lock, before the
    ``try`` that takes it back (a signal handled right after ``_release_save()`` returns)."""

    def __init__(self, lock):
        super().__init__(lock)
        self.gaps = 1

    def wait(self, timeout=None):
        if self.gaps:
            self.gaps -= 1
            self._release_save()
            raise KeyboardInterrupt
        return super().wait(timeout)


def test_a_ctrl_c_inside_a_conditions_wait_is_a_ctrl_c_and_frees_the_lock():
    lock = threading.RLock()
    cond = GapCondition(lock)
    with pytest.raises(KeyboardInterrupt), lock:  # was: RuntimeError, "cannot release un-acquired lock"
        _locks.wait(cond, 0.1)
    assert lock.acquire(blocking=False)


def test_a_ctrl_c_while_the_driver_waits_for_running_trials_ends_the_study_interrupted(tmp_path):
    study = hw.Study("s", space=SPACE, algo="random", seed=0, storage=tmp_path / "h.db")
    study._cond = GapCondition(study._lock)
    both = threading.Barrier(2, timeout=2)

    def objective(p, trial):
        both.wait()  # two trials running: the driver waits on the study's condition
        trial.report(1, loss=p["x"])
        return p["x"]

    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, trials=6, parallel=2, progress=False)
    assert study.finish_reason == "interrupted" and len(study.trials) == 2
    assert_resumable(study, 6)


class CtrlCAfterTheFourthStart(Store):
    """Ctrl-C just after the COMMIT that wrote trial 3's RUNNING row, still inside start_trial."""

    @contextlib.contextmanager
    def _transaction(self, action: str, *, write: bool):
        with super()._transaction(action, write=write) as conn:
            yield conn
        if action == "start a trial" and self._count_trials(self._conn, 1) == 4 and not self.hit:
            self.hit = True
            raise KeyboardInterrupt


@pytest.mark.parametrize("parallel", [1, 2])
def test_ctrl_c_just_after_a_trials_row_is_written_books_that_row(tmp_path, parallel):
    store = CtrlCAfterTheFourthStart(tmp_path / "h.db")
    store.hit = False
    study = hw.Study("s", space=SPACE, algo="random", seed=0, storage=store)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(lambda p: p["x"], trials=10, parallel=parallel, progress=False)
    assert store.hit and (3, TrialState.FAIL, "interrupted") in [(t.number, t.state, t.error) for t in study.trials]
    assert stored_states(study)[3] == "FAIL" and len(study.trials) == len(stored_states(study))
    assert_resumable(study, 10)


def test_ctrl_c_in_the_algorithms_tell_keeps_the_trial_and_frees_the_study(tmp_path):
    study = hw.Study("s", space=SPACE, algo="random", seed=0, storage=tmp_path / "h.db")
    tell = study.algorithm.tell

    def interrupted_tell(frozen):
        tell(frozen)
        if frozen.number == 1:
            raise KeyboardInterrupt

    study.algorithm.tell = interrupted_tell
    with pytest.raises(KeyboardInterrupt):
        study.optimize(lambda p: p["x"], trials=10, progress=False)
    assert stored_states(study) == {0: "COMPLETE", 1: "COMPLETE"}
    study.algorithm.tell = tell
    assert_resumable(study, 4)


def test_ctrl_c_between_the_ask_and_the_submit_fails_the_asked_trial_interrupted(tmp_path):
    class InterruptedRunner(InlineRunner):
        def submit(self, job, *slot):
            if len(study.trials) == 2:  # trial 2 is asked and registered, and never runs
                for reserved in slot:
                    self.pool.release(reserved)
                raise KeyboardInterrupt
            super().submit(job, *slot)

    study = hw.Study("s", space=SPACE, algo="random", seed=0, storage=tmp_path / "h.db")
    with pytest.raises(KeyboardInterrupt):
        study.optimize(lambda p: p["x"], trials=10, progress=False, runner=InterruptedRunner())
    assert (study.trials[-1].number, study.trials[-1].error) == (2, "interrupted")
    assert stored_states(study) == {0: "COMPLETE", 1: "COMPLETE", 2: "FAIL"}
    assert_resumable(study, 5)


def test_a_runner_is_reused_by_a_later_run():
    study = hw.Study(space=SPACE, algo="random", seed=0)
    runner = make_runner(2)
    study.optimize(lambda p: p["x"], trials=3, runner=runner, progress=False)
    study.optimize(lambda p: p["x"], trials=6, runner=runner, progress=False)
    assert study.finish_reason == "complete" and len(study.trials) == 6 and not study.running


# --- item 2: Ctrl-C in a foreground run with parallel trials ---------------------------------------
def test_ctrl_c_with_parallel_trials_stops_them_at_their_next_report():
    study = hw.Study(space=SPACE, algo="random", seed=0)
    both, ended = threading.Barrier(3, timeout=2), []
    study.subscribe(lambda e: isinstance(e, StudyFinished) and ended.append(e.reason))

    def objective(p, trial):
        both.wait()
        for step in range(1, 200):  # 2 s of training unless stopped
            threading.Event().wait(0.01)
            trial.report(step, loss=p["x"])
        return p["x"]

    threading.Thread(target=lambda: (both.wait(), ctrl_c())).start()
    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, trials=10, parallel=2, progress=False)
    assert ended == ["interrupted"] and study.finish_reason == "interrupted" and not study.running
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    # 199 reports when not stopped; a signal that lands just before the driver blocks waits for its 0.5 s poll
    assert all(len(t.reports) < 100 for t in study.trials)


def test_a_second_ctrl_c_while_trials_finish_still_ends_the_study_and_loses_no_trial():
    release, shutting_down, cut_short = threading.Event(), threading.Event(), threading.Event()
    finished = threading.Barrier(3, timeout=2)

    class Runner(ThreadRunner):
        def shutdown(self):
            shutting_down.set()
            try:
                super().shutdown()
            except KeyboardInterrupt:
                cut_short.set()
                raise

    study = hw.Study(space=SPACE, algo="random", seed=0)
    started, ended = threading.Barrier(3, timeout=2), []
    study.subscribe(lambda e: isinstance(e, StudyFinished) and ended.append(e.reason))
    study.subscribe(lambda e: isinstance(e, TrialFinished) and finished.wait())

    def objective(p):  # never reports, so Stop cannot reach it: only its end frees the runner
        started.wait()
        release.wait(2)
        return p["x"]

    def user():
        started.wait()
        ctrl_c()
        shutting_down.wait(2)
        while not cut_short.wait(0.05):  # again if the signal came just before the wait blocked
            ctrl_c()

    threading.Thread(target=user).start()
    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, trials=10, progress=False, runner=Runner(["cpu", "cpu"]))
    assert ended == ["interrupted"] and study.finish_reason == "interrupted"
    assert study.running  # its two trials still run: they book themselves when they return
    release.set()
    finished.wait()
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2  # booked before their event
    assert not study.running and ended == ["interrupted"]


# --- item 3: stop() or pause() while the driver waits for a slot -------------------------------------
class WatchedPool(SlotPool):
    """Tells when someone waits for a slot while every slot is busy."""

    def __init__(self, capacity):
        super().__init__(capacity)
        self.waiting = threading.Event()

    def acquire(self, timeout=None):
        if not self._has_free():
            self.waiting.set()
        return super().acquire(timeout)


@pytest.mark.parametrize("control", ["stop", "pause"])
def test_no_trial_starts_after_stop_or_pause_made_while_the_driver_waits_for_a_slot(control):
    pool, hold, second_done = WatchedPool({"cpu": 2}), threading.Event(), threading.Event()
    study = hw.Study(space=SPACE, algo="random", seed=0)
    started = []

    def on_event(event):
        if isinstance(event, TrialStarted):
            started.append(event.number)
        elif isinstance(event, TrialFinished) and event.trial.number == 0:
            assert pool.waiting.wait(2)  # trial 0 still holds its slot: the driver waits for it
            getattr(study, control)()
            hold.set()
        elif isinstance(event, TrialFinished) and event.trial.number == 1:
            second_done.set()

    study.subscribe(on_event)

    def objective(p, trial):
        if trial.number == 1:
            hold.wait(2)
        return p["x"]

    study.optimize(objective, trials=10, runner=ThreadRunner(pool), background=True, progress=False)
    assert second_done.wait(2)
    assert study.paused is (control == "pause")
    study.stop()
    assert study.wait(2)
    assert started == [0, 1] and len(study.trials) == 2 and study.finish_reason == "stopped"


# --- item 4: add_trials from the last trial's TrialFinished subscriber --------------------------------
@pytest.mark.parametrize("parallel", [1, 2])
def test_add_trials_from_the_last_trials_subscriber_runs_them(parallel):
    shut = threading.Event()

    class Runner(ThreadRunner):
        def shutdown(self):
            shut.set()
            super().shutdown()

    study = hw.Study(space=SPACE, algo="random", seed=0)
    added, lock = [], threading.Lock()

    def on_finished(event):
        if isinstance(event, TrialFinished) and len(study.trials) == 4:
            with lock:
                if added:
                    return
                added.append(True)
            if parallel > 1:
                shut.wait(0.2)  # gives a driver that did not wait for this subscriber the time to end
            study.add_trials(2)

    study.subscribe(on_finished)
    runner = InlineRunner() if parallel == 1 else Runner(["cpu"] * parallel)
    study.optimize(lambda p: p["x"], trials=4, runner=runner, progress=False)
    assert added == [True] and len(study.trials) == study.n_target == 6 and study.finish_reason == "complete"


@pytest.mark.parametrize("runner_kind", ["inline", "threads"])
def test_add_trials_while_a_complete_run_shuts_its_runner_down_runs_them(runner_kind):
    """The panel's "+10" while the runner shuts down (about 40 ms with processes): `running` is still
    True, so the panel starts no run of its own; the ending run must pick the trials up."""
    study = hw.Study(space=SPACE, algo="random", seed=0)
    base = InlineRunner if runner_kind == "inline" else ThreadRunner
    added = []

    class Slow(base):
        def shutdown(self):
            if not added and len(study.trials) == 3:
                added.append(study.running)
                study.add_trials(2)
            super().shutdown()

    runner = Slow() if runner_kind == "inline" else Slow(["cpu"] * 2)
    study.optimize(lambda p: p["x"], trials=3, runner=runner, progress=False)
    assert added == [True] and len(study.trials) == study.n_target == 5 and study.finish_reason == "complete"


# --- items 5 and 8: wait() and StudyFinished of background runs --------------------------------------
def test_wait_raises_the_driver_error_of_its_own_run_once_and_not_before_the_run_ends():
    study = hw.Study(space=SPACE, algo="random", seed=0)
    ask = study.algorithm.ask

    def failing_ask():
        raise RuntimeError("sampler failed")

    study.algorithm.ask = failing_ask
    ends = []
    study.subscribe(lambda event: isinstance(event, StudyFinished) and ends.append((event.reason, event.error)))
    study.optimize(lambda p: p["x"], trials=3, background=True, progress=False)
    with pytest.raises(RuntimeError, match="sampler failed"):
        study.wait(2)
    assert study.wait(2) is True  # raised once
    assert ends == [("error", "RuntimeError: sampler failed")] and study.finish_reason == "error"
    study.optimize(lambda p: p["x"], trials=3, background=True, progress=False)
    assert study._done.wait(2)  # this failed run ends, and nobody calls wait() for it
    study.algorithm.ask, release = ask, threading.Event()
    study.optimize(lambda p: release.wait(2) and p["x"], trials=3, background=True, progress=False)
    assert study.wait(0.01) is False  # timed out: neither True nor the earlier run's error
    release.set()
    assert study.wait(2) is True and study.finish_reason == "complete" and len(study.trials) == 3


def test_study_finished_subscribers_see_the_study_not_running_and_may_start_the_next_run():
    study = hw.Study(space=SPACE, algo="random", seed=0)
    seen = []

    def on_finished(event):
        if isinstance(event, StudyFinished) and not seen:
            seen.append(study.running)
            study.optimize(lambda p: p["x"], trials=5, background=True, progress=False)

    study.subscribe(on_finished)
    study.optimize(lambda p: p["x"], trials=3, background=True, progress=False)
    study.wait(2)
    assert seen == [False]  # wait() returned after the subscriber ran
    assert study.wait(2) and len(study.trials) == 5 and not study.running
