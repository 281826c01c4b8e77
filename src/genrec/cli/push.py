"""`genrec push RUN REPO_ID`: a run on the Hugging Face Hub, with a generated model card.

The uploaded folder is the portable copy of the run (``RunDir.export``: no checkpoints,
the catalogue copy, no absolute paths of this machine) plus ``README.md``, a model card
stating the data set, the training settings (config.yaml), the backbone, the metrics of
an evaluation given with ``--eval`` (kept as ``eval/metrics.json``) and a licence note.
``Recommender.from_pretrained(REPO_ID)`` loads it back. The upload is
``huggingface_hub``'s (``HfApi.create_repo`` then ``upload_folder``; its login: ``hf auth
login`` or ``HF_TOKEN``); files an earlier push left and this one lacks are deleted.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ..errors import GenrecError
from . import app, fail, out, status

#: the headline metrics a card shows (in this order) when an evaluation names them
_HEADLINE = ("hr@", "ndcg@", "mrr", "validity", "coverage")
#: the backbone licences genrec knows (any other: see the backbone's own card)
_BACKBONE_LICENSES = {"smollm2-135m": "apache-2.0", "smollm2": "apache-2.0", "tiny-random-llama": "apache-2.0"}


def read_metrics(eval_dir: Path) -> dict:
    """The metrics.json of an evaluation folder (`genrec evaluate --out`)."""
    from .._io import read_json

    path = eval_dir / "metrics.json" if eval_dir.is_dir() else eval_dir
    if not path.is_file():
        raise GenrecError(f"{eval_dir} holds no metrics.json", "pass a folder written by `genrec evaluate --out EVAL_DIR`")
    metrics = read_json(path)
    if not isinstance(metrics, dict) or "method" not in metrics:
        raise GenrecError(f"{path} is not the metrics.json of a genrec evaluation", "pass a folder written by `genrec evaluate`")
    return metrics


def model_card(run: Path, repo_id: str, metrics: dict | None = None, license: str | None = None) -> str:
    """README.md for a portable run folder: data, settings, backbone, metrics, licences."""
    from .._io import read_json

    info = read_json(run / "run.json")
    data = info.get("dataset") or {}
    manifest = data.get("manifest") or {}
    backbone = info.get("backbone") or {}
    name = backbone.get("name", "?")
    known = _BACKBONE_LICENSES.get(name)
    card_license = license or known or "other"
    config = (run / "config.yaml").read_text(encoding="utf-8").strip()
    example = _example_titles(run)
    lines = ["---", "library_name: genrec", f"license: {card_license}",
             "tags: [genrec, recommendation, generative-recommendation, peft, lora]"]
    if backbone.get("kind") == "hub":
        lines.append(f"base_model: {name}")
    lines += ["---", "", f"# GenRec on {data.get('name', '?')} ({name})", "",
              "A genrec run: a causal language model fine-tuned to write the title of a user's "
              "next item from the titles of the items they interacted with (GenRec, Ji et al., arXiv 2307.00457). "
              "Recommendations are constrained to the catalogue shipped here (`catalogue.parquet`).", "",
              "```python", "from genrec import Recommender", "",
              f'rec = Recommender.from_pretrained("{repo_id}")',
              f"rec.recommend({example!r}, k=10)  # titles or item ids, oldest first", "```", "",
              "## Data", "", "| | |", "|---|---|"]
    for key, label in (("name", "data set"), ("format", "source format"), ("domain", "domain"), ("n_users", "users"),
                       ("n_items", "items"), ("n_interactions", "interactions"), ("split", "split"),
                       ("max_history", "history length (at most)")):
        value = manifest.get(key, data.get(key))
        if value is not None:
            lines.append(f"| {label} | {f'{value:,}' if isinstance(value, int) else value} |")
    examples = manifest.get("examples")
    if isinstance(examples, dict):
        lines.append("| examples | " + ", ".join(f"{k} {v:,}" for k, v in examples.items()) + " |")
    lines += ["", "## Training", "",
              f"Status {info.get('status')}, {info.get('steps_done', '?')} optimizer steps "
              f"({info.get('examples_seen', '?')} examples, {info.get('train_seconds', '?')} s, "
              f"{info.get('processes', 1)} process(es)); the adapter is from step {info.get('adapter_step', '?')}; "
              f"genrec {info.get('genrec_version')}. The resolved settings (`config.yaml`):", "",
              "```yaml", config, "```", "",
              "## Backbone", "", f"`{name}` ({backbone.get('kind', 'as named')})"
              + (f", weights sha256 `{backbone['sha256']}`" if backbone.get("sha256") else "")
              + (f", revision `{backbone['revision']}`" if backbone.get("revision") else "")
              + ". It is fetched by that name when the run loads; a different download is reported.", ""]
    if metrics is not None:
        lines += _metrics_section(metrics)
    lines += ["## Licence", "",
              f"genrec is Apache-2.0. This folder holds an adapter of `{name}` (licence: "
              f"{known or 'see that model’s card'}) and the catalogue (item ids and titles) of "
              f"{data.get('name', 'the data set')}, whose terms also apply: some data sets (MovieLens 100K and 1M, "
              "for one) may not be redistributed without permission. The `license` above was "
              + ("given to `genrec push --license`." if license else "taken from the backbone." if known
                 else "not known to genrec: check the backbone's and the data's terms."), ""]
    return "\n".join(lines)


def _example_titles(run: Path) -> list[str]:
    """A history for the card's example: the two items most often in training."""
    import polars as pl

    from ..training.rundir import CATALOGUE_FILE

    items = pl.read_parquet(run / CATALOGUE_FILE).sort("train_count", descending=True, maintain_order=True)
    return items["title"].head(2).to_list()


