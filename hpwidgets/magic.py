"""``%%hptune`` tunes the hyperparameters a cell declares; ``%hptune`` lists, shows, stops studies
(its line commands act in ``magic_commands.py``).

The magic only parses (``parse.py``) and delegates (``Study``); bad input raises ``UsageError``
before anything is created. In a kernel the search runs in a background thread and the cell
returns, so the panel's buttons keep working. Headless runs (nbclient, papermill) and "Run All"
still see complete results: a ``pre_run_cell`` hook waits for a background search whose panel no
frontend has rendered. ``--wait`` and terminal IPython block; Ctrl-C pauses the study and re-raises.
Re-running a cell stops the search it started before (its panel, and Stop, went with the old output).
``--gpus``/``--per-gpu``/``--executor`` choose the runner (GPU slots, processes, a Dask cluster).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .algorithms import ALGORITHMS
from .algorithms.pruners import PRUNERS
from .cell import CellObjective, hp, portable_namespace
from .dask_runner import ClusterError
from .magic_commands import (
    LINE,
    clean,
    control,
    parse_magic_line,
    refuse_tuning_options,
    stored_study,
    study_table,
    unquote,
    write_report,
)
from .options import (
    EXECUTOR_HELP,
    GPUS_HELP,
    MAX_FAILURES_HELP,
    PER_GPU_HELP,
    missing_gpu_problem,
    placement,
    placement_problem,
    positive,
    runner_of,
    storage_path,
)
from .parse import LAST, CellError, ParsedCell, parse
from .results import best_or_none, failure_summary, outside_space_note
from .study import Study
from .trial import TrialState


@dataclass
class _Launch:
    """A study started by the magic, with what is needed to (re)start it from the panel."""

    study: Study
    objective: CellObjective
    options: argparse.Namespace
    dashboard: Any = None
    background: bool = False  # later cells wait for it unless a frontend rendered its panel
    pending: bool = False  # --edit: waiting for Start on the panel
    cell_run: tuple[str, int] | None = None  # (the frontend's cell id, execution count) that launched it

    def start(self) -> None:
        """Start (or restart) a background search; "+10 trials" on an ended panel raised n_target."""
        self.pending = False
        if not self.study.running:
            trials = max(self.options.trials, self.study.n_target)
            self.study.optimize(self.objective, trials, parallel=self.options.parallel,
                                timeout=self.options.timeout, background=True, progress=self.dashboard is None,
                                **placement(self.options.gpus, self.options.per_gpu, self.options.executor))

    @property
    def rendered(self) -> bool:
        event = getattr(self.dashboard, "rendered", None)
        return bool(event is not None and event.is_set())


_STUDIES: dict[str, _Launch] = {}  # by name: studies this session launched, running or not
_CELL: dict[str, str | None] = {"id": None}  # the id of the cell running now, as its frontend sent it


def _dashboard_class() -> Any:
    try:
        from .ui import Dashboard
    except ImportError:  # no widget panel (yet): fall back to the text progress bar
        return None
    return Dashboard


def _in_kernel(shell: Any) -> bool:
    return getattr(shell, "kernel", None) is not None


def _summary(study: Study) -> str:
    trials, best = study.trials, best_or_none(study)
    complete, pruned = (sum(t.state is s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED))
    stopped = f", {pruned} pruned" if pruned else ""
    text = f"study {study.name!r}: {len(trials)} trials ({complete} complete{stopped})"
    if best is not None:
        text += f", best {study.target or 'value'}={best.value:.6g} with {dict(best.params)}"
        text += outside_space_note(study, best)
    failures = failure_summary(study)
    return text if failures is None else f"{text}; {failures}"


def _block(study: Study) -> None:
    """Wait for a background search; Ctrl-C pauses it (Study.wait) and says how to go on."""
    try:
        study.wait()
    except KeyboardInterrupt:
        print(f"study {study.name!r} is paused: `%hptune resume {study.name}` continues it, "
              f"`%hptune stop {study.name}` ends it", file=sys.stderr)
        raise


def _before_cell(info: Any = None) -> None:
    """pre_run_cell: note which cell runs (re-running a cell replaces its search), then wait if headless."""
    _CELL["id"] = getattr(info, "cell_id", None)
    _wait_for_headless(info)


def _cell_run(shell: Any) -> tuple[str, int] | None:
    """This run of this cell: a loop launching several searches in one run is one run."""
    return None if _CELL["id"] is None else (_CELL["id"], shell.execution_count)


def _replace_this_cells_search(name: str | None, run: tuple[str, int] | None) -> None:
    """Re-running a cell stops the search it started before: the frontend has cleared that panel,
    so the search would go on out of sight, with its Stop button gone. The finished trials stay."""
    for launch in list(_STUDIES.values()):
        study, before = launch.study, launch.cell_run
        if run is None or before is None or before[0] != run[0] or before == run or not study.running:
            continue
        study.stop()
        resumes = study.name == name  # the same study again: it must end before it can resume
        print(f"hpwidgets: stopped this cell's previous search {study.name!r} after {len(study.trials)} "
              f"trials{'; waiting for its running trials to end' if resumes else ''}")  # a note, not an error
        if resumes:
            try:
                study.wait()
            except KeyboardInterrupt:  # not "paused" (_block's words): this search was stopped
                print(f"study {study.name!r} is stopping: its running trials end at their next report; "
                      f"re-run this cell once they have", file=sys.stderr)
                raise


def _is_line_command(raw_cell: str) -> bool:
    """Whether a cell is a ``%hptune`` line command, after any blank or comment lines."""
    return re.match(r"(\s*#[^\n]*\n)*\s*%hptune\s", raw_cell) is not None


def _wait_for_headless(info: Any = None) -> None:
    """pre_run_cell: a later cell must see complete results when no frontend shows the panel."""
    if _is_line_command(getattr(info, "raw_cell", None) or ""):
        return  # `%hptune stop NAME` must be able to reach a search it would otherwise wait for
    for launch in list(_STUDIES.values()):
        if launch.pending and not launch.rendered:
            launch.start()  # --edit with no frontend to click Start: run the space as declared
        if launch.background and launch.study.running and not launch.rendered:
            try:
                _block(launch.study)
            except KeyboardInterrupt:
                return  # the study is paused and the message printed; let the cell run


def _check_options(args: argparse.Namespace, shell: Any) -> None:
    """Everything about the options that can be refused before the cell is even parsed."""
    if args.maximize is not None and args.minimize is not None:
        raise UsageError("give --maximize or --minimize, not both")
    if args.name is not None and not args.name.strip():
        raise UsageError("--name must not be empty")
    if args.output is not None and not args.output.isidentifier():
        raise UsageError(f"-o needs a variable name, but got {args.output!r}")
    problem = placement_problem(args.gpus, args.per_gpu, args.executor) or missing_gpu_problem(args.gpus)
    if problem:
        raise UsageError(problem)
    if args.edit:
        if args.wait:
            raise UsageError("--edit waits for Start on the panel, and --wait would block the click: use one")
        if not _in_kernel(shell) or _dashboard_class() is None:
            raise UsageError("--edit needs the widget panel (hpwidgets.ui) in a notebook frontend")


def _direction(args: argparse.Namespace, parsed: ParsedCell, line: str) -> tuple[dict[str, Any], str]:
    """(Study direction keywords, the namespace key the objective returns)."""
    flag = "maximize" if args.maximize is not None else "minimize"
    named = getattr(args, flag)
    if isinstance(named, str):
        if not named.isidentifier() or named not in parsed.assigned:
            raise UsageError(f"line 1: --{flag} {named}: the cell never sets a variable named {named!r}; "
                             f"assign it (e.g. `{named} = evaluate(model)`) or name another variable")
        return {flag: named}, named
    if parsed.metric is None:
        raise UsageError(f"line 1: %%hptune {line}: no metric: end the cell with the value to optimise "
                         f"(e.g. `accuracy`) or pass --maximize NAME / --minimize NAME")
    if re.match(r"print\s*\(", parsed.metric):  # a teacher's habit; every trial would fail with None
        raise UsageError(f"line {parsed.body.body[-1].lineno}: {parsed.metric}: print() returns None, so no "
                         f"trial would have a value to optimise: end the cell with the value itself "
                         f"or pass --maximize NAME / --minimize NAME")
    # A last expression that is a plain name labels the study's target like --maximize NAME would.
    return {flag: parsed.metric if parsed.metric.isidentifier() else True}, LAST


def _make_study(args: argparse.Namespace, parsed: ParsedCell, direction: dict[str, Any]) -> Study:
    try:
        return Study(args.name, parsed.space, args.algo, seed=args.seed, storage=storage_path(args.storage),
                     pruner=args.prune, max_failures=args.max_failures, **direction)
    except ImportError as error:
        algo = args.algo or "(the stored study's)"
        raise UsageError(f"--algo {algo} needs the package {error.name!r}: pip install {error.name}") from None
    except ValueError as error:  # StorageError included: unwritable file, a conflicting stored study
        raise UsageError(str(error)) from None


@magics_class
class HPTuneMagics(Magics):
    @magic_arguments()
    @argument("--algo", choices=ALGORITHMS, type=unquote,
              help="search algorithm (default: tpe, or what a resumed study last ran)")
    @argument("--prune", default="none", choices=PRUNERS, type=unquote,
              help="stop trials early from hp.report: asha | median")
    @argument("--trials", type=positive(int), default=20, help="trials in total, resumed ones included (default 20)")
    @argument("--maximize", nargs="?", const=True, type=unquote, metavar="NAME",
              help="maximise NAME (alone: the last expression)")
    @argument("--minimize", nargs="?", const=True, type=unquote, metavar="NAME",
              help="minimise NAME (default: the last expression)")
    @argument("--name", type=unquote, help="study name; re-running with the same name resumes it")
    @argument("--storage", type=unquote, default="hptune.db",
              help="SQLite file (default hptune.db), or `none` to keep it in memory")
    @argument("--seed", type=int, help="random seed, for reproducible suggestions")
    @argument("--parallel", type=positive(int), default=1, help="trials at once, on threads")
    @argument("--timeout", type=positive(float), help="stop starting trials after this many seconds")
    @argument("--max-failures", type=positive(int), help=MAX_FAILURES_HELP)
    @argument("--wait", action="store_true", help="block until the search ends")
    @argument("--edit", action="store_true", help="show the sliders and wait for Start")
    @argument("-o", dest="output", type=unquote, metavar="VAR", help="store the Study in variable VAR")
    @argument("--gpus", default="auto", type=unquote, help=GPUS_HELP)
    @argument("--per-gpu", default="1", type=unquote, help=PER_GPU_HELP)
    @argument("--executor", default="thread", type=unquote, help=EXECUTOR_HELP)
    @line_cell_magic
    def hptune(self, line: str, cell: str | None = None) -> None:
        """Tune the hyperparameters the cell declares; each trial runs the cell body once.

        Declare with ``lr = hp.loguniform(1e-4, 1e-1)`` or ``m = 0.1  # @hp uniform(0.01, 0.99)``
        (distributions: uniform, loguniform, quniform, int, choice, budget). Inside the cell
        ``hp.report(step=..., **metrics)`` (with ``--prune asha`` it may stop the trial),
        ``hp.checkpoint_dir`` (this config's folder, for a promoted config to resume) and
        ``device`` are available. Line commands::

            %hptune list [--storage F]         studies in the storage
            %hptune show NAME                  the panel of a running or stored study
            %hptune stop NAME | resume NAME    control a study running in this session
            %hptune report NAME [--path P]     the HTML report
            %hptune clean NAME [--all]         remove its checkpoint folders (but the best trial's)
        """
        if cell is None:
            self._command(line)
        else:
            self._tune(line, cell)

    def _tune(self, line: str, cell: str) -> None:
        args = parse_magic_line(lambda text: parse_argstring(self.hptune, text), "%%hptune", line)
        _check_options(args, self.shell)
        parsed = self._parse(line, cell)
        direction, key = _direction(args, parsed, line)
        run = _cell_run(self.shell)
        _replace_this_cells_search(args.name, run)
        if args.name in _STUDIES and _STUDIES[args.name].study.running:
            raise UsageError(f"study {args.name!r} is still running; `%hptune stop {args.name}` first, "
                             f"or wait for it, then re-run this cell to continue it")
        launch = _Launch(_make_study(args, parsed, direction),
                         CellObjective(parsed.code, self._namespace(args), key), args, cell_run=run)
        study = launch.study
        if args.output:
            self.shell.user_ns[args.output] = study
        _STUDIES[study.name] = launch
        launch.background = _in_kernel(self.shell) and not args.wait
        if _in_kernel(self.shell):
            if args.edit:  # the panel shows "0/25 trials" before Start, not the 0/0 of a study never run
                study.n_target = max(args.trials, len(study.trials))
            launch.dashboard = _show_dashboard(study, launch.start, edit=args.edit)
        if args.edit and launch.dashboard is not None:
            launch.pending = True  # Start on the panel calls launch.start()
            return
        try:
            launch.start()
        except ClusterError as error:  # a wrong --executor address: the user's input, not our bug
            raise UsageError(str(error)) from None
        if not launch.background:
            _block(study)
            print(_summary(study))

    def _namespace(self, args: argparse.Namespace) -> dict[str, Any]:
        """A snapshot of the user's namespace; only its picklable part for processes or Dask."""
        namespace = dict(self.shell.user_ns)
        return namespace if runner_of(args.executor) is None else portable_namespace(namespace)

    def _parse(self, line: str, cell: str) -> ParsedCell:
        """Parse with line numbers as the user sees them (the %%hptune line is line 1)."""
        # IPython drops a cell's leading blank lines: transform the rest, then put them back.
        lines = cell.splitlines(keepends=True)
        blank = next((i for i, text in enumerate(lines) if text.strip()), len(lines))
        transform = self.shell.input_transformer_manager.transform_cell  # `!cmd`, `%magic` lines
        try:
            source = "".join(lines[:blank]) + transform("".join(lines[blank:]))
        except SyntaxError:  # e.g. an inconsistent dedent: let parse() name the line itself
            source = cell
        if len(source.splitlines()) != len(cell.splitlines()):
            source = cell  # a transform that moved lines would misplace every error: use the raw text
        filename = self.shell.compile.cache(f"%%hptune {line}\n{cell}", self.shell.execution_count)
        try:
            return parse(source, first_line=2, filename=filename)
        except CellError as error:
            raise UsageError(str(error)) from None

    # --- line commands --------------------------------------------------------------------------
    def _command(self, line: str) -> None:
        refuse_tuning_options(line)
        args = parse_magic_line(LINE.parse_argstring, "%hptune", line)
        if args.command == "list":
            print(study_table(storage_path(args.storage), {n: launch.study for n, launch in _STUDIES.items()}))
            return
        if not args.name:
            raise UsageError(f"`%hptune {args.command}` needs a study name, e.g. `%hptune {args.command} mnist`")
        launch = _STUDIES.get(args.name)
        if args.command in ("stop", "resume"):
            control(args.command, args.name, launch.study if launch else None)
            return
        study = launch.study if launch else stored_study(args.name, storage_path(args.storage))
        if args.command == "report":
            from .report import report_file_name
            write_report(study, args.path or report_file_name(study.name))
        elif args.command == "clean":
            clean(study, keep_best=not args.all)
        elif _in_kernel(self.shell) and _dashboard_class() is not None:
            board = _show_dashboard(study, launch.start if launch else None, edit=False)
            if launch is not None and board is not None:
                launch.dashboard = board  # re-attached: this panel now decides the headless wait
        else:
            print(_summary(study))


def _show_dashboard(study: Study, on_start: Callable[[], None] | None, edit: bool) -> Any:
    """The panel, shown; None without hpwidgets.ui or when it fails (the search goes on)."""
    if (board_class := _dashboard_class()) is None:
        return None
    try:
        board = board_class(study, on_start=on_start, edit=edit)
        board.show()
    except Exception as error:  # a broken panel must not cost the search
        print(f"hpwidgets: the panel failed ({type(error).__name__}: {error}); showing a progress bar",
              file=sys.stderr)
        return None
    return board


def load_ipython_extension(ip: Any) -> None:
    """Register the magics, the headless-wait hook, and ``hp`` (unless the user has their own)."""
    ip.register_magics(HPTuneMagics)
    unload_ipython_extension(ip)  # %reload_ext: never two hooks
    ip.events.register("pre_run_cell", _before_cell)
    if "hp" not in ip.user_ns:  # helpers in other cells may call hp.report(); never shadow hyperopt's hp
        ip.push({"hp": hp}, interactive=False)


def unload_ipython_extension(ip: Any) -> None:
    _CELL["id"] = None
    if _before_cell in ip.events.callbacks.get("pre_run_cell", []):
        ip.events.unregister("pre_run_cell", _before_cell)
