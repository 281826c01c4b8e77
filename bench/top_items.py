"""How much each method's top-10 depends on the user: the items it recommends most often.

    python bench/top_items.py DATASET [--work /tmp/genrec-quality] [--top 5]

Reads the ``rankings.parquet`` files that ``bench/quality.py DATASET`` left in its work
folder (``WORK/DATASET/eval-<method>/``) and prints, per method, how many distinct items
appear in anyone's top 10 and the items that appear in the most users' top 10, with the
share of users (entries of free decoding that are no catalogue item are not counted). A method whose lists barely depend on the history shows a few items in
most users' lists. The last line is ``RESULT`` with each method's largest share.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dataset")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "genrec-quality")
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--k", type=int, default=10)
    a = p.parse_args(argv)
    import polars as pl

    base = a.work / a.dataset
    found = sorted(base.glob("eval-*/rankings.parquet"))
    if not found:
        sys.exit(f"error: no eval-*/rankings.parquet under {base}; run `python bench/quality.py {a.dataset}` first")
    shares = {}
    for path in found:
        method = path.parent.name.removeprefix("eval-")
        r = pl.read_parquet(path, columns=["item_ids", "titles"])
        counts: Counter[tuple[str, str]] = Counter()
        for ids, titles in zip(r["item_ids"].to_list(), r["titles"].to_list(), strict=True):
            # free decoding leaves entries that are no catalogue item without an id: not counted
            counts.update({(i, t) for i, t in zip(ids[: a.k], titles[: a.k], strict=True) if i is not None})
        users = r.height
        common = counts.most_common(a.top)
        shares[method] = common[0][1] / users if common else 0.0
        print(f"{method}: {len(counts):,} distinct items in {users:,} users' top {a.k}")
        for (_, title), n in common:
            print(f"  {n / users:6.1%}  {title}")
    print("RESULT " + " ".join(f"{m}_top_share={s:.3f}" for m, s in shares.items()))


if __name__ == "__main__":
    main()
