"""Readers for real data formats; each returns a :class:`~genrec.data.tables.SourceData`.

``read_source(format, path, **options)`` dispatches on the `genrec prepare` FORMAT.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import GenrecError
from ..tables import SourceData

FORMATS = ("movielens", "recbole", "amazon", "genrec-json", "table", "bundled")


def _reader(fmt: str) -> Callable[..., SourceData]:
    # Imported lazily so a broken optional reader never blocks the others.
    if fmt == "movielens":
        from .movielens import read_movielens

        return read_movielens
    if fmt == "recbole":
        from .recbole import read_recbole

        return read_recbole
    if fmt == "amazon":
        from .amazon import read_amazon

        return read_amazon
    if fmt == "genrec-json":
        from .genrec_json import read_genrec_json

        return read_genrec_json
    if fmt == "table":
        from .table import read_table

        return read_table
    if fmt == "bundled":
        from .bundled import read_bundled

        return read_bundled
    raise GenrecError(
        f"unknown format {fmt!r}", f"use one of: {', '.join(FORMATS)}"
    )


def read_source(fmt: str, path: str | Path | None, **options: Any) -> SourceData:
    """Read `path` in format `fmt` into the canonical tables."""
    reader = _reader(fmt)
    if fmt == "bundled":
        return reader(path, **options)
    if path is None:
        raise GenrecError(
            f"format {fmt!r} needs a PATH",
            "give the file or folder to read, or use `genrec prepare bundled` for the shipped data",
        )
    p = Path(path)
    if not p.exists():
        raise GenrecError(f"{p} does not exist", "check the path (relative paths are from the current folder)")
    return reader(p, **options)
