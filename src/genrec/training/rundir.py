"""The run folder `genrec train` writes, and the rules that protect it.

::

    run.json            status, dataset record, backbone record, which step the adapter is from
    config.yaml         the resolved TrainConfig
    adapter/            the LoRA adapter in PEFT format (``PeftModel.from_pretrained``)
    catalogue.parquet   item_id, title, train_count: the catalogue inference needs
    names.json          item names the model writes (random-id variant only)
    train_log.jsonl     one object per logging step and per validation
    checkpoints/step-N  resumable state (see checkpoint.py)

A run is portable (issue 14): it holds everything inference reads, so a copy on another
machine recommends without the dataset folder or the backbone cache it was trained with.
run.json records the backbone by name (alias or Hub id) with a sha256 of its weights
(``model.backbone.backbone_record``) and the dataset's prompt settings (name, domain,
max_history) beside its path; ``catalogue.parquet`` holds the catalogue's ids and titles
in index order, with each item's count in the training parts (what the popularity and
last-item assistants are fitted on). :meth:`RunDir.dataset` returns the dataset folder
when it is still there with the same catalogue, else :class:`RunCatalogue`, the run's own
copy; runs written before the copy existed still load from the dataset folder.
:meth:`RunDir.export` copies a run without its resumable state, the folder that
``save_pretrained`` writes and ``genrec push`` uploads.

A folder that holds another run is never overwritten unless asked; a run from another
genrec run-format version is refused with a clear message. A run replaced with
``overwrite`` is trained in a staging sibling (:meth:`RunDir.staged`) and renamed over
the old one only when it is complete (:meth:`RunDir.commit`): a replacement that fails
or is interrupted leaves the old run as it was.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import shutil
import warnings
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl

from .._io import atomic_dir, atomic_file, check_out, dumps, read_json, replace_dir, write_json
from .._version import __version__
from ..data.dataset import Dataset
from ..data.live_catalogue import fingerprint
from ..errors import GenrecError
from .config import TrainConfig

RUN_FORMAT = 1
#: the run's copy of the catalogue (item_id, title, train_count in index order)
CATALOGUE_FILE = "catalogue.parquet"
#: what run.json keeps of the dataset's manifest: its description and the prompt settings
MANIFEST_KEYS = ("name", "format", "domain", "n_users", "n_items", "n_interactions", "examples", "split",
                 "max_history", "settings", "genrec_format", "genrec_version")
#: not part of a copied run: resumable state, the best adapter (already in adapter/), temporary files
_NOT_EXPORTED = ("checkpoints", "best", ".*")


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

    def dataset(self, info: dict | None = None) -> Dataset:
        """The dataset the run was trained on: its folder when that is still there with the
        catalogue the run recorded, else the run's own copy (:class:`RunCatalogue`)."""
        info = info or self.info()
        record = info["dataset"]
        path = Path(record["path"]) if record.get("path") else None
        has_copy = (self.path / CATALOGUE_FILE).is_file()
        if path is not None and (path / "manifest.json").is_file():
            try:
                ds = Dataset(path)
                recorded = (record.get("catalogue") or {}).get("sha256")
                if not has_copy or recorded is None or fingerprint(ds.catalogue, ds.name)["sha256"] == recorded:
                    return ds
            except GenrecError:
                if not has_copy:
                    raise
            warnings.warn(f"the dataset at {path} is not the one {self.path} was trained on (its catalogue differs); "
                          "using the run's own copy of the catalogue", stacklevel=2)
        if has_copy:
            return RunCatalogue(self.path, record)
        raise GenrecError(
            f"the dataset {record.get('path')} that {self.path} was trained on is not here, and the run holds no copy "
            f"of its catalogue (it was trained with genrec {info.get('genrec_version')}, before runs kept one)",
            "pass the dataset (Recommender.load(RUN, dataset=DATA_DIR), --dataset DATA_DIR); "
            "save_pretrained then writes a copy that needs it no more",
        )

    def backbone_source(self, info: dict | None = None) -> str:
        """What to load the backbone from: the folder training loaded it from when that is
        here (the same machine), else its recorded name (an alias or a Hub id)."""
        info = info or self.info()
        record = info.get("backbone") or {}
        path, name = record.get("path"), record.get("name") or self.config().backbone
        if path and (Path(path) / "config.json").is_file():
            return path
        kind = record.get("kind")
        if kind == "local" or (kind is None and path and Path(path).is_absolute() and name == path):
            raise GenrecError(
                f"the run's backbone is the local folder {name}, which is not on this machine"
                + (f" (weights sha256 {record['sha256']})" if record.get("sha256") else ""),
                f"copy that model folder to {name}; a run trained with an alias or a Hub id "
                "(--backbone OWNER/NAME) finds its backbone on any machine",
            )
        return name

    def keep_catalogue(self, ds: Dataset) -> dict:
        """Write the catalogue of `ds` into the run (``catalogue.parquet``); returns the
        run.json dataset fields that describe it."""
        cat = ds.catalogue
        table = pl.DataFrame({"item_id": list(cat.item_ids), "title": list(cat.titles),
                              "train_count": np.asarray(ds.item_popularity(), dtype=np.int64)})
        with atomic_file(self.path / CATALOGUE_FILE, "wb") as f:
            table.write_parquet(f)
        return {
            "name": ds.name, "n_items": len(cat), "split": ds.manifest.get("split"),
            "manifest": {k: ds.manifest[k] for k in MANIFEST_KEYS if k in ds.manifest},
            "catalogue": {"file": CATALOGUE_FILE, "sha256": fingerprint(cat, ds.name)["sha256"]},
        }

    @contextlib.contextmanager
    def export(self, dest: str | Path, dataset: Dataset | None = None, keep_paths: bool = True) -> Iterator[Path]:
        """Copy the run to `dest` as a portable folder; yields the folder being written.

        Left out: ``checkpoints/`` and ``best/`` (resumable state; ``adapter/`` is the
        adapter in use). Put in when the run lacks it (trained before runs kept it): the
        catalogue copy (from `dataset`, default the run's, which must then be here) and the
        backbone's hash. A `dataset` with another catalogue (a title run may serve one)
        replaces the copy. ``keep_paths=False`` drops this machine's absolute paths from
        run.json (for a folder published elsewhere). `dest` is written atomically and may
        only be new, empty or another run folder.
        """
        dest = Path(dest)
        info = self.info()
        if dest.resolve().is_relative_to(self.path.resolve()):
            where = "is the run itself" if dest.resolve() == self.path.resolve() else f"is inside the run {self.path}"
            raise GenrecError(f"{dest} {where}", "save the run to a new folder outside it")
        with atomic_dir(dest, kind="run", inputs=[self.path]) as tmp:
            shutil.copytree(self.path, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*_NOT_EXPORTED))
            out = RunDir(tmp)
            record = dict(info["dataset"])
            has_copy = (tmp / CATALOGUE_FILE).is_file()
            if dataset is None and not has_copy:
                dataset = self.dataset(info)
            recorded = (record.get("catalogue") or {}).get("sha256")
            if dataset is not None and not (has_copy and recorded == fingerprint(dataset.catalogue, dataset.name)["sha256"]):
                record.update(out.keep_catalogue(dataset))
            backbone = dict(info.get("backbone") or {})
            if "sha256" not in backbone and backbone.get("path") and Path(backbone["path"]).is_dir():
                from ..model.backbone import backbone_record

                backbone = backbone_record(backbone.get("name") or backbone["path"], backbone["path"])
            if not keep_paths:
                _forget_path(tmp / "adapter", backbone.get("path"), backbone.get("name"))
                record["path"] = backbone["path"] = None
            out.update(dataset=record, backbone=backbone)
            yield tmp

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
                if info["dataset"].get("path") is None or Path(info["dataset"]["path"]) != dataset_path.resolve():
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

    def create(self, cfg: TrainConfig, dataset: Dataset, overwrite: bool) -> None:
        """Start a new run in the folder (after :meth:`check`); a staged one starts afresh,
        with the copy of the dataset's catalogue and prompt settings that inference reads."""
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
            dataset={"path": str(dataset.path.resolve()), **self.keep_catalogue(dataset)},
            backbone={"name": cfg.backbone},
        )

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


