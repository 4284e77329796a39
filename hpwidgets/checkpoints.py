"""One checkpoint folder per config, so a config Hyperband promotes can resume its training.

Hyperband asks a promoted config again with a larger budget, as a new trial. Every trial of
the same params (the budget left out) in one study gets the same folder as
``trial.checkpoint_dir`` (``hp.checkpoint_dir`` in a cell): an objective that saves its state
there and loads it when present trains only the epochs the new budget adds. On the MNIST MLP
one Hyperband iteration then costs 357 epochs instead of 423 (benchmarks/RESULTS.md).

Folders sit beside the store, ``<store file>.checkpoints/<study name>/<config key>/``, so a
resumed study finds them again; with ``storage=None`` they go to a temporary folder that is
removed with the ``Study`` object. Nothing is created until an objective asks for its folder.
Stored folders stay until ``study.clean_checkpoints()`` (or ``hptune clean NAME``) removes them,
by default all but the best trial's, whose folder holds the model a user wants to keep.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._execute import BoundObjective, may_report
from .trial import Trial

if TYPE_CHECKING:
    from .store import Store


def config_key(params: Mapping[str, Any], budget_name: str | None) -> str:
    """A short stable name for a config: a hash of its params without the budget."""
    config = {k: v for k, v in params.items() if k != budget_name}
    text = json.dumps(config, sort_keys=True, default=repr)
    return "config-" + hashlib.sha1(text.encode()).hexdigest()[:12]


def _folder_name(study_name: str) -> str:
    """The study's name as a folder name; a name that had to change gets its hash appended.
    Names of dots alone change too: "." and ".." would be the checkpoint folder or the store's own."""
    safe = re.sub(r"[^\w.-]", "_", study_name)[:80]
    if safe == study_name and safe.strip("."):
        return safe
    return f"{safe}-{hashlib.sha1(study_name.encode()).hexdigest()[:8]}"


class CheckpointFolders:
    """Where one study's checkpoints live. Picklable: it travels with the objective to worker
    processes and Dask workers (which must see the same file system to share checkpoints)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @classmethod
    def for_study(cls, owner: object, name: str, store: Store | None) -> CheckpointFolders:
        if store is not None:
            return cls(store.path.parent / f"{store.path.name}.checkpoints" / _folder_name(name))
        root = Path(tempfile.gettempdir()) / f"hpwidgets-checkpoints-{uuid.uuid4().hex[:12]}"
        weakref.finalize(owner, shutil.rmtree, root, ignore_errors=True)  # removed with the study
        return cls(root)

    def folder(self, params: Mapping[str, Any], budget_name: str | None) -> Path:
        return self.root / config_key(params, budget_name)

    def clean(self, keep: Sequence[Mapping[str, Any]] = (), budget_name: str | None = None) -> tuple[int, int]:
        """Remove every config folder but those of ``keep``'s configs; (folders removed, bytes freed).
        Safe for a later run: a config whose folder is gone simply trains from scratch again.
        Raises ``CleanError`` after removing what it could when some folders stay (not the user's
        to delete, say), with only the folders really gone and the bytes really freed counted."""
        kept = {config_key(params, budget_name) for params in keep}
        removed = freed = 0
        failures: list[tuple[Path, OSError]] = []
        for folder in sorted(self.root.glob("config-*")) if self.root.is_dir() else []:
            if folder.name in kept or not folder.is_dir():
                continue
            before = _bytes_in(folder)
            try:
                shutil.rmtree(folder)
            except OSError as error:
                if os.path.lexists(folder):  # else something else removed it meanwhile: gone all the same
                    failures.append((folder, error))
            freed += before - _bytes_in(folder)  # a folder that stays may still have lost some files
            removed += not os.path.lexists(folder)
        if failures:
            raise CleanError(self.root, removed, freed, failures)
        return removed, freed

    def wrap(self, call: BoundObjective, budget_name: str | None) -> BoundObjective:
        """``call`` with each trial's checkpoint folder set; an ``objective(params)`` never sees
        its trial, so it stays as it is."""
        return WithCheckpoints(call, self, budget_name) if may_report(call) else call


def cleaned_line(removed: int, freed: int, root: Path, keep_best: bool, has_best: bool) -> str:
    """What ``hptune clean`` and ``%hptune clean`` print: "kept the best trial's" only when one was."""
    kept = "" if not keep_best else " (kept the best trial's)" if has_best else " (no trial completed: none kept)"
    return f"removed {removed} checkpoint folders, {freed / 1e6:.1f} MB, from {root}{kept}"


class CleanError(OSError):
    """Some checkpoint folders could not be removed; ``removed`` and ``freed`` count what was,
    ``failures`` holds each folder that stays with its error."""

    def __init__(self, root: Path, removed: int, freed: int, failures: Sequence[tuple[Path, OSError]]) -> None:
        self.removed, self.freed, self.failures = removed, freed, list(failures)
        folder, error = failures[0]
        where = f"{os.path.basename(error.filename)}: " if error.filename else ""  # rmtree names the file alone
        super().__init__(f"could not remove {len(failures)} checkpoint folder(s) in {root}, the first "
                         f"{folder.name} ({where}{error.strerror or error}); "
                         f"removed {removed}, {freed / 1e6:.1f} MB")


def _bytes_in(folder: Path) -> int:
    """The size of the files under ``folder`` (links not followed); 0 once it is gone."""
    total = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours to look at
                total += os.lstat(os.path.join(parent, name)).st_size
    return total


class WithCheckpoints:
    """A bound objective that gives each trial its config's checkpoint folder first."""

    def __init__(self, call: BoundObjective, folders: CheckpointFolders, budget_name: str | None) -> None:
        self.call, self.folders, self.budget_name = call, folders, budget_name

    def __call__(self, params: Mapping[str, Any], trial: Trial) -> Any:
        folder = self.folders.folder(params, self.budget_name)
        trial.checkpoint_dir = folder
        try:
            return self.call(params, trial)
        finally:
            if folder.is_dir():  # the objective used it: say which config it belongs to
                _label(folder, params, self.budget_name)


def _label(folder: Path, params: Mapping[str, Any], budget_name: str | None) -> None:
    """A ``params.json`` naming the folder's config, for whoever browses the folders."""
    note = folder / "params.json"
    with contextlib.suppress(OSError):  # a label is a courtesy; a full disk must not fail the trial
        if not note.exists():
            config = {k: v for k, v in params.items() if k != budget_name}
            note.write_text(json.dumps(config, sort_keys=True, default=repr, indent=1))
