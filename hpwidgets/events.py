"""Study events and the small bus that carries them to the store, the dashboard and the bar.

Events are frozen dataclasses; subscribers are plain callables. A subscriber that raises is
logged and skipped: a broken chart must never stop a search.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .trial import FrozenTrial

log = logging.getLogger("hpwidgets")


@dataclass(frozen=True)
class TrialStarted:
    study: str
    number: int
    params: Mapping[str, Any]
    device: str


@dataclass(frozen=True)
class TrialReported:
    study: str
    number: int
    step: int
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class TrialFinished:
    study: str
    trial: FrozenTrial


@dataclass(frozen=True)
class StudyFinished:
    study: str
    reason: str  # "complete", "stopped", "timeout", "max_failures", "storage error", "interrupted", "error"
    n_trials: int
    error: str | None = None  # what ended the run on "error" (the sampler raised...): "Type: message"


Event = TrialStarted | TrialReported | TrialFinished | StudyFinished
Subscriber = Callable[[Event], Any]


class EventBus:
    """Thread-safe publish/subscribe; publish never raises because of a subscriber."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Add ``callback``; returns a function that removes it again."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:
                log.exception("hpwidgets: subscriber %r failed on %s", callback, type(event).__name__)
