"""`genrec train` and `genrec backbones`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ..errors import GenrecError
from ..training.config import TrainConfig, from_preset  # pydantic only: no torch at start-up
from . import app, console, fail, out
from ._progress import PlainLines
from ._settings import CONTEXT, settings_command


class TrainProgress:
    """Progress fed by the training loop's log entries: a rich bar on a terminal; piped or
    under a scheduler, plain lines (at the start, every 30 s or 10% of the steps, at the
    end) and a line when a validation pass starts and when it ends."""

    def __init__(self):
        self.bar = None
        self.plain = None if console.is_terminal else PlainLines("train", "steps", console)
        if self.plain is None:
            self.bar = Progress(
                TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                console=console, transient=False,
            )
        self.task = None
        self.info = ""

    def __call__(self, e: dict) -> None:
        kind = e["kind"]
        if kind == "start":
            if self.plain is not None:
                self.plain.update(e["step"], e["total"], f"{e['examples']:,} examples")
                return
            self.bar.start()
            self.task = self.bar.add_task("train", total=e["total"], completed=e["step"], info="")
        elif kind == "train":
            info = f"loss {e['loss']:.3f}  {e['tokens_per_second']:.0f} tok/s"
            if self.plain is not None:
                self.plain.update(e["step"], e.get("total", self.plain.total), info.replace("  ", ", "))
            elif self.task is not None:
                self.info = info
                self.bar.update(self.task, completed=e["step"], info=info)
        elif kind == "eval_start":
            if self.task is not None:
                self.bar.update(self.task, info=f"validating on {e['users']:,} users")
            else:
                console.print(f"step {e['step']}: validating on {e['users']:,} users", highlight=False)
        elif kind == "eval":
            if self.task is not None:  # the pass is over
                self.bar.update(self.task, info=self.info)
            shown = {k.removeprefix("valid_"): round(v, 4) for k, v in e.items() if k.startswith("valid_")}
            console.print(f"step {e['step']} validation: {shown} ({e.get('seconds', 0):.1f} s)", highlight=False, soft_wrap=True)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        elif self.plain is not None:
            self.plain.finish()


def _print_fields(wanted: bool) -> None:
    if wanted:  # markup=False: a description's [a,b] is text, not a rich style
        out.print(TrainConfig.field_help(), highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit()


def _help() -> str:
    """`genrec train --help`: the field list is generated from TrainConfig, so it never
    misses a field."""
    names = ", ".join(TrainConfig.field_names())
    return (
        "Fine-tune a backbone to write the next item (GenRec): LoRA or every weight, items as titles, random ids or item tokens.\n\n"
        "Writes RUN_DIR/adapter, config.yaml, train_log.jsonl, run.json and checkpoints/. Runs unchanged under "
        "`accelerate launch -m genrec train ...` or `torchrun --nproc_per_node N -m genrec train ...`.\n\n"
        f"Config fields (set with --set KEY=VALUE, e.g. --set lr=1e-3 --set lora.r=16; `--fields` explains each): {names}."
    )


# a field written as an option (--lr 1e-3) or as a bare lr=1e-3 is answered with --set lr=1e-3
@app.command(help=_help(), cls=settings_command(TrainConfig.field_names), context_settings=CONTEXT)
def train(
    data_dir: Annotated[Path, typer.Argument(help="a dataset folder from `genrec prepare`")],
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE",
        help="a config field (repeatable), e.g. --set lr=1e-3 --set lora.r=16; applied after --preset/--config, --backbone and --max-steps",
    )] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="run folder to write")] = Path("runs/genrec"),
    backbone: Annotated[str | None, typer.Option(help="smollm2-135m (packaged), tiny-random-llama, a local folder or a hub name")] = None,
    preset: Annotated[str | None, typer.Option(help="paper, recommended or cpu (default: cpu without a GPU, else recommended), or a YAML file")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="a train config YAML file (fields as in RUN/config.yaml; the same as --preset FILE)")] = None,
    max_steps: Annotated[int | None, typer.Option(help="stop after N optimizer steps")] = None,
    resume: Annotated[bool, typer.Option(help="continue the run in --out from its last checkpoint")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace a run already in --out")] = False,
    show_config: Annotated[bool, typer.Option(help="print the resolved config and exit")] = False,
    fields: Annotated[bool, typer.Option("--fields", is_eager=True, callback=lambda v: _print_fields(v),
                                         help="list every config field with its default and meaning, and exit")] = False,
) -> None:
    from ..training.loop import train as run_train

    try:
        preset = _config_file(config, preset) if config is not None else preset
        if resume and not overrides and not backbone and not preset and not max_steps:
            from ..training.rundir import RunDir

            cfg = RunDir(out_dir).config()
        else:
            cfg = from_preset(preset, backbone, max_steps, overrides or [])
        if show_config:
            out.print(cfg.to_yaml(), highlight=False, markup=False)
            return
        bar = TrainProgress()
        t0 = time.perf_counter()
        try:
            info = run_train(data_dir, out_dir, cfg, resume=resume, overwrite=overwrite, progress=bar)
        finally:
            bar.stop()
    except GenrecError as e:
        fail(e)
    except KeyboardInterrupt:
        if overwrite and not resume:  # the replacement was trained aside (RunDir.staged)
            console.print(f"[yellow]interrupted[/]: the run in {out_dir} is unchanged; train again with --overwrite to replace it")
        else:
            console.print(f"[yellow]interrupted[/]: the last checkpoint in {out_dir}/checkpoints is complete; continue with --resume")
        raise typer.Exit(130) from None
    console.print(
        f"[green]{info['status']}[/] {out_dir}: {info['steps_done']} steps, {info['examples_seen']:,} examples, "
        f"{info['train_seconds']:.0f} s of training ({time.perf_counter() - t0:.0f} s in all); adapter from step {info['adapter_step']}"
    )


def _config_file(config: Path, preset: str | None) -> str:
    """--config FILE as the preset to load; a missing file is named as such rather than
    taken for an unknown preset name."""
    if preset is not None:
        raise GenrecError(f"both --config {config} and --preset {preset} are given", "pass one: --config FILE.yaml or --preset NAME")
    if config.suffix not in (".yaml", ".yml"):
        raise GenrecError(f"--config {config} is not a .yaml file", "pass a YAML file, or a preset name with --preset (paper, recommended, cpu)")
    if not config.is_file():
        raise GenrecError(f"--config {config} does not exist", "check the path (`genrec train DATA_DIR --show-config > FILE.yaml` writes one to start from)")
    return str(config)


@app.command()
def backbones() -> None:
    """List the backbones available here (packaged default, test model, Hugging Face cache)."""
    from ..model.backbone import list_backbones

    t = Table("name", "state", "description")
    for row in list_backbones():
        t.add_row(row["name"], row["state"], row["description"])
    out.print(t)
