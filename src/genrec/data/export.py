"""A dataset folder as RecBole atomic files, with genrec's split kept exactly.

RecBole (Zhao et al., RecBole 1.x; recbole.io "Atomic Files") reads a data set from
``DATA_PATH/NAME/NAME.<suffix>``. The export writes, in a folder named NAME:

- ``NAME.train.inter``, ``NAME.valid.inter``, ``NAME.test.inter``: RecBole's pre-split
  benchmark layout (``benchmark_filename: [train, valid, test]``, the layout UniSRec and
  other LLM-recommendation data sets use). A row is one of genrec's examples:
  ``user_id:token``, ``item_id_list:token_seq`` (the history, oldest first, at most
  `max_history` items, as genrec's own windows), ``item_id:token`` (the target); with
  ``timestamp_list:float_seq`` and ``timestamp:float`` when the data has times. RecBole
  uses these rows as they are (no augmentation, no re-split), so its sequential models
  train, validate and test on exactly genrec's examples.
- ``NAME.item``: ``item_id:token`` and the title, as ``movie_title:token_seq`` for movies
  (RecBole's ML-1M) and ``title:token_seq`` otherwise; in catalogue order.
- ``NAME.inter``: every event, one a row (``user_id``, ``item_id``, ``timestamp``), in
  genrec's order, for RecBole's general models and its own splits. (genrec reads the
  benchmark files back from ``NAME.test.inter``; given the folder it asks which set.)
- ``recbole.yaml``: the RecBole settings that load the benchmark files;
  ``recbole_export.json``: what was exported, and from where.

Reading the benchmark files back (``genrec prepare recbole OUT/NAME.test.inter``) gives
the same sequences, split and titles, with two exceptions RecBole's layout cannot
express, both counted in ``recbole_export.json``: a user whose sequence yields no
example (a single event) appears only in ``NAME.inter``; and an event that is the history
of a user's first row but not training (a temporal split's late starter) reads back as
training, since a list's items are history.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .._io import KINDS, atomic_dir, check_out, write_json
from .._version import __version__
from ..errors import GenrecError
from .dataset import SPLITS, Dataset
from .sequences import window_examples

#: the marker `check_out` recognises an export folder by (see ``_io.KINDS``)
MARKER = KINDS["recbole-export"][0][0]

IdMode = Literal["source", "index"]
#: a token_seq is split on spaces; any whitespace in a token would split it
_UNSAFE_ITEM = re.compile(r"\s")
#: a token field is tab-separated, a row newline-ended
_UNSAFE_TOKEN = re.compile(r"[\t\r\n]")


def export_recbole(
    data_dir: str | Path | Dataset,
    out: str | Path,
    *,
    max_history: int | None = None,
    ids: IdMode = "source",
    overwrite: bool = False,
) -> dict:
    """Write the dataset at `data_dir` as RecBole atomic files in the folder `out`; returns
    the export's summary (also written to ``recbole_export.json``).

    The files are named after the folder (``out/NAME.train.inter`` for ``out`` = ``.../NAME``),
    as RecBole looks for them. `max_history` caps each ``item_id_list`` (default: the
    dataset's own cap, so the rows are genrec's examples); RecBole's
    ``MAX_ITEM_LIST_LENGTH`` must be at least that. `ids`: ``source`` writes the dataset's
    user and item ids, ``index`` the dense indices genrec uses (for ids holding spaces,
    which a RecBole token list cannot). `out` must pass ``_io.check_out``; an earlier
    export there is replaced (atomically) only with `overwrite`.
    """
    ds = data_dir if isinstance(data_dir, Dataset) else Dataset(data_dir)
    out = Path(out)
    name = _name(out)
    check_out(out, "recbole-export", [ds.path], overwrite)
    if ids not in ("source", "index"):
        raise GenrecError(f"unknown ids {ids!r}", "use source (the dataset's ids) or index (dense indices)")
    cap = ds.manifest["max_history"] if max_history is None else max_history
    if cap < 1:
        raise GenrecError(f"max_history must be at least 1, got {cap}", "give a positive length, e.g. 50 (RecBole's default)")
    seqs = ds.sequences
    items = ds.items
    users, item_tokens = _tokens(seqs.user_ids, items["item_id"].to_list(), ids)
    titles = items["title"].to_list()
    bad = [t for t in titles if t is None or _UNSAFE_TOKEN.search(t)]
    if bad:
        raise GenrecError(
            f"{len(bad)} title(s) are empty or hold a tab or line break (first: {bad[0]!r})",
            "prepare the dataset again with this genrec (it normalises whitespace in titles)",
        )
    timed = bool(np.any(seqs.timestamps != 0))
    movies = ds.domain == "movies"
    title_field = "movie_title" if movies else "title"

    # Events as global positions: one window pass gives both the items and the times.
    positions = dataclasses.replace(seqs, items=np.arange(len(seqs.items), dtype=np.int32))
    summary: dict = {
        "genrec_version": __version__,
        "format": "recbole atomic files (benchmark_filename: [train, valid, test])",
        "dataset": str(ds.path),
        "dataset_name": ds.name,
        "name": name,
        "split": ds.manifest.get("split"),
        "max_history": cap,
        "ids": ids,
        "title_field": title_field,
        "timestamps": timed,
        "rows": {},
    }
    with atomic_dir(out, overwrite, kind="recbole-export", inputs=[ds.path]) as tmp:
        in_rows = np.zeros(seqs.n_users, dtype=bool)
        used = np.zeros(len(item_tokens), dtype=bool)
        for part in SPLITS:
            table = window_examples(positions, part, cap)
            summary["rows"][part] = table.num_rows
            _write_windows(tmp / f"{name}.{part}.inter", table, seqs, users, item_tokens, timed)
            if table.num_rows:
                in_rows[np.unique(table.column("user_id").combine_chunks().indices.to_numpy())] = True
                hist = table.column("history").combine_chunks()
                glob = np.concatenate([hist.values.to_numpy(), table.column("target").to_numpy()])
                used[seqs.items[glob]] = True
        _write_events(tmp / f"{name}.inter", seqs, users, item_tokens, timed)
        _write_items(tmp / f"{name}.item", item_tokens, titles, title_field)
        (tmp / "recbole.yaml").write_text(_recbole_yaml(name, cap), encoding="utf-8")
        starts_late = (seqs.n_train == 0) & (seqs.lengths() >= 2)
        summary["users"] = int(in_rows.sum())
        summary["users_only_in_inter"] = int((~in_rows).sum())
        summary["users_first_event_not_training"] = int(starts_late.sum())
        summary["items"] = len(item_tokens)
        summary["items_only_in_inter"] = int((~used).sum())
        notes = []
        if summary["users_only_in_inter"]:
            notes.append(
                f"{summary['users_only_in_inter']} user(s) have a single event (no example), so they are in "
                f"{name}.inter but in no benchmark file"
                + (f"; {summary['items_only_in_inter']} item(s) occur only in their events" if summary["items_only_in_inter"] else "")
            )
        if summary["users_first_event_not_training"]:
            notes.append(
                f"{summary['users_first_event_not_training']} user(s) have no training event; their first event is "
                "the history of their first row, which RecBole's layout (and genrec's reader) counts as training"
            )
        summary["notes"] = notes
        write_json(tmp / MARKER, summary)
    return summary


def _name(out: Path) -> str:
    name = out.resolve().name
    if not name or name.rpartition(".")[2] in SPLITS:
        raise GenrecError(
            f"the export folder's name {name!r} cannot name a RecBole data set (its files are named after it, "
            "and NAME.train.inter would read as a split file)",
            "choose a folder named after the data set, e.g. exports/ml-1m",
        )
    return name


def _tokens(user_ids: list[str], item_ids: list[str], ids: IdMode) -> tuple[pa.Array, pa.Array]:
    """The user and item tokens to write (arrow string arrays, indexed as genrec indexes them)."""
    if ids == "index":
        return (pa.array([str(i) for i in range(len(user_ids))], pa.string()),
                pa.array([str(i) for i in range(len(item_ids))], pa.string()))
    problems = []
    bad_items = [i for i in item_ids if not i or _UNSAFE_ITEM.search(i)]
    if bad_items:
        problems.append(f"{len(bad_items)} item id(s) are empty or hold whitespace (first: {bad_items[0]!r}), "
                        "which an item_id_list (space-separated) cannot hold")
    bad_users = [u for u in user_ids if not u or _UNSAFE_TOKEN.search(u)]
    if bad_users:
        problems.append(f"{len(bad_users)} user id(s) are empty or hold a tab or line break (first: {bad_users[0]!r})")
    if problems:
        raise GenrecError("; ".join(problems), "export with --ids index (Python: ids='index'): tokens are then genrec's dense indices")
    return pa.array(user_ids, pa.string()), pa.array(item_ids, pa.string())


def _join_lists(offsets: pa.Array, values: pa.Array) -> pl.Series:
    """Space-joined token lists from arrow list offsets and string values."""
    lists = pa.LargeListArray.from_arrays(pa.array(np.asarray(offsets, dtype=np.int64)), values)
    return pl.Series(pl.from_arrow(lists)).list.join(" ")


def _write_windows(path: Path, table: pa.Table, seqs, users: pa.Array, item_tokens: pa.Array, timed: bool) -> None:
    hist = table.column("history").combine_chunks()
    glob_hist = hist.values.to_numpy()
    glob_target = table.column("target").to_numpy()
    offsets = hist.offsets.to_numpy()
    user_index = table.column("user_id").combine_chunks().indices
    cols = {
        "user_id:token": pl.Series(pl.from_arrow(pc.take(users, user_index))),
        "item_id_list:token_seq": _join_lists(offsets, pc.take(item_tokens, pa.array(seqs.items[glob_hist]))),
        "item_id:token": pl.Series(pl.from_arrow(pc.take(item_tokens, pa.array(seqs.items[glob_target])))),
    }
    if timed:
        times = pa.array(seqs.timestamps[glob_hist]).cast(pa.string())
        cols["timestamp_list:float_seq"] = _join_lists(offsets, times)
        cols["timestamp:float"] = pl.Series(seqs.timestamps[glob_target])
    _write_tsv(path, pl.DataFrame(cols))


def _write_events(path: Path, seqs, users: pa.Array, item_tokens: pa.Array, timed: bool) -> None:
    user_of = np.repeat(np.arange(seqs.n_users, dtype=np.int64), seqs.lengths())
    cols = {
        "user_id:token": pl.Series(pl.from_arrow(pc.take(users, pa.array(user_of)))),
        "item_id:token": pl.Series(pl.from_arrow(pc.take(item_tokens, pa.array(seqs.items)))),
    }
    if timed:
        cols["timestamp:float"] = pl.Series(seqs.timestamps)
    _write_tsv(path, pl.DataFrame(cols))


def _write_items(path: Path, item_tokens: pa.Array, titles: list[str], title_field: str) -> None:
    _write_tsv(path, pl.DataFrame({
        "item_id:token": pl.Series(pl.from_arrow(item_tokens)),
        f"{title_field}:token_seq": pl.Series(titles, dtype=pl.Utf8),
    }))


def _write_tsv(path: Path, df: pl.DataFrame) -> None:
    # RecBole never quotes (titles hold quotes), so neither do we; tabs and line breaks
    # were refused above
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\t".join(df.columns) + "\n")
        if df.height:
            df.write_csv(f, separator="\t", include_header=False, quote_style="never")


def _recbole_yaml(name: str, cap: int) -> str:
    return (
        f"# RecBole settings for the files beside this one (written by genrec export recbole).\n"
        f"# Set data_path to the folder that holds the folder {name}/, then e.g.\n"
        f"#   python run_recbole.py --model=SASRec --dataset={name} --config_files={name}/recbole.yaml\n"
        f"# The benchmark files are genrec's train / valid / test examples, used as they are.\n"
        f"dataset: {json.dumps(name)}\n"
        "benchmark_filename: [train, valid, test]\n"
        "USER_ID_FIELD: user_id\n"
        "ITEM_ID_FIELD: item_id\n"
        "load_col:\n"
        "  inter: [user_id, item_id_list, item_id]\n"
        "alias_of_item_id: [item_id_list]\n"
        f"MAX_ITEM_LIST_LENGTH: {cap}\n"
    )