class RunCatalogue(Dataset):
    """The dataset as a run keeps it for inference: the catalogue (ids, titles, each
    item's training count) and the manifest's description and prompt settings, without
    the interactions. What needs those (evaluation, training a SASRec assistant the run
    has not stored) is told to pass the dataset."""

    def __init__(self, run_path: str | Path, record: dict):
        self.run_path = Path(run_path)
        self.path = self.run_path / CATALOGUE_FILE
        self.trained_on = record.get("path")
        self.manifest = dict(record["manifest"])

    @cached_property
    def items(self) -> pl.DataFrame:
        return pl.read_parquet(self.path)

    def item_popularity(self) -> np.ndarray:
        return self.items["train_count"].to_numpy().astype(np.int64)

    def _no_interactions(self) -> GenrecError:
        return GenrecError(
            f"this needs the interactions of the dataset {self.name!r}; the run {self.run_path} holds only its "
            f"catalogue ({self.trained_on or 'the dataset folder'} is not here)",
            "pass the dataset folder (Recommender.load(RUN, dataset=DATA_DIR), --dataset / --data DATA_DIR)",
        )

    @property
    def sequences(self):
        raise self._no_interactions()

    def examples(self, split):
        raise self._no_interactions()


def _forget_path(adapter: Path, path: str | None, name: str | None) -> None:
    """PEFT writes the folder the backbone was loaded from into the adapter's config and
    card; a published copy names the backbone instead (the path means nothing elsewhere)."""
    if not path or not name or path == name:
        return
    config = adapter / "adapter_config.json"
    if config.is_file():
        data = read_json(config)
        if data.get("base_model_name_or_path") == path:
            write_json(config, {**data, "base_model_name_or_path": name})
    card = adapter / "README.md"
    if card.is_file():
        card.write_text(card.read_text(encoding="utf-8").replace(path, name), encoding="utf-8")


def _ends_with_newline(p: Path) -> bool:
    with open(p, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) == b"\n"
