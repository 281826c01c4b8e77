"""An evaluation's rankings as a TREC run and qrels, which trec_eval and ranx read.

Formats (trec_eval's README; ranx ``Run.from_file`` / ``Qrels.from_file``, kind ``trec``):

- ``run.trec``: ``qid Q0 docid rank score runname``, one line per ranked slot, best first;
- ``qrels.trec``: ``qid 0 docid 1``, one line per query: the held-out target.

A query is one evaluated example: its qid is the user id, or ``USER:POSITION`` when a
user has several examples (a temporal split's test part); docids are item ids. With
``ids="index"`` both are genrec's indices instead (for ids holding whitespace, which the
format cannot).

Two rules make trec_eval and ranx recompute genrec's HR/NDCG/MRR exactly:

- trec_eval ignores the rank column and sorts by score (ties by docid), and stores a
  score as a C ``float``; so the scores written are genrec's at float32 precision, made
  strictly decreasing along the list (a tie or an out-of-order score becomes the next
  float32 below the previous one). The order is then genrec's, in any reader.
- genrec counts a slot that holds no catalogue item (``INVALID``: free decoding wrote an
  unknown title; ``NO_ITEM``: a gap) as a position: a target after it ranks one lower.
  Such a slot before a real item is written as a placeholder docid
  (``genrec:invalid:RANK``, ``genrec:no-item:RANK``), never relevant; markers after the
  last real item are left out. A list with no real item writes no line: evaluate with
  ``trec_eval -c`` (or ranx's ``make_comparable``) so that query counts as a miss.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from .._io import KINDS, atomic_dir, check_out, write_json
from .._version import __version__
from ..errors import GenrecError
from ..ranking import INVALID, NO_ITEM
from .report import _load

#: the marker `check_out` recognises an export folder by (see ``_io.KINDS``)
MARKER = KINDS["trec-run"][0][0]
RUN_FILE = "run.trec"
QRELS_FILE = "qrels.trec"

IdMode = Literal["source", "index"]
_WS = re.compile(r"\s")


def export_trec(
    eval_dir: str | Path,
    out: str | Path,
    *,
    run_name: str | None = None,
    ids: IdMode = "source",
    overwrite: bool = False,
) -> dict:
    """Write ``run.trec`` and ``qrels.trec`` for the evaluation folder `eval_dir` into the
    folder `out`; returns the export's summary (also written to ``trec_export.json``).

    `run_name`: the run's name in the last column (default: the method). `ids`: ``source``
    (user and item ids) or ``index`` (row and catalogue indices). `out` must pass
    ``_io.check_out``; an earlier export there is replaced (atomically) only with `overwrite`.
    """
    eval_dir = Path(eval_dir)
    check_out(out, "trec-run", [eval_dir], overwrite)
    if ids not in ("source", "index"):
        raise GenrecError(f"unknown ids {ids!r}", "use source (user and item ids) or index (genrec's indices)")
    metrics, rankings = _load(eval_dir)
    if rankings.height == 0:
        raise GenrecError(f"{eval_dir / 'rankings.parquet'} holds no ranked lists", "evaluate again with at least one user")
    name = run_name if run_name is not None else _WS.sub("_", str(metrics.get("method") or "genrec"))
    if not name or _WS.search(name):
        raise GenrecError(f"the run name {name!r} is empty or holds whitespace", "give a run name without spaces, e.g. --run-name genrec-beam10")

    items, scores = _matrices(rankings)
    n, k = items.shape
    qids = _qids(rankings, ids)
    docids = _docids(rankings, items, ids)
    targets = rankings["target_id"].to_list() if ids == "source" else [str(t) for t in rankings["target"].to_list()]
    if ids == "source":
        _check_tokens(qids, docids, targets)

    real = items >= 0
    # slots up to each list's last real item; a trailing marker ranks nothing
    length = np.where(real.any(axis=1), k - np.argmax(real[:, ::-1], axis=1), 0)
    keep = np.arange(k)[None, :] < length[:, None]
    rows, slots = np.nonzero(keep)
    run = pl.DataFrame({
        "qid": np.asarray(qids, dtype=object)[rows].tolist(),
        "iter": ["Q0"] * len(rows),
        "docid": docids[rows, slots].tolist(),
        "rank": slots + 1,
        "score": pl.Series(_decreasing(scores, real)[rows, slots], dtype=pl.Float32).cast(pl.Utf8),
        "run": [name] * len(rows),
    }, schema_overrides={"qid": pl.Utf8, "docid": pl.Utf8})
    qrels = pl.DataFrame({"qid": qids, "iter": ["0"] * n, "docid": targets, "rel": ["1"] * n})
    placeholders = int((keep & ~real).sum())
    summary = {
        "genrec_version": __version__,
        "format": "TREC run and qrels (trec_eval, ranx)",
        "evaluation": str(eval_dir),
        "method": metrics.get("method"),
        "dataset": metrics.get("dataset"),
        "split": metrics.get("split"),
        "run_name": name,
        "ids": ids,
        "qid": "row index" if ids == "index" else ("user_id" if _unique_users(rankings) else "user_id:position"),
        "queries": n,
        "list_length": k,
        "run_lines": len(rows),
        "placeholders": placeholders,
        "queries_without_items": int((length == 0).sum()),
        "scores": "genrec's scores at float32 precision, made strictly decreasing along each list",
        "check": f"trec_eval -c -m ndcg_cut.10 -m recall.10 -m recip_rank {QRELS_FILE} {RUN_FILE}",
        "metrics": {key: metrics[key] for key in metrics if re.fullmatch(r"(hr|ndcg|mrr)@\d+", key)},
    }
    with atomic_dir(out, overwrite, kind="trec-run", inputs=[eval_dir]) as tmp:
        for frame, file in ((run, RUN_FILE), (qrels, QRELS_FILE)):
            frame.write_csv(tmp / file, separator=" ", include_header=False, quote_style="never")
        write_json(tmp / MARKER, summary)
    return summary


def _matrices(rankings: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(n, k) catalogue indices (markers kept, short lists padded with NO_ITEM) and scores."""
    item_rows = rankings["items"].to_list()
    score_rows = rankings["scores"].to_list()
    k = max((len(r) for r in item_rows), default=0)
    items = np.full((len(item_rows), k), NO_ITEM, dtype=np.int64)
    scores = np.full((len(item_rows), k), np.nan, dtype=np.float64)
    for i, (row, srow) in enumerate(zip(item_rows, score_rows, strict=True)):
        items[i, : len(row)] = row
        scores[i, : len(srow)] = [np.nan if s is None else s for s in srow]
    return items, scores


