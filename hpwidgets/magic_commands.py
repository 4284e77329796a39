"""``%hptune`` line commands: list, show, stop, resume, report, clean (the magic parses, these act).

Errors are ``UsageError``s that name the study and the file, so the notebook shows one line.
"""

from __future__ import annotations

import os
from argparse import Namespace
from collections.abc import Callable, Mapping
from pathlib import Path

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser

from .checkpoints import CleanError, cleaned_line
from .results import best_or_none
from .study import Study

COMMANDS = ("list", "show", "stop", "resume", "report", "clean")


def unquote(text: str) -> str:
    """IPython splits magic arguments without removing quotes: `--name "my study"`."""
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" else text


def without_comment(line: str) -> str:
    """A magic line without its trailing ``# comment`` (IPython would pass it on as arguments); a
    ``#`` inside quotes or inside a word (``--name run#3``) stays."""
    quote = None
    for i, char in enumerate(line):
        if quote is not None:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


def refuse_tuning_options(line: str) -> None:
    """``%hptune --trials 30`` (one %) would read "invalid choice: '30'": say which magic tunes."""
    first = line.split(maxsplit=1)[0] if line.strip() else ""
    if first.startswith("-") and first.split("=")[0] not in LINE._option_string_actions:
        raise UsageError(f"`%hptune` (one %) manages studies: {', '.join(COMMANDS)}; to tune, start a cell with "
                         f"`%%hptune {line.strip()}` and put the code below it")


def parse_magic_line(parse: Callable[[str], Namespace], magic: str, line: str) -> Namespace:
    """``parse`` the line without its comment; an unclosed quote (IPython's splitter raises a
    ValueError for it) becomes a UsageError that shows the line."""
    try:
        return parse(without_comment(line))
    except ValueError as error:
        problem = str(error)
        raise UsageError(f"{magic} {line.strip()}: {problem[:1].lower()}{problem[1:]}") from None


LINE = MagicArgumentParser(prog="%hptune", description="Manage studies: " + ", ".join(COMMANDS) + ".")
LINE.add_argument("command", choices=COMMANDS)
LINE.add_argument("name", nargs="?", type=unquote, help="the study's name (its --name)")
LINE.add_argument("--storage", type=unquote, default="hptune.db", help="the SQLite file (default: hptune.db)")
LINE.add_argument("--path", type=unquote, help="where `report` writes its HTML file (default: NAME.html)")
LINE.add_argument("--all", action="store_true", help="`clean`: the best trial's checkpoint folder too")


def control(command: str, name: str, study: Study | None) -> None:
    """stop / resume a study running in this session."""
    if study is None or not study.running:
        ended = f" (it ended: {study.finish_reason})" if study is not None and study.finish_reason else ""
        action = "nothing to stop" if command == "stop" else "re-run its %%hptune cell (same --name) to continue it"
        raise UsageError(f"study {name!r} is not running in this session{ended}; {action}")
    (study.stop if command == "stop" else study.resume)()


def stored_study(name: str, storage: str | None) -> Study:
    if storage is None or not os.path.exists(storage):
        raise UsageError(f"no study named {name!r} in this session, and no storage file {storage!r}")
    from . import load_study
    try:
        return load_study(name, storage, read_only=True)  # shown, reported or cleaned here, never resumed
    except ValueError as error:
        raise UsageError(str(error)) from None


def write_report(study: Study, path: str) -> None:
    from .report import ReportError
    try:
        print(f"wrote {study.report(path)}")
    except ReportError as error:
        raise UsageError(str(error)) from None


def clean(study: Study, keep_best: bool) -> None:
    """Remove the study's checkpoint folders (but the best trial's when ``keep_best``)."""
    try:
        removed, freed = study.clean_checkpoints(keep_best=keep_best)
    except RuntimeError as error:  # still running: a trial may be writing its checkpoint
        raise UsageError(f"{error} (`%hptune stop {study.name}`)") from None
    except CleanError as error:  # some folder stayed: it names the first and what was removed
        raise UsageError(str(error)) from None
    print(cleaned_line(removed, freed, study.checkpoints.root, keep_best, best_or_none(study) is not None))


def study_table(storage: str | None, session: Mapping[str, Study]) -> str:
    """name, trials, best, algo, direction, status: stored studies plus this session's."""
    rows: dict[str, list[str]] = {}
    if storage is not None and os.path.exists(storage):
        from .store import Store
        try:
            store = Store(storage)
        except ValueError as error:  # a corrupted or foreign file: say so, leave it alone
            raise UsageError(str(error)) from None
        try:
            for s in store.list_studies():
                best = "-" if s.best_value is None else f"{s.best_value:.6g}"
                rows[s.name] = [s.name, str(s.n_trials), best, s.algo, s.direction, ""]
        finally:
            store.close()
    here = None if storage is None else Path(os.path.abspath(storage))
    for name, study in session.items():
        if (study.store.path if study.store else None) != here:
            continue
        status = "paused" if study.running and study.paused else "running" if study.running else ""
        if name not in rows:
            best = best_or_none(study)
            rows[name] = [name, str(len(study.trials)), "-" if best is None else f"{best.value:.6g}",
                          study.algorithm.name, study.direction, ""]
        rows[name][5] = status
    if not rows:
        return f"no studies in {storage or 'memory'}"
    table = [["name", "trials", "best", "algo", "direction", "status"], *rows.values()]
    widths = [max(len(row[i]) for row in table) for i in range(6)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table)
