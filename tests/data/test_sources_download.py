"""Downloading a MovieLens zip with its checksum, served from a local file:// folder."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from genrec.data.sources.download import default_cache_dir, download_movielens
from genrec.data.sources.movielens import read_movielens
from genrec.errors import GenrecError
from tests._util import fixture_dir

FIXTURES = fixture_dir("movielens")


@pytest.fixture
def server(tmp_path) -> Path:
    """A folder laid out like files.grouplens.org/datasets/movielens, with ml-1m.zip and its .md5."""
    root = tmp_path / "server"
    root.mkdir()
    with zipfile.ZipFile(root / "ml-1m.zip", "w") as z:
        for f in sorted((FIXTURES / "ml-1m").iterdir()):
            z.write(f, f"ml-1m/{f.name}")
    digest = hashlib.md5((root / "ml-1m.zip").read_bytes()).hexdigest()
    (root / "ml-1m.zip.md5").write_text(f"MD5 (ml-1m.zip) = {digest}\n")  # GroupLens's form
    return root


def test_download_verifies_md5_and_the_zip_reads(tmp_path, server):
    dest = tmp_path / "cache"
    path = download_movielens("ml-1m", dest, base_url=server.as_uri())
    assert path == dest / "ml-1m.zip"
    assert path.read_bytes() == (server / "ml-1m.zip").read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == ["ml-1m.zip"]  # no temporary left
    assert read_movielens(path).interactions.height == 10


def test_a_cached_zip_is_reused_without_the_network(tmp_path, server):
    dest = tmp_path / "cache"
    first = download_movielens("ml-1m", dest, base_url=server.as_uri())
    (server / "ml-1m.zip").unlink()
    assert download_movielens("ml-1m", dest, base_url=server.as_uri()) == first


def test_md5_mismatch_deletes_the_download(tmp_path, server):
    (server / "ml-1m.zip.md5").write_text("MD5 (ml-1m.zip) = " + "0" * 32 + "\n")
    dest = tmp_path / "cache"
    with pytest.raises(GenrecError) as e:
        download_movielens("ml-1m", dest, base_url=server.as_uri())
    assert "MD5" in e.value.problem and "0" * 32 in e.value.problem
    assert "retry" in e.value.fix
    assert list(dest.iterdir()) == []


def test_explicit_sha256(tmp_path, server):
    good = hashlib.sha256((server / "ml-1m.zip").read_bytes()).hexdigest()
    (server / "ml-1m.zip.md5").unlink()  # not needed when the SHA-256 is given
    path = download_movielens("ml-1m", tmp_path / "a", base_url=server.as_uri(), sha256=good)
    assert path.is_file()
    with pytest.raises(GenrecError, match="SHA-256"):
        download_movielens("ml-1m", tmp_path / "b", base_url=server.as_uri(), sha256="ab" * 32)
    assert list((tmp_path / "b").iterdir()) == []


def test_md5_file_without_a_checksum(tmp_path, server):
    (server / "ml-1m.zip.md5").write_text("<html>not found</html>")
    with pytest.raises(GenrecError, match="holds no MD5 checksum"):
        download_movielens("ml-1m", tmp_path / "c", base_url=server.as_uri())


def test_unreachable_file_and_unknown_name(tmp_path, server):
    with pytest.raises(GenrecError, match="cannot download") as e:
        download_movielens("ml-25m", tmp_path / "c", base_url=server.as_uri())
    assert "pass it as PATH" in e.value.fix
    with pytest.raises(GenrecError, match="unknown MovieLens release 'ml-2m'") as e:
        download_movielens("ml-2m", tmp_path / "c", base_url=server.as_uri())
    assert "ml-25m" in e.value.fix


def test_progress_is_reported(tmp_path, server):
    seen = []
    download_movielens("ml-1m", tmp_path / "d", base_url=server.as_uri(), progress=lambda n, total: seen.append((n, total)))
    size = (server / "ml-1m.zip").stat().st_size
    assert seen[-1] == (size, size)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("GENREC_CACHE", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("GENREC_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "genrec" / "datasets"
