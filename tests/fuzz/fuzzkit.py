"""Generators of bad (and good) input, and the property every input must satisfy.

Shared by the CI tests in this folder (a few hundred examples) and ``benchmarks/faults.py``
(10,000+). The property: an input either works, or is refused with ``UsageError``/``ValueError``
whose message names the problem; never another exception type, never a hang.
"""

from __future__ import annotations

import json
import keyword
import re
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from hypothesis import strategies as st
from IPython.core.error import UsageError

import hpwidgets as hw
from hpwidgets.parse import DISTRIBUTIONS, CellError, parse
from hpwidgets.space import SearchSpace, dimension_from_dict

HANG_S = 10  # one example taking this long counts as a hang
COUNTS: dict[str, int] = {}  # examples checked per property (the benchmark reports them)
_LINE = re.compile(r"^line (\d+): ")


class Hang(BaseException):
    """Raised in the main thread by SIGALRM; a BaseException so no ``except Exception`` swallows it."""


@contextmanager
def no_hang(seconds: int = HANG_S) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")
    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


def assert_names_the_problem(error: BaseException) -> None:
    """A refusal must say something a person can act on, not echo a key or a type."""
    message = str(error)
    assert len(message) >= 15 and " " in message, f"{type(error).__name__} with a bare message: {message!r}"


# --- building blocks ------------------------------------------------------------------------------
identifiers = st.one_of(
    st.sampled_from(["x", "lr", "batch_size", "é", "学习率", "Δt", "x_1", "hp", "device", "__hp_params__",
                     "__hp_last__", "_", "self", "print"]),
    st.text(st.characters(categories=("Lu", "Ll", "Lo", "Nd"), max_codepoint=0x2FFF), min_size=1, max_size=8)
    .filter(lambda s: s.isidentifier() and not keyword.iskeyword(s)),
)
bad_names = st.sampled_from(["1x", "a b", "x.y", "for", "None", "x-y", "(x)", "x[0]", "a, b", "*x"])
numbers = st.one_of(
    st.integers(-1000, 1000), st.integers(-(10**30), 10**30), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 1e-320, 5e-324, 1e308, -1e308, 2**53 + 1, 2**63, 10**400]),
)
literal_text = st.one_of(
    numbers.map(repr),
    st.sampled_from(["1e309", "-1e309", "0x1F", "1_000", "True", "False", "None", "'a'", "'é'", "[1, 2]", "(1,)",
                     "{1: 2}", "b'x'", "1j", "-0.0", "float('nan')", "x", "1/0", "[]", "''", "9" * 400]),
)
dist_names = st.one_of(st.sampled_from(sorted(DISTRIBUTIONS)),
                       st.sampled_from(["normal", "Uniform", "report", "trial", "should_stop", "lognormal"]))
keywords = st.sampled_from(["log", "step", "q", "low", "high", "bogus"])


@st.composite
def calls(draw: st.DrawFn) -> str:
    """``uniform(0, 1)``-like text: a distribution and 0-4 literal (or not) arguments."""
    args = draw(st.lists(literal_text, max_size=4))
    kwargs = draw(st.dictionaries(keywords, st.one_of(literal_text, st.sampled_from(["True", "False"])), max_size=2))
    text = ", ".join([*args, *(f"{k}={v}" for k, v in kwargs.items())])
    return f"{draw(dist_names)}({text})"


@st.composite
def declarations(draw: st.DrawFn) -> str:
    name = draw(st.one_of(identifiers, identifiers, bad_names))
    call = draw(calls())
    form = draw(st.sampled_from(["call", "comment", "comment-hp", "bad-comment", "annotated"]))
    if form == "call":
        return f"{name} = hp.{call}"
    if form == "annotated":
        return f"{name}: float = hp.{call}"
    default = draw(literal_text)
    if form == "bad-comment":
        return f"{name} = {default}  # @hp {draw(st.sampled_from(['', 'uniform', '0.5', 'hp.', call + ')']))}"
    prefix = "hp." if form == "comment-hp" else ""
    return f"{name} = {default}  # @hp {prefix}{call}"


