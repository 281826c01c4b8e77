"""Atomic writes: bad input or an interrupted run never corrupts an earlier output.

Everything genrec writes goes to a temporary sibling first and is renamed into place,
so a reader sees either the old complete output or the new complete one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import GenrecError


def _check_parent(path: Path) -> None:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GenrecError(
            f"cannot create the folder {parent}: {e.strerror}",
            "choose an output path in a folder you can write to",
        ) from e
    if not os.access(parent, os.W_OK):
        raise GenrecError(
            f"the folder {parent} is not writable",
            "choose an output path in a folder you can write to",
        )


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary folder that replaces `path` only if the block succeeds.

    On any exception the temporary folder is removed and an existing `path` is left
    exactly as it was.
    """
    path = Path(path)
    _check_parent(path)
    if path.exists() and not overwrite:
        raise GenrecError(f"{path} already exists", "pass --overwrite or choose another --out")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{os.getpid()}"
        os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temporary sibling of `path` for writing; rename it over `path` on success."""
    path = Path(path)
    _check_parent(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_file(path) as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, default=_json_default)
        f.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as e:
        raise GenrecError(f"{path} does not exist", "check the path") from e
    except json.JSONDecodeError as e:
        raise GenrecError(
            f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})",
            "the file is damaged; recreate it with the command that wrote it",
        ) from e


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
