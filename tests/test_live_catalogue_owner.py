"""One owner of the live catalogue (issue 13, item 4).

The GenRec recommender owns the live catalogue (ids, titles, removed items, lookups) and
changes it together with its codec and its trie, all or nothing; ``genrec.Recommender``
only resolves, persists and formats. Failures are injected midway through a change (in
the codec, the trie, the catalogue itself) and everything must be as it was.
"""

from __future__ import annotations

import pytest

from genrec.data.live_catalogue import DuplicateItemError, LiveCatalogue
from genrec.errors import GenrecError, UnknownItemError
from tests._util import requires_packaged

pytestmark = pytest.mark.usefixtures("one_thread")  # the tiny model gains nothing from threads

NEW_IDS = ["n1", "n2"]
NEW_TITLES = ["Zebra Planet (2024)", "Second Sun (2023)"]


class Injected(RuntimeError):
    """The failure a test injects midway through a change."""


def fail_before(*args, **kwargs):
    raise Injected("before the step changed anything")


def fail_after(call):
    """`call`, then a failure: the step has changed its object when the change fails."""

    def wrapper(*args, **kwargs):
        call(*args, **kwargs)
        raise Injected("after the step")

    return wrapper


class FailOnSet(dict):
    """A lookup table that fails when `key` is written: a failure in the middle of the
    catalogue's own update, after some of its lists and tables have changed."""

    def __init__(self, table: dict, key: str):
        super().__init__(table)
        self.key = key

    def __setitem__(self, key, value):
        if key == self.key:
            raise Injected("midway through the catalogue")
        super().__setitem__(key, value)


# ---------------------------------------------------------------------- the catalogue alone


def test_a_catalogue_addition_is_all_or_nothing():
    cat = LiveCatalogue(["a", "b", "c"], ["Alpha (2001)", "Beta (2002)", "Gamma (2003)"])
    cat.remove([1])
    assert cat.lookup("ALPHA (2001)") == 0  # builds the case-insensitive table an addition updates too
    before = (list(cat.item_ids), list(cat.titles), dict(cat.index_of_id), dict(cat._lower), set(cat.removed))
    cat.index_of_title = FailOnSet(cat.index_of_title, "Delta (2004)")
    titles_before = dict(cat.index_of_title)
    with pytest.raises(Injected):  # "b" comes back (overwriting the removed item's entries), then Delta fails
        cat.add(["b", "d"], ["Beta (2002)", "Delta (2004)"])
    assert (list(cat.item_ids), list(cat.titles), dict(cat.index_of_id), dict(cat._lower), set(cat.removed)) == before
    assert dict(cat.index_of_title) == titles_before and cat.n_live == 2 and len(cat) == 3
    assert cat.add(["b"], ["Beta (2002)"]) == [3] and cat.live_index("b") == 3
    assert cat.lookup("Beta (2002)") == cat.lookup("beta (2002)") == 3  # the live item answers, in any case


def test_the_catalogue_refuses_ambiguous_items_and_suggests_ids():
    cat = LiveCatalogue(["a", "b"], ["Alpha (2001)", "Beta (2002)"])
    assert not cat.changed
    for items, needle in (([("a", "New (2020)")], "already in the catalogue"),
                          ([("x", "Alpha (2001)")], "already the title of item 'a'"),
                          ([("alpha (2001)", "New (2020)")], "is the title of item 'a'"),
                          ([("x", "b")], "is the id of item"),
                          ([("x", "New (2020)"), ("x", "Other (2020)")], "given twice")):
        with pytest.raises(DuplicateItemError, match=needle):
            cat.check_new(items)
    cat.check_new([("x", "New (2020)")])  # fine, and nothing changed
    assert len(cat) == 2 and not cat.changed
    cat.remove([0])
    assert cat.changed and cat.suggest_ids("bb") == ["b"] and cat.suggest_ids("a") == []  # removed ids are not suggested
    with pytest.raises(GenrecError, match="not in the catalogue"):
        cat.remove([2])


