"""A tqdm progress bar fed by study events: trials done/total, ETA, best value, failures."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .events import Event, StudyFinished, TrialFinished
from .results import best_or_none
from .trial import TrialState

if TYPE_CHECKING:
    from .study import Study


class ProgressBar:
    """Subscribe to a study; ``tqdm.auto`` picks a notebook or terminal bar by itself."""

    def __init__(self, study: Study) -> None:
        from tqdm.auto import tqdm
        self._study = study
        done = len(study.trials)
        self._bar = tqdm(total=study.n_target, initial=done, desc=study.name, unit="trial", leave=True)
        best = best_or_none(study)  # a resumed study's best so far, as its summary says
        self._best: float | None = None if best is None else best.value
        self._failed = sum(t.state is TrialState.FAIL for t in study.trials)

    def __call__(self, event: Event) -> None:
        if isinstance(event, TrialFinished):
            self._on_finished(event)
        elif isinstance(event, StudyFinished):
            self._bar.close()

    def _on_finished(self, event: TrialFinished) -> None:
        trial = event.trial
        if self._bar.total != self._study.n_target:  # "+N trials" while running
            self._bar.total = self._study.n_target
        if trial.state is TrialState.COMPLETE and trial.value is not None:
            better = self._best is None or (trial.value > self._best if self._study.maximize
                                            else trial.value < self._best)
            if better:
                self._best = trial.value
        self._failed += trial.state is TrialState.FAIL
        postfix = {} if self._best is None else {"best": f"{self._best:.6g}"}
        if self._failed:  # else a study whose trials all fail would look merely slow to improve
            postfix["failed"] = str(self._failed)
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)
