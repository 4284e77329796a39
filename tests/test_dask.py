"""Trials as Dask tasks on a real LocalCluster (worker processes, loopback): results, GPU resources, killed workers."""

from __future__ import annotations

import gc
import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import distributed
import pytest
from live_reports import RETRIED, STEPS, dies_once_after_3_reports, reported, reports_until_stopped, stop_at_step_5

import hpwidgets as hw
from hpwidgets import dask_runner
from hpwidgets.dask_runner import ClusterError, DaskRunner
from hpwidgets.events import TrialReported
from hpwidgets.trial import TrialState

SPACE = {"x": hw.uniform(0, 1)}


@pytest.fixture(scope="module")
def client():
    # Every worker declares one "GPU" so resource requests can be checked; CPU tasks ask for none.
    # Saturation 1.0: no task waits in a busy worker's queue, so a killed worker takes only the
    # trial it was running (the default 1.1 lets a 1-thread worker hold a second, queued task).
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}), \
            distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                     dashboard_address=None, resources={"GPU": 1}) as cluster, \
            distributed.Client(cluster, set_as_default=False) as dask_client:
        yield dask_client


def stored(db: Path) -> list[tuple[int, str, int]]:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT number, state, pid FROM trials ORDER BY number").fetchall()


def kill_when_announced(pid_file: Path) -> threading.Thread:
    """SIGKILL the worker process whose pid the objective writes to ``pid_file``."""
    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not pid_file.exists():
            time.sleep(0.02)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def hang_once(pid_file: Path):
    """Trial 0 announces its worker's pid and hangs on its first attempt; any later attempt returns."""
    def objective(params, trial):
        if trial.number == 0 and not pid_file.exists():
            part = pid_file.with_suffix(".part")
            part.write_text(str(os.getpid()))
            part.rename(pid_file)  # atomic: the watcher never reads half a pid
            time.sleep(60)
        time.sleep(0.05)
        return params["x"]
    return objective


def test_trials_run_on_workers_and_only_the_study_writes_the_store(client, tmp_path):
    reported = []
    study = hw.Study("dask", SPACE, algo="random", seed=0, minimize="loss", storage=tmp_path / "s.db")
    study.subscribe(lambda e: reported.append(e.number) if isinstance(e, TrialReported) else None)

    def objective(params, trial):
        trial.report(0, loss=params["x"])
        return {"loss": params["x"], "pid": os.getpid()}

    address = "dask://" + client.scheduler.address.removeprefix("tcp://")
    study.optimize(objective, trials=6, executor=address, progress=False)
    workers = set(client.run(os.getpid).values())
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 6
    assert {t.metrics["pid"] for t in study.trials} <= workers and os.getpid() not in workers
    assert sorted(reported) == list(range(6))
    assert stored(tmp_path / "s.db") == [(n, "COMPLETE", os.getpid()) for n in range(6)]


def test_gpu_trials_ask_for_a_share_of_the_gpu_resource(client):
    seen: list = []

    def watch() -> None:  # read the scheduler's restriction on our tasks while they run
        for _ in range(100):
            found = client.run_on_scheduler(lambda dask_scheduler: [
                ts.resource_restrictions for key, ts in dask_scheduler.tasks.items()
                if str(key).startswith("hpwidgets-trial")])
            seen.extend(found)
            if found:
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.optimize(lambda p: time.sleep(0.3) or p["x"], trials=4, gpus="auto", per_gpu=2, executor=client,
                   progress=False)
    watcher.join()
    assert seen and all(r == {"GPU": 0.5} for r in seen)
    assert len(study.trials) == 4 and {t.device for t in study.trials} == {"cpu"}  # no CUDA on these workers


def test_a_killed_worker_trial_is_retried_and_counted_once(client, tmp_path):
    pid_file = tmp_path / "pid"
    watcher = kill_when_announced(pid_file)
    study = hw.Study("retry", SPACE, algo="random", seed=0, storage=tmp_path / "s.db")
    study.optimize(hang_once(pid_file), trials=5, executor=client, progress=False)
    watcher.join()
    assert [t.number for t in study.trials] == list(range(5))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 5  # trial 0 ran again elsewhere
    assert [row[:2] for row in stored(tmp_path / "s.db")] == [(n, "COMPLETE") for n in range(5)]


