"""Property tests over space specs: ``hw.uniform``, ``hw.int``, ``choice``, ``SearchSpace.from_dict``/``from_json``.

Every call either returns a dimension (or space) that can be sampled, contains its samples,
round-trips through JSON and runs under random and TPE search, or raises ValueError naming the
problem. The explicit examples are inputs that once broke that rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fuzzkit import check_space_call, space_calls
from hypothesis import HealthCheck, example, given, settings

import hpwidgets as hw
from hpwidgets.space import SearchSpace

CI = settings(max_examples=300, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


def call(what: str, make: Any) -> tuple[str, Any]:
    return what, make


@CI
@given(space_calls())
@example(call("uniform(0, 10**400)", lambda: hw.uniform(0, 10**400)))
@example(call("quniform(0, 10**400)", lambda: hw.quniform(0, 1, 10**400)))
@example(call("int(0, 10**400)", lambda: hw.int(0, 10**400)))
@example(call("int(0, 10**30)", lambda: hw.int(0, 10**30)))
@example(call("budget(1, 10**400)", lambda: hw.budget(1, 10**400)))
@example(call("uniform(-1e308, 1e308)", lambda: hw.uniform(-1e308, 1e308)))
@example(call("quniform(0, 1e300, 1e-300)", lambda: hw.quniform(0, 1e300, 1e-300)))
@example(call("choice(nan)", lambda: hw.choice(float("nan"))))
@example(call("uniform(0, np.int64(3))", lambda: hw.uniform(0, np.int64(3))))  # np.max() of an int array
@example(call("quniform(np.int8(-3), 100, 4)", lambda: hw.quniform(np.int8(-3), 100, 4)))
@example(call("from_dict missing low", lambda: SearchSpace.from_dict({"x": {"type": "float", "high": 1}})))
@example(call("from_dict list type", lambda: SearchSpace.from_dict({"x": {"type": ["float"]}})))
@example(call("from_dict str spec", lambda: SearchSpace.from_dict({"x": "uniform"})))
@example(call("from_dict not a dict", lambda: SearchSpace.from_dict(["x"])))
@example(call("from_dict values=5", lambda: SearchSpace.from_dict({"x": {"type": "choice", "values": 5}})))
@example(call("from_json list", lambda: SearchSpace.from_json("[1, 2]")))
def test_a_space_spec_is_usable_or_refused_with_a_value_error(case: tuple[str, Any]) -> None:
    check_space_call(case[1])  # case[0] describes the call in hypothesis' report
