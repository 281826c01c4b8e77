"""The run folder `genrec train` writes, and the rules that protect it.

::

    run.json            status, dataset pointer, backbone, which step the adapter is from
    config.yaml         the resolved TrainConfig
    adapter/            the LoRA adapter in PEFT format (``PeftModel.from_pretrained``)
    names.json          item names the model writes (random-id variant only)
    train_log.jsonl     one object per logging step and per validation
    checkpoints/step-N  resumable state (see checkpoint.py)

A folder that holds another run is never overwritten unless asked; a run from another
genrec run-format version is refused with a clear message.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from pathlib import Path

from .._io import atomic_file, read_json, write_json
from .._version import __version__
from ..errors import GenrecError
from .config import TrainConfig

RUN_FORMAT = 1


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    def exists(self) -> bool:
        return self.run_json.is_file()

    def info(self) -> dict:
        if not self.exists():
            raise GenrecError(
                f"{self.path} is not a genrec run folder (no run.json)",
                "train one with `genrec train DATA_DIR --out RUN_DIR`",
            )
        info = read_json(self.run_json)
        if info.get("run_format") != RUN_FORMAT:
            raise GenrecError(
                f"{self.path} was written by genrec {info.get('genrec_version')} in run format "
                f"{info.get('run_format')!r}; this genrec reads run format {RUN_FORMAT}",
                "train the run again with this version of genrec",
            )
        return info

    def config(self) -> TrainConfig:
        return TrainConfig.from_yaml(self.path / "config.yaml")

    def update(self, **fields) -> None:
        info = read_json(self.run_json) if self.exists() else {}
        info.update(fields)
        write_json(self.run_json, info)

    def check(self, cfg: TrainConfig, dataset_path: Path, resume: bool, overwrite: bool) -> None:
        """Refuse a folder that may not be used, before anything is loaded or written."""
        if self.path.exists() and not self.path.is_dir():
            raise GenrecError(f"{self.path} is a file", "choose a folder for --out")
        if self.exists():
            info = self.info()
            if resume:
                old = self.config()
                if old.model_dump() != cfg.model_dump():
                    diff = sorted(k for k, v in cfg.model_dump().items() if old.model_dump().get(k) != v)
                    raise GenrecError(
                        f"--resume with settings that differ from the run in {self.path}: {', '.join(diff)}",
                        "resume with the same settings (omit the overrides), or train into another --out",
                    )
                if Path(info["dataset"]["path"]) != dataset_path.resolve():
                    raise GenrecError(
                        f"{self.path} was trained on {info['dataset']['path']}, not {dataset_path.resolve()}",
                        "resume with the same DATA_DIR",
                    )
                return
            if not overwrite:
                raise GenrecError(
                    f"{self.path} already holds a run ({info.get('status')}, backbone {info['backbone']['name']}, "
                    f"dataset {info['dataset']['name']})",
                    "pass --resume to continue it, --overwrite to replace it, or choose another --out",
                )
        elif self.path.exists() and any(self.path.iterdir()):
            if resume:
                raise GenrecError(f"{self.path} holds no run to resume", "drop --resume to start a new run")
            raise GenrecError(
                f"{self.path} exists, is not empty and is not a genrec run",
                "choose an empty or new folder for --out",
            )
        elif resume:
            raise GenrecError(f"{self.path} holds no run to resume", "drop --resume to start a new run")

    def create(self, cfg: TrainConfig, dataset_path: Path, dataset_manifest: dict, overwrite: bool) -> None:
        """Start a new run in the folder (after :meth:`check`)."""
        if self.exists() and overwrite:
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.path / "config.yaml") as f:
            f.write(cfg.to_yaml())
        self.update(
            run_format=RUN_FORMAT,
            genrec_version=__version__,
            status="running",
            started=now(),
            dataset={
                "path": str(dataset_path.resolve()),
                "name": dataset_manifest["name"],
                "n_items": dataset_manifest["n_items"],
                "split": dataset_manifest["split"],
            },
            backbone={"name": cfg.backbone},
        )
        return False

    def log(self, entry: dict) -> None:
        with open(self.path / "train_log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def truncate_log(self, after_step: int) -> None:
        """On resume, drop log lines written after the checkpoint we resume from."""
        p = self.path / "train_log.jsonl"
        if not p.is_file():
            return
        keep = [line for line in p.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= after_step]
        with atomic_file(p) as f:
            f.write("".join(line + "\n" for line in keep))

    def read_log(self) -> list[dict]:
        p = self.path / "train_log.jsonl"
        if not p.is_file():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
