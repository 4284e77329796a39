"""Per-config checkpoint folders: a config Hyperband promotes resumes from its last budget."""

from __future__ import annotations

import gc
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from store_harness import one_trial_running, refuse_to_unlink

import hpwidgets as hw
from hpwidgets.algorithms.hyperband import Hyperband
from hpwidgets.cell import hp
from hpwidgets.checkpoints import CheckpointFolders, config_key

SPACE = {"x": hw.uniform(0, 1), "epochs": hw.budget(1, 9)}


def resuming(params: dict[str, Any], trial: hw.Trial) -> float:
    """Trains from the epoch its config's checkpoint holds; the checkpoint keeps every
    (first epoch, budget) this config was trained with, so tests can read the history back."""
    state_file = trial.checkpoint_dir / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {"epochs": 0, "runs": []}
    state["runs"].append([state["epochs"], params["epochs"]])
    state["epochs"] = params["epochs"]
    state_file.write_text(json.dumps(state))
    return (params["x"] - 0.3) ** 2 + 1.0 / params["epochs"]


def histories(root: Path) -> dict[str, list[list[int]]]:
    return {folder.name: json.loads((folder / "state.json").read_text())["runs"] for folder in root.iterdir()}


def assert_each_run_resumes_the_last(runs: list[list[int]]) -> None:
    starts, budgets = [r[0] for r in runs], [r[1] for r in runs]
    assert starts == [0, *budgets[:-1]], runs  # never from scratch twice, never a skipped budget
    assert budgets == sorted(budgets)


def test_outside_a_study_there_is_no_checkpoint_folder() -> None:
    assert hw.Trial(0, {"x": 1}).checkpoint_dir is None
    assert hp.checkpoint_dir is None  # a tuned cell still runs as plain Python


def test_the_config_key_leaves_the_budget_out() -> None:
    assert config_key({"x": 0.5, "epochs": 1}, "epochs") == config_key({"epochs": 9, "x": 0.5}, "epochs")
    assert config_key({"x": 0.5, "epochs": 1}, "epochs") != config_key({"x": 0.6, "epochs": 1}, "epochs")
    assert config_key({"x": 0.5, "epochs": 1}, None) != config_key({"x": 0.5, "epochs": 9}, None)


def test_promoted_configs_resume_from_their_last_budget() -> None:
    study = hw.Study(space=SPACE, algo=Hyperband(eta=3, mode="sync"), seed=0, storage=None)
    study.optimize(resuming, trials=13, progress=False)  # bracket s=2: 9 x 1, 3 x 3, 1 x 9 epochs
    runs = histories(study.checkpoints.root)
    assert len(runs) == 9
    for config_runs in runs.values():
        assert_each_run_resumes_the_last(config_runs)
    assert sorted(len(r) for r in runs.values()) == [1] * 6 + [2, 2, 3]
    trained = sum(budget - start for r in runs.values() for start, budget in r)
    assert trained == 9 * 1 + 3 * 2 + 1 * 6  # 21 epochs, against 9 + 9 + 9 = 27 restarting


def test_one_full_iteration_at_27_epochs_trains_357_epochs_instead_of_423() -> None:
    """The figure README quotes: Hyperband(eta=3) over 1-27 epochs, all four brackets."""
    space = {"x": hw.uniform(0, 1), "epochs": hw.budget(1, 27)}
    study = hw.Study(space=space, algo=Hyperband(eta=3, mode="sync"), seed=0, storage=None)
    study.optimize(resuming, trials=69, progress=False)
    runs = histories(study.checkpoints.root)
    assert sum(t.params["epochs"] for t in study.trials) == 423  # what restarting costs
    assert sum(budget - start for r in runs.values() for start, budget in r) == 357


def test_a_folder_holds_its_params_and_is_made_only_when_used() -> None:
    study = hw.Study(space=SPACE, algo="random", seed=0, storage=None)
    study.optimize(lambda params, trial: params["x"], trials=2, progress=False)
    assert not study.checkpoints.root.exists()  # nobody asked for a folder
    study.optimize(resuming, trials=3, progress=False)
    folder = study.checkpoints.root / config_key(study.trials[2].params, "epochs")
    assert json.loads((folder / "params.json").read_text()) == {"x": study.trials[2].params["x"]}


def test_a_temporary_root_goes_with_its_study() -> None:
    study = hw.Study(space=SPACE, algo="random", seed=0, storage=None)
    study.optimize(resuming, trials=1, progress=False)
    root = study.checkpoints.root
    assert root.is_dir()
    del study
    gc.collect()
    assert not root.exists()


def test_folders_sit_beside_the_store_and_serve_a_resumed_study(tmp_path: Path) -> None:
    db, name = tmp_path / "runs.db", "mnist / hb"
    first = hw.Study(name, space=SPACE, algo=Hyperband(eta=3, mode="sync"), seed=0, storage=db)
    first.optimize(resuming, trials=9, progress=False)  # the 1-epoch rung only
    root = first.checkpoints.root
    assert root.parent == tmp_path / "runs.db.checkpoints" and root.name.startswith("mnist___hb-")
    first.store.close()
    again = hw.Study(name, algo=Hyperband(eta=3, mode="sync"), seed=0, storage=db)
    assert again.checkpoints.root == root
    again.optimize(resuming, trials=13, progress=False)
    runs = histories(root)
    assert sorted(len(r) for r in runs.values()) == [1] * 6 + [2, 2, 3]
    for config_runs in runs.values():
        assert_each_run_resumes_the_last(config_runs)


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_parallel_workers_share_the_folders(executor: str) -> None:
    study = hw.Study(space=SPACE, algo=Hyperband(eta=3, mode="sync"), seed=0, storage=None)
    study.optimize(resuming, trials=13, parallel=2, executor=executor, progress=False)
    assert [t.state for t in study.trials] == [hw.TrialState.COMPLETE] * 13, study.trials[0].error
    runs = histories(study.checkpoints.root)
    assert sum(len(r) for r in runs.values()) == 13
    for config_runs in runs.values():
        assert_each_run_resumes_the_last(config_runs)


