"""`genrec evaluate` and `genrec compare`: full-catalogue evaluation of a method, and tables
and paired tests across evaluations.

Method construction is the library's ``genrec.recommenders.build_method``; this module
only turns options into its arguments, shows progress, and reads the launcher's
``WORLD_SIZE`` to shard users under ``torchrun`` / ``accelerate launch``.

A method's settings are given as ``--set KEY=VALUE`` (its config's fields: SASRec's,
last-item's, the genrec method's decoding settings); flags are the evaluation's own
settings, plus genrec's main decoding settings, which ``genrec recommend`` and ``genrec
serve`` take as the same flags.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from ..config import check_keys, parse_overrides
from ..errors import ConfigError, GenrecError
from . import app, console, fail, out, status
from ._progress import CountProgress
from ._settings import CONTEXT, settings_command

#: settings that `evaluate` takes as flags, never as --set (one spelling each): the inputs,
#: and genrec's decoding settings that `genrec recommend` and `genrec serve` take as flags too
_FLAGS = {"run": "--run", "model": "--model"}
_DECODING_FLAGS = {"decode": "--decode", "mode": "--decode", "beams": "--beams", "grounding": "--grounding",
                   "renormalise": "--renormalise", "assist": "--assist", "assist_weight": "--assist-weight"}
#: the genrec method's settings that are no decoding field: where the LLM runs
_RUNTIME = {"threads": "threads=None: torch CPU threads (default: torch's)",
            "device": "device=None: torch device, e.g. cpu or cuda (default: cuda when there is a GPU)"}
_FIELDS_FIX = "`genrec evaluate --fields` lists each method's settings"


def method_settings(method: str) -> dict[str, str]:
    """`method`'s ``--set`` settings: name → ``name=default: meaning``, generated from its
    config (the genrec method: its decoding config, less the settings with flags)."""
    from ..recommenders import METHODS

    cls = METHODS[method]
    config = getattr(cls, "config_class", None)
    if config is not None:
        return {line.split("=", 1)[0]: line for line in config.field_help().splitlines()}
    options = getattr(cls, "OPTIONS", ())  # the genrec method: what its from_options takes
    if not options:
        return {}
    from ..decoding.config import DecodingConfig

    lines = {line.split("=", 1)[0]: line for line in DecodingConfig.field_help().splitlines()}
    return {name: lines.get(name) or _RUNTIME.get(name, name) for name in options if name not in _DECODING_FLAGS}


def _all_settings() -> list[str]:
    """Every method's settings (what an unknown option such as --epochs is checked against)."""
    from ..recommenders import METHODS

    return [name for method in METHODS for name in method_settings(method)]


def method_options(method: str, pairs: list[str]) -> dict:
    """``--set`` pairs as `method`'s settings, checked before anything is loaded or
    trained: a key that is no setting of the method is named with the closest ones, a bad
    value with what is allowed, a setting that has a flag with the flag."""
    from ..recommenders import METHODS

    options = parse_overrides(pairs)
    flags = {**_FLAGS, **(_DECODING_FLAGS if method == "genrec" else {})}
    flagged = [k for k in options if k in flags]
    if flagged:
        raise GenrecError(f"--set {', '.join(flagged)}: {'these are' if len(flagged) > 1 else 'this is'} set with a flag",
                          "write " + " ".join(_as_flag(flags[k], options[k]) for k in flagged))
    names = list(method_settings(method))
    if options and not names:
        raise GenrecError(f"the {method} method has no settings (got --set {', '.join(options)})", f"drop --set; {_FIELDS_FIX}")
    check_keys(options, names, _FIELDS_FIX)
    cls = METHODS[method]
    config = getattr(cls, "config_class", None)
    if config is None and getattr(cls, "OPTIONS", None):  # the genrec method: its decoding config
        from ..decoding.config import DecodingConfig

        config = DecodingConfig
    if config is not None:  # the values, now rather than after the data is loaded
        try:
            config.build({k: v for k, v in options.items() if k in config.model_fields})
        except ConfigError as e:
            raise ConfigError(e.problems, f"{_FIELDS_FIX} and their allowed values") from None
    return options


def _as_flag(flag: str, value) -> str:
    if isinstance(value, bool):  # a switch: --renormalise / --no-renormalise
        return flag if value else f"--no-{flag.removeprefix('--')}"
    return f"{flag} {value}"


