"""parse.py: cell text -> space, trial body, default metric; every bad input names its line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hpwidgets as hw
from hpwidgets.parse import LAST, PARAMS, CellError, parse

FULL_CELL = """\
lr = hp.loguniform(1e-4, 1e-1)
batch_size = hp.choice(16, 32, 64, 128)
momentum = 0.1  # @hp uniform(0.01, 0.99)
layers = hp.int(1, 64, log=True)
width = hp.int(8, 64, step=8)
trees = hp.quniform(10, 200, 1)
epochs = hp.budget(1, 27)
act = "relu"  # @hp choice("relu", "tanh")
shift = -2  # @hp uniform(-5, -1e-3)
score = lr * batch_size + momentum
score
"""


def run_body(text: str, params: dict) -> dict:
    namespace = {PARAMS: params}
    exec(parse(text).code, namespace)
    return namespace


def test_both_declaration_forms_build_the_space_in_order() -> None:
    cell = parse(FULL_CELL)
    assert cell.space == hw.SearchSpace({
        "lr": hw.loguniform(1e-4, 1e-1), "batch_size": hw.choice(16, 32, 64, 128),
        "momentum": hw.uniform(0.01, 0.99), "layers": hw.int(1, 64, log=True), "width": hw.int(8, 64, step=8),
        "trees": hw.quniform(10, 200, 1), "epochs": hw.budget(1, 27), "act": hw.choice("relu", "tanh"),
        "shift": hw.uniform(-5, -1e-3)})


def test_declarations_record_line_form_and_colab_default() -> None:
    cell = parse(FULL_CELL)
    assert cell.lines == {"lr": 1, "batch_size": 2, "momentum": 3, "layers": 4, "width": 5, "trees": 6,
                          "epochs": 7, "act": 8, "shift": 9}
    forms = {d.name: (d.form, d.default) for d in cell.declarations}
    assert forms["momentum"] == ("comment", 0.1)
    assert forms["act"] == ("comment", "relu")
    assert forms["shift"] == ("comment", -2)
    assert forms["lr"] == ("call", None)


def test_first_line_shifts_every_line_number() -> None:
    assert parse("x = hp.uniform(0, 1)\nx", first_line=2).lines == {"x": 2}


def test_last_expression_is_the_default_metric() -> None:
    cell = parse(FULL_CELL)
    assert cell.metric == "score"
    assert isinstance(cell.body.body[-1], ast.Assign) and cell.body.body[-1].targets[0].id == LAST


def test_no_last_expression_means_no_default_metric() -> None:
    assert parse("x = hp.uniform(0, 1)\ny = x * 2\n").metric is None
    assert parse("x = hp.uniform(0, 1)\nhp.report(y=x)\n").metric is None


def test_trial_body_uses_the_trial_values_not_the_defaults() -> None:
    namespace = run_body("x = hp.uniform(0, 1)\nm = 0.1  # @hp uniform(0.01, 0.99)\nx + m",
                         {"x": 0.25, "m": 0.5})
    assert namespace["x"] == 0.25 and namespace["m"] == 0.5 and namespace[LAST] == 0.75


def test_trial_body_keeps_the_users_line_numbers() -> None:
    cell = parse("x = hp.uniform(0, 1)\ny = 1\nraise RuntimeError(x)\n", first_line=2)
    with pytest.raises(RuntimeError) as info:
        exec(cell.code, {PARAMS: {"x": 0.5}})
    assert info.traceback[-1].lineno + 1 == 4  # pytest's lineno is 0-based


def test_colab_cell_still_runs_as_plain_python() -> None:
    namespace: dict = {}
    exec("momentum = 0.1  # @hp uniform(0.01, 0.99)", namespace)
    assert namespace["momentum"] == 0.1


def test_hp_comment_inside_a_string_is_not_a_declaration() -> None:
    cell = parse("x = hp.uniform(0, 1)\ns = '# @hp uniform(0, 1)'\nx")
    assert list(cell.space) == ["x"]


def test_annotated_assignment_is_a_declaration() -> None:
    assert list(parse("n: int = hp.int(1, 4)\nn").space) == ["n"]


def test_assigned_names_cover_loops_and_functions() -> None:
    cell = parse("x = hp.uniform(0, 1)\nfor epoch in range(3):\n    acc = x\ndef f(): pass\nimport os.path\n")
    assert {"x", "epoch", "acc", "f", "os"} <= cell.assigned


def test_a_name_set_only_inside_a_function_is_not_assigned_unless_global() -> None:
    local = parse("x = hp.uniform(0, 1)\ndef f():\n    acc = x\n    return acc\nclass C:\n    loss = 1\nf()")
    assert "acc" not in local.assigned and "loss" not in local.assigned and {"f", "C"} <= local.assigned
    shared = parse("x = hp.uniform(0, 1)\ndef f():\n    global acc\n    acc = x\nf()")
    assert "acc" in shared.assigned
    comprehension = parse("x = hp.uniform(0, 1)\nys = [acc for acc in range(3)]\nzs = [(best := v) for v in ys]")
    assert "acc" not in comprehension.assigned and {"ys", "zs", "best"} <= comprehension.assigned


def test_an_hp_comment_after_semicolons_declares_the_lines_last_statement() -> None:
    cell = parse("a = 0.5; b = 0.2  # @hp uniform(0, 1)\na + b")
    assert list(cell.space) == ["b"] and run_body("a = 0.5; b = 0.2  # @hp uniform(0, 1)\na + b",
                                                   {"b": 0.25})[LAST] == 0.75
    assert list(parse("lr = 0.1; n = 3  # @hp int(1, 5)\nlr * n").space) == ["n"]


def test_a_syntax_error_names_one_line_only() -> None:
    with pytest.raises(CellError) as info:
        parse("x = hp.uniform(0, 1)\ny = 1\nprint('unterminated)\nx", first_line=2)
    assert str(info.value) == "line 4: print('unterminated): invalid Python: unterminated string literal"


def test_the_readme_notebook_cell_parses() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    cells = [block for block in readme.split("```python\n")[1:] if block.startswith("%%hptune") and "# @hp" in block]
    assert cells, "README shows a %%hptune cell with a Colab-style declaration"
    for block in cells:
        cell = parse(block.split("```")[0].split("\n", 1)[1], first_line=2)
        assert "momentum" in cell.space and cell.lines["momentum"] == 4


def test_source_shows_the_rewritten_body() -> None:
    assert "__hp_params__['x']" in parse("x = hp.uniform(0, 1)\nx").source


def test_parsing_never_runs_user_code() -> None:
    with pytest.raises(CellError, match="literals"):
        parse("x = hp.uniform(__import__('os').getpid(), 1)")


@pytest.mark.parametrize(("text", "line", "col", "offending", "problem"), [
    ("x = 1\nlr = hp.lognormal(1e-4, 1e-1)", 2, 6, "hp.lognormal(1e-4, 1e-1)", "unknown distribution 'lognormal'"),
    ("lr = hp.uniform(5, 1)", 1, 6, "hp.uniform(5, 1)", "`low < high` must hold, but got low=5, high=1"),
    ("lr = hp.loguniform(0, 1)", 1, 6, "hp.loguniform(0, 1)", "`low > 0` must hold"),
    ("lr = hp.uniform(lo, 1)", 1, 17, "hp.uniform(lo, 1)", "must be literals"),
    ("lr = hp.choice(*sizes)", 1, 16, "hp.choice(*sizes)", "written out"),
    ("lr = hp.uniform(0, 1)\nlr = hp.uniform(0, 2)", 2, 1, "lr = hp.uniform(0, 2)", "already declared on line 1"),
    ("lr = hp.uniform(0, 1\n", 1, 16, "lr = hp.uniform(0, 1", "invalid Python"),
    ("x = hp.uniform(0, 1)\nreturn x", 2, 1, "return x", "'return' outside function"),
    ("m = 0.1  # @hp lognormal(0, 1)", 1, 16, "lognormal(0, 1)", "unknown distribution"),
    ("m = 0.1  # @hp uniform(1, 0)", 1, 16, "uniform(1, 0)", "`low < high`"),
    ("m = 0.1  # @hp", 1, 15, "# @hp", "expected a distribution call"),
    ("m = 5  # @hp uniform(0.01, 0.99)", 1, 5, "m = 5", "the default 5 is outside the declared uniform(0.01, 0.99)"),
    ("print(1)  # @hp uniform(0, 1)", 1, 1, "print(1)", "one plain name on the left"),
    ("a, b = hp.uniform(0, 1)", 1, 1, "a, b = hp.uniform(0, 1)", "one plain name on the left"),
    ("m = hp.uniform(0, 1)  # @hp uniform(0, 1)", 1, 1, "m = hp.uniform(0, 1)", "declared twice"),
    ("x = hp.uniform(0, 1)\nif x:\n    y = 1  # @hp uniform(0, 1)", 3, 18, "y = 1  # @hp uniform(0, 1)",
     "must end a top-level assignment"),
    ("x = hp.uniform(0, 1)\nf(hp.int(1, 3))", 2, 3, "hp.int(1, 3)", "at the top level"),
    ("x = hp.uniform(0, 1)\nhp.lognormal(1)", 2, 1, "hp.lognormal(1)", "unknown distribution"),
    ("y = 1\n", 1, 1, "y = 1", "no hyperparameters"),
    ("e = hp.budget(1, 9)\nx = hp.uniform(0, 1)\nf = 3  # @hp budget(1, 3)", 3, 1, "f = 3  # @hp budget(1, 3)",
     "a cell has one hp.budget (Hyperband's resource), and 'e' on line 1 is one already"),
    ("%matplotlib inline\nx = hp.uniform(0, 1)", 1, 1, "%matplotlib inline",
     "this IPython line (% or !) cannot run as part of each trial"),  # the magic transforms what it can first
    ("x = hp.uniform(0, 1)\n!nvidia-smi", 2, 1, "!nvidia-smi", "put it in a cell of its own before the %%hptune"),
    ("", 1, 1, "(empty cell)", "no hyperparameters"),
])
def test_bad_cells_name_line_column_text_and_problem(text: str, line: int, col: int, offending: str,
                                                     problem: str) -> None:
    with pytest.raises(CellError) as info:
        parse(text)
    error = info.value
    assert (error.line, error.col, error.text) == (line, col, offending)
    assert problem in error.problem
    assert str(error) == f"line {line}: {offending}: {error.problem}"
    assert isinstance(error, ValueError)


def test_errors_use_cell_line_numbers() -> None:
    with pytest.raises(CellError, match=r"^line 3: "):
        parse("x = hp.uniform(0, 1)\ny = hp.uniform(1, 0)", first_line=2)
    with pytest.raises(CellError, match=r"^line 3: return x"):
        parse("x = hp.uniform(0, 1)\nreturn x", first_line=2)
    with pytest.raises(CellError, match=r"^line 3: f = hp.budget\(1, 3\): .*'e' on line 2 is one already"):
        parse("e = hp.budget(1, 9)\nf = hp.budget(1, 3)", first_line=2)
