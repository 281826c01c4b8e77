"""The Python API (`genrec.Recommender`) on the tiny trained run: lookups, errors, catalogue changes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from genrec.errors import GenrecError, UnknownItemError
from tests._util import requires_packaged

pytestmark = [requires_packaged, pytest.mark.usefixtures("one_thread")]

HEAT, FARGO, CASINO = "Heat (1995)", "Fargo (1996)", "Casino (1995)"


def ids_of(result) -> list[str]:
    return [r.item_id for r in result]


def index(rec, key: str) -> int:
    return rec.catalogue.lookup(key)


# ---------------------------------------------------------------------- recommending


def test_recommends_k_distinct_catalogue_items_outside_the_history(recommender):
    from genrec import RecommendedItem

    history = [HEAT, "i05", "casino (1995)"]  # title, item id, title in another case
    result = recommender.recommend(history, k=5)
    assert len(result) == 5 and result.unknown == []
    assert all(isinstance(r, RecommendedItem) for r in result)
    assert len(set(ids_of(result))) == 5
    seen = {recommender.catalogue.item_ids[index(recommender, h)] for h in history}
    assert not seen & set(ids_of(result))
    cat = recommender.dataset.catalogue
    assert all(r.title == cat.titles[cat.index_of_id[r.item_id]] for r in result)
    scores = [r.score for r in result]
    assert scores == sorted(scores, reverse=True)


def test_titles_and_item_ids_are_interchangeable(recommender):
    by_title = recommender.recommend([HEAT, FARGO], k=5)
    cat = recommender.dataset.catalogue
    by_id = recommender.recommend([cat.item_ids[cat.lookup(HEAT)], cat.item_ids[cat.lookup(FARGO)]], k=5)
    mixed = recommender.recommend([HEAT, cat.item_ids[cat.lookup(FARGO)]], k=5)
    assert list(by_title) == list(by_id) == list(mixed)


def test_batched_equals_one_by_one(recommender):
    histories = [[HEAT], [FARGO, CASINO], ["i00", "i01", "i02"]]
    many = recommender.recommend_many(histories, k=4)
    assert len(many) == 3
    for history, batched in zip(histories, many, strict=True):
        single = recommender.recommend(history, k=4)
        assert ids_of(batched) == ids_of(single)
        np.testing.assert_allclose([r.score for r in batched], [r.score for r in single], rtol=1e-5)


def test_exact_decoding_is_never_worse_than_beam(recommender):
    beam = recommender.recommend([HEAT, FARGO], k=5)
    exact = recommender.recommend([HEAT, FARGO], k=5, decode="exact")
    assert len(exact) == 5
    # the exact top-5 is the model's true top-5: each rank scores at least what beam search found there
    for b, e in zip(beam, exact, strict=True):
        assert e.score >= b.score - 1e-6


def test_unknown_titles_are_reported_with_close_matches(recommender):
    with pytest.raises(UnknownItemError) as e:
        recommender.recommend([HEAT, "Heet", "fargo 1996"], k=3)
    assert e.value.unknown == ["Heet", "fargo 1996"]
    assert e.value.suggestions["Heet"] == [HEAT]
    assert FARGO in e.value.suggestions["fargo 1996"]
    assert "did you mean" in str(e.value)


def test_skip_policy_reports_what_it_left_out(recommender):
    result = recommender.recommend([HEAT, "Heet"], k=3, on_unknown="skip")
    assert result.unknown == ["Heet"]
    assert list(result) == list(recommender.recommend([HEAT], k=3))
    assert result.to_dict()["unknown"] == ["Heet"] and len(result.to_dict()["items"]) == 3
    with pytest.raises(UnknownItemError) as e:  # nothing known is left to recommend from
        recommender.recommend(["Heet", "Nope"], k=3, on_unknown="skip")
    assert e.value.unknown == ["Heet", "Nope"]


@pytest.mark.parametrize(
    ("history", "k", "decode", "message"),
    [
        ([], 3, None, "empty"),
        (HEAT, 3, None, "must be a list"),
        ([HEAT, 3.5], 3, None, "not a title or item id"),
        ([HEAT], 0, None, "positive integer"),
        ([HEAT], -1, None, "positive integer"),
        ([HEAT], 31, "exact", "larger than the catalogue"),
        ([HEAT], 11, "beam", "beam width"),
        ([HEAT], 3, "greedy", "unknown decoding mode"),
    ],
)
def test_bad_requests_are_refused_clearly(recommender, history, k, decode, message):
    with pytest.raises(GenrecError, match=message) as e:
        recommender.recommend(history, k=k, decode=decode)
    assert e.value.fix


def test_exact_decoding_may_exceed_the_beam_width(recommender):
    result = recommender.recommend([HEAT], k=12, decode="exact")
    assert len(result) == 12 and len(set(ids_of(result))) == 12


def test_item_and_info(recommender):
    item = recommender.item("i00")
    assert (item.item_id, item.title) == ("i00", "Star Quest (1980)")
    with pytest.raises(UnknownItemError):
        recommender.item("Star Quest (1980)")  # item() takes ids only
    info = recommender.info()
    assert info["catalogue_size"] == 30 and info["dataset"]["n_items"] == 30
    assert info["backbone"] == "tiny-random-llama" and info["decode"] == "beam" and info["beams"] == 10
    assert info["adapter"].endswith("adapter") and info["changes_file"] is None


# ---------------------------------------------------------------------- catalogue changes


NEW = {"item_id": "new1", "title": "Zebra Planet (2024)"}


def test_a_new_title_is_recommended_when_it_is_the_only_item_left(tiny_run):
    from genrec import Recommender

    rec = Recommender.load(tiny_run, persist=False)
    rec.add_items([NEW])
    rec.remove_items(rec.dataset.catalogue.item_ids)
    assert len(rec) == 1
    for mode in ("beam", "exact"):
        assert ids_of(rec.recommend([HEAT], k=1, decode=mode)) == ["new1"]  # a removed item may still be history
    with pytest.raises(GenrecError, match="larger than the catalogue"):
        rec.recommend([HEAT], k=2)


def test_exact_decoding_ranks_an_added_item_by_its_true_score(tiny_run):
    """The trie holds the new title, and exact search over it matches brute-force scoring."""
    from genrec import Recommender
    from genrec.decoding import score_items

    rec = Recommender.load(tiny_run, persist=False)
    rec.add_items([NEW])
    history = [HEAT, FARGO]
    full = rec.recommend(history, k=len(rec), decode="exact", exclude_seen=False)
    assert len(full) == 31 and ids_of(full).count("new1") == 1
    g = rec.model
    brute = score_items(g.model, g.codec, g.prompt_ids([index(rec, h) for h in history]))
    for r in full:
        assert r.score == pytest.approx(brute[rec.catalogue.index_of_id[r.item_id]], abs=1e-3)
    assert [r.score for r in full] == sorted((r.score for r in full), reverse=True)


def test_added_titles_are_cleaned_and_duplicates_refused(tiny_run):
    from genrec import Recommender
    from genrec.api import DuplicateItemError

    rec = Recommender.load(tiny_run, persist=False)
    added = rec.add_items([{"item_id": "n1", "title": "  Zebra   Planet &amp; Co (2024) "}, ("n2", "Other Film (2020)")])
    assert [a.title for a in added] == ["Zebra Planet & Co (2024)", "Other Film (2020)"]
    assert rec.item("n1").title == "Zebra Planet & Co (2024)" and len(rec) == 32
    for bad in (
        [{"item_id": "n1", "title": "Fresh (2024)"}],  # id taken
        [{"item_id": "n3", "title": HEAT}],  # title taken
        [{"item_id": "n3", "title": "A (2001)"}, {"item_id": "n3", "title": "B (2001)"}],  # id twice
        [{"item_id": "n3", "title": "A (2001)"}, {"item_id": "n4", "title": "A (2001)"}],  # title twice
    ):
        with pytest.raises(DuplicateItemError):
            rec.add_items(bad)
    eos = rec.model.tokenizer.eos_token  # a title holding it would end the moment it started
    for bad, message in (
        ([{"item_id": "n3"}], "exactly the keys"),
        ([{"item_id": "n3", "title": "   "}], "non-empty text"),
        ([{"item_id": "", "title": "T"}], "non-empty string"),
        ({"item_id": "n3", "title": "T"}, "takes a list"),
        ([{"item_id": "n3", "title": f"Bad{eos}Title"}], "end-of-text marker"),
    ):
        with pytest.raises(GenrecError, match=message):
            rec.add_items(bad)
    assert len(rec) == 32  # no refused call added anything
    with pytest.raises(UnknownItemError):
        rec.item("n3")


def test_removed_items_are_never_recommended_and_can_come_back(tiny_run):
    from genrec import Recommender

    rec = Recommender.load(tiny_run, persist=False)
    rec.remove_items(["i21", "i22"])
    full = rec.recommend([HEAT], k=len(rec), decode="exact")
    assert len(rec) == 28 and not {"i21", "i22"} & set(ids_of(full))
    assert "i21" not in ids_of(rec.recommend([HEAT], k=10))
    with pytest.raises(UnknownItemError):
        rec.item("i21")
    with pytest.raises(UnknownItemError):
        rec.remove_items(["i21"])  # already removed
    assert len(rec.recommend(["i21", "Speed (1994)"], k=3)) == 3  # still valid as history
    rec.add_items([{"item_id": "i21", "title": "Speed (1994)"}])
    assert rec.item("i21").title == "Speed (1994)"
    assert "i21" in ids_of(rec.recommend([HEAT], k=len(rec), decode="exact"))


def test_free_decoding_learns_of_added_titles(tiny_run):
    from genrec import Recommender

    rec = Recommender.load(tiny_run, persist=False, decode="free")
    rec.recommend([HEAT], k=3)  # builds the free decoder's title index
    rec.add_items([NEW])
    rec.recommend([HEAT], k=3)
    assert rec.model.codec.names[-1] == NEW["title"]
    assert rec.model.decoder_for(rec.decoding).free._index[NEW["title"]] == 30  # rebuilt, not the stale index
    # a trie mode requested later is built with the current catalogue
    assert "new1" in ids_of(rec.recommend([HEAT], k=31, decode="exact", exclude_seen=False))


def test_changes_persist_across_a_reload(run_copy):
    from genrec import Recommender

    rec = Recommender.load(run_copy)
    rec.add_items([NEW, {"item_id": "new2", "title": "Second Sun (2023)"}])
    rec.remove_items(["i03", "new2"])
    data = json.loads((run_copy / "catalogue_changes.json").read_text())
    assert data["added"] == [NEW] and data["removed"] == ["i03"]
    assert data["dataset"]["name"] == "tiny" and data["dataset"]["n_items"] == 30

    again = Recommender.load(run_copy)
    assert again.item("new1").title == NEW["title"] and len(again) == 30
    for gone in ("i03", "new2"):
        with pytest.raises(UnknownItemError):
            again.item(gone)
    full = ids_of(again.recommend([HEAT], k=len(again), decode="exact"))
    assert "new1" in full and "i03" not in full
    info = again.info()
    assert (info["items_added"], info["items_removed"]) == (1, 1)
    assert info["changes_file"] == str(run_copy / "catalogue_changes.json")


def test_a_failed_write_changes_nothing(run_copy, monkeypatch):
    """A crash between writing the temporary file and renaming it: memory and disk keep the old state."""
    from genrec import Recommender

    rec = Recommender.load(run_copy)
    rec.add_items([NEW])
    path = run_copy / "catalogue_changes.json"
    before = path.read_bytes()

    def no_rename(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(GenrecError, match="cannot write the catalogue changes") as e:
        rec.add_items([{"item_id": "new2", "title": "Second Sun (2023)"}])
    assert "persist=False" in e.value.fix
    with pytest.raises(GenrecError):
        rec.remove_items(["i00"])
    monkeypatch.undo()

    assert len(rec) == 31 and rec.item("i00").title == "Star Quest (1980)"
    with pytest.raises(UnknownItemError):
        rec.item("new2")
    assert "new2" not in ids_of(rec.recommend([HEAT], k=len(rec), decode="exact"))
    assert path.read_bytes() == before
    assert not list(run_copy.glob(".catalogue_changes.json.tmp-*"))  # no temporary file left behind
    again = Recommender.load(run_copy)
    assert len(again) == 31 and again.item("new1").title == NEW["title"]


def test_changes_made_on_another_dataset_are_refused(run_copy):
    from genrec import Recommender

    data = {"format": 1, "dataset": {"name": "other", "n_items": 5, "sha256": "0" * 64}, "added": [], "removed": []}
    (run_copy / "catalogue_changes.json").write_text(json.dumps(data))
    with pytest.raises(GenrecError, match="made on dataset 'other'") as e:
        Recommender.load(run_copy)
    assert "persist=False" in e.value.fix
    assert len(Recommender.load(run_copy, persist=False)) == 30


# ---------------------------------------------------------------------- decoding settings


def test_one_decoding_config_per_call_and_one_decoder_per_config(tiny_run):
    from genrec import Recommender
    from genrec.decoding import DecodingConfig

    rec = Recommender.load(tiny_run, persist=False)
    model = rec.model
    assert rec.decoding == DecodingConfig(batch_size=16) and rec.info()["decoding"]["mode"] == "beam"
    exact = DecodingConfig(mode="exact", batch_size=16)
    # a call with another config gives what a recommender loaded with it gives
    other = Recommender.load(tiny_run, persist=False, decoding=exact)
    assert ids_of(rec.recommend([HEAT, FARGO], k=5, decoding=exact)) == ids_of(other.recommend([HEAT, FARGO], k=5))
    assert ids_of(rec.recommend([HEAT, FARGO], k=5, decode="exact")) == ids_of(other.recommend([HEAT, FARGO], k=5))
    # decoders are kept per config, and the loaded default is untouched by a call
    assert model.decoder_for(exact) is model.decoder_for(DecodingConfig.of(exact))
    assert model.decoder_for(exact) is not model.decoder_for(rec.decoding)
    assert rec.decoding == DecodingConfig(batch_size=16)  # the loaded default is untouched by the calls above
    assert set(model._decoders) == {rec.decoding, exact}  # one decoder per config used, no more
    with pytest.raises(GenrecError, match="beam width"):
        rec.recommend([HEAT], k=5, decoding=DecodingConfig(beams=3))


def test_an_assisted_default_switches_cleanly_to_exact(tiny_run):
    from genrec import Recommender
    from genrec.recommenders.popularity import Popularity

    rec = Recommender.load(tiny_run, persist=False, assist="popularity", assist_weight=1.0, beams=40)
    assert rec.info()["decoding"]["assist"] == "popularity" and rec.decoding.fused_weight == 1.0
    # at weight 1 (and a beam wider than the 30-item catalogue) the list is the
    # assistant's: the most popular items outside the history (ties may order either way)
    counts = Popularity().fit(rec.dataset).counts
    got = [counts[index(rec, i)] for i in ids_of(rec.recommend([HEAT], k=5))]
    assert got == sorted(np.delete(counts, index(rec, HEAT)).tolist(), reverse=True)[:5]
    # exact decoding has no assistant: the request's mode drops it instead of failing
    plain = Recommender.load(tiny_run, persist=False, decode="exact", beams=40)
    assert ids_of(rec.recommend([HEAT], k=5, decode="exact")) == ids_of(plain.recommend([HEAT], k=5))
    with pytest.raises(GenrecError, match="no assistant is"):
        Recommender.load(tiny_run, persist=False, assist_weight=0.5)


# ---------------------------------------------------------------------- given candidates

CANDIDATES = ["Speed (1994)", "i00", "night river ii (1991)", "i07", "Casino (1995)"]


def test_score_gives_each_candidate_its_model_score_in_order(recommender):
    from genrec.decoding import score_items

    history = [HEAT, FARGO]
    scored = recommender.score(history, CANDIDATES)
    idx = [index(recommender, c) for c in CANDIDATES]
    assert ids_of(scored) == [recommender.catalogue.item_ids[i] for i in idx] and scored.unknown == []
    g = recommender.model
    brute = score_items(g.model, g.codec, g.prompt_ids([index(recommender, h) for h in history]), idx)
    np.testing.assert_allclose([r.score for r in scored], brute, rtol=1e-6)


def test_recommend_with_candidates_sorts_them_by_score(recommender):
    history = [HEAT, "Casino (1995)"]  # one candidate is in the history: excluded
    scored = {r.item_id: r.score for r in recommender.score(history, CANDIDATES)}
    result = recommender.recommend(history, k=3, candidates=CANDIDATES)
    expected = sorted((i for i in scored if i != recommender.catalogue.item_ids[index(recommender, CASINO)]),
                      key=lambda i: -scored[i])[:3]
    assert ids_of(result) == expected and [r.score for r in result] == pytest.approx([scored[i] for i in expected])
    assert result.shortfall is None
    # fewer candidates than k: a short list that says why
    short = recommender.recommend(history, k=8, candidates=CANDIDATES)
    assert len(short) == 4 and "candidates hold 4 distinct items outside the history" in short.shortfall
    assert len(recommender.recommend(history, k=8, candidates=CANDIDATES, exclude_seen=False)) == 5


def test_candidates_lift_the_beam_width_limit(recommender):
    every = recommender.dataset.catalogue.item_ids
    result = recommender.recommend([HEAT], k=20, candidates=every)  # beams=10
    exact = recommender.recommend([HEAT], k=20, decode="exact")
    assert ids_of(result) == ids_of(exact)
    np.testing.assert_allclose([r.score for r in result], [r.score for r in exact], atol=1e-4)


def test_recommend_many_takes_candidates_per_history(recommender):
    histories = [[HEAT], [FARGO, CASINO]]
    per = [["i00", "i01"], ["i02", "Speed (1994)", "i09"]]
    many = recommender.recommend_many(histories, k=2, candidates=per)
    for h, c, got in zip(histories, per, many, strict=True):
        assert ids_of(got) == ids_of(recommender.recommend(h, k=2, candidates=c))
    shared = recommender.recommend_many(histories, k=2, candidates=per[1])
    assert ids_of(shared[1]) == ids_of(many[1])
    with pytest.raises(GenrecError, match="2 candidate lists for 3 histories"):
        recommender.recommend_many([*histories, [HEAT]], k=2, candidates=per)


def test_unknown_candidates_are_reported_with_close_matches(recommender):
    for on_unknown in ("error", "skip"):  # skipping a candidate would change the list being ranked
        with pytest.raises(UnknownItemError) as e:
            recommender.recommend([HEAT], k=2, candidates=["Fargo (1996)", "Speeed"], on_unknown=on_unknown)
        assert e.value.unknown == ["Speeed"] and e.value.suggestions["Speeed"] == ["Speed (1994)"]
    with pytest.raises(UnknownItemError):
        recommender.score([HEAT], ["i00", "nope"])


@pytest.mark.parametrize(
    ("candidates", "message"),
    [([], "candidate list is empty"), ("Heat (1995)", "must be a list"), ([HEAT, 2.5], "not a title or item id")],
)
def test_bad_candidate_lists_are_refused_clearly(recommender, candidates, message):
    for call in (lambda: recommender.recommend([FARGO], k=2, candidates=candidates),
                 lambda: recommender.score([FARGO], candidates)):
        with pytest.raises(GenrecError, match=message) as e:
            call()
        assert e.value.fix


def test_removed_items_cannot_be_candidates(tiny_run):
    from genrec import Recommender

    rec = Recommender.load(tiny_run, persist=False)
    rec.remove_items(["i21"])
    with pytest.raises(GenrecError, match=r"candidates \['i21'\] were removed") as e:
        rec.recommend([HEAT], k=2, candidates=["i00", "i21"])
    assert "leave removed items out" in e.value.fix
    with pytest.raises(GenrecError, match="removed"):
        rec.score([HEAT], ["Speed (1994)"])  # i21's title
    assert ids_of(rec.score(["i21"], ["i00"])) == ["i00"]  # still fine as history