def _print_fields(wanted: bool) -> None:
    """`genrec evaluate --fields`: every method's settings, generated from its config."""
    if not wanted:
        return
    from ..recommenders import METHODS

    flags = ", ".join(dict.fromkeys(_DECODING_FLAGS.values()))
    blocks = []
    for method in METHODS:
        lines = list(method_settings(method).values())
        head = f"{method} (--run RUN_DIR; also {flags})" if method == "genrec" else method
        blocks.append(f"{head}:" + "".join(f"\n  {line}" for line in lines) if lines else f"{method}: no settings")
    blocks.append("Set with --set KEY=VALUE (repeatable). With --model a saved model is loaded as it was trained: only sasrec's threads and device may be set.")
    out.print("\n".join(blocks), highlight=False, soft_wrap=True, markup=False)
    raise typer.Exit()


# a method setting written as an option (--epochs 40) is answered with --set epochs=40
@app.command(cls=settings_command(_all_settings), context_settings=CONTEXT)
def evaluate(
    data_dir: Annotated[Path, typer.Argument(help="a prepared dataset folder")],
    method: Annotated[str | None, typer.Option(help="popularity, last-item, sasrec, or genrec (implied by --run)")] = None,
    run: Annotated[Path | None, typer.Option(help="a run folder from `genrec train`: evaluate the fine-tuned LLM")] = None,
    decode: Annotated[str, typer.Option(help="genrec: beam (constrained), exact (best-first top-K), free (the paper's, mapped to items) or rerank (the --assist's top items scored by the model; --set rerank_depth=N)")] = "beam",
    beams: Annotated[int, typer.Option(help="genrec: beam width (>= k)")] = 10,
    grounding: Annotated[str, typer.Option(help="genrec --decode free: exact (the paper's string match), bm25 or embedding, or bigrec (the catalogue ranked by distance to the best output; --assist popularity and --set ground_weight=GAMMA tilt it)")] = "exact",
    renormalise: Annotated[bool, typer.Option(help="genrec: score tokens among the catalogue's continuations only")] = False,
    assist: Annotated[str | None, typer.Option(help="genrec --decode beam: fuse an assistant at every step (D3); --decode rerank: the assistant that proposes candidates; sasrec, popularity or last-item")] = None,
    assist_weight: Annotated[float | None, typer.Option(help="genrec: the assistant's weight in [0, 1] (default: the one stored in RUN/assist.json)")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="evaluation folder to write: new, empty, or an earlier evaluation with --overwrite")] = Path("eval"),
    overwrite: Annotated[bool, typer.Option(help="replace the evaluation in --out and the model in --save-model (atomically)")] = False,
    split: Annotated[str, typer.Option(help="test or valid")] = "test",
    limit: Annotated[int | None, typer.Option(help="evaluate a random subset of this many users (drawn with --seed)")] = None,
    k_max: Annotated[int | None, typer.Option(help="length of every ranked list; HR/NDCG are reported for K = 1..k-max (default 20; genrec: the beam width)")] = None,
    keep_seen: Annotated[bool, typer.Option("--keep-seen", help="do not exclude items from the user's history")] = False,
    seed: Annotated[int, typer.Option(help="seed of the user subset, the bootstrap and the method's training")] = 0,
    history: Annotated[str, typer.Option(help="full (whole prefix; the default) or window (the dataset's capped history)")] = "full",
    batch_size: Annotated[int | None, typer.Option(help="users per recommend() call (default 256; 16 for genrec)")] = None,
    resamples: Annotated[int, typer.Option(help="bootstrap resamples for the confidence intervals")] = 1000,
    model: Annotated[Path | None, typer.Option(help="load a saved model (e.g. from --save-model) instead of training")] = None,
    save_model: Annotated[Path | None, typer.Option(help="save the trained model to this folder")] = None,
    cold_start: Annotated[bool, typer.Option("--cold-start", help="also report HR/NDCG/MRR separately for targets that never occur in training (cold) and the rest (warm), in metrics.json under cold_start")] = False,
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE",
        help="a setting of the method (repeatable), e.g. --set epochs=40 --set threads=2 (sasrec), --set n_last=3 (last-item); `--fields` lists them",
    )] = None,
    fields: Annotated[bool, typer.Option("--fields", is_eager=True, callback=lambda v: _print_fields(v),
                                         help="list every method's settings with their defaults and meanings, and exit")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print metrics.json as one line of JSON on stdout instead of the summary line (progress and messages stay on stderr)")] = False,
) -> None:
    """Rank the full catalogue for every user of a split and write metrics.json, rankings.parquet, report.md, plot.png.

    Seen items are excluded unless --keep-seen. Metrics: HR@K and NDCG@K (K = 1..k-max),
    MRR, valid rate, coverage@10, popularity bias, 95% bootstrap intervals, users/s (users
    ranked per second from the first recommend() call to the last, loading and training
    excluded; the progress bar shows the same figure). Not on a terminal (piped, under a
    scheduler) progress is printed as plain lines: at the start, every 30 s or 10%, at the end.
    Under `torchrun --nproc_per_node N -m genrec evaluate ...` users are sharded across
    the processes and rank 0 writes the same outputs as one process would.

    genrec: `--run RUN_DIR` with `--decode beam|exact|free`, `--beams`, `--grounding`,
    `--renormalise`, `--assist sasrec|popularity`, `--assist-weight` (histories are cut to the run's prompt window; seen items are still
    all excluded).

    A method's settings (its config's fields) are given as --set KEY=VALUE, repeatable:
    e.g. --set epochs=40 --set threads=2 for sasrec, --set n_last=3 for last-item,
    --set batch_size=8 for genrec. `genrec evaluate --fields` lists every method's
    settings with their defaults and meanings.
    """
    from .._io import check_out
    from ..data import Dataset
    from ..decoding.config import DecodingConfig
    from ..evaluation import distributed, write_eval
    from ..evaluation import evaluate as run_evaluate
    from ..recommenders import METHODS, build_method

    try:
        distributed.init(int(os.environ.get("WORLD_SIZE", "1")))
        rank, world = distributed.rank_and_world()
        main = rank == 0
        if run is not None:
            if method not in (None, "genrec"):
                raise GenrecError(f"--run evaluates the genrec method, not {method!r}", "drop --method or --run")
            method = "genrec"
        method = method or "popularity"
        if method == "genrec" and run is None and model is None:
            raise GenrecError("--method genrec needs --run RUN_DIR", "train one with `genrec train` first")
        if split not in ("test", "valid"):
            raise GenrecError(f"--split {split!r} is not test or valid", "use --split test or --split valid")
        if method not in METHODS:
            raise GenrecError(f"unknown method {method!r}", f"use one of: {', '.join(METHODS)}")
        # refuse a bad setting or --out before minutes of training, not after
        options = method_options(method, overrides or [])
        inputs = [data_dir, run, model]
        check_out(out_dir, "evaluation", inputs, overwrite)
        if save_model is not None:
            if save_model.resolve() == out_dir.resolve():
                raise GenrecError(f"--save-model and --out are the same folder {out_dir}", "give the model its own folder")
            check_out(save_model, "model", [*inputs, out_dir], overwrite)
        ds = Dataset(data_dir)
        config_class = getattr(METHODS[method], "config_class", None)
        if model is None and config_class is not None and "seed" in config_class.model_fields:
            options.setdefault("seed", seed)
        if model is not None:
            options["model"] = model
        if method != "genrec" and (assist is not None or assist_weight is not None):
            raise GenrecError(f"--assist and --assist-weight apply to the genrec method, not {method}",
                              "drop them, or evaluate a trained run with --run RUN_DIR")
        if method == "genrec":
            options.update(run=run or model, decode=decode, beams=beams, grounding=grounding, renormalise=renormalise,
                           **{k: v for k, v in dict(assist=assist, assist_weight=assist_weight).items() if v is not None})
            options.pop("model", None)
            options.pop("seed", None)
            # the decoding settings checked, and --k-max against their list limit, before a model is loaded
            decoding = DecodingConfig.of(**{k: v for k, v in options.items() if k in DecodingConfig.model_fields and k != "mode"}, mode=decode)
            if k_max is not None and decoding.max_k is not None and k_max > decoding.max_k:
                what, field = decoding.max_k_setting
                flag = "--beams " if field == "beams" else f"--set {field}="
                raise GenrecError(f"--k-max {k_max} is larger than the {what} {decoding.max_k}", f"pass {flag}{k_max} or a smaller --k-max")
        say = (lambda msg: console.print(f"[dim]{method}:[/] {msg}", highlight=False)) if main else None
        with status(f"preparing {method}") if main else contextlib.nullcontext():
            rec = build_method(method, ds, options, progress=say)
        if save_model is not None and main:
            rec.save(save_model)
            console.print(f"[green]saved[/] the {method} model to {save_model}")
        # users/s on the bar is metrics.json's users_per_second: users ranked over the time from
        # the first recommend() call on (rank 0's share times the processes; cli/_progress.py)
        label = f"evaluating {method}" + (f" (rank 0 of {world})" if world > 1 else "")
        with CountProgress(label, console, "users", scale=world, enabled=main) as bar:
            result = run_evaluate(
                rec, ds, split=split, k_max=k_max, limit=limit, seed=seed,
                batch_size=batch_size,  # None: the method's own (genrec.recommenders: eval_batch_size)
                exclude_seen=not keep_seen, history=history, n_resamples=resamples,  # type: ignore[arg-type]
                progress=bar,
            )
        if result is not None:
            if cold_start:
                from ..evaluation.cold import cold_start_metrics

                cold = cold_start_metrics(result.items, result.targets, ds, n_resamples=resamples, seed=seed)
                result.metrics["cold_start"] = cold  # goes to metrics.json and report.md
            write_eval(result, out_dir, overwrite=overwrite, inputs=inputs)
    except GenrecError as e:
        fail(e)
    finally:
        distributed.finish()
    if result is None:
        return
    if as_json:
        _print_json(out_dir / "metrics.json")
        console.print(f"[green]wrote[/] {out_dir}/" + ", ".join(sorted(p.name for p in out_dir.iterdir())))
        return
    s = result.summary()
    ci = s["ci"]
    k_max = result.items.shape[1]  # the list length the method ranked to
    out.print(
        f"{method} on {s['dataset']} ({split}, {s['n_users']:,} users): "
        f"HR@10 {s['hr@10']:.4f} [{ci['hr@10'][0]:.4f}, {ci['hr@10'][1]:.4f}]  "
        f"NDCG@10 {s['ndcg@10']:.4f} [{ci['ndcg@10'][0]:.4f}, {ci['ndcg@10'][1]:.4f}]  "
        + "  ".join(f"{key.upper()} {s[key]:.4f}" for key in sorted((k for k in s if k.startswith("mrr@")), key=lambda k: int(k[4:])))
        + f"  coverage@10 {s['coverage']:.4f}  {s['users_per_second']:,.1f} users/s"
        if k_max >= 10
        else f"{method}: MRR@{k_max} {s[f'mrr@{k_max}']:.4f}",
        highlight=False,
    )
    if cold_start:
        groups = {g: cold[g] for g in ("cold", "warm")}
        out.print(
            f"cold start: {cold['cold_items']:,} of {cold['catalogue_size']:,} items never in training; "
            + "; ".join(f"{g} targets ({v['n_users']:,} users) HR@10 {_fmt4(v.get('hr@10'))} NDCG@10 {_fmt4(v.get('ndcg@10'))}"
                        for g, v in groups.items()),
            highlight=False,
        )
    console.print(f"[green]wrote[/] {out_dir}/" + ", ".join(sorted(p.name for p in out_dir.iterdir())))