# ---------------------------------------------------------------------- GenRec: catalogue, codec and trie


@pytest.fixture
def model(tiny_run, tiny_dataset):
    """A freshly loaded GenRec (beam decoding: its trie is built when it loads)."""
    from genrec.recommenders.genrec import GenRec

    return GenRec.load(tiny_run, tiny_dataset, beams=10)


def in_step(rec) -> list[int]:
    """Assert that the catalogue, the codec and the trie agree: one entry per index, the
    titles are what the codec writes, and exactly the live items are in the trie, each at
    its own leaf. Returns the live indices."""
    cat, codec, trie = rec.catalogue, rec.codec, rec.trie
    assert rec.item_ids is cat.item_ids and rec.titles is cat.titles
    assert len(cat.item_ids) == len(cat.titles) == len(codec) == trie.n_items
    assert codec.names == cat.titles
    live = [i for i in range(len(codec)) if cat.is_live(i)]
    assert len(trie) == cat.n_live == len(live)
    for i in range(len(codec)):
        node = trie.walk(codec.response_ids(i))
        assert (node >= 0 and int(trie.item_at([node])[0]) == i) == cat.is_live(i), i
    assert all(cat.item_ids[n] == item_id for item_id, n in cat.index_of_id.items())
    return live


def snapshot(rec) -> dict:
    """Everything a catalogue change touches, by value."""
    cat, codec, trie = rec.catalogue, rec.codec, rec.trie
    return {
        "ids": list(cat.item_ids), "titles": list(cat.titles), "removed": set(cat.removed),
        "by_id": dict(cat.index_of_id), "by_title": dict(cat.index_of_title), "lower": dict(cat._lower or {}),
        "names": list(codec.names), "tokens": [list(t) for t in codec.item_tokens],
        "trie": (trie.n_items, len(trie), trie.n_nodes, trie.max_depth, trie.nbytes),
        "trie_items": [trie.item_tokens(i) for i in range(trie.n_items)],
        "trie_live": [trie.contains(codec.response_ids(i)) for i in range(len(codec))],
    }


@requires_packaged
def test_added_and_removed_items_agree_in_catalogue_codec_and_trie(model):
    n = len(model.catalogue)
    assert model.add_items(NEW_IDS, NEW_TITLES) == [n, n + 1]
    model.remove_items([model.catalogue.index_of_id["i03"], n])  # a dataset item and a new one
    live = in_step(model)
    cat = model.catalogue
    assert cat.live_index("n2") == n + 1 and cat.live_index("n1") is None and cat.live_index("i03") is None
    assert cat.lookup("zebra planet (2024)") == n  # a removed item still resolves (histories may name it)
    # every live item can be decoded and no removed one: exact decoding over the whole catalogue
    ranked = model.recommend([[0, 1]], k=len(live), exclude_seen=False, decoding=model.decoding.with_mode("exact"))
    assert sorted(ranked.items[0].tolist()) == live
    with pytest.raises(AttributeError):
        model.item_ids = []  # read-only: the catalogue changes through add_items / remove_items only


@requires_packaged
def test_a_trie_built_after_changes_holds_the_live_items_only(tiny_run, tiny_dataset):
    # free decoding builds no trie; the first exact request builds it over a catalogue where a
    # removed title came back under a new index (the same tokens twice, which Trie.build refuses)
    from genrec.recommenders.genrec import GenRec

    rec = GenRec.load(tiny_run, tiny_dataset, beams=10, mode="free")
    assert rec.trie is None
    speed = rec.catalogue.index_of_id["i21"]
    rec.remove_items([speed])
    assert rec.add_items(["i21"], [rec.titles[speed]]) == [len(tiny_dataset.catalogue)]
    rec.decoder_for(rec.decoding.with_mode("exact"))
    assert rec.trie is not None
    in_step(rec)


