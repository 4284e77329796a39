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
        Safe for a later run: a config whose folder is gone simply trains from scratch again."""
        kept = {config_key(params, budget_name) for params in keep}
        removed = freed = 0
        for folder in sorted(self.root.glob("config-*")) if self.root.is_dir() else []:
            if folder.name in kept or not folder.is_dir():
                continue
            freed += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
        return removed, freed

    def wrap(self, call: BoundObjective, budget_name: str | None) -> BoundObjective:
        """``call`` with each trial's checkpoint folder set; an ``objective(params)`` never sees
        its trial, so it stays as it is."""
        return WithCheckpoints(call, self, budget_name) if may_report(call) else call


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
