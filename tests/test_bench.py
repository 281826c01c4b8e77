"""bench/quality.py and bench/make_results.py at toy scale (tiny model, a few users)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from tests._util import REPO


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quality_writes_every_method_on_the_same_users_and_results_page(tmp_path, capsys):
    quality = load("quality")
    out = tmp_path / "results"
    args = ["ml-latest-small", "--methods", "popularity,last-item,genrec-beam,genrec-id", "--users", "12",
            "--backbone", "tiny-random-llama", "--genrec-steps", "2", "--train-users", "8",
            "--out", str(out), "--work", str(tmp_path / "work")]
    quality.main(args)
    printed = capsys.readouterr().out
    result = json.loads((out / "quality-ml-latest-small.json").read_text())
    assert set(result) == {"popularity", "last-item", "genrec-beam", "genrec-id", "settings", "paired"}
    for method in ("popularity", "last-item", "genrec-beam", "genrec-id"):
        assert result[method]["n_users"] == 12 and result[method]["method"] == method
    assert result["genrec-beam"]["valid_rate"] == 1.0
    assert result["genrec-id"]["settings"]["method_config"]["item_repr"] == "random-id"
    assert result["settings"]["genrec"]["steps"] == 2 and "--users 12" in result["settings"]["command"]
    table = (out / "quality-ml-latest-small.md").read_text()
    assert "| genrec-id |" in table and "12 of 671 test users" in table
    assert (out / "quality-ml-latest-small.png").stat().st_size > 0
    assert printed.strip().splitlines()[-1].startswith("RESULT popularity_hr10=")

    # paired tests of every GenRec variant against popularity, in the JSON and the table
    assert set(result["paired"]["popularity"]) == {"genrec-beam", "genrec-id"}
    assert "Paired differences against popularity" in table
    # the tables can be rebuilt from the evaluations without evaluating again
    quality.main([*args, "--from-evals"])
    rebuilt = json.loads((out / "quality-ml-latest-small.json").read_text())
    assert rebuilt["genrec-beam"] == result["genrec-beam"] and rebuilt["settings"]["command"] == result["settings"]["command"]
    capsys.readouterr()

    # a rerun with the same arguments reuses the trained runs and reproduces the figures
    quality.main(args)
    again = json.loads((out / "quality-ml-latest-small.json").read_text())
    assert "reusing" in capsys.readouterr().out
    assert again["settings"]["genrec"]["train_seconds"] == result["settings"]["genrec"]["train_seconds"]
    for method in ("popularity", "genrec-beam", "genrec-id"):
        assert again[method]["hr@10"] == result[method]["hr@10"] and again[method]["mrr@10"] == result[method]["mrr@10"]

    # the most-recommended items, per method, from the rankings the run left in its work folder
    load("top_items").main(["ml-latest-small", "--work", str(tmp_path / "work")])
    printed = capsys.readouterr().out
    assert "popularity: " in printed and " distinct items in 12 users' top 10" in printed
    shares = dict(kv.split("=") for kv in printed.strip().splitlines()[-1].split()[1:])
    assert set(shares) == {f"{m}_top_share" for m in ("popularity", "last-item", "genrec-beam", "genrec-id")}
    assert 0 < float(shares["popularity_top_share"]) <= 1

    (out / "decode_speed.log").write_text("$ python bench/decode_speed.py\n# today; 2 cores\ntable\nRESULT ratio=3.1 agreement=0.9\n")
    docs = tmp_path / "docs" / "RESULTS.md"
    load("make_results").main(["--results", str(out), "--out", str(docs)])
    page = docs.read_text()
    assert "| genrec-id |" in page and "| ratio | 3.1 |" in page and "../results/quality-ml-latest-small.png" in page
    # the headline row carries the same HR@10 as the data set's own table, and its plot exists
    row = next(line for line in page.splitlines() if line.startswith("| ml-latest-small | 12 of 671 |"))
    assert f"{result['genrec-beam']['hr@10']:.4f}" in row and f"{result['popularity']['hr@10']:.4f}" in row
    assert (out / "headline.png").stat().st_size > 0 and "../results/headline.png" in page


def test_top_items_says_when_quality_has_not_run(tmp_path):
    with pytest.raises(SystemExit, match="run `python bench/quality.py ml-100k` first"):
        load("top_items").main(["ml-100k", "--work", str(tmp_path)])


def test_quality_refuses_unknown_methods(capsys):
    with pytest.raises(SystemExit) as e:
        load("quality").main(["ml-latest-small", "--methods", "bpr"])
    assert e.value.code == 2 and "unknown methods ['bpr']" in capsys.readouterr().err


def test_learning_curve_validates_every_variant_on_the_same_users_and_reuses_runs(tmp_path, capsys):
    curve = load("learning_curve")
    out, work = tmp_path / "results", tmp_path / "work"
    args = ["ml-latest-small", "--variants", "item-token,lora", "--minutes", "0.01,0.02", "--eval-users", "10",
            "--backbone", "tiny-random-llama", "--train-users", "8", "--sasrec-minutes", "0.05",
            "--out", str(out), "--work", str(work)]
    curve.main(args)
    printed = capsys.readouterr().out
    result = json.loads((out / "learning-curve-ml-latest-small.json").read_text())
    assert set(result["variants"]) == {"item-token", "lora"} and result["settings"]["eval_users"] == 10
    assert set(result["references"]) == {"popularity", "sasrec"}
    for v in result["variants"].values():
        # one validation per mark passed (a slow step may pass both marks at once), the last at the end
        assert 1 <= len(v["points"]) <= 2 and v["points"][-1]["minutes"] >= 0.02 and v["tokens_per_second"] > 0
        assert [p["step"] for p in v["points"]] == sorted(p["step"] for p in v["points"])
        assert all(0 <= p["hr@10"] <= 1 for p in v["points"])
    assert result["variants"]["item-token"]["config"]["item_repr"] == "item-token"
    assert result["variants"]["item-token"]["trainable_parameters"] > result["variants"]["lora"]["trainable_parameters"]
    assert (out / "learning-curve-ml-latest-small.png").stat().st_size > 0
    assert "| item-token |" in (out / "learning-curve-ml-latest-small.md").read_text()
    assert printed.strip().splitlines()[-1].startswith("RESULT popularity_hr10=")

    # a rerun reuses the finished runs: the same curves; a later call with another variant adds to the table
    curve.main(args)
    again = json.loads((out / "learning-curve-ml-latest-small.json").read_text())
    assert "reusing the finished run" in capsys.readouterr().out
    for name in ("item-token", "lora"):
        assert again["variants"][name]["points"] == result["variants"][name]["points"]
    def figures(ref):  # the time a reference took to rank differs between calls
        return {k: v for k, v in ref.items() if k != "seconds"}

    assert figures(again["references"]["popularity"]) == figures(result["references"]["popularity"])
    curve.main([*args[:2], "full", *args[3:]])
    merged = json.loads((out / "learning-curve-ml-latest-small.json").read_text())
    assert set(merged["variants"]) == {"item-token", "lora", "full"}
    assert merged["variants"]["lora"]["points"] == result["variants"]["lora"]["points"]


def test_assist_weight_is_chosen_on_validation_and_used_by_quality(tmp_path, capsys):
    from genrec.training.config import from_preset
    from genrec.training.loop import train

    quality, work = load("quality"), tmp_path / "work"
    ds = quality.prepared("ml-latest-small", work)
    run = tmp_path / "run"
    train(ds.path, run, from_preset("cpu-titles", "tiny-random-llama", 2, ["max_users=8", "save_every=null"]))
    load("assist_weight").main(["ml-latest-small", "--run", str(run), "--assist", "popularity", "--weights", "0,0.5,1",
                                "--users", "10", "--out", str(tmp_path / "results"), "--work", str(work)])
    printed = capsys.readouterr().out
    stored = json.loads((run / "assist.json").read_text())["popularity"]
    assert [r["weight"] for r in stored["grid"]] == [0.0, 0.5, 1.0] and stored["split"] == "valid"
    best = max(stored["grid"], key=lambda r: (r["ndcg@10"], -r["weight"]))
    assert stored["weight"] == best["weight"]
    assert printed.strip().splitlines()[-1].startswith(f"RESULT chosen_weight={best['weight']}")
    # quality.py's assisted method decodes at the stored weight
    quality.main(["ml-latest-small", "--methods", "popularity,genrec-assisted", "--assist", "popularity", "--users", "10",
                  "--genrec-run", str(run), "--out", str(tmp_path / "results"), "--work", str(work)])
    result = json.loads((tmp_path / "results" / "quality-ml-latest-small.json").read_text())
    assert result["genrec-assisted"]["settings"]["method_config"]["assist_weight"] == stored["weight"]
    assert result["genrec-assisted"]["valid_rate"] == 1.0

    # rerank: one scoring pass, every weight re-ranked from it; each row is what GenRec's
    # rerank decoding gives at that weight on the same validation users
    from genrec.evaluation import evaluate
    from genrec.recommenders.genrec import GenRec

    load("assist_weight").main(["ml-latest-small", "--run", str(run), "--assist", "popularity", "--mode", "rerank",
                                "--depth", "12", "--weights", "0,0.6,1", "--users", "10",
                                "--out", str(tmp_path / "results"), "--work", str(work)])
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("RESULT chosen_weight=")
    both = json.loads((run / "assist.json").read_text())
    assert both["popularity"] == stored  # the beam weight stays
    rerank = both["rerank:popularity"]
    assert rerank["depth"] == 12 and [r["weight"] for r in rerank["grid"]] == [0.0, 0.6, 1.0]
    for row in rerank["grid"]:
        rec = GenRec.load(run, ds, mode="rerank", assist="popularity", assist_weight=row["weight"], rerank_depth=12)
        m = evaluate(rec, ds, split="valid", k_max=10, limit=10, seed=0).metrics
        assert (m["hr@10"], m["ndcg@10"]) == pytest.approx((row["hr@10"], row["ndcg@10"]), abs=1e-12)
    assert "-rerank" in str(next((tmp_path / "results").glob("assist-weight-*-rerank.md")))
    quality.main(["ml-latest-small", "--methods", "genrec-rerank", "--assist", "popularity", "--rerank-depth", "12",
                  "--users", "10", "--genrec-run", str(run), "--out", str(tmp_path / "results"), "--work", str(work)])
    config = json.loads((tmp_path / "results" / "quality-ml-latest-small.json").read_text())["genrec-rerank"]["settings"]["method_config"]
    assert (config["decode"], config["rerank_depth"], config["assist_weight"]) == ("rerank", 12, rerank["weight"])
    # bigrec: free decoding's outputs and distances once, every gamma re-ranking them as GenRec does
    load("assist_weight").main(["ml-latest-small", "--run", str(run), "--assist", "popularity", "--mode", "bigrec",
                                "--weights", "0,2,50", "--users", "10", "--out", str(tmp_path / "results"), "--work", str(work)])
    bigrec = json.loads((run / "assist.json").read_text())["bigrec:popularity"]
    assert [r["weight"] for r in bigrec["grid"]] == [0.0, 2.0, 50.0] and 0 <= bigrec["grid"][0]["invalid_share"] <= 1
    for row in bigrec["grid"]:
        rec = GenRec.load(run, ds, mode="free", grounding="bigrec", assist="popularity", ground_weight=row["weight"])
        m = evaluate(rec, ds, split="valid", k_max=10, limit=10, seed=0).metrics
        assert (m["hr@10"], m["ndcg@10"]) == pytest.approx((row["hr@10"], row["ndcg@10"]), abs=1e-12)
    assert (tmp_path / "results" / "assist-weight-ml-latest-small-popularity-bigrec.md").is_file()
    quality.main(["ml-latest-small", "--methods", "genrec-bigrec", "--assist", "popularity", "--users", "10",
                  "--genrec-run", str(run), "--out", str(tmp_path / "results"), "--work", str(work)])
    used = json.loads((tmp_path / "results" / "quality-ml-latest-small.json").read_text())["genrec-bigrec"]["settings"]["method_config"]
    assert (used["grounding"], used["assist"], used["ground_weight"]) == ("bigrec", "popularity", bigrec["weight"])
    capsys.readouterr()
    # --reuse reads earlier evaluations of the same users into one table with the paired tests
    quality.main(["ml-latest-small", "--methods", "popularity,genrec-rerank", "--reuse", "popularity,genrec-rerank",
                  "--users", "10", "--genrec-run", str(run), "--out", str(tmp_path / "results"), "--work", str(work)])
    table = json.loads((tmp_path / "results" / "quality-ml-latest-small.json").read_text())
    assert table["genrec-rerank"]["settings"]["method_config"] == config and "genrec-rerank" in table["paired"]["popularity"]
    with pytest.raises(SystemExit, match="ranked 10 users"):
        quality.main(["ml-latest-small", "--methods", "popularity", "--reuse", "popularity", "--users", "8",
                      "--out", str(tmp_path / "results"), "--work", str(work)])


def test_prior_weight_scores_item_tokens_against_one_unpadded_pass(tmp_path, capsys):
    import torch

    from genrec.recommenders.genrec import GenRec
    from genrec.training.config import from_preset
    from genrec.training.loop import train

    quality, work = load("quality"), tmp_path / "work"
    ds = quality.prepared("ml-latest-small", work)
    run = tmp_path / "run"
    train(ds.path, run, from_preset("cpu", "tiny-random-llama", 2, ["max_users=8", "save_every=null", "eval_minutes=null"]))
    prior_weight = load("prior_weight")
    prior_weight.main(["ml-latest-small", "--run", str(run), "--weights", "0,1", "--users", "10",
                       "--out", str(tmp_path / "results"), "--work", str(work)])
    result = json.loads((tmp_path / "results" / "prior-weight-ml-latest-small.json").read_text())
    assert [r["weight"] for r in result["rows"]] == [None, 0.0, 1.0] and result["users"] == 10
    graded = [r for r in result["rows"] if r["weight"] is not None]
    assert result["chosen_weight"] == max(graded, key=lambda r: (r["ndcg@10"], -r["weight"]))["weight"]
    assert "(chosen)" in (tmp_path / "results" / "prior-weight-ml-latest-small.md").read_text()
    # the scores: each history's next-token log-probabilities over the item tokens, from a
    # pass of that prompt alone (no padding), minus λ times those of the empty history
    rec = GenRec.load(run, ds)
    histories = [[0, 5, 9], [3], list(range(12)), [3]]  # a repeated history comes from the cache

    def alone(history):
        ids = torch.tensor([rec.prompts.prompt_ids(history)])
        with torch.inference_mode():
            logp = torch.log_softmax(rec.model(input_ids=ids).logits[0, -1].double(), dim=-1)
        first = rec.codec.item_token_start
        return logp[first:first + len(rec.codec)].numpy()

    for w in (0.0, 1.0):
        got = prior_weight.PriorCorrected(prior_weight.ItemTokenLogProbs(rec, batch=2), w).score_all(histories)
        want = np.stack([alone(h) - w * alone([]) for h in histories])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
