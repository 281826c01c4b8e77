"""Settings on the command line: one style, ``--set KEY=VALUE``, for every command that
takes config settings (``genrec train``: the training config's fields; ``genrec
evaluate``: the method's). Values are read by :func:`genrec.config.parse_overrides`.

A setting written another way (``--lr 1e-3``, or a bare ``lr=1e-3`` as ``genrec train``
once took them) is an error that shows the ``--set`` spelling, exit status 2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import click
from typer.core import TyperCommand

from ..errors import GenrecError
from . import fail

try:  # typer 0.2x parses with its own copy of click, whose exceptions are its own classes
    from typer._click.exceptions import NoSuchOption as _TyperNoSuchOption
except ImportError:  # older typer runs on click itself
    _TyperNoSuchOption = click.NoSuchOption
_NO_SUCH_OPTION = (click.NoSuchOption, _TyperNoSuchOption)

#: context settings of a command built with :func:`settings_command`: extra positional
#: arguments reach its parse_args, which names them as settings written without --set
CONTEXT = {"allow_extra_args": True}


def settings_command(settings: Callable[[], Iterable[str]]) -> type[TyperCommand]:
    """A command class (``@app.command(cls=..., context_settings=CONTEXT)``) that answers a
    setting written as an option or as a positional ``KEY=VALUE`` with its ``--set`` form.

    `settings` lists the keys ``--set`` takes; it is called only on such an error (it may
    import what the help does not need)."""

    class SettingsCommand(TyperCommand):
        def parse_args(self, ctx, args: list[str]) -> list[str]:
            given = list(args)  # click's parser consumes the list it is given
            try:
                rest = super().parse_args(ctx, args)
            except _NO_SUCH_OPTION as e:
                found = as_set(e.option_name, given, settings)
                if found is None:
                    raise
                key, written = found
                fail(GenrecError(f"{e.option_name} is not an option of `{ctx.command_path}`: {key} is a setting",
                                 f"write {written}"))
            if ctx.args and not ctx.resilient_parsing:
                pairs = [a for a in ctx.args if "=" in a]
                if len(pairs) < len(ctx.args):  # not settings: click's own message
                    ctx.fail(f"Got unexpected extra argument{'s' if len(ctx.args) > 1 else ''} ({' '.join(ctx.args)})")
                fail(GenrecError(
                    f"settings are given with --set, not as positional KEY=VALUE arguments: {' '.join(pairs)}",
                    "write " + " ".join(f"--set {p}" for p in pairs) + f" (`{ctx.command_path} --fields` lists the settings)",
                ))
            return rest

    return SettingsCommand


def as_set(option: str, args: list[str], settings: Callable[[], Iterable[str]]) -> tuple[str, str] | None:
    """The setting an unknown `option` names and its ``--set`` form (``--max-minutes 5`` →
    ``--set max_minutes=5``; ``--no-KEY`` → ``--set KEY=false``), or None."""
    key = option.lstrip("-").replace("-", "_")
    names = set(settings())
    if key not in names:
        if key.startswith("no_") and key[3:] in names:
            return key[3:], f"--set {key[3:]}=false"
        return None
    value = "VALUE"
    for i, arg in enumerate(args):
        if arg.startswith(f"{option}="):
            value = arg.split("=", 1)[1]
            break
        if arg == option:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
            break
    return key, f"--set {key}={value}"
