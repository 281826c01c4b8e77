"""Accelerate's experiment trackers beside train_log.jsonl (``TrainConfig.log_with``).

``log_with=tensorboard`` writes event files to ``RUN/logs/genrec/``; ``log_with=wandb``
logs to Weights & Biases (its own login). Every line of train_log.jsonl goes to the
trackers as scalars named ``train/loss``, ``eval/valid_hr@10``, ... at its step, and the
config as hyperparameters. Accelerate drops a tracker whose package is missing without a
word, so genrec refuses it first, naming what to install.
"""

from __future__ import annotations

import importlib.util

from .config import TrainConfig
from .rundir import RunDir

#: tracker logs (TensorBoard event files, wandb's folder) live in RUN/logs/
TRACKER_DIR = "logs"
#: the modules each tracker needs (any one of them), and what to pip install
TRACKER_PACKAGES = {"tensorboard": (("tensorboard", "tensorboardX"), "tensorboard"), "wandb": (("wandb",), "wandb")}


def check_trackers(names: list[str] | None) -> None:
    """Refuse trackers whose package is missing, before anything is loaded or written."""
    from ..errors import GenrecError

    missing = [n for n in names or [] if not any(importlib.util.find_spec(m) for m in TRACKER_PACKAGES[n][0])]
    if missing:
        packages = " ".join(TRACKER_PACKAGES[n][1] for n in missing)
        raise GenrecError(
            f"log_with={','.join(missing)} needs the {packages} package, which is not installed",
            f"pip install {packages}, or train without log_with (train_log.jsonl is always written)",
        )


def tracker_config(cfg: TrainConfig) -> dict:
    """The config as trackers store hyperparameters: flat dotted keys, scalar values."""
    out: dict = {}

    def put(prefix: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                put(f"{prefix}{k}.", v)
        else:
            out[prefix[:-1]] = ",".join(map(str, value)) if isinstance(value, list) else value

    put("", cfg.model_dump(mode="json"))
    return out


def tracker_values(entry: dict) -> dict:
    """A train_log.jsonl entry as tracker scalars: ``train/loss``, ``eval/valid_hr@10``, ..."""
    kind = entry.get("kind", "train")
    return {
        f"{kind}/{k}": v for k, v in entry.items()
        if k not in ("kind", "step", "total") and isinstance(v, int | float) and not isinstance(v, bool)
    }


def start_trackers(accelerator, cfg: TrainConfig, run: RunDir, name: str) -> None:
    """Start Accelerate's trackers (they live on the main process only)."""
    logs = run.path / TRACKER_DIR
    if accelerator.is_main_process:
        logs.mkdir(parents=True, exist_ok=True)
    accelerator.init_trackers("genrec", config=tracker_config(cfg), init_kwargs={"wandb": {"name": name, "dir": str(logs)}})


def finish_trackers(accelerator) -> None:
    """Close the trackers once (``end_training`` would close them again)."""
    for tracker in accelerator.trackers:
        tracker.finish()
    accelerator.trackers = []
