"""Fixtures for the fault scenarios: a storage file, a fresh InteractiveShell, a kernelspec."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultkit import install_kernelspec
from IPython.core.interactiveshell import InteractiveShell

from hpwidgets import magic


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "faults.db"


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """The IPython singleton, reset, with the extension loaded; studies left running are stopped."""
    monkeypatch.chdir(tmp_path)
    # IPython installs its user module as sys.modules["__main__"] (no __spec__), which breaks every later
    # multiprocessing "spawn" in this session (Dask's nannies in test_dask.py): put pytest's back afterwards.
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    ip = InteractiveShell.instance()
    ip.reset(new_session=False)
    magic.load_ipython_extension(ip)
    yield ip
    for launch in list(magic._STUDIES.values()):  # a failing test must not leave a search behind
        if launch.study.running:
            launch.study.stop()
            launch.study.resume()
            launch.study.wait(10)
    magic._STUDIES.clear()
    magic.unload_ipython_extension(ip)


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kernelspec for this interpreter; kernels started by nbclient import this checkout."""
    import ipykernel  # noqa: F401 - a dev dependency: missing means a broken install
    import nbclient  # noqa: F401 - a dev dependency: missing means a broken install
    for name, value in install_kernelspec(tmp_path).items():
        monkeypatch.setenv(name, value)
    return tmp_path
