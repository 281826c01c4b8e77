"""The run folder `genrec train` writes, and the rules that protect it.

::

    run.json            status, dataset pointer, backbone, which step the adapter is from
    config.yaml         the resolved TrainConfig
    adapter/            the LoRA adapter in PEFT format (``PeftModel.from_pretrained``)
    names.json          item names the model writes (random-id variant only)
    train_log.jsonl     one object per logging step and per validation
    checkpoints/step-N  resumable state (see checkpoint.py)

A folder that holds another run is never overwritten unless asked; a run from another
genrec run-format version is refused with a clear message. A run replaced with
``overwrite`` is trained in a staging sibling (:meth:`RunDir.staged`) and renamed over
the old one only when it is complete (:meth:`RunDir.commit`): a replacement that fails
or is interrupted leaves the old run as it was.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from pathlib import Path

from .._io import atomic_file, check_out, dumps, read_json, replace_dir, write_json
from .._version import __version__
from ..errors import GenrecError
from .config import TrainConfig

RUN_FORMAT = 1


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


class RunDir:
    def __init__(self, path: str | Path, replaces: Path | None = None):
        self.path = Path(path)
        #: the run folder this staged run replaces on :meth:`commit` (None: not staged)
        self.replaces = replaces

    def staged(self) -> RunDir:
        """Where a replacement of this run is trained until :meth:`commit`."""
        return RunDir(self.path.parent / f".{self.path.name}.replacing", replaces=self.path)

    def commit(self) -> None:
        """Put a staged run in the place of the run it replaces (which is deleted only now)."""
        if self.replaces is not None:
            replace_dir(self.path, self.replaces)
            self.path, self.replaces = self.replaces, None

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
        # the rules every command's --out follows; an earlier run is judged below
        check_out(self.path, "run", [dataset_path], overwrite=True)
        if self.exists():
            info = self.info()
            if resume:
                old = self.config()
                if old.model_dump() != cfg.model_dump():
                    diff = sorted(k for k, v in cfg.model_dump().items() if old.model_dump().get(k) != v)
                    raise GenrecError(
                        f"--resume with settings that differ from the run in {self.path}: {', '.join(diff)}",
                        "resume with the run's settings: give no overrides (they are read from its config.yaml) or repeat them exactly; else train into another --out",
                    )
                if Path(info["dataset"]["path"]) != dataset_path.resolve():
                    raise GenrecError(
                        f"{self.path} was trained on {info['dataset']['path']}, not {dataset_path.resolve()}",
                        "resume with the same DATA_DIR",
                    )
                from .checkpoint import latest

                if latest(self.path) is None:  # resuming would silently start again at step 0
                    raise GenrecError(
                        f"{self.path} has no complete checkpoint to resume from (checkpoints/ is empty or gone)",
                        "train it again with --overwrite (same settings), or into another --out",
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
        """Start a new run in the folder (after :meth:`check`); a staged one starts afresh."""
        if self.replaces is not None:
            shutil.rmtree(self.path, ignore_errors=True)  # left by an earlier replacement that failed
        elif self.exists() and overwrite:
            raise GenrecError(f"{self.path} holds a run", "replace a run through RunDir.staged()")
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
        """Append one line of standard JSON (a non-finite number is written as null).

        The line goes out in one write; a kill mid-write can tear only this last line,
        which :meth:`read_log` skips (a torn line is first ended, so it never swallows
        the next entry).
        """
        p = self.path / "train_log.jsonl"
        line = dumps(entry) + "\n"
        with open(p, "ab") as f:
            if f.tell() and not _ends_with_newline(p):
                line = "\n" + line
            f.write(line.encode("utf-8"))

    def truncate_log(self, after_step: int) -> None:
        """On resume, drop log lines written after the checkpoint we resume from."""
        p = self.path / "train_log.jsonl"
        if not p.is_file():
            return
        keep = [e for e in self.read_log() if e.get("step", 0) <= after_step]
        with atomic_file(p) as f:
            f.write("".join(dumps(e) + "\n" for e in keep))

    def read_log(self) -> list[dict]:
        """The log's entries; a line torn by a kill mid-write is skipped."""
        p = self.path / "train_log.jsonl"
        if not p.is_file():
            return []
        entries = []
        for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries


def _ends_with_newline(p: Path) -> bool:
    with open(p, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) == b"\n"
