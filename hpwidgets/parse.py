"""Cell text -> a search space plus the code to run once per trial. Pure: no IPython here.

Two declaration forms, both top-level assignments::

    lr = hp.loguniform(1e-4, 1e-1)                 # the call form
    momentum = 0.1  # @hp uniform(0.01, 0.99)      # Colab form: plain Python, 0.1 is the default

Arguments are read with ``ast.literal_eval`` only, so parsing never runs user code. In the
trial body each declaration's right-hand side becomes ``__hp_params__["name"]`` and a final
expression statement becomes ``__hp_last__ = <expr>``; line numbers are kept, so tracebacks
point at the user's own lines.

>>> cell = parse("x = hp.uniform(0, 1)\\nn = 3  # @hp int(1, 5)\\n(x - 0.5) ** 2 + n\\n")
>>> list(cell.space), cell.metric
(['x', 'n'], '(x - 0.5) ** 2 + n')
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType
from typing import Any

from . import space as _space
from .space import Budget, Dimension, SearchSpace

PARAMS = "__hp_params__"  # the trial's parameters, injected into the trial namespace
LAST = "__hp_last__"  # the value of the cell's last expression statement
HP_HELPERS = frozenset({"report", "should_stop", "trial"})  # hp.<name> that are not distributions
DISTRIBUTIONS: dict[str, Callable[..., Dimension]] = {
    "uniform": _space.uniform, "loguniform": _space.loguniform, "quniform": _space.quniform,
    "int": _space.integer, "choice": _space.choice, "budget": _space.budget,
}
_HP_COMMENT = re.compile(r"#\s*@hp\b\s*(?P<spec>.*)$")


class CellError(ValueError):
    """Bad cell text: where (1-based line and column, in cell coordinates), what, and why."""

    def __init__(self, line: int, col: int, text: str, problem: str) -> None:
        self.line, self.col, self.text, self.problem = line, col, text, problem
        super().__init__(f"line {line}: {text}: {problem}")

    def shifted(self, offset: int) -> CellError:
        return CellError(self.line + offset, self.col, self.text, self.problem)


@dataclass(frozen=True)
class Declaration:
    """One hyperparameter as written in the cell; ``default`` only for the Colab form."""

    name: str
    dimension: Dimension
    line: int
    form: str  # "call" or "comment"
    default: Any = None


@dataclass(frozen=True)
class ParsedCell:
    space: SearchSpace
    declarations: tuple[Declaration, ...]
    body: ast.Module  # the rewritten trial body, line numbers in cell coordinates
    code: CodeType  # ``body`` compiled once, executed once per trial
    metric: str | None  # source of the last expression statement: the default metric
    assigned: frozenset[str]  # every name the cell binds (checks ``--maximize NAME``)

    @property
    def lines(self) -> dict[str, int]:
        return {d.name: d.line for d in self.declarations}

    @property
    def source(self) -> str:
        """The trial body as Python text (for display; ``code`` is what runs)."""
        return ast.unparse(self.body)


def parse(text: str, *, first_line: int = 1, filename: str = "<hptune>") -> ParsedCell:
    """Parse cell text whose first line is line ``first_line`` of what the user sees.

    Raises CellError (a ValueError) naming the line, the offending text and the problem.
    """
    offset = first_line - 1
    try:
        return _parse_and_compile(text, offset, filename)
    except (RecursionError, MemoryError):  # e.g. a 1,000-term sum: Python's compiler gives up
        line, first = next(((i, t) for i, t in enumerate(text.splitlines(), 1) if t.strip()), (1, ""))
        raise CellError(line + offset, 1, first.strip(), "the cell is nested too deeply for Python to "
                        "compile; split it into smaller statements") from None


def _parse_and_compile(text: str, offset: int, filename: str) -> ParsedCell:
    try:
        tree, declarations, metric = _parse_body(text, offset)
    except CellError as error:
        raise error.shifted(offset) from None
    declarations = tuple(Declaration(d.name, d.dimension, d.line + offset, d.form, d.default)
                         for d in declarations)
    ast.increment_lineno(tree, offset)
    try:
        code = compile(tree, filename, "exec", dont_inherit=True)
    except SyntaxError as error:  # what the compiler, not the parser, rejects: `return` at top level
        raise _syntax_error(error, text.splitlines(), offset) from None
    return ParsedCell(space=SearchSpace({d.name: d.dimension for d in declarations}), declarations=declarations,
                      body=tree, code=code, metric=metric, assigned=_bound_names(tree))


def _parse_body(text: str, offset: int) -> tuple[ast.Module, list[Declaration], str | None]:
    lines = text.splitlines()
    try:
        tree = ast.parse(text)
    except SyntaxError as error:
        raise _syntax_error(error, lines, 0) from None
    comments = _hp_comments(text)
    declarations: dict[str, Declaration] = {}
    # `a = 1; b = 0.2  # @hp ...`: the comment ends the line's last statement, so only it claims it.
    last_on_line = {stmt.end_lineno or stmt.lineno: stmt for stmt in tree.body}
    for stmt in tree.body:
        end = stmt.end_lineno or stmt.lineno
        simple = not hasattr(stmt, "body")  # a comment at the end of an `if` block is not the `if`'s
        comment = comments.pop(end, None) if simple and last_on_line[end] is stmt else None
        decl = _declaration(stmt, comment, text)
        if decl is None:
            continue
        if decl.name in declarations:
            raise CellError(decl.line, stmt.col_offset + 1, _segment(text, stmt),
                            f"{decl.name!r} is already declared on line {declarations[decl.name].line + offset}")
        declarations[decl.name] = decl
        stmt.value = _params_lookup(decl.name, stmt.value)
    _check_one_budget(list(declarations.values()), lines, offset)
    if comments:  # a `# @hp` comment that no assignment claimed
        line, (col, _spec) = min(comments.items())
        raise CellError(line, col, lines[line - 1].strip(),
                        "a `# @hp` comment must end a top-level assignment like `x = 0.1  # @hp uniform(0, 1)`")
    _check_stray_hp_calls(tree, text)  # declarations are already rewritten away
    if not declarations:
        number, first = next(((i, t.strip()) for i, t in enumerate(lines, 1) if t.strip()), (1, "(empty cell)"))
        raise CellError(number, 1, first,
                        "no hyperparameters: declare one, e.g. `lr = hp.loguniform(1e-4, 1e-1)`")
    metric = _capture_last_expression(tree, text)
    ast.fix_missing_locations(tree)
    return tree, list(declarations.values()), metric


def _check_one_budget(declarations: list[Declaration], lines: list[str], offset: int) -> None:
    budgets = [d for d in declarations if isinstance(d.dimension, Budget)]
    if len(budgets) > 1:
        first, second = budgets[:2]
        raise CellError(second.line, 1, lines[second.line - 1].strip(),
                        f"a cell has one hp.budget (Hyperband's resource), and {first.name!r} on line "
                        f"{first.line + offset} is one already")


def _syntax_error(error: SyntaxError, lines: list[str], offset: int) -> CellError:
    """``error.lineno`` is in the coordinates the text was compiled in (body + ``offset``)."""
    line = error.lineno or 1
    index = line - 1 - offset
    text = lines[index].strip() if 0 <= index < len(lines) else (error.text or "").strip()
    if text.startswith(("%", "!")):  # IPython syntax the magic could not turn into Python line for line
        return CellError(line, 1, text, "this IPython line (% or !) cannot run as part of each trial; "
                                        "put it in a cell of its own before the %%hptune cell")
    # Python's "(detected at line N)" counts lines its own way; the message already names the line.
    problem = re.sub(r" \(detected at line \d+\)", "", error.msg)
    return CellError(line, error.offset or 1, text, f"invalid Python: {problem}")


def _hp_comments(text: str) -> dict[int, tuple[int, str]]:
    """{line: (column, spec)} for every real ``# @hp`` comment (never ones inside strings)."""
    found: dict[int, tuple[int, str]] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT and (match := _HP_COMMENT.match(token.string)):
                found[token.start[0]] = (token.start[1] + match.start("spec") + 1, match["spec"].strip())
    except (tokenize.TokenError, SyntaxError):  # ast.parse accepted the text, so this is rare
        pass
    return found


