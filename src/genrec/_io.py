"""Atomic writes: bad input or an interrupted run never corrupts an earlier output.

Everything genrec writes goes to a temporary sibling first and is renamed into place,
so a reader sees either the old complete output or the new complete one.

Temporary siblings are created with mode 0o777 (folders) or 0o666 (files) less the
umask, as ``mkdir`` and ``open`` create them (``tempfile``'s 0o700 / 0o600 would keep
teammates on a shared disk out), and are named ``.NAME.tmp-PID-HOST-RANDOM``; a replaced
output waits as ``.NAME.old-PID-HOST`` until the new one is in place. Those a killed
process left behind are removed after the next successful write to ``NAME`` from the
same host (:func:`remove_leftovers`).

:func:`check_out` is the one rule for where a command may write a folder: never over a
file, an input of the same command, the current folder or one above it, or a folder
holding anything but an earlier output of the same kind (and that only when asked).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import shutil
import socket
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import GenrecError

#: the folders genrec writes, each recognised by the file only it writes there
KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "dataset": (("manifest.json",), "a dataset (genrec prepare)"),
    "run": (("run.json",), "a training run (genrec train)"),
    "evaluation": (("metrics.json",), "an evaluation (genrec evaluate)"),
    "comparison": (("comparison.json",), "a comparison (genrec compare)"),
    "quickstart": (("quickstart.json",), "a quickstart folder (genrec quickstart)"),
    # a saved model's file is named after its method
    "model": (("popularity.json", "last_item.json", "model.safetensors"), "a saved model (genrec evaluate --save-model)"),
    "recbole-export": (("recbole_export.json",), "a RecBole export (genrec export recbole)"),
    "trec-run": (("trec_export.json",), "a TREC run export (genrec export run)"),
}


#: this machine in leftover names: a PID says nothing about another host on a shared disk
HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def temp_sibling(path: Path, folder: bool) -> tuple[Path, int | None]:
    """Create ``.NAME.tmp-PID-HOST-RANDOM`` beside `path`: a folder, or a file opened for
    writing (its descriptor returned). The umask applies, as for any mkdir or open."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{HOST}-{secrets.token_hex(4)}"
        try:
            if folder:
                os.mkdir(tmp, 0o777)
                return tmp, None
            return tmp, os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _leftover_pattern(path: Path) -> re.Pattern:
    name = re.escape(path.name)
    return re.compile(rf"\.{name}\.(?:tmp-(\d+)-([A-Za-z0-9]+)-[0-9a-f]{{8}}|old-(\d+)-([A-Za-z0-9]+))")


def _dead(pid: int) -> bool:
    """True only when no process `pid` runs here (one of another user's counts as alive)."""
    if pid <= 0 or os.name != "posix":  # kill(0, 0) would mean our own group; on Windows kill terminates
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):
        return False
    return False


