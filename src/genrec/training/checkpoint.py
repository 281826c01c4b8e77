"""Checkpoints a run can resume from with the same result as an uninterrupted run.

A checkpoint holds the trained weights (a PEFT adapter, or the whole model when
``finetune=full``), the optimizer and scheduler states,
every process's random-number generator states and the step counters. It is written
into a temporary folder and renamed, so a crash or kill mid-write leaves the previous
checkpoint as the newest complete one.
"""

from __future__ import annotations

import errno
import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from ..errors import GenrecError

CKPT_DIR = "checkpoints"


def rng_state() -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoints(run_dir: Path) -> list[Path]:
    root = run_dir / CKPT_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.glob("step-*") if (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def latest(run_dir: Path) -> Path | None:
    found = checkpoints(run_dir)
    return found[-1] if found else None


def _disk_error(e: OSError, where: Path) -> GenrecError:
    if e.errno == errno.ENOSPC:
        return GenrecError(
            f"the disk is full while writing {where}; earlier checkpoints are intact",
            "free space and continue with `genrec train ... --resume`",
        )
    return GenrecError(f"cannot write {where}: {e}", "check the folder's permissions and free space")


def save(accelerator, run_dir: Path, step: int, peft_model, optimizer, scheduler, state: dict, keep: int) -> Path:
    """Write checkpoint `step` atomically (collective: every process must call it)."""
    root = run_dir / CKPT_DIR
    final = root / f"step-{step}"
    tmp = root / f".tmp-step-{step}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    try:
        torch.save(rng_state(), tmp / f"rng-{accelerator.process_index}.pt")
        if accelerator.is_main_process:
            peft_model.save_pretrained(tmp / "adapter")
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _disk_error(e, tmp) from None
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / "state.json").write_text(json.dumps(state, indent=2))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in checkpoints(run_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load(accelerator, ckpt: Path, peft_model, optimizer, scheduler) -> dict:
    """Restore a checkpoint written by :func:`save`; returns its state counters."""
    from ..model.finetune import load_weights_into

    load_weights_into(peft_model, ckpt / "adapter")
    optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=False))
    rng_file = ckpt / f"rng-{accelerator.process_index}.pt"
    if rng_file.is_file():
        set_rng_state(torch.load(rng_file, weights_only=False))
    return json.loads((ckpt / "state.json").read_text())