def test_clean_keeps_the_best_trials_folder_and_a_later_run_retrains(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    study = hw.Study("hb", space=SPACE, algo=Hyperband(eta=3, mode="sync"), seed=0, storage=db)
    study.optimize(resuming, trials=13, progress=False)
    root, best = study.checkpoints.root, config_key(study.best_params, "epochs")
    folders = {folder.name for folder in root.iterdir()}
    assert len(folders) == 9 and best in folders
    others = sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and f.parent.name != best)
    removed, freed = study.clean_checkpoints()
    assert (removed, freed, [folder.name for folder in root.iterdir()]) == (8, others, [best])
    assert study.clean_checkpoints(keep_best=False)[0] == 1 and list(root.iterdir()) == []
    study.optimize(resuming, trials=14, progress=False)  # no folder left: the next trial starts at epoch 0
    assert [runs[0][0] for runs in histories(root).values()] == [0]


def test_clean_is_refused_while_trials_run() -> None:
    study, release = hw.Study(space=SPACE, algo="random", storage=None), threading.Event()
    study.optimize(lambda p: release.wait(5) and 0.0, trials=1, background=True, progress=False)
    try:
        with pytest.raises(RuntimeError, match="stop it before cleaning its checkpoints"):
            study.clean_checkpoints()
    finally:
        release.set()
        study.wait()


def test_clean_without_a_complete_trial_removes_every_folder() -> None:
    def crashes(params: dict[str, Any], trial: hw.Trial) -> float:
        (trial.checkpoint_dir / "state.json").write_text("{}")
        raise RuntimeError("diverged")
    study = hw.Study(space=SPACE, algo="random", seed=0, storage=None)
    study.optimize(crashes, trials=3, progress=False)
    assert study.clean_checkpoints()[0] == 3 and list(study.checkpoints.root.iterdir()) == []


def test_clean_is_refused_while_another_study_object_runs_trials_from_the_same_file(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    with one_trial_running(db, "shared", SPACE):
        other = hw.load_study("shared", db)
        with pytest.raises(RuntimeError, match=r"has trials \[0\] running elsewhere"):
            other.clean_checkpoints()
    assert other.clean_checkpoints() == (0, 0)  # finished now: nothing was written, nothing to remove


def test_clean_counts_only_what_it_removed_and_names_the_folders_that_stay(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folders = CheckpointFolders(tmp_path / "checkpoints")
    for x, files in ((0.1, ["a.bin"]), (0.2, ["b.bin", "locked.bin"]), (0.3, ["c.bin"]), (0.4, ["locked.bin"])):
        folder = folders.folder({"x": x}, None)
        folder.mkdir(parents=True)
        for name in files:
            (folder / name).write_bytes(b"w" * 1000)
    refuse_to_unlink(monkeypatch, "locked.bin")
    with pytest.raises(OSError, match=r"^could not remove 2 checkpoint folder\(s\) in .*checkpoints, the first "
                                      r"config-\w+ \(locked.bin: Permission denied\); removed 2, 0.0 MB$") as caught:
        folders.clean()
    stays = sorted(folder.name for folder in folders.root.iterdir())
    assert stays == sorted(config_key({"x": x}, None) for x in (0.2, 0.4))
    assert [folder.name for folder, _ in caught.value.failures] == sorted(stays)
    left = sum(f.stat().st_size for f in folders.root.rglob("*") if f.is_file())
    assert caught.value.removed == 2 and caught.value.freed == 5000 - left and left in (2000, 3000)


@pytest.mark.parametrize("name", [".", "..", "..."])
def test_a_name_of_dots_gets_a_folder_inside_the_checkpoint_folder_and_clean_stays_there(
        tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    from hpwidgets import cli
    db, checkpoints = tmp_path / "hptune.db", tmp_path / "hptune.db.checkpoints"
    for mine in (tmp_path / "config-mine", checkpoints / "config-other", checkpoints / "another-study" / "config-x"):
        mine.mkdir(parents=True)  # the user's own folders, and another study's: never touched
        (mine / "model.pt").write_text("w")
    study = hw.Study(name, space=SPACE, algo="random", seed=0, storage=db)
    study.optimize(resuming, trials=2, progress=False)
    root = study.checkpoints.root
    assert root.parent == checkpoints and root.name.startswith(f"{name}-") and len(root.name) == len(name) + 9
    assert cli.main(["clean", name, "--storage", str(db), "--all"]) == 0
    assert capsys.readouterr().out == f"removed 2 checkpoint folders, 0.0 MB, from {root}\n"
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("model.pt")) == [
        "config-mine/model.pt", "hptune.db.checkpoints/another-study/config-x/model.pt",
        "hptune.db.checkpoints/config-other/model.pt"]
