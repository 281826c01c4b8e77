"""The `genrec` command line. Each sub-command maps onto one typed library function.

This package is the only code that reads ``sys.argv`` or the environment. Commands live
in one module per concern (data, training, evaluation, serving) and register on ``app``.
"""

from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape

from ..errors import GenrecError

app = typer.Typer(
    name="genrec",
    help="Generative recommendation with large language models (GenRec).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class _Console(Console):
    """Rich's console, except that it never wraps when writing to a pipe or a file.

    Rich takes the width of a non-terminal from COLUMNS, any terminal among the standard
    streams, or else 80, and then breaks table rows and long lines to fit; in a log or
    under ``| grep`` a row must stay one line. Rules and expanding panels would fill this
    width: print those with an explicit ``width=`` when not on a terminal.
    """

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self.is_terminal or self.is_jupyter:
            return size
        return ConsoleDimensions(PIPE_WIDTH, size.height)

    @size.setter
    def size(self, new_size) -> None:
        Console.size.fset(self, new_size)


#: the width of output that is not a terminal: wider than any table genrec prints
PIPE_WIDTH = 10_000
#: progress and messages go to stderr, results to stdout
console = _Console(stderr=True)
out = _Console()


@contextmanager
def status(message: str):
    """A spinner on a terminal; elsewhere (where rich shows nothing) a plain line at the
    start and at each update."""
    if not console.is_terminal:
        console.print(f"{message} ...", markup=False, highlight=False, soft_wrap=True)
        yield lambda msg: console.print(f"{message}: {msg}", markup=False, highlight=False, soft_wrap=True)
        return
    with console.status(message) as st:
        yield lambda msg: st.update(f"{message}: {msg}")


def fail(e: GenrecError) -> NoReturn:
    """Print a GenrecError as `error:` / `fix:` lines and exit with status 2."""
    console.print(f"[bold red]error:[/] {escape(e.problem)}", highlight=False, soft_wrap=True)
    if e.fix:
        console.print(f"[bold]fix:[/] {escape(e.fix)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _register() -> None:
    # imported for their @app.command side effects
    from . import data  # noqa: F401
    for optional in ("train", "evaluate", "quickstart", "serve", "recommend", "cold", "push", "export"):
        try:
            __import__(f"{__name__}.{optional}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{optional}":
                raise


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # genrec's own warnings (e.g. plot.png skipped without matplotlib) as one plain line
    # like its errors; other libraries' warnings as Python prints them
    if Path(filename).resolve().is_relative_to(_PACKAGE_DIR):
        console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_python_showwarning = warnings.showwarning


def main() -> None:
    warnings.showwarning = _show_warning
    _register()
    try:
        app()
    except GenrecError as e:  # raised outside a command's own handler
        console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        sys.exit(2)