def test_a_retried_task_does_not_repeat_the_reports_already_shown(client, tmp_path):
    client.wait_for_workers(2, timeout=60)
    study = hw.Study(space=SPACE, algo="random", seed=0)
    seen = reported(study)
    study.optimize(dies_once_after_3_reports(tmp_path / "died"), trials=1, executor=client, progress=False)
    (only,) = study.trials
    assert only.state is TrialState.COMPLETE and [r.step for r in only.reports] == [0, 1, 2, 3, 4]
    assert seen == RETRIED


def test_a_killed_worker_trial_is_fail_when_the_scheduler_gives_up(client, tmp_path):
    client.wait_for_workers(2, timeout=60)  # a worker killed by the test before may still be restarting
    before = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)
    client.run_on_scheduler(lambda dask_scheduler: setattr(dask_scheduler, "allowed_failures", 0))
    try:
        pid_file = tmp_path / "pid"
        watcher = kill_when_announced(pid_file)
        study = hw.Study(space=SPACE, algo="random", seed=0)
        study.optimize(hang_once(pid_file), trials=3, executor=client, progress=False)
        watcher.join()
    finally:
        client.run_on_scheduler(lambda dask_scheduler: setattr(dask_scheduler, "allowed_failures", before))
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert study.trials[0].state is TrialState.FAIL and study.trials[0].error.startswith("worker died")
    assert [t.state for t in study.trials[1:]] == [TrialState.COMPLETE] * 2, [t.error for t in study.trials]


def test_dask_trials_report_live_and_stop_prunes_them_mid_way(client, tmp_path):
    seen = tmp_path / "study-saw-step-0"
    study = hw.Study(space=SPACE, algo="random", seed=0)
    stop_at_step_5(study, seen)
    study.optimize(reports_until_stopped(seen), trials=3, executor=client, progress=False)  # a trial per thread
    first, *others = study.trials
    assert len(others) <= 1  # the two that ran at once; none started after Stop
    assert first.reports[1].metrics["saw"] == 1.0 and len(first.reports) >= 6
    for trial in study.trials:  # pruned at a report soon after Stop, not at the end
        assert trial.state is TrialState.PRUNED and len(trial.reports) < STEPS


