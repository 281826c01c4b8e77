"""The persisted catalogue changes: net-change bookkeeping, refusals, and a process killed mid-write."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from genrec.data.catalogue import Catalogue
from genrec.data.live_catalogue import CatalogueChanges, ChangeStore, LiveCatalogue, fingerprint
from genrec.errors import GenrecError
from tests._util import REPO

BASE = Catalogue(["a", "b", "c"], ["Alpha (2001)", "Beta (2002)", "Gamma (2003)"])
FP = fingerprint(BASE, "toy")


def test_net_changes_follow_adds_and_removes():
    c = CatalogueChanges().after_add([("n1", "New One"), ("n2", "New Two")])
    c = c.after_remove(["n1", "b"], BASE.index_of_id)  # an added item vanishes; a dataset item is recorded
    assert c.added == {"n2": "New Two"} and c.removed == ("b",)
    c = c.after_add([("b", "Beta (2002)")])  # a dataset item back, under its id
    assert list(c.added) == ["n2", "b"] and c.removed == ("b",)
    assert not CatalogueChanges() and c


def test_live_catalogue_lookups():
    cat = LiveCatalogue(BASE.item_ids, BASE.titles)
    cat.add(["n1"], ["New One (2024)"], [3])
    cat.remove([1])
    assert cat.lookup("n1") == 3 and cat.lookup("new one (2024)") == 3 and cat.lookup("  Alpha   (2001)") == 0
    assert cat.lookup("Beta (2002)") == 1  # removed items still resolve (histories may name them)
    assert cat.live_index("b") is None and cat.live_index("n1") == 3 and cat.n_live == 3
    assert cat.suggest("Bet") == []  # removed titles are not suggested
    assert cat.suggest("Gama") == ["Gamma (2003)"]
    with pytest.raises(GenrecError, match="out of step"):
        cat.add(["n2"], ["X"], [9])


def test_saved_changes_load_back(tmp_path):
    store = ChangeStore(tmp_path / "changes.json", FP)
    assert store.load() == CatalogueChanges()  # no file yet: no changes
    changes = CatalogueChanges({"n1": "New One"}, ("a",))
    store.save(changes)
    assert ChangeStore(tmp_path / "changes.json", FP).load() == changes
    data = json.loads((tmp_path / "changes.json").read_text())
    assert data["format"] == 1 and data["dataset"] == FP


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"format": 7}', "format 1"),
        (json.dumps({"format": 1, "dataset": fingerprint(Catalogue(["z"], ["Z"]), "other"), "added": [], "removed": []}), "made on dataset 'other'"),
        (json.dumps({"format": 1, "dataset": FP, "added": [{"id": 1}], "removed": []}), "damaged"),
    ],
)
def test_unusable_files_are_refused_with_a_fix(tmp_path, content, message):
    (tmp_path / "changes.json").write_text(content)
    with pytest.raises(GenrecError, match=message) as e:
        ChangeStore(tmp_path / "changes.json", FP).load()
    assert e.value.fix


def test_a_process_killed_while_saving_leaves_the_previous_state(tmp_path):
    """Kill the writer at the worst moments: after writing the new file, before the rename, and mid-write."""
    path = tmp_path / "changes.json"
    for kill_at in ("replace", "fsync"):
        script = textwrap.dedent(f"""
            import os
            from genrec.data.catalogue import Catalogue
            from genrec.data.live_catalogue import CatalogueChanges, ChangeStore, fingerprint
            store = ChangeStore({str(path)!r}, fingerprint(Catalogue(["a", "b", "c"], ["Alpha (2001)", "Beta (2002)", "Gamma (2003)"]), "toy"))
            store.save(CatalogueChanges({{"n1": "New One"}}))
            os.{kill_at} = lambda *a, **k: os._exit(9)  # the process dies here, as under kill -9
            store.save(CatalogueChanges({{"n1": "New One", "n2": "New Two"}}, ("a",)))
        """)
        done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 9, done.stderr
        assert ChangeStore(path, FP).load() == CatalogueChanges({"n1": "New One"})
        leftovers = list(tmp_path.glob(".changes.json.tmp-*"))
        assert leftovers  # the killed writer's temporary file: ignored by readers, never renamed
        for f in leftovers:
            f.unlink()
