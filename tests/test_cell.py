"""cell.py: what of a notebook's namespace travels to worker processes and Dask."""

from __future__ import annotations

import threading

from hpwidgets.cell import portable_namespace


class RefusesPickling:
    def __reduce__(self) -> object:
        raise NotImplementedError("cannot be pickled")  # as torch's DataLoader iterators do


def test_ipython_entries_stay_behind_and_the_users_underscore_names_travel() -> None:
    ipython = {"_": 1, "__": 2, "___": 3, "_3": 4, "_i": "x", "_ii": "x", "_iii": "x", "_i12": "x", "_ih": [],
               "_oh": {}, "_dh": [], "_exit_code": 0, "__builtins__": {}, "__name__": "__main__", "In": [],
               "Out": {}, "get_ipython": print, "exit": None, "quit": None}
    user = {"_loss": 0.5, "_helper": abs, "__private": 1, "_i_am_mine": 2, "data": [1, 2]}
    assert portable_namespace({**ipython, **user}) == user


def test_values_that_refuse_pickling_in_any_way_stay_behind() -> None:
    namespace = {"lock": threading.Lock(), "refuses": RefusesPickling(), "kept": 3}
    assert portable_namespace(namespace) == {"kept": 3}
