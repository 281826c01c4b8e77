from __future__ import annotations

import numpy as np
import pytest

from genrec.errors import ConfigError
from genrec.recommenders.last_item import LastItemBM25, LastItemConfig, tokenize
from tests.recommenders.conformance import RecommenderTests


class TestLastItem(RecommenderTests):
    def make(self) -> LastItemBM25:
        return LastItemBM25()


def test_tokenize_drops_year_and_stop_words_keeps_sequel_numbers():
    assert tokenize("Matrix, The (1999)") == ["matrix"]
    assert tokenize("Toy Story 2 (1999)") == ["toy", "story", "2"]
    assert tokenize("Toy Story 2 (1999)", year="token") == ["toy", "story", "2", "y1999"]
    # a number inside the title is a word, not a year
    assert tokenize("1984 (1956)") == ["1984"]
    assert tokenize("Untitled") == ["untitled"]


def test_sequel_ranks_first_after_its_predecessor(tiny_dataset):
    cat = tiny_dataset.catalogue
    rec = LastItemBM25().fit(tiny_dataset)
    first, sequels = cat.lookup("Star Quest (1980)"), {cat.lookup("Star Quest 2 (1981)"), cat.lookup("Star Quest 3 (1982)")}
    top = rec.recommend([[cat.lookup("Heat (1995)"), first]], k=2).items[0]
    assert set(top.tolist()) == sequels


def test_zero_score_ties_fall_back_to_popularity(tiny_dataset):
    rec = LastItemBM25().fit(tiny_dataset)
    pop = tiny_dataset.item_popularity()
    heat = tiny_dataset.catalogue.lookup("Heat (1995)")  # shares no word with any other title
    ranked = rec.recommend([[heat]], k=5)
    assert (ranked.scores[0] == 0).all()
    expected = [i for i in sorted(range(len(pop)), key=lambda i: (-pop[i], i)) if i != heat][:5]
    assert ranked.items[0].tolist() == expected


def test_older_items_count_with_n_last(tiny_dataset):
    cat = tiny_dataset.catalogue
    hist = [cat.lookup("Night River (1990)"), cat.lookup("Heat (1995)")]
    only_last = LastItemBM25().fit(tiny_dataset).recommend([hist], k=2)
    two = LastItemBM25(LastItemConfig(n_last=2, decay=0.5)).fit(tiny_dataset).recommend([hist], k=2)
    night = {cat.lookup("Night River II (1991)"), cat.lookup("Night River III (1992)")}
    assert (only_last.scores == 0).all()  # "Heat" matches nothing: popularity fallback only
    assert set(two.items[0].tolist()) == night
    # the older item's similarity enters with weight decay**1
    alone = LastItemBM25().fit(tiny_dataset).recommend([hist[:1]], k=2)
    np.testing.assert_allclose(two.scores, 0.5 * alone.scores)


def test_config_rejects_unknown_fields():
    with pytest.raises(ConfigError, match="n_lats"):
        LastItemConfig.build({"n_lats": 2})


def test_scores_are_bm25(tiny_dataset):
    # BM25, Lucene variant (no (k1 + 1) factor), by hand for a one-word query:
    # idf * tf / (tf + k1 (1 - b + b dl / avgdl))
    rec = LastItemBM25().fit(tiny_dataset)
    cat = tiny_dataset.catalogue
    docs = [tokenize(t) for t in cat.titles]
    avgdl = np.mean([len(d) for d in docs])
    q = cat.lookup("Speed (1994)")
    n_docs, df = len(docs), sum("speed" in d for d in docs)
    idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5))
    k1, b = 1.5, 0.75
    expected = idf / (1 + k1 * (1 - b + b * 1 / avgdl))
    ranked = rec.recommend([[q]], k=1, exclude_seen=False)
    assert ranked.items[0, 0] == q
    assert ranked.scores[0, 0] == pytest.approx(expected, rel=1e-5)
    assert rec.score([[q]], [q])[0, 0] == pytest.approx(expected, rel=1e-5)


def test_candidates_keep_the_popularity_tie_break(tiny_dataset):
    rec = LastItemBM25().fit(tiny_dataset)
    pop = tiny_dataset.item_popularity()
    heat = tiny_dataset.catalogue.lookup("Heat (1995)")  # every other title scores 0 against it
    cands = [i for i in range(10) if i != heat]
    ranked = rec.recommend([[heat]], k=4, candidates=cands[::-1])
    assert ranked.items[0].tolist() == sorted(cands, key=lambda i: (-pop[i], i))[:4]