def _metrics_section(metrics: dict) -> list[str]:
    ci = metrics.get("ci") or {}
    keys = [k for prefix in _HEADLINE for k, v in metrics.items()
            if k.startswith(prefix) and isinstance(v, int | float) and not isinstance(v, bool)]
    lines = ["## Evaluation", "",
             f"`genrec evaluate`, method {metrics.get('method')}, on {metrics.get('dataset')} ({metrics.get('split')} split, "
             f"{metrics.get('n_users', '?')} users, full-catalogue ranking):", "", "| metric | value | 95% interval |", "|---|---|---|"]
    for k in dict.fromkeys(keys):
        interval = ci.get(k)
        cell = f"[{_fmt(interval[0])}, {_fmt(interval[1])}]" if isinstance(interval, list | tuple) and len(interval) == 2 else ""
        lines.append(f"| {k} | {_fmt(metrics[k])} | {cell} |")
    return [*lines, "", "The whole `metrics.json` is in `eval/`.", ""]


def _fmt(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def push_run(run: Path, repo_id: str, eval_dir: Path | None = None, private: bool = False,
             license: str | None = None, message: str | None = None, save_to: Path | None = None) -> str:
    """Upload the portable copy of `run` with its model card to `repo_id`; returns the
    commit's URL. With `save_to`, write the folder there and upload nothing."""
    from .._io import write_json
    from ..training.rundir import RunDir

    if repo_id.count("/") != 1 or repo_id.startswith((".", "/")):
        raise GenrecError(f"{repo_id!r} is not a Hugging Face Hub id", "give OWNER/NAME, e.g. your-name/genrec-ml-1m")
    metrics = read_metrics(eval_dir) if eval_dir is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_to or Path(tmp) / "model"
        with RunDir(run).export(folder, keep_paths=False) as staged:
            if metrics is not None:
                write_json(staged / "eval" / "metrics.json", metrics)
            (staged / "README.md").write_text(model_card(staged, repo_id, metrics, license), encoding="utf-8")
        if save_to is not None:
            return str(save_to)
        from huggingface_hub import HfApi

        api = HfApi()
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            commit = api.upload_folder(repo_id=repo_id, folder_path=folder, delete_patterns="*",
                                       commit_message=message or f"genrec run {Path(run).name}")
        except Exception as e:  # noqa: BLE001  (network, login, permissions: the Hub's words say which)
            raise GenrecError(f"pushing to {repo_id} failed: {type(e).__name__}: {e}",
                              "log in (`hf auth login`, or set HF_TOKEN), check the id and the network; "
                              "--out DIR writes the folder without pushing") from None
    return str(getattr(commit, "commit_url", commit))


@app.command()
def push(
    run: Annotated[Path, typer.Argument(help="a run folder from `genrec train`")],
    repo_id: Annotated[str, typer.Argument(help="the Hugging Face Hub model repo, OWNER/NAME (created if missing)")],
    eval_dir: Annotated[Path | None, typer.Option("--eval", help="an evaluation folder of this run (`genrec evaluate --out`): its metrics go into the model card")] = None,
    private: Annotated[bool, typer.Option("--private", help="create the repo private")] = False,
    license: Annotated[str | None, typer.Option("--license", help="the card's licence id (default: the backbone's when genrec knows it, else 'other')")] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="commit message")] = None,
    save_to: Annotated[Path | None, typer.Option("--out", help="write the folder that would be pushed here (a new folder) and push nothing")] = None,
) -> None:
    """Upload a run to the Hugging Face Hub with a generated model card.

    The folder pushed is the run without checkpoints, with its catalogue (ids and titles)
    and without this machine's paths, plus README.md (data set, settings from
    config.yaml, backbone, licence note, and the metrics of --eval). Load it anywhere with
    Recommender.from_pretrained("OWNER/NAME"). Login: `hf auth login` or HF_TOKEN.
    """
    try:
        with status(f"pushing {run} to {repo_id}"):
            where = push_run(run, repo_id, eval_dir, private, license, message, save_to)
    except GenrecError as e:
        fail(e)
    out.print(f"{'wrote' if save_to else 'pushed'} {where}", highlight=False, soft_wrap=True)
