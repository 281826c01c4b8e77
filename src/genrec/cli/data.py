"""`genrec prepare`, `genrec items`, `genrec show`: building and inspecting datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.rule import Rule
from rich.table import Table

from ..errors import GenrecError
from . import app, console, fail, out, status
from ._progress import CountProgress


def _parse_map(pairs: list[str] | None) -> dict[str, str]:
    out_map: dict[str, str] = {}
    for p in pairs or []:
        if "=" not in p:
            raise GenrecError(f"--map {p!r} is not FIELD=COLUMN", "write e.g. --map user=customer_id --map item=sku")
        k, v = p.split("=", 1)
        out_map[k.strip()] = v.strip()
    return out_map


@app.command()
def prepare(
    format: Annotated[str, typer.Argument(help="movielens, recbole, amazon, genrec-json, table or bundled")],
    path: Annotated[Path | None, typer.Argument(help="file or folder to read (not needed for bundled or with --download)")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="dataset folder to write: new, empty, or an earlier dataset with --overwrite")] = Path("data/ml-latest-small"),
    overwrite: Annotated[bool, typer.Option(help="replace the dataset already in --out (atomically, once the new one is complete)")] = False,
    split: Annotated[str | None, typer.Option(help="leave-one-out, temporal or given (default: given for a source that comes split, RecBole's NAME.train/valid/test.inter; else leave-one-out)")] = None,
    max_history: Annotated[int, typer.Option(help="at most this many events in a history")] = 10,
    min_rating: Annotated[float | None, typer.Option(help="keep interactions rated at least this")] = None,
    user_core: Annotated[int, typer.Option(help="k-core: minimum interactions per user (0 = off)")] = 0,
    item_core: Annotated[int, typer.Option(help="k-core: minimum interactions per item (0 = off)")] = 0,
    repeats: Annotated[str, typer.Option(help="repeated (user, item) events: keep, first or last")] = "keep",
    name: Annotated[str | None, typer.Option(help="dataset name (default: from the source)")] = None,
    domain: Annotated[str | None, typer.Option(help="movies, products, games or items (prompt wording)")] = None,
    column_map: Annotated[list[str] | None, typer.Option("--map", help="table format: FIELD=COLUMN (fields: user, item, timestamp, rating, title, year, genres, brand, category)")] = None,
    items_file: Annotated[Path | None, typer.Option("--items", help="table format: a separate item table (CSV/Parquet) with item and title columns")] = None,
    download: Annotated[str | None, typer.Option(help="movielens: download this GroupLens set (e.g. ml-1m, ml-25m) instead of reading PATH")] = None,
    id_titles: Annotated[bool, typer.Option("--id-titles", help="recbole: without a NAME.item title, use the item ids as titles (right only when the ids are titles)")] = False,
) -> None:
    """Turn real data into the canonical dataset folder (catalogue, splits, examples, manifest).

    Config fields: split, max_history, min_rating, user_core, item_core, repeats, name, domain.
    """
    from .._io import check_out
    from ..data import PrepareConfig, read_source
    from ..data import prepare as run_prepare

    try:
        check_out(out_dir, "dataset", [path, items_file], overwrite)
        config = PrepareConfig.build(
            dict(split=split, max_history=max_history, min_rating=min_rating, user_core=user_core,
                 item_core=item_core, repeats=repeats, name=name, domain=domain)
        )
        options: dict = {}
        if column_map:
            options["columns"] = _parse_map(column_map)
        if items_file is not None:
            options["items_path"] = items_file
        if id_titles:
            if format != "recbole":
                raise GenrecError("--id-titles is offered for the recbole format only", "drop --id-titles")
            options["id_titles"] = True
        if download is not None:
            if format != "movielens":
                raise GenrecError("--download is offered for the movielens format only", "download the files yourself and pass PATH")
            from ..data.sources.download import download_movielens

            with CountProgress(f"downloading {download}", console, "MiB") as bar:
                path = download_movielens(download, progress=lambda n, total: bar(-(-n >> 20), total and -(-total >> 20)))
        with status(f"reading {format}"):
            source = read_source(format, path, **options)
        with status("preparing") as st:
            manifest = run_prepare(source, out_dir, config, progress=st, overwrite=overwrite, inputs=[path, items_file])
    except GenrecError as e:
        fail(e)
    ex = manifest["examples"]
    console.print(
        f"[green]wrote[/] {out_dir}: {manifest['n_users']:,} users, {manifest['n_items']:,} items, "
        f"{manifest['n_interactions']:,} interactions; examples train {ex['train']:,} / valid {ex['valid']:,} / "
        f"test {ex['test']:,} ({manifest['seconds']} s)"
    )
    if manifest["source_notes"].get("caveat"):
        console.print(f"[yellow]note:[/] {manifest['source_notes']['caveat']}")


#: typographic quotes people type as plain ones
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"'})


def _folded(text: str) -> str:
    """`text` for searching: accents dropped (NFKD without combining marks), quotes plain, case folded."""
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text.translate(_QUOTES))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@app.command()
def items(
    data_dir: Annotated[Path, typer.Argument(help="a prepared dataset folder")],
    search: Annotated[str | None, typer.Option(help="substring of the title, ignoring case, accents and apostrophe style (Pokemon finds Pokémon)")] = None,
    limit: Annotated[int, typer.Option(help="show at most this many")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON list")] = False,
) -> None:
    """List catalogue items, optionally those whose title contains TEXT."""
    import polars as pl

    from ..data import Dataset

    try:
        ds = Dataset(data_dir)
        df = ds.items
        if search:
            needle = _folded(search)
            df = df.filter(pl.col("title").map_elements(lambda t: needle in _folded(t), return_dtype=pl.Boolean))
        total = df.height
        df = df.head(limit)
    except GenrecError as e:
        fail(e)
    rows = [
        {k: v for k, v in r.items() if v is not None and k != "index"} for r in df.to_dicts()
    ]
    if as_json:
        out.print_json(json.dumps(rows, ensure_ascii=False))
        return
    t = Table("item_id", "title", "year", title=f"{total:,} item(s)" + (f", first {limit}" if total > limit else ""))
    for r in rows:
        t.add_row(str(r["item_id"]), r["title"], str(r.get("year", "")))
    out.print(t)


@app.command()
def show(
    data_dir: Annotated[Path, typer.Argument(help="a prepared dataset folder")],
    n: Annotated[int, typer.Option(help="how many rendered training prompts to show")] = 2,
    template: Annotated[str, typer.Option(help="alpaca or compact")] = "alpaca",
    serialisation: Annotated[str, typer.Option(help="lines, quoted or comma")] = "lines",
) -> None:
    """Print the manifest and a few rendered prompts: what the model will be trained on."""
    from ..data import Dataset
    from ..model.prompting import PromptBuilder
    from ..prompts import PromptSpec, example_key

    try:
        ds = Dataset(data_dir)
        spec = PromptSpec(template=template, serialisation=serialisation, domain=ds.domain)  # type: ignore[arg-type]
        # the training prompt rule (no tokenizer here, so no cutoff_len)
        prompts = PromptBuilder(spec, ds.manifest["max_history"])
        ex = ds.examples("train").head(n)
    except GenrecError as e:
        fail(e)
    out.print_json(json.dumps(ds.manifest, ensure_ascii=False))
    titles = ds.catalogue.titles
    for row in ex.iter_rows(named=True):
        key = example_key(row["user_id"], row["position"])
        text = spec.render(prompts.segments(row["history"], key) + spec.response(row["target"]), titles)
        # a rule fills the console's width, which is unbounded in a pipe (cli/__init__.py)
        out.print(Rule(f"user {row['user_id']}, target position {row['position']}"), width=None if out.is_terminal else 80)
        out.print(text, highlight=False, markup=False)