def _segment(text: str, node: ast.AST) -> str:
    return (ast.get_source_segment(text, node) or "").strip()


def _target_name(stmt: ast.stmt) -> str | None:
    """``name`` for ``name = ...`` and ``name: T = ...``; None for every other statement."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id
    if isinstance(stmt, ast.AnnAssign) and stmt.value is not None and isinstance(stmt.target, ast.Name):
        return stmt.target.id
    return None


def _hp_attr(node: ast.AST) -> str | None:
    """``"uniform"`` for a call ``hp.uniform(...)``; None for anything else."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        owner = node.func.value
        if isinstance(owner, ast.Name) and owner.id == "hp":
            return node.func.attr
    return None


def _declaration(stmt: ast.stmt, comment: tuple[int, str] | None, text: str) -> Declaration | None:
    value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
    attr = _hp_attr(value) if value is not None else None
    is_call = attr is not None and attr not in HP_HELPERS
    if not is_call and comment is None:
        return None
    name = _target_name(stmt)
    where = (stmt.lineno, stmt.col_offset + 1, _segment(text, stmt))
    if name is None:
        raise CellError(*where, "declare a hyperparameter as `name = hp.uniform(...)` or "
                                "`name = default  # @hp uniform(...)`: one plain name on the left")
    if is_call and comment is not None:
        raise CellError(*where, f"{name!r} is declared twice on one line: by `hp.{attr}(...)` and by `# @hp`")
    if is_call:
        dimension = _dimension(value, attr, _segment(text, value), lambda n: (n.lineno, n.col_offset + 1))
        return Declaration(name, dimension, stmt.lineno, "call")
    col, spec = comment  # type: ignore[misc]
    dimension = _comment_dimension(spec, stmt.end_lineno or stmt.lineno, col)
    default = _literal_default(stmt, value, (dimension, spec), text)
    return Declaration(name, dimension, stmt.lineno, "comment", default)


