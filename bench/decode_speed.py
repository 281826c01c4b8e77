"""Top-K decoding speed: Hugging Face beam search vs genrec's batched beam search vs exact top-K.

Same model (SmolLM2-135M by default, optionally with a LoRA adapter), same users (the
first N test users of the bundled ml-latest-small), same catalogue trie:

  (a) Hugging Face ``generate(num_beams=10, num_return_sequences=10,
      prefix_allowed_tokens_fn=<trie walk>)``, one user at a time: the paper's loop made valid;
  (b) genrec's batched constrained beam search (prompt once per user, shared cache);
  (c) genrec's exact top-K (best-first search over the trie, with a node budget).

Prints users/s of each, the ratios, how often (a) and (b) return the same top-10 (same
items in the same order; swaps between items whose scores tie within 1e-4 allowed):
``agreement`` runs (b) with Hugging Face's selection rule (the same search, batched),
``agreement_default`` is (b) as shipped, which keeps every finished item and so may
return a better list than (a);
and (b)'s per-user latency against catalogue size (1k ... 1M titles; fake titles,
recombined words of real titles plus a year, fill the sizes the data lacks) with the
trie's build time and bytes per title. Ends with one ``RESULT`` line.

Run under the machine's CPU lock:  flock /tmp/genrec-cpu.lock python bench/decode_speed.py --users 20
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def load_users(data: Path | None, n: int):
    from genrec.data import Dataset, PrepareConfig, prepare, read_source

    if data is None:
        data = Path(tempfile.gettempdir()) / "genrec-bench-ml-latest-small"
        if not (data / "manifest.json").is_file():
            prepare(read_source("bundled", None), data, PrepareConfig())
    ds = Dataset(data)
    test = ds.examples("test").head(n)
    return ds, [list(map(int, h)) for h in test["history"].to_list()], test["target"].to_list()


def fake_titles(real: list[str], n: int, seed: int = 0) -> list[str]:
    """``n`` distinct made-up titles not in ``real``: 1-5 words of real titles and a year."""
    rng = np.random.default_rng(seed)
    words = np.array(sorted({w for t in real for w in t.rsplit(" (", 1)[0].split()}))
    taken = set(real)
    out: list[str] = []
    while len(out) < n:
        m = n - len(out)
        lens = rng.integers(1, 6, size=m)
        picks = rng.integers(0, len(words), size=int(lens.sum()))
        years = rng.integers(1900, 2025, size=m)
        pos = 0
        for ln, y in zip(lens, years, strict=True):
            t = " ".join(words[picks[pos:pos + ln]]) + f" ({y})"
            pos += ln
            if t not in taken:
                taken.add(t)
                out.append(t)
    return out


def same_list(a_items, a_scores, b_items, b_scores, tol: float = 1e-4) -> bool:
    if a_items.tolist() == b_items.tolist():
        return True
    if set(a_items.tolist()) != set(b_items.tolist()):
        return False
    # same items, different order: allowed only between ties
    return bool(np.allclose(a_scores, b_scores, atol=tol))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20, help="test users decoded by (a) and (b)")
    ap.add_argument("--exact-users", type=int, default=5, help="users decoded by (c)")
    ap.add_argument("--latency-users", type=int, default=8, help="users per catalogue size")
    ap.add_argument("--backbone", default="smollm2-135m")
    ap.add_argument("--adapter", type=Path, default=None, help="a LoRA adapter folder (RUN_DIR/adapter)")
    ap.add_argument("--data", type=Path, default=None, help="a prepared dataset (default: the bundled one)")
    ap.add_argument("--template", default="alpaca", choices=["alpaca", "compact"])
    ap.add_argument("--beams", type=int, default=10)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-expansions", type=int, default=3000)
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from genrec.decoding import BeamStats, ExactStats, Trie, beam_search, exact_topk, hf_beam_topk
    from genrec.model.backbone import load_backbone
    from genrec.model.encoding import Codec
    from genrec.prompts import PromptSpec

    ds, histories, targets = load_users(args.data, args.users)
    bb = load_backbone(args.backbone, dtype="fp32", device="cpu")
    model = bb.model
    if args.adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(args.adapter))
    model.eval()
    titles = ds.catalogue.titles
    codec = Codec(bb.tokenizer, titles)
    t0 = time.perf_counter()
    trie = Trie.build(codec)
    print(f"catalogue {len(titles):,} titles, trie {trie.n_nodes:,} nodes, built in {time.perf_counter() - t0:.2f} s, "
          f"{trie.bytes_per_item():.0f} bytes/title, depth {trie.max_depth}")
    spec = PromptSpec(template=args.template, domain=ds.domain)
    prompts = [codec.encode(spec.prompt(h, str(u)))[0] for u, h in enumerate(histories)]
    print(f"{len(prompts)} users, prompt tokens mean {np.mean([len(p) for p in prompts]):.0f}, "
          f"max {max(len(p) for p in prompts)}; k={args.k}, beams={args.beams}, threads={args.threads}")
    k, W = args.k, args.beams

    with torch.inference_mode():  # warm-up: the first CPU forward pays one-off kernel set-up
        beam_search(model, trie, prompts[:2], k, W, exclude=histories[:2], batch_size=2, pad_id=codec.pad_id)

    t0 = time.perf_counter()
    hf = hf_beam_topk(model, trie, prompts, k, W, exclude=histories, pad_id=codec.pad_id)
    ta = time.perf_counter() - t0
    print(f"(a) HF generate + trie, one user at a time: {ta:.1f} s, {len(prompts) / ta:.3f} users/s")

    bstats = BeamStats()
    t0 = time.perf_counter()
    ours = beam_search(model, trie, prompts, k, W, exclude=histories, batch_size=args.batch_size,
                       pad_id=codec.pad_id, stats=bstats)
    tb = time.perf_counter() - t0
    print(f"(b) genrec batched beam search: {tb:.1f} s, {len(prompts) / tb:.3f} users/s "
          f"({bstats.steps} steps, {bstats.beam_tokens} beam tokens, {bstats.prompt_tokens} prompt tokens)")

    # the same search? Hugging Face's selection rule, batched and prompt-shared, against (a)
    compat = beam_search(model, trie, prompts, k, W, exclude=histories, batch_size=args.batch_size,
                         pad_id=codec.pad_id, hf_compatible=True)
    agree = [same_list(hf.items[u], hf.scores[u], compat.items[u], compat.scores[u]) for u in range(len(prompts))]
    print(f"    (b) with Hugging Face's selection rule: same top-{k} as (a) for {np.mean(agree):.3f} of users")
    agree_default = [same_list(hf.items[u], hf.scores[u], ours.items[u], ours.scores[u]) for u in range(len(prompts))]
    better = int(sum(ours.scores[u].sum() > hf.scores[u].sum() + 1e-4 for u in range(len(prompts))))
    worse = int(sum(ours.scores[u].sum() < hf.scores[u].sum() - 1e-4 for u in range(len(prompts))))
    kth_ge = np.mean([ours.scores[u][-1] >= hf.scores[u][-1] - 1e-4 for u in range(len(prompts))])
    print(f"    (b) default (keeps every finished item): same top-{k} as (a) for {np.mean(agree_default):.3f}; "
          f"where they differ, (b)'s list has the higher total log-probability for {better} users, lower for {worse}; "
          f"(b)'s k-th score >= (a)'s for {kth_ge:.3f}")
    hits_a = np.mean([t in hf.items[u] for u, t in enumerate(targets)])
    hits_b = np.mean([t in ours.items[u] for u, t in enumerate(targets)])
    print(f"    HR@{k} on these users: (a) {hits_a:.3f}, (b) {hits_b:.3f}")

    ne = min(args.exact_users, len(prompts))
    estats = ExactStats()
    t0 = time.perf_counter()
    ex = exact_topk(model, trie, prompts[:ne], k, exclude=histories[:ne], batch_size=args.batch_size,
                    max_expansions=args.max_expansions, pad_id=codec.pad_id, stats=estats)
    tc = time.perf_counter() - t0
    beats = np.mean([ex.scores[u][-1] >= ours.scores[u][-1] - 1e-4 for u in range(ne)])
    print(f"(c) exact top-{k}: {tc:.1f} s for {ne} users, {ne / tc:.3f} users/s, {estats.expansions} expansions, "
          f"budget ({args.max_expansions}/user) exhausted for {sum(estats.exhausted)} of {ne}; "
          f"k-th score >= beam's for {beats:.2f}")

    ra = len(prompts) / ta
    ratio = (len(prompts) / tb) / ra
    exact_ratio = (ne / tc) / ra
    print(f"ratios: (b)/(a) {ratio:.2f}x, (c)/(a) {exact_ratio:.2f}x")

    # latency of (b) against catalogue size
    sizes = [int(s) for s in args.sizes.split(",") if s]
    n_lat = min(args.latency_users, len(prompts))
    need = max(sizes) - len(titles)
    fake_ids: list[list[int]] = []
    if need > 0:
        t0 = time.perf_counter()
        fakes = fake_titles(titles, need)
        fake_ids = codec.encode_names(fakes)
        print(f"synthesised and tokenised {need:,} fake titles in {time.perf_counter() - t0:.1f} s")
    real_ids = [codec.response_ids(i) for i in range(len(titles))]
    lat = {}
    for size in sizes:
        seqs = real_ids[:size] + [f + [codec.eos_id] for f in fake_ids[: max(0, size - len(real_ids))]]
        t0 = time.perf_counter()
        t = Trie.build(seqs, vocab_size=len(bb.tokenizer), eos_id=codec.eos_id)
        tbuild = time.perf_counter() - t0
        t0 = time.perf_counter()
        beam_search(model, t, prompts[:n_lat], k, W, exclude=histories[:n_lat], batch_size=args.batch_size,
                    pad_id=codec.pad_id)
        lat[size] = (time.perf_counter() - t0) / n_lat
        print(f"  {size:>9,} titles: trie build {tbuild:6.2f} s, {t.n_nodes:>11,} nodes, "
              f"{t.bytes_per_item():6.1f} bytes/title, depth {t.max_depth}; (b) {lat[size]:.3f} s/user")
        del t
    lat_ratio = lat[max(sizes)] / lat[min(sizes)]
    print(f"RESULT ratio={ratio:.2f} agreement={np.mean(agree):.3f} agreement_default={np.mean(agree_default):.3f} "
          f"exact_ratio={exact_ratio:.2f} latency_ratio_1m_1k={lat_ratio:.2f}")


if __name__ == "__main__":
    main()
