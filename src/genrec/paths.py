"""Where genrec keeps converted backbones and downloads.

The one place the library reads the environment: ``GENREC_CACHE`` (else
``$XDG_CACHE_HOME/genrec``, else ``~/.cache/genrec``), so the CLI, the Python API and
the HTTP service agree on one cache, as Hugging Face's ``HF_HOME`` does.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    if override is not None:
        return Path(override)
    env = os.environ.get("GENREC_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "genrec"
