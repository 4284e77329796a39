"""A fresh InteractiveShell with the extension loaded, for the magic's property tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from hpwidgets import magic


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)  # a stray --storage path lands here, never in the checkout
    # IPython installs its user module as sys.modules["__main__"] (no __spec__), which breaks every later
    # multiprocessing "spawn" in this session (Dask's nannies in test_dask.py): put pytest's back afterwards.
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    ip = InteractiveShell.instance()
    ip.reset(new_session=False)
    magic.load_ipython_extension(ip)
    yield ip
    magic._STUDIES.clear()
    magic.unload_ipython_extension(ip)
