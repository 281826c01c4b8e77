"""genrec._io's atomic writes: modes that follow the umask, and leftovers of killed writers.

Issue 12, item 9: dataset and run folders were created 0700 and files 0600
(``tempfile``'s modes), so teammates on a shared disk could not read them; and the
``.NAME.tmp-*`` / ``.NAME.old-PID`` siblings a ``kill -9`` leaves were never removed.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genrec import _io
from genrec._io import HOST, atomic_dir, atomic_file, remove_leftovers, write_json

pytestmark = pytest.mark.skipif(os.name != "posix", reason="modes and PIDs as on POSIX")


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture(params=[0o022, 0o077, 0o002], ids=["022", "077", "002"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    try:
        os.kill(p.pid, 0)
    except ProcessLookupError:
        return p.pid
    pytest.skip("the PID of an exited process was reused at once")


# ---------------------------------------------------------------------- modes


def test_folders_and_files_follow_the_umask(tmp_path, umask):
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("x")
    write_json(tmp_path / "f.json", {"a": 1})
    with atomic_file(tmp_path / "g.bin", "wb") as f:
        f.write(b"\0")
    assert mode(tmp_path / "out") == 0o777 & ~umask  # 0o755 for 022, 0o700 for 077 (was 0o700 always)
    assert mode(tmp_path / "f.json") == 0o666 & ~umask  # 0o644 for 022, 0o600 for 077 (was 0o600 always)
    assert mode(tmp_path / "g.bin") == 0o666 & ~umask


def test_replacing_keeps_the_modes_rule(tmp_path, umask):
    # a replaced folder gets the umask's mode again; a replaced file keeps its own, as open() does
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("1")
    os.chmod(tmp_path / "out", 0o750)
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("2")
    assert mode(tmp_path / "out") == 0o777 & ~umask and (tmp_path / "out" / "a.txt").read_text() == "2"
    write_json(tmp_path / "f.json", 1)
    os.chmod(tmp_path / "f.json", 0o640)
    write_json(tmp_path / "f.json", 2)
    assert mode(tmp_path / "f.json") == 0o640 and (tmp_path / "f.json").read_text() == "2\n"


def test_prepare_writes_a_dataset_others_may_read(tmp_path, monkeypatch):
    from genrec.cli import _register, app

    _register()
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o022)
    try:
        r = CliRunner().invoke(app, ["prepare", "bundled", "--out", "d"])
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.output
    assert mode(tmp_path / "d") == 0o755 and mode(tmp_path / "d" / "manifest.json") == 0o644


# ---------------------------------------------------------------------- leftovers


def leftovers(parent: Path, name: str, dead: int) -> dict[str, list[Path]]:
    """Siblings of `parent / name` as a kill -9 leaves them, and things that must stay."""
    me = os.getpid()
    gone = [
        parent / f".{name}.tmp-{dead}-{HOST}-0123abcd",
        parent / f".{name}.old-{dead}-{HOST}",
    ]
    kept = [
        parent / f".{name}.tmp-{me}-{HOST}-89abcdef",  # a live writer (this process)
        parent / f".{name}.old-{me}-{HOST}",
        parent / f".{name}.tmp-{dead}-otherhost-0123abcd",  # that PID may run there (shared disk)
        parent / f".{name}.tmp-abcd1234",  # no PID: whose it is cannot be told
        parent / f".{name}.tmp-{dead}-{HOST}-0123abcd.bak",  # not the exact pattern
        parent / f".{name}x.tmp-{dead}-{HOST}-0123abcd",  # another destination's
        parent / f".{name}.old-0-{HOST}",  # PID 0 is no process of its own
        parent / f"{name}.old-{dead}-{HOST}",  # not hidden: not ours
        parent / "keep.txt",
    ]
    return {"gone": gone, "kept": kept}


def plant(paths: list[Path], folders: bool) -> None:
    for p in paths:
        if folders:
            p.mkdir()
            (p / "part.bin").write_bytes(b"x")
        else:
            p.write_bytes(b"x")


def test_a_killed_writers_folders_go_on_the_next_write(tmp_path, dead_pid):
    found = leftovers(tmp_path, "out", dead_pid)
    plant(found["gone"] + found["kept"][:-1], folders=True)
    (tmp_path / "keep.txt").write_text("x")
    with atomic_dir(tmp_path / "out") as tmp:
        assert tmp.name.startswith(f".out.tmp-{os.getpid()}-{HOST}-")  # its own name says whose it is
        (tmp / "a.txt").write_text("new")
    assert (tmp_path / "out" / "a.txt").read_text() == "new"
    assert not any(p.exists() for p in found["gone"])
    assert all(p.exists() for p in found["kept"])


def test_a_killed_writers_files_go_on_the_next_write(tmp_path, dead_pid):
    found = leftovers(tmp_path, "f.json", dead_pid)
    plant(found["gone"] + found["kept"], folders=False)
    write_json(tmp_path / "f.json", {"a": 1})
    assert not any(p.exists() for p in found["gone"])
    assert all(p.exists() for p in found["kept"])


def test_leftovers_stay_when_the_write_fails(tmp_path, dead_pid):
    # killed between its two renames, a writer leaves the only copies in .old and .tmp:
    # they may go only once the destination is complete again
    found = leftovers(tmp_path, "out", dead_pid)
    plant(found["gone"], folders=True)
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "out"):
        raise RuntimeError("bad input")
    assert all(p.exists() for p in found["gone"])
    assert not (tmp_path / "out").exists()


def test_replacing_an_output_names_the_old_one_with_pid_and_host(tmp_path, monkeypatch):
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("1")
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append(Path(dst).name)
        return real(src, dst)

    monkeypatch.setattr(_io.os, "replace", spy)
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("2")
    assert f".out.old-{os.getpid()}-{HOST}" in seen
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_remove_leftovers_reports_what_it_removed(tmp_path, dead_pid):
    found = leftovers(tmp_path, "out", dead_pid)
    plant(found["gone"], folders=True)
    assert sorted(remove_leftovers(tmp_path / "out")) == sorted(found["gone"])
    assert remove_leftovers(tmp_path / "missing-parent" / "out") == []


def test_a_download_follows_the_umask_and_clears_killed_parts(tmp_path, dead_pid):
    import hashlib
    import zipfile

    from genrec.data.sources.download import download_movielens

    server = tmp_path / "server"
    server.mkdir()
    with zipfile.ZipFile(server / "ml-1m.zip", "w") as z:
        z.writestr("ml-1m/ratings.dat", "1::1::5::978300760\n")
    digest = hashlib.md5((server / "ml-1m.zip").read_bytes()).hexdigest()
    (server / "ml-1m.zip.md5").write_text(f"MD5 (ml-1m.zip) = {digest}\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f".ml-1m.zip.tmp-{dead_pid}-{HOST}-0123abcd").write_bytes(b"half a zip")  # a killed download
    old = os.umask(0o022)
    try:
        path = download_movielens("ml-1m", cache, base_url=server.as_uri())
    finally:
        os.umask(old)
    assert mode(path) == 0o644  # a shared cache (was 0o600)
    assert sorted(p.name for p in cache.iterdir()) == ["ml-1m.zip"]