def test_dask_workers_resume_promoted_configs_from_their_checkpoints(client):
    from hpwidgets.algorithms.hyperband import Hyperband

    space = {"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)}
    study = hw.Study(space=space, algo=Hyperband(eta=3, mode="sync"), seed=0)

    def objective(params, trial):
        saved = trial.checkpoint_dir / "epochs.txt"
        start = int(saved.read_text()) if saved.exists() else 0
        saved.write_text(str(params["epochs"]))
        trial.report(0, start=start)
        return (params["x"] - 0.3) ** 2 + 1 / params["epochs"]

    study.optimize(objective, trials=13, executor=client, progress=False)
    by_config: dict[float, list[tuple[float, int]]] = {}
    for t in study.trials:  # numbered in ask order: a promotion is asked after its rung's trial ended
        by_config.setdefault(t.params["x"], []).append((t.reports[0].metrics["start"], t.params["epochs"]))
    assert any(len(runs) > 1 for runs in by_config.values())
    for runs in by_config.values():  # each later trial of a config starts where the last one ended
        assert [start for start, _ in runs] == [0, *(budget for _, budget in runs[:-1])]


def test_the_asha_pruner_stops_dask_trials_from_their_live_reports(client):
    def curve(params, trial):
        for step in range(1, 28):
            time.sleep(0.02)  # long enough for each report to reach the study before the next
            trial.report(step, loss=(params["x"] - 0.3) ** 2 + 1 / step)
        return (params["x"] - 0.3) ** 2

    study = hw.Study(space=SPACE, algo="random", seed=0, pruner="asha")
    study.optimize(curve, trials=10, executor=client, progress=False)
    pruned = [t for t in study.trials if t.state is TrialState.PRUNED]
    assert len(pruned) >= 3 and all(len(t.reports) < 27 for t in pruned)
    assert study.best_trial.state is TrialState.COMPLETE and len(study.best_trial.reports) == 27


def test_command_line_runs_trials_on_the_cluster(client, tmp_path: Path) -> None:
    """``hptune run --executor dask://host:port``: trials run in the cluster's worker processes."""
    from hpwidgets import cli
    script, db = tmp_path / "task.py", tmp_path / "s.db"
    script.write_text("import os\nimport hpwidgets as hw\nSPACE = {'x': hw.uniform(0, 1)}\n"
                      "def objective(params):\n    return {'loss': params['x'], 'pid': os.getpid()}\n")
    address = client.scheduler.address.replace("tcp://", "dask://")
    assert cli.main(["run", f"{script}:objective", "--minimize", "loss", "--trials", "4", "--parallel", "2",
                     "--executor", address, "--name", "d", "--storage", str(db), "--no-progress"]) == 0
    trials = hw.load_study("d", db).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert {t.metrics["pid"] for t in trials} <= set(client.run(os.getpid).values())  # the workers' pids


@pytest.fixture
def unreachable() -> Iterator[str]:
    """A ``dask://`` address nothing listens on, with Dask's connect timeout cut to 1 s."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        yield f"dask://127.0.0.1:{port}"


def test_an_unreachable_scheduler_is_one_line_on_the_command_line(unreachable, tmp_path: Path, capsys) -> None:
    from hpwidgets import cli
    script = tmp_path / "task.py"
    script.write_text("import hpwidgets as hw\nSPACE = {'x': hw.uniform(0, 1)}\n"
                      "def objective(params):\n    return params['x']\n")
    assert cli.main(["run", f"{script}:objective", "--trials", "2", "--executor", unreachable,
                     "--storage", "none", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"hptune run: cannot reach the Dask scheduler at {unreachable!r} (")
    assert error.rstrip().endswith(f"`dask worker {unreachable.replace('dask://', 'tcp://')}`")
    assert len(error.splitlines()) == 1


def io_loops() -> int:
    return sum(thread.name == "IO loop" for thread in threading.enumerate())


def test_a_tls_address_without_certificates_is_one_clear_error() -> None:
    """Dask refuses a tls:// address with no TLS settings by a TypeError from deep inside its
    Client, whose event loop then runs on; it is the user's input, told in one line."""
    loops = io_loops()
    with dask.config.set({"distributed.comm.tls.ca-file": None, "distributed.comm.tls.client.cert": None}), \
            pytest.raises(ClusterError, match=r"^cannot connect to the Dask scheduler at 'tls://127\.0\.0\.1:1': "
                                              r"a TLS address needs certificates.* pass a distributed\.Client made "
                                              r"with security=\.\.\. as the executor"):
        hw.tune(lambda params: params["x"], SPACE, trials=1, executor="tls://127.0.0.1:1", storage=None,
                progress=False)
    assert io_loops() == loops  # no half-made Client left running


def test_a_scheduler_without_workers_is_named_after_a_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dask_runner, "WAIT_FOR_WORKERS_S", 0.5)
    with distributed.LocalCluster(n_workers=0, processes=True, host="127.0.0.1",
                                  dashboard_address=":0") as cluster:  # :0, as the module's cluster has :8787
        address = cluster.scheduler_address
        with pytest.raises(ClusterError, match=f"^the Dask scheduler at {address} has no workers after 0.5 s; "
                                               f"start one with `dask worker {address}`$"):
            hw.tune(lambda params: params["x"], SPACE, trials=1, executor=address.replace("tcp://", "dask://"),
                    storage=None, progress=False)


def test_the_objective_goes_to_the_cluster_once_and_trials_share_no_state(client, monkeypatch) -> None:
    """Data the objective carries is scattered once (not sent with each task); each trial still
    unpickles its own copy, so one trial's change is not seen by the next."""
    import numpy as np
    data = np.zeros(100_000)

    def objective(params):
        data[0] += 1
        return float(data[0])

    scattered = []
    scatter = client.scatter
    monkeypatch.setattr(client, "scatter", lambda *a, **k: scattered.append(1) or scatter(*a, **k))
    study = hw.tune(objective, SPACE, trials=6, parallel=2, executor=client, storage=None, progress=False)
    assert [t.value for t in study.trials] == [1.0] * 6 and len(scattered) == 1


