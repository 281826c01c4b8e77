"""Errors a person can act on.

Every error genrec raises on purpose names the problem and the fix (CONVENTIONS.md,
"Errors a person can act on"). Validation collects all problems and reports them
together, as litgpt's argument validation does.
"""

from __future__ import annotations


class GenrecError(Exception):
    """A problem with the user's input or environment, with a suggested fix.

    The CLI prints these without a traceback and exits with status 2.
    """

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem}\n  fix: {fix}")


class DataFormatError(GenrecError):
    """A source file is missing, malformed or in another format."""


class ConfigError(GenrecError):
    """One or more configuration values are invalid (all are listed together)."""

    def __init__(self, problems: list[str], fix: str | None = None):
        self.problems = list(problems)
        text = "invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(text, fix)


class UnknownItemError(GenrecError):
    """A title or item id that is not in the catalogue."""

    def __init__(self, unknown: list[str], suggestions: dict[str, list[str]] | None = None):
        self.unknown = list(unknown)
        self.suggestions = suggestions or {}
        lines = []
        for u in self.unknown:
            close = self.suggestions.get(u) or []
            hint = f" (did you mean: {', '.join(repr(c) for c in close)}?)" if close else ""
            lines.append(f"{u!r}{hint}")
        super().__init__(
            "not in the catalogue: " + "; ".join(lines),
            "use titles or item ids exactly as `genrec items DATA_DIR --search TEXT` lists them",
        )
