"""GenRec through the recommender contract: a tiny random LLaMA (the packaged SmolLM2
tokenizer) trained for two steps on the 30-item dataset. Its lists are arbitrary but
deterministic, which is all the contract asks; the beam is wider than the catalogue, so
every k the suite asks for up to the width is answered in full."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from genrec.decoding import DecodingConfig
from genrec.errors import GenrecError
from genrec.recommenders.genrec import GenRec
from genrec.training.config import TrainConfig
from tests._util import requires_packaged
from tests.recommenders.conformance import RecommenderTests

pytestmark = requires_packaged

_ROOT = Path(tempfile.mkdtemp(prefix="genrec-conformance-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
BEAMS = 40  # the catalogue has 30 items


class TestGenRec(RecommenderTests):
    def make(self) -> GenRec:
        cfg = TrainConfig.build({"backbone": "tiny-random-llama", "max_steps": 2, "batch_size": 4, "effective_batch": 4,
                                 "max_users": 4, "warmup_steps": 0, "seed": 3})
        return GenRec(Path(tempfile.mkdtemp(dir=_ROOT)) / "run", beams=BEAMS, train_config=cfg)

    def reload(self, fitted, path, dataset) -> GenRec:
        return GenRec.load(path, dataset, beams=fitted.beams)


def test_fit_needs_a_config_and_a_folder(tiny_dataset):
    with pytest.raises(GenrecError, match="train_config and run_dir"):
        GenRec(beams=5).fit(tiny_dataset)


# ---------------------------------------------------------------------- given candidates

HIST = [[0, 1, 2], [20, 5]]


@pytest.fixture(scope="module")
def loaded(tiny_run, tiny_dataset):  # noqa: F811
    return GenRec.load(tiny_run, tiny_dataset, beams=BEAMS)


def test_score_is_the_summed_log_probability_of_each_response(loaded):
    from genrec.decoding import score_items

    cands = [29, 4, 11, 0]
    got = loaded.score(HIST, cands)
    for u, h in enumerate(HIST):
        np.testing.assert_allclose(got[u], score_items(loaded.model, loaded.codec, loaded.prompt_ids(h), cands), rtol=1e-6)


def test_candidates_rank_as_exact_decoding_over_the_catalogue(loaded):
    # exact decoding finds the model's true top-k; scoring every item and sorting is the same list
    exact = loaded.recommend(HIST, k=8, decoding=loaded.decoding.with_mode("exact"))
    every = loaded.recommend(HIST, k=8, candidates=list(range(len(loaded.codec))))
    np.testing.assert_array_equal(every.items, exact.items)
    np.testing.assert_allclose(every.scores, exact.scores, atol=1e-4)
    assert loaded.last_stats["mode"] == "candidates"


@pytest.mark.parametrize("settings", [{"assist": "popularity", "assist_weight": 0.5}, {"length_normalise": True}])
def test_candidate_scores_are_the_beams_scores(tiny_run, tiny_dataset, settings):  # noqa: F811
    # a beam wider than the catalogue, nothing excluded: every item it returns carries the
    # score candidate scoring gives it (the assistant normalised over the live catalogue)
    rec = GenRec.load(tiny_run, tiny_dataset, beams=BEAMS, **settings)
    beam = rec.recommend(HIST, k=10, exclude_seen=False)
    for u in range(len(HIST)):
        np.testing.assert_allclose(rec.score([HIST[u]], beam.items[u])[0], beam.scores[u], atol=1e-4)
    ranked = rec.recommend(HIST, k=10, exclude_seen=False, candidates=list(range(len(rec.codec))))
    np.testing.assert_allclose(ranked.scores, beam.scores, atol=1e-4)


def test_assistant_alone_ranks_candidates_by_popularity(tiny_run, tiny_dataset):  # noqa: F811
    from genrec.recommenders.popularity import Popularity

    rec = GenRec.load(tiny_run, tiny_dataset, beams=BEAMS, assist="popularity", assist_weight=1.0)
    counts = Popularity().fit(tiny_dataset).counts
    cands = [3, 9, 14, 22, 27]
    expected = (counts + 1.0) / (counts + 1.0).sum()
    np.testing.assert_allclose(rec.score(HIST[:1], cands)[0], np.log(expected[cands]), rtol=1e-9)


def test_rerank_ranks_the_assistants_top_items_by_their_candidate_scores(tiny_run, tiny_dataset):  # noqa: F811
    from genrec.recommenders.popularity import Popularity

    rec = GenRec.load(tiny_run, tiny_dataset, mode="rerank", assist="popularity", assist_weight=0.3, rerank_depth=12)
    assert rec.max_k == 12
    counts = Popularity().fit(tiny_dataset).counts
    rec.remove_items([int(np.argmax(counts))])  # the most popular item is gone: never proposed
    ranked = rec.recommend(HIST, k=10)
    assert rec.last_stats["scored"] == 12 * len(HIST)
    for u, h in enumerate(HIST):
        # the candidates: the 12 most popular live items outside the history (ties: lower index)
        live = [i for i in np.lexsort((np.arange(counts.size), -counts)) if i not in h and i not in rec.catalogue.removed]
        cands = live[:12]
        # ranked as `candidates=` ranks them with the same fused score (the assistant's mass is
        # normalised over the items not excluded there, over the live catalogue here: a
        # constant per user)
        fused = DecodingConfig.of(rec.decoding.with_mode("beam"), assist_weight=0.3)
        expected = rec.recommend([h], k=10, candidates=cands, decoding=fused)
        assert ranked.items[u].tolist() == expected.items[0].tolist()
        shift = ranked.scores[u] - expected.scores[0]
        np.testing.assert_allclose(shift, shift[0], atol=1e-6)
    with pytest.raises(GenrecError, match="rerank depth 12 must be at least k"):
        rec.recommend(HIST, k=13)
    from genrec.evaluation import evaluate

    with pytest.raises(GenrecError, match="larger than genrec's rerank depth 12") as e:
        evaluate(rec, tiny_dataset, k_max=13)
    assert "--set rerank_depth=13" in e.value.fix


def test_rerank_weight_is_stored_per_mode(run_copy, tiny_dataset):  # noqa: F811
    (run_copy / "assist.json").write_text(json.dumps({"popularity": {"weight": 0.25}, "rerank:popularity": {"weight": 0.75}}))
    assert GenRec.load(run_copy, tiny_dataset, assist="popularity").decoding.assist_weight == 0.25
    rerank = GenRec.load(run_copy, tiny_dataset, mode="rerank", assist="popularity")
    assert rerank.decoding.assist_weight == 0.75
    with pytest.raises(GenrecError, match="no weight for the last-item assistant in rerank decoding"):
        GenRec.load(run_copy, tiny_dataset, mode="rerank", assist="last-item")


def test_bigrec_grounding_takes_its_stored_gamma_and_the_assistant(run_copy, tiny_dataset, monkeypatch):  # noqa: F811
    from genrec.decoding import free as free_mod

    def gen(model, prompt, beams, k, max_new_tokens, eos_id, pad_id, length_penalty, allowed_fn=None):
        return [[*rec.codec.item_tokens[4], eos_id]], np.zeros(1)  # the best output: item 4's title

    monkeypatch.setattr(free_mod, "_generate", gen)
    (run_copy / "assist.json").write_text(json.dumps({"bigrec:popularity": {"weight": 50.0}}))
    rec = GenRec.load(run_copy, tiny_dataset, mode="free", grounding="bigrec", assist="popularity", beams=2)
    assert rec.decoding.ground_weight == 50.0 and rec.max_k is None
    ranked = rec.recommend([[0]], k=15)  # more than the beams: the catalogue is ranked
    assert ranked.items[0, 0] == 4 and len(set(ranked.items[0].tolist())) == 15 and 0 not in ranked.items[0]
    plain = GenRec.load(run_copy, tiny_dataset, mode="free", grounding="bigrec", beams=2)
    listed = plain.recommend([[0]], k=15)
    assert listed.items[0, 0] == 4 and listed.items[0].tolist() != ranked.items[0].tolist()  # gamma moved popular items up
    plain.remove_items([4, int(listed.items[0, 1])])  # removed items are never ranked: the list is still full
    after = plain.recommend([[0]], k=15)
    assert after.items[0].tolist() == [i for i in listed.items[0].tolist() if i not in (4, listed.items[0, 1])] + after.items[0, 13:].tolist()
    assert (after.items[0] >= 0).all()


def test_removed_items_cannot_be_candidates(tiny_run, tiny_dataset):  # noqa: F811
    rec = GenRec.load(tiny_run, tiny_dataset, beams=BEAMS)
    rec.remove_items([3])
    with pytest.raises(GenrecError, match=r"candidates \[3\] were removed"):
        rec.recommend(HIST, k=3, candidates=[3, 4])
    with pytest.raises(GenrecError, match="removed"):
        rec.score(HIST, [[4], [3]])
    every = rec.score(HIST[:1])
    assert np.isneginf(every[0, 3]) and np.isfinite(np.delete(every[0], 3)).all()


def test_renormalise_is_refused_for_candidates(tiny_run, tiny_dataset):  # noqa: F811
    rec = GenRec.load(tiny_run, tiny_dataset, beams=BEAMS, renormalise=True)
    with pytest.raises(GenrecError, match="renormalise=False"):
        rec.score(HIST, [1, 2])


def test_item_token_runs_score_candidates(tiny_dataset, tmp_path):
    """An item is one token: its score is log p(item token | prompt) + log p(EOS | prompt, item)."""
    import torch

    from genrec.training.loop import train

    run = tmp_path / "run"
    train(tiny_dataset.path, run, TrainConfig.build({
        "backbone": "tiny-random-llama", "finetune": "full", "item_repr": "item-token", "template": "tokens",
        "max_steps": 2, "batch_size": 4, "effective_batch": 4, "max_users": 4, "warmup_steps": 0, "threads": 1}))
    rec = GenRec.load(run, tiny_dataset, beams=10)
    start = rec.codec.item_token_start
    prompt = rec.prompt_ids([3, 4, 5])
    cands = [7, 0, 12]
    with torch.no_grad():
        logp = torch.log_softmax(rec.model(torch.tensor([prompt])).logits[0, -1], -1)
        brute = [float(logp[start + i] + torch.log_softmax(rec.model(torch.tensor([prompt + [start + i]])).logits[0, -1], -1)
                       [rec.codec.eos_id]) for i in cands]
    np.testing.assert_allclose(rec.score([[3, 4, 5]], cands)[0], brute, atol=1e-4)
    ranked = rec.recommend([[3, 4, 5]], k=2, candidates=cands + [3])
    assert ranked.items[0].tolist() == [cands[j] for j in np.argsort(brute)[::-1][:2]]
