"""A pickled objective goes to each worker process once, not with every trial.

Objectives are pickled by value, with the data they use: a notebook cell's namespace holding a
250 MB array made a 250 MB pickle, and sending it through the process pool's pipe with every
trial cost 0.7 s a trial here. The study writes the pickle to a file once and each trial sends
only a ``PayloadFile`` naming it; a worker process reads the file on its first trial and keeps
the bytes for the next ones. Every trial still unpickles its own copy, so trials share no state.
(Dask workers may be other machines: ``dask_runner`` scatters the bytes to them once instead.)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import NamedTuple


class PayloadFile(NamedTuple):
    path: str
    digest: str  # of the bytes: a worker keeps them under it


def write_payload(payload: bytes, folder: str) -> PayloadFile:
    digest = hashlib.sha256(payload).hexdigest()[:24]
    path = os.path.join(folder, f"objective-{digest}.pickle")
    Path(path).write_bytes(payload)
    return PayloadFile(path, digest)


_KEPT: dict[str, bytes] = {}  # in a worker process: the bytes of the objective it last ran


def payload_bytes(payload: bytes | PayloadFile) -> bytes:
    """The pickled objective as sent (a Dask task's data), or read once per process from its file."""
    if not isinstance(payload, PayloadFile):
        return payload
    if payload.digest not in _KEPT:
        _KEPT.clear()  # one objective at a time: a new study's replaces the last one's
        _KEPT[payload.digest] = Path(payload.path).read_bytes()
    return _KEPT[payload.digest]