def fillers(names: list[str]) -> st.SearchStrategy[str]:
    """Ordinary (and odd) lines between declarations; they may use the declared names."""
    used = st.sampled_from(names) if names else st.just("x")
    return st.one_of(
        used.map(lambda n: f"y = {n}"), st.just("pass"), st.just("# just a comment"),
        used.map(lambda n: f"hp.report(step=0, m={n})"), st.just("hp.report()"), st.just("if True:\n    z = 1"),
        st.just("if True:\n    w = hp.uniform(0, 1)"), st.just("import math"), st.just("def f():\n    return 1"),
        st.text(max_size=12).map(lambda t: t.replace("\r", "")), st.just("x = (1,\n"), st.just("\t  bad indent"),
    )


@st.composite
def cells(draw: st.DrawFn) -> tuple[str, list[str]]:
    """(cell text, the names it declares): declarations, fillers, and maybe a last expression."""
    decls = draw(st.lists(declarations(), max_size=4))
    names = [d.split("=")[0].split(":")[0].strip() for d in decls]
    lines = decls + draw(st.lists(fillers(names), max_size=3))
    lines = draw(st.permutations(lines)) if draw(st.booleans()) else lines
    last = draw(st.one_of(st.none(), st.sampled_from(names or ["x"]), st.sampled_from(["'text'", "None", "1e309",
                                                                                          "hp.report(m=1)"])))
    return "\n".join(lines + ([last] if last else [])), names