def _unique_users(rankings: pl.DataFrame) -> bool:
    return rankings["user_id"].n_unique() == rankings.height


def _qids(rankings: pl.DataFrame, ids: IdMode) -> list[str]:
    if ids == "index":
        return [str(i) for i in range(rankings.height)]
    users = rankings["user_id"].to_list()
    if _unique_users(rankings):
        return users
    # several examples per user: the target's position tells them apart
    return [f"{u}:{p}" for u, p in zip(users, rankings["position"].to_list(), strict=True)]


def _docids(rankings: pl.DataFrame, items: np.ndarray, ids: IdMode) -> np.ndarray:
    """(n, k) object array: the docid of every slot, placeholders for markers."""
    n, k = items.shape
    out = np.empty((n, k), dtype=object)
    if ids == "index":
        out[:] = items.astype(str)
    else:
        for i, row in enumerate(rankings["item_ids"].to_list()):
            out[i, : len(row)] = row
    rank = np.broadcast_to(np.arange(1, k + 1), (n, k))
    for marker, word in ((INVALID, "invalid"), (NO_ITEM, "no-item")):
        hit = items == marker
        out[hit] = [f"genrec:{word}:{r}" for r in rank[hit]]
    return out


def _check_tokens(qids: list[str], docids: np.ndarray, targets: list[str | None]) -> None:
    problems = []
    bad_q = [q for q in qids if not q or _WS.search(q) or q.startswith("#")]
    if bad_q:
        problems.append(f"{len(bad_q)} user id(s) are empty, hold whitespace or start with '#' (first: {bad_q[0]!r})")
    flat = [d for d in docids.ravel().tolist() if d is not None]
    bad_d = [d for d in (*flat, *targets) if not d or _WS.search(d)]
    if bad_d:
        problems.append(f"{len(bad_d)} item id(s) are empty or hold whitespace (first: {bad_d[0]!r})")
    if problems:
        raise GenrecError(
            "; ".join(problems) + ": a TREC file's fields are whitespace-separated",
            "export with --ids index (Python: ids='index'): qids are then row numbers and docids catalogue indices",
        )


def _decreasing(scores: np.ndarray, real: np.ndarray) -> np.ndarray:
    """float32 scores, strictly decreasing along each row, keeping genrec's where they are.

    A real item's finite score is kept when it is below the previous slot's; otherwise
    (a tie, a marker, a non-finite score) the slot gets the next float32 below the
    previous. A leading marker takes the row's first real score (0 when it has none).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        s = scores.astype(np.float32)
    s[~real | ~np.isfinite(s)] = np.nan
    out = np.empty_like(s)
    if s.shape[1] == 0:
        return out
    finite = ~np.isnan(s)
    first = np.where(finite.any(axis=1), s[np.arange(len(s)), np.argmax(finite, axis=1)], np.float32(0))
    out[:, 0] = np.where(finite[:, 0], s[:, 0], first)
    down = np.float32(-np.inf)
    for r in range(1, s.shape[1]):
        prev = out[:, r - 1]
        out[:, r] = np.where(finite[:, r] & (s[:, r] < prev), s[:, r], np.nextafter(prev, down))
    return out