def remove_leftovers(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary and replaced siblings of `path` whose writer was killed.

    Only names this module gives `path` (``.NAME.tmp-PID-HOST-RANDOM``,
    ``.NAME.old-PID-HOST``) are touched, only with this host's name, and only when PID is
    no running process; anything else beside `path` stays. Returns what was removed.
    """
    path = Path(path)
    pattern = _leftover_pattern(path)
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m is None:
            continue
        pid, host = (m[1], m[2]) if m[1] is not None else (m[3], m[4])
        if host != HOST or not _dead(int(pid)):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
        removed.append(Path(entry.path))
    return removed


def kind_of(path: str | os.PathLike) -> str | None:
    """Which kind of genrec output the folder `path` holds, or None."""
    path = Path(path)
    for kind, (markers, _) in KINDS.items():
        if any((path / m).is_file() for m in markers):
            return kind
    return None


def check_out(
    path: str | os.PathLike,
    kind: str,
    inputs: Iterable[str | os.PathLike | None] = (),
    overwrite: bool = False,
) -> Path:
    """Refuse an output folder whose replacement would destroy something; returns it.

    Refused: a file; an input of the command or a folder holding one; the current
    folder or one above it; a non-empty folder that is not a genrec output of `kind`;
    an output of `kind` unless `overwrite`. Checked before any work, so a refusal costs
    nothing and changes nothing.
    """
    path = Path(path)
    what = KINDS[kind][1]
    where = path.resolve()
    if path.exists() and not path.is_dir():
        raise GenrecError(f"--out {path} is a file, not a folder", f"choose a new folder for {what}")
    for given in inputs:
        if given is None:
            continue
        src = Path(given).resolve()
        if src == where or where in src.parents:
            relation = "is" if src == where else "holds"
            raise GenrecError(
                f"--out {path} {relation} the input {given}; writing there would delete it",
                "choose an output folder outside the input",
            )
    cwd = Path.cwd().resolve()
    if where == cwd or where in cwd.parents:
        raise GenrecError(
            f"--out {path} is the current folder{'' if where == cwd else ' or a folder above it'}; it would be replaced as a whole",
            f"name a new folder for {what}, e.g. --out ./out",
        )
    if path.is_dir() and any(path.iterdir()):
        found = kind_of(path)
        if found is None:
            raise GenrecError(
                f"--out {path} is a folder that is not empty and holds no genrec output; it would be replaced as a whole",
                "choose a new or empty folder for --out",
            )
        if found != kind:
            raise GenrecError(
                f"--out {path} holds {KINDS[found][1]}, not {what}; it would be deleted",
                "choose another folder for --out",
            )
        if not overwrite:
            raise GenrecError(
                f"--out {path} already holds {what}",
                "pass --overwrite to replace it (atomically, once the new one is complete), or choose another --out",
            )
    return path


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
def atomic_dir(
    path: str | os.PathLike,
    overwrite: bool = True,
    kind: str | None = None,
    inputs: Iterable[str | os.PathLike | None] = (),
    keep_existing: bool = False,
) -> Iterator[Path]:
    """Yield a temporary folder that replaces `path` only if the block succeeds.

    On any exception the temporary folder is removed and an existing `path` is left
    exactly as it was. With `kind`, `path` must pass :func:`check_out` (before and again
    after the block, in case something else wrote there meanwhile). With `keep_existing`
    (a cache that several processes may fill at once) a folder another process put at
    `path` meanwhile is kept, since its readers may be using it, and the new one dropped.
    """
    path = Path(path)
    if kind is not None:
        check_out(path, kind, inputs, overwrite)
    elif path.exists() and not overwrite:
        raise GenrecError(f"{path} already exists", "pass --overwrite or choose another --out")
    _check_parent(path)
    tmp, _ = temp_sibling(path, folder=True)
    try:
        yield tmp
        if kind is not None:
            check_out(path, kind, inputs, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep_existing:
        _publish_unless_there(tmp, path)
    else:
        replace_dir(tmp, path)


def _publish_unless_there(new: Path, path: Path) -> None:
    try:
        os.replace(new, path)  # succeeds while `path` is absent or an empty folder
    except OSError:
        shutil.rmtree(new, ignore_errors=True)
        if not (path.is_dir() and any(path.iterdir())):
            raise
    remove_leftovers(path)


def replace_dir(new: Path, path: Path) -> None:
    """Rename the complete folder `new` to `path`; an old `path` is deleted only afterwards.

    Then the leftovers of earlier, killed writers of `path` go too: only now, since until
    `path` is complete again they may hold the only copy of it.
    """
    tmp = new
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{os.getpid()}-{HOST}"
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
    remove_leftovers(path)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temporary sibling of `path` for writing; rename it over `path` on success.

    A new file gets 0o666 less the umask; a replaced one keeps its mode, as with ``open``.
    """
    path = Path(path)
    _check_parent(path)
    tmp, fd = temp_sibling(path, folder=False)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    remove_leftovers(path)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_file(path) as f:
        f.write(dumps(obj, indent=2))
        f.write("\n")


def dumps(obj: Any, **kw: Any) -> str:
    """Standard JSON (RFC 8259): NaN and infinities, which it has no words for, become null."""
    return json.dumps(json_safe(obj), ensure_ascii=False, allow_nan=False, default=_json_default, **kw)


def json_safe(obj: Any) -> Any:
    """`obj` with every non-finite float (also numpy's) replaced by None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and hasattr(obj, "dtype") and getattr(obj, "ndim", 1) == 0:
        return json_safe(obj.item())
    return obj


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
