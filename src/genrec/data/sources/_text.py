"""Helpers shared by the source readers: decoding, years in titles, finding bad lines.

Readers parse with polars on the fast path. When polars rejects a file (or leaves a
required field empty) they call :func:`first_bad_line`, a slow line-by-line scan that
runs only on failure and names the line a person has to fix.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import polars as pl

from ...errors import DataFormatError
from ..catalogue import YEAR_AT_END, YEAR_AT_END_PATTERN

GZIP_MAGIC = b"\x1f\x8b"


def year_from_title(title: pl.Expr) -> pl.Expr:
    """The year in a title's trailing "(YYYY)" as Int32, else null."""
    return title.str.extract(YEAR_AT_END_PATTERN, 1).cast(pl.Int32, strict=False)


def has_year(title: str) -> bool:
    return YEAR_AT_END.search(title) is not None


def decode_text(data: bytes) -> str:
    """UTF-8 when the bytes are valid UTF-8, else Latin-1.

    GroupLens wrote ml-100k and ml-1m in Latin-1 and later sets in UTF-8; Latin-1 text
    with accents is almost never valid UTF-8, so trying UTF-8 first tells them apart.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def not_utf8(data: bytes, label: str) -> DataFormatError | None:
    """The error naming the first line of `data` that is not UTF-8, or None if all are.

    Readers that read with polars' ``utf8-lossy`` call this when a U+FFFD shows up: bad
    bytes must not silently become a replacement character (a user id with one would
    become a second user), while a real U+FFFD in UTF-8 text is kept.
    """
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError as e:
        start = data.rfind(b"\n", 0, e.start) + 1
        end = data.find(b"\n", e.start)
        line = data[start:end if end >= 0 else len(data)].decode("utf-8", errors="replace").rstrip("\r")
        shown = line if len(line) <= 120 else line[:117] + "..."
        n = data.count(b"\n", 0, e.start) + 1
        return DataFormatError(
            f"{label} line {n} is not UTF-8 text "
            f"(byte 0x{data[e.start]:02x} at column {e.start - start + 1}): {shown!r}",
            "save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 FILE > NEW` (if it was Latin-1)",
        )


def check_utf8(df: pl.DataFrame, data: Callable[[], bytes], label: str) -> None:
    """Refuse a table read with ``utf8-lossy`` whose file held bytes that are not UTF-8."""
    text = [c for c, t in df.schema.items() if t == pl.Utf8]
    if not text or not df.select(pl.any_horizontal(pl.col(text).str.contains("\ufffd", literal=True)).any()).item():
        return
    error = not_utf8(data(), label)
    if error is not None:
        raise error


def read_bytes(path: Path) -> bytes:
    """A file's bytes, gunzipped when it starts with the gzip magic number."""
    data = path.read_bytes()
    if data[:2] == GZIP_MAGIC:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise DataFormatError(
                f"{path} looks gzipped but cannot be decompressed: {e}",
                "the file is damaged or truncated; download it again",
            ) from e
    return data


def open_lines(path: Path) -> Iterator[bytes]:
    """Iterate over a (possibly gzipped) file's lines as bytes, streaming."""
    with open(path, "rb") as raw:
        magic = raw.read(2)
        raw.seek(0)
        stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw) if magic == GZIP_MAGIC else raw
        try:
            yield from stream
        except (OSError, EOFError) as e:
            raise DataFormatError(
                f"{path} cannot be read to the end: {e}",
                "the file is damaged or truncated; download it again",
            ) from e


def first_bad_line(
    lines: Iterable[str], check: Callable[[str], str | None], start: int = 1
) -> tuple[int, str, str] | None:
    """The first non-blank line that `check` rejects: (line number, line, reason)."""
    for n, line in enumerate(lines, start):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        reason = check(line)
        if reason is not None:
            return n, line, reason
    return None


def field_checker(sep: str, n_fields: int, numeric: dict[int, type]) -> Callable[[str], str | None]:
    """A line check: exactly `n_fields` fields split by `sep`, some of them numbers."""

    def check(line: str) -> str | None:
        parts = line.split(sep)
        if len(parts) != n_fields:
            return f"{len(parts)} fields separated by {sep!r}, expected {n_fields}"
        for i, kind in numeric.items():
            try:
                kind(parts[i])
            except ValueError:
                return f"field {i + 1} is {parts[i]!r}, not a number"
        return None

    return check


def malformed(label: str, found: tuple[int, str, str], fix: str) -> DataFormatError:
    n, line, reason = found
    shown = line if len(line) <= 120 else line[:117] + "..."
    return DataFormatError(f"{label} line {n} is malformed ({reason}): {shown!r}", fix)