@requires_packaged
@pytest.mark.parametrize("step", ["codec", "trie-before", "trie-after", "catalogue-midway"])
def test_a_failed_add_changes_nothing(model, monkeypatch, step):
    speed = model.catalogue.index_of_id["i21"]
    title = model.titles[speed]
    model.remove_items([speed])  # its id and title come back in the addition: entries the addition overwrites
    model.catalogue.lookup("no such title")  # builds the case-insensitive table an addition updates too
    before = snapshot(model)
    if step == "codec":
        monkeypatch.setattr(model.codec, "add_names", fail_after(model.codec.add_names))
    elif step == "trie-before":
        monkeypatch.setattr(model.trie, "add", fail_before)
    elif step == "trie-after":
        monkeypatch.setattr(model.trie, "add", fail_after(model.trie.add))
    else:
        monkeypatch.setattr(model.catalogue, "index_of_title", FailOnSet(model.catalogue.index_of_title, NEW_TITLES[1]))
    ids, titles = ["i21", *NEW_IDS], [title, *NEW_TITLES]
    with pytest.raises(Injected):
        model.add_items(ids, titles)
    assert snapshot(model) == before
    monkeypatch.undo()
    n = len(model.catalogue)
    assert model.add_items(ids, titles) == [n, n + 1, n + 2]  # nothing stale was left in the way
    in_step(model)


@requires_packaged
@pytest.mark.parametrize("step", ["trie-before", "trie-after", "catalogue"])
def test_a_failed_remove_changes_nothing(model, monkeypatch, step):
    model.add_items(NEW_IDS, NEW_TITLES)
    gone = [model.catalogue.index_of_id["i03"], model.catalogue.index_of_id["n1"]]
    before = snapshot(model)
    owner = model.catalogue if step == "catalogue" else model.trie
    monkeypatch.setattr(owner, "remove", fail_after(owner.remove) if step == "trie-after" else fail_before)
    with pytest.raises(Injected):
        model.remove_items(gone)
    assert snapshot(model) == before
    monkeypatch.undo()
    model.remove_items(gone)
    assert len(in_step(model)) == len(model.catalogue) - 2
    with pytest.raises(GenrecError, match="not in the catalogue"):
        model.remove_items([len(model.catalogue)])


# ---------------------------------------------------------------------- through genrec.Recommender


@requires_packaged
def test_the_recommender_rolls_back_a_change_the_model_fails_to_take(run_copy, monkeypatch):
    from genrec import Recommender

    rec = Recommender.load(run_copy)
    model = rec.model
    assert rec.catalogue is model.catalogue  # one live catalogue, not a copy
    rec.add_items([{"item_id": "keep1", "title": "Kept Film (1999)"}])
    path = run_copy / "catalogue_changes.json"
    saved = path.read_bytes()
    before = snapshot(model)

    monkeypatch.setattr(model.trie, "add", fail_after(model.trie.add))
    with pytest.raises(Injected):
        rec.add_items([{"item_id": "n1", "title": NEW_TITLES[0]}])
    assert snapshot(model) == before and len(rec) == 31
    with pytest.raises(UnknownItemError):
        rec.item("n1")
    assert path.read_bytes() == saved  # written back: the file never names what the model did not take
    monkeypatch.undo()

    monkeypatch.setattr(model.catalogue, "remove", fail_before)
    with pytest.raises(Injected):
        rec.remove_items(["keep1"])
    assert snapshot(model) == before and rec.item("keep1").title == "Kept Film (1999)"
    assert path.read_bytes() == saved
    monkeypatch.undo()

    # the same changes now go through, and a reload of the run agrees
    rec.add_items([{"item_id": "n1", "title": NEW_TITLES[0]}])
    rec.remove_items(["keep1"])
    in_step(model)
    assert "n1" in [r.item_id for r in rec.recommend(["Heat (1995)"], k=len(rec), decode="exact")]
    again = Recommender.load(run_copy)
    assert again.item("n1").title == NEW_TITLES[0] and len(again) == len(rec) == 31
    with pytest.raises(UnknownItemError):
        again.item("keep1")