def test_a_lost_objective_is_scattered_again(client) -> None:
    cluster = dask_runner.DaskRunner(client)

    def call(params):
        return 0.0

    first = cluster._payload(call)
    assert cluster._payload(call) is first
    client.cancel(first)
    again = cluster._payload(call)
    assert again is not first and again.status == "finished"
    cluster.shutdown()


def test_a_finished_trial_leaves_no_task_on_the_cluster(client) -> None:
    """Its future is released once its result is in: a task still held is recomputed should the
    worker holding its result die, a second run of a trial already recorded."""
    def trial_tasks() -> set[str]:
        keys = client.run_on_scheduler(lambda dask_scheduler: [str(key) for key in dask_scheduler.tasks])
        return {key for key in keys if key.startswith("hpwidgets-trial")}

    def objective(params, trial):
        time.sleep(0.2)  # the study's thread waits through a few 50 ms polls for its live reports
        trial.report(0, loss=params["x"])
        return params["x"]

    def trial_futures() -> list[distributed.Future]:
        # type(), not isinstance: reading __class__ makes some of torch's objects warn
        return [kept for kept in gc.get_objects()
                if type(kept) is distributed.Future and str(kept.key).startswith("hpwidgets-trial")]

    before = trial_tasks()
    gc.collect()
    gc.disable()  # a future kept by a reference cycle would last until some later collection
    try:
        study = hw.tune(objective, SPACE, trials=2, parallel=2, executor=client, storage=None, progress=False)
        deadline, left = time.monotonic() + 5, {"not read yet"}
        while left and time.monotonic() < deadline:  # a release reaches the scheduler asynchronously
            left = trial_tasks() - before
            time.sleep(0.02)
        kept = trial_futures()
    finally:
        gc.enable()
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert left == set()
    assert kept == []  # and the waits left no reference cycle that holds one


def test_a_trial_dropped_with_the_objectives_data_is_sent_again(client, tmp_path) -> None:
    """Dask's memory manager may leave the scattered objective on one worker alone; when that worker
    dies, Dask drops the trial's task with it. Cancelling the objective's data drops it the same way."""
    runner = dask_runner.DaskRunner(client)
    started, dropped = tmp_path / "started", tmp_path / "dropped"

    def objective(params, trial):
        if not started.exists():  # the first send: holds its worker thread until its task is dropped
            started.touch()
            deadline = time.monotonic() + 30
            while not dropped.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            return -1.0
        return 0.5

    def drop_the_objective() -> None:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        ((_call, _data, scattered),) = runner._payloads.values()
        client.cancel(scattered)
        dropped.touch()

    dropper = threading.Thread(target=drop_the_objective)
    dropper.start()
    study = hw.Study(space=SPACE, algo="random", seed=0)
    study.optimize(objective, trials=1, runner=runner, progress=False)
    dropper.join()
    assert [(t.state, t.value, t.error) for t in study.trials] == [(TrialState.COMPLETE, 0.5, None)]


def test_add_trials_while_a_run_shuts_down_its_own_client_runs_them(client, monkeypatch) -> None:
    """The panel's "+2" lands as a complete run's runner closes the Client it made: the run goes on
    with the runner connected again, not with trials failed on a closed Client."""
    study = hw.Study(space={"x": hw.uniform(0, 1)}, algo="random", seed=0)
    shutdown, clicked = DaskRunner.shutdown, []

    def shutdown_then_click(runner: DaskRunner) -> None:
        shutdown(runner)
        if not clicked:
            clicked.append(study.running)
            study.add_trials(2)

    monkeypatch.setattr(DaskRunner, "shutdown", shutdown_then_click)
    study.optimize(lambda p: p["x"], trials=3, executor=client.scheduler.address, progress=False)
    assert clicked == [True] and study.finish_reason == "complete"
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 5, [t.error for t in study.trials]
