"""Download a MovieLens release from GroupLens (files.grouplens.org), checksum-verified.

GroupLens publishes ``<name>.zip`` with ``<name>.zip.md5`` beside it. The zip is
streamed to a temporary file in the cache folder while its MD5 (and SHA-256) is
computed, and renamed into place only when the checksum matches, so the cache never
holds a partial or corrupt zip. A zip already in the cache was verified when it was
written and is reused. The reader takes the zip as it is (``read_movielens``), nothing
is extracted.

The cache folder is ``$GENREC_CACHE`` or ``~/.cache/genrec/datasets``
(:func:`default_cache_dir`, the one place that reads the environment here).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..._io import remove_leftovers, temp_sibling
from ...errors import GenrecError

BASE_URL = "https://files.grouplens.org/datasets/movielens"
NAMES = ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest-small")
_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """``$GENREC_CACHE`` or ``~/.cache/genrec/datasets``."""
    env = os.environ.get("GENREC_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "genrec" / "datasets"


def _open(url: str, timeout: float):
    try:
        return urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - http(s)/file URLs by design
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise GenrecError(
            f"cannot download {url}: {reason}",
            "check the network connection, or download the zip yourself and pass it as PATH "
            "(`genrec prepare movielens path/to/ml-1m.zip`)",
        ) from e


def _expected_md5(url: str, timeout: float) -> str:
    with _open(url, timeout) as r:
        text = r.read(4096).decode("ascii", errors="replace")
    # GroupLens writes "MD5 (ml-1m.zip) = c4d9...", md5sum writes "c4d9...  ml-1m.zip"
    m = re.search(r"\b([0-9a-fA-F]{32})\b", text)
    if m is None:
        raise GenrecError(
            f"{url} holds no MD5 checksum ({text[:80]!r})",
            "pass the expected SHA-256 explicitly (sha256=...), or download the zip yourself",
        )
    return m.group(1).lower()


def download_movielens(
    name: str,
    dest_dir: str | Path | None = None,
    *,
    base_url: str = BASE_URL,
    sha256: str | None = None,
    timeout: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download GroupLens's ``<name>.zip`` into `dest_dir`; return the verified zip's path.

    The zip is checked against GroupLens's ``.zip.md5`` (fetched from `base_url`), or
    against `sha256` when given. A mismatch removes the download and raises
    :class:`GenrecError`. `progress(bytes_so_far, total_or_None)` is called per chunk.
    """
    if name not in NAMES:
        raise GenrecError(f"unknown MovieLens release {name!r}", f"use one of: {', '.join(NAMES)}")
    dest = Path(dest_dir) if dest_dir is not None else default_cache_dir()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GenrecError(f"cannot create the cache folder {dest}: {e.strerror}",
                          "set GENREC_CACHE to a folder you can write to") from e
    target = dest / f"{name}.zip"
    if target.is_file() and (sha256 is None or _sha256(target) == sha256.lower()):
        return target  # it was renamed into place only after its checksum matched
    url = f"{base_url.rstrip('/')}/{name}.zip"
    expected_md5 = None if sha256 else _expected_md5(f"{url}.md5", timeout)
    md5, sha = hashlib.md5(), hashlib.sha256()
    # readable as the umask allows (a shared cache), named so a killed download's part is found
    tmp, fd = temp_sibling(target, folder=False)
    try:
        with os.fdopen(fd, "wb") as out, _open(url, timeout) as r:
            total = r.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            done = 0
            while chunk := r.read(_CHUNK):
                out.write(chunk)
                md5.update(chunk)
                sha.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        if sha256 is not None and sha.hexdigest() != sha256.lower():
            raise GenrecError(
                f"the download of {url} has SHA-256 {sha.hexdigest()}, expected {sha256.lower()}",
                "retry the download; if it persists, check the expected checksum",
            )
        if expected_md5 is not None and md5.hexdigest() != expected_md5:
            raise GenrecError(
                f"the download of {url} has MD5 {md5.hexdigest()}, but {url}.md5 says {expected_md5}",
                "retry the download (it was probably cut short or altered on the way)",
            )
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    remove_leftovers(target)  # parts of downloads that were killed
    return target


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