Locate = Callable[[ast.AST], tuple[int, int]]


def _comment_dimension(spec: str, line: int, col: int) -> Dimension:
    """``uniform(0.01, 0.99)`` (or ``hp.uniform(...)``) from a ``# @hp`` comment at ``col``."""
    try:
        call = ast.parse(spec, mode="eval").body
    except SyntaxError:
        call = None
    dist = call.func.id if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) else _hp_attr(call)
    if dist is None:
        raise CellError(line, col, spec or "# @hp", "expected a distribution call such as "
                        f"`# @hp uniform(0.01, 0.99)`; distributions: {', '.join(DISTRIBUTIONS)}")
    return _dimension(call, dist, spec, lambda n: (line, col + getattr(n, "col_offset", 0)))  # type: ignore[arg-type]


def _dimension(call: ast.Call, dist: str, source: str, locate: Locate) -> Dimension:
    """Build the dimension from literal arguments; every failure names the call ``source``."""
    if dist not in DISTRIBUTIONS:
        raise CellError(*locate(call), source,
                        f"unknown distribution {dist!r}; expected one of {', '.join(DISTRIBUTIONS)}")
    for node in [*call.args, *(kw.value for kw in call.keywords)]:
        if isinstance(node, ast.Starred) or any(kw.arg is None and kw.value is node for kw in call.keywords):
            raise CellError(*locate(node), source, "arguments must be written out, not unpacked with * or **")
    args = [_literal(node, source, locate) for node in call.args]
    kwargs = {kw.arg: _literal(kw.value, source, locate) for kw in call.keywords}
    try:
        return DISTRIBUTIONS[dist](*args, **kwargs)
    except (TypeError, ValueError) as error:  # the space's own message states the rule and the values
        raise CellError(*locate(call), source, str(error)) from None


def _literal(node: ast.expr, source: str, locate: Locate) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise CellError(*locate(node), source, "arguments must be literals (numbers, strings, lists), "
                        f"but got `{ast.unparse(node)}`") from None


def _literal_default(stmt: ast.stmt, value: ast.expr, declared: tuple[Dimension, str], text: str) -> Any:
    """The Colab form's default; a literal one must lie inside its dimension."""
    try:
        default = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None  # computed defaults are allowed: the cell still runs as plain Python
    dimension, spec = declared
    if not dimension.contains(default):
        raise CellError(value.lineno, value.col_offset + 1, _segment(text, stmt),
                        f"the default {default!r} is outside the declared {spec}")
    return default


def _params_lookup(name: str, old: ast.expr) -> ast.expr:
    """``__hp_params__["name"]`` placed where the declaration's right-hand side was."""
    lookup = ast.Subscript(value=ast.Name(PARAMS, ast.Load()), slice=ast.Constant(name), ctx=ast.Load())
    for node in ast.walk(lookup):
        ast.copy_location(node, old)
    return lookup


def _check_stray_hp_calls(tree: ast.Module, text: str) -> None:
    """``hp.<dist>(...)`` outside a top-level declaration would never be searched: refuse it."""
    for node in ast.walk(tree):
        attr = _hp_attr(node)
        if attr is None or attr in HP_HELPERS:
            continue
        where = (node.lineno, node.col_offset + 1, _segment(text, node))
        if attr not in DISTRIBUTIONS:
            raise CellError(*where, f"unknown distribution {attr!r}; expected one of {', '.join(DISTRIBUTIONS)} "
                                    f"(or hp.report)")
        raise CellError(*where, "declare hyperparameters at the top level of the cell as "
                                f"`name = hp.{attr}(...)`, so the search can set them")


def _capture_last_expression(tree: ast.Module, text: str) -> str | None:
    """Turn a final expression statement into ``__hp_last__ = <expr>``; return its source."""
    last = tree.body[-1] if tree.body else None
    if not isinstance(last, ast.Expr) or _hp_attr(last.value) in HP_HELPERS:
        return None
    assign = ast.Assign(targets=[ast.copy_location(ast.Name(LAST, ast.Store()), last)], value=last.value)
    tree.body[-1] = ast.copy_location(assign, last)
    return _segment(text, last.value)


def _bound_names(tree: ast.Module) -> frozenset[str]:
    """The names the cell binds at its top level, which --maximize NAME can read after a trial: a
    name set only inside a function or class body is not one, unless declared ``global`` there."""
    names: set[str] = set()
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
              ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)  # a comprehension's names are its own
    todo: list[ast.AST] = [tree]
    while todo:
        for node in ast.iter_child_nodes(todo.pop()):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            if isinstance(node, scopes):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    names.add(node.name)
                names.update(n for g in ast.walk(node) if isinstance(g, ast.Global) for n in g.names)
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
                    names.update(w.target.id for w in ast.walk(node)  # `:=` in a comprehension binds here
                                 if isinstance(w, ast.NamedExpr) and isinstance(w.target, ast.Name))
            else:
                todo.append(node)
    return frozenset(names - {LAST})
