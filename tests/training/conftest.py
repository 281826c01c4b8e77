from __future__ import annotations

import pytest

from genrec.data import prepare, read_source


@pytest.fixture(scope="session")
def bundled_dir(tmp_path_factory):
    """The bundled ml-latest-small data set, prepared once per session (0.3 s)."""
    out = tmp_path_factory.mktemp("bundled") / "ds"
    prepare(read_source("bundled", None), out)
    return out