# --- %%hptune options -----------------------------------------------------------------------------
def _flag(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return values.map(lambda v: f"{name} {v}".rstrip())


option_parts = st.one_of(
    _flag("--algo", st.sampled_from(["random", "tpe", "gp", "hyperband", "annealing", "RANDOM", ""])),
    _flag("--maximize", st.one_of(st.just(""), identifiers)), _flag("--minimize", st.one_of(st.just(""), identifiers)),
    _flag("--name", st.one_of(identifiers, st.sampled_from(['"my study"', "'x'", '"', "' '", "é/..", "a b"]))),
    _flag("--seed", st.sampled_from(["0", "-3", "1.5", "x", "99999999999999999999999", "2**32"])),
    _flag("--parallel", st.sampled_from(["1", "2", "3", "0", "-1", "x", "1.5"])),
    _flag("--timeout", st.sampled_from(["5", "0", "-1", "x", "1e-300", "inf", "nan", "1e308"])),
    _flag("--gpus", st.sampled_from(["auto", "none", "0", "0,1", "x", "-1"])),
    _flag("--per-gpu", st.sampled_from(["1", "2", "0"])), _flag("--executor", st.sampled_from(["thread", "dask://x"])),
    _flag("-o", st.one_of(identifiers, st.sampled_from(["1a", "a-b", ""]))),
    st.sampled_from(["--wait", "--edit", "--bogus", "'unclosed", "extra", "--trials", "--trials 0", "--trials x",
                     "--trials -2", "--trials 1.5"]),
)


@st.composite
def option_lines(draw: st.DrawFn) -> str:
    """Options, always with tiny --trials and --storage none (bad --trials values come last to win)."""
    parts = draw(st.lists(option_parts, max_size=5))
    return " ".join(["--trials", str(draw(st.integers(1, 2))), *parts, "--storage", "none"])


# --- space specs ----------------------------------------------------------------------------------
values = st.one_of(numbers, st.booleans(), st.none(), st.text(max_size=5), st.just([1, 2]), st.just({"a": 1}),
                   st.sampled_from([np.float64(0.5), np.int64(7), np.float32("nan"), np.int8(-3), object()]))
specs = st.recursive(st.one_of(values, st.sampled_from(["float", "int", "budget", "choice", "type", "low", "high",
                                                          "values", "log", "step", "q"])),
                     lambda inner: st.one_of(st.lists(inner, max_size=4),
                                             st.dictionaries(st.text(max_size=6) | st.sampled_from(
                                                 ["type", "low", "high", "values", "log", "step", "q"]),
                                                 inner, max_size=5)),
                     max_leaves=12)


@st.composite
def dimension_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A dict shaped like ``Dimension.to_dict()``, with some fields missing, extra or of the wrong type."""
    spec: dict[str, Any] = {"type": draw(st.sampled_from(["float", "int", "budget", "choice", "normal"]) | values)}
    for key in ("low", "high", "log", "step", "q", "values"):
        if draw(st.integers(0, 3)):  # most fields present, any of them may be missing
            spec[key] = draw(st.lists(values, max_size=4) if key == "values" else values)
    return spec


def _choice(draw: st.DrawFn) -> tuple[Callable[..., Any], tuple, dict]:
    return hw.choice, tuple(draw(st.lists(values, max_size=5))), {}


SPACE_ARGS: dict[str, Callable[[st.DrawFn], tuple[Callable[..., Any], tuple, dict]]] = {
    "uniform": lambda d: (hw.uniform, (d(values), d(values)), {}),
    "loguniform": lambda d: (hw.loguniform, (d(values), d(values)), {}),
    "quniform": lambda d: (hw.quniform, (d(values), d(values), d(values)), {}),
    "int": lambda d: (hw.int, (d(values), d(values)), {"log": d(st.booleans()), "step": d(values)}),
    "budget": lambda d: (hw.budget, (d(values), d(values)), {}),
    "choice": _choice,
    "from_dict": lambda d: (SearchSpace.from_dict, (d(st.dictionaries(identifiers, dimension_specs(), max_size=3)
                                                      | specs),), {}),
    "from_json": lambda d: (SearchSpace.from_json, (d(st.text(max_size=30) | specs.map(_json_or_text)),), {}),
}


@st.composite
def space_calls(draw: st.DrawFn) -> tuple[str, Callable[[], Any]]:
    """(what, a call building a dimension or space from drawn, often nonsensical, arguments)."""
    kind = draw(st.sampled_from(sorted(SPACE_ARGS)))
    make, args, kwargs = SPACE_ARGS[kind](draw)
    return f"{kind}{args!r:.200}", lambda: make(*args, **kwargs)


def _json_or_text(spec: Any) -> str:
    try:
        return json.dumps(spec)
    except (TypeError, ValueError):
        return repr(spec)


# --- the properties -------------------------------------------------------------------------------
def check_parse(text: str) -> str:
    """parse() accepts the text or raises CellError naming a line of it; nothing else."""
    _count("parse")
    try:
        with no_hang():
            parse(text, first_line=2)
    except CellError as error:
        match = _LINE.match(str(error))
        assert match and 1 <= int(match[1]) <= max(2, len(text.splitlines()) + 1), str(error)
        assert_names_the_problem(error)
        return "refused"
    return "parsed"


def check_dimension(dim: Any) -> None:
    """A dimension that was accepted must be usable: sample, contain, map back, round-trip."""
    if isinstance(dim, SearchSpace):
        assert SearchSpace.from_json(dim.to_json()) == dim
        for d in dim.values():
            check_dimension(d)
        return
    for u in (0.0, 0.37, 0.5, 1.0):
        value = dim.from_unit(u)
        assert dim.contains(value), f"{dim!r}.from_unit({u}) = {value!r}, which it does not contain"
        assert 0.0 <= dim.to_unit(value) <= 1.0
    again = dimension_from_dict(json.loads(json.dumps(dim.to_dict())))  # how the store keeps it
    assert again == dim, f"{dim!r} comes back from JSON as {again!r}"
    for algo in ("random", "tpe"):  # what the study does with it: ask, run, tell
        space = {"p": dim, "z": hw.uniform(0, 1)}  # a budget alone leaves nothing to search
        study = hw.tune(lambda p: 0.0, space, algo=algo, trials=2, seed=0, storage=None, progress=False)
        assert all(dim.contains(t.params["p"]) for t in study.trials), (algo, [t.params for t in study.trials])


def check_space_call(make: Callable[[], Any]) -> str:
    """A constructor either returns a usable space/dimension or raises ValueError naming the problem."""
    _count("space")
    try:
        with no_hang():
            made = make()
    except ValueError as error:
        assert_names_the_problem(error)
        return "refused"
    check_dimension(made)
    return "valid"


def check_magic(shell: Any, line: str, cell: str) -> str:
    """``%%hptune line`` + cell runs (trials may FAIL) or raises UsageError/ValueError naming the problem."""
    from hpwidgets import magic
    _count("magic")
    try:
        with no_hang():
            shell.run_cell_magic("hptune", line, cell)
        outcome = "ran"
    except (UsageError, ValueError) as error:
        assert_names_the_problem(error)
        outcome = "refused"
    finally:
        left = [launch.study for launch in magic._STUDIES.values() if launch.study.running]
        for study in left:  # a Hang (or a failure) must not leave a search running into the next example
            study.stop()
            study.resume()
        magic._STUDIES.clear()
    assert not left, f"{len(left)} search(es) still running after the magic returned"
    return outcome