def _print_json(path: Path) -> None:
    """The JSON file at `path` as one line on stdout (without rich: no wrapping, no colour)."""
    import json

    from .._io import dumps

    typer.echo(dumps(json.loads(path.read_text(encoding="utf-8"))))


def _fmt4(x) -> str:
    return "–" if x is None or x != x else f"{x:.4f}"


@app.command()
def compare(
    eval_dirs: Annotated[list[Path], typer.Argument(help="two or more folders written by `genrec evaluate`")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for comparison.md, comparison.json and plot.png: new, empty, or an earlier comparison with --overwrite")] = Path("comparison"),
    overwrite: Annotated[bool, typer.Option(help="replace the comparison in --out (atomically)")] = False,
    resamples: Annotated[int, typer.Option(help="paired bootstrap resamples")] = 1000,
    seed: Annotated[int, typer.Option(help="bootstrap seed")] = 0,
    holm: Annotated[bool, typer.Option("--holm", help="add Holm-Bonferroni adjusted p-values over all the paired tests")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print comparison.json as one line of JSON on stdout instead of the table")] = False,
) -> None:
    """Compare evaluations of the same dataset and split: a table, one plot, paired tests against the first.

    Warns when the evaluations ranked to different depths (--k-max): MRR is then compared at 10.
    """
    from ..evaluation import compare as run_compare

    try:
        result = run_compare(eval_dirs, out_dir, n_resamples=resamples, seed=seed, overwrite=overwrite, holm=holm)
    except GenrecError as e:
        fail(e)
    for warning in result["warnings"]:
        console.print(Text.assemble(("warning: ", "yellow"), warning), highlight=False, soft_wrap=True)
    if as_json:
        _print_json(out_dir / "comparison.json")
    else:  # soft_wrap: a table row longer than the terminal stays one row
        out.print((out_dir / "comparison.md").read_text(encoding="utf-8"), highlight=False, markup=False, soft_wrap=True)
    console.print(f"[green]wrote[/] {out_dir} ({len(result['methods'])} methods, {result['paired_users']:,} paired users)")
