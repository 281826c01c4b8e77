"""Checkpoints a run can resume from with the same result as an uninterrupted run.

A checkpoint is Accelerate's ``save_state`` folder, written by every process (under FSDP
each writes its shard; each writes its own random-number generator states), plus
genrec's step counters::

    checkpoints/step-N/
        model.safetensors     the trained weights only: LoRA adapters, or every weight with
                              finetune=full, named as in the training model (FSDP writes
                              Accelerate's pytorch_model_fsdp* instead, DeepSpeed its engine folder)
        optimizer.bin         optimizer state (FSDP: optimizer_0*)
        scheduler.bin         learning-rate schedule
        random_states_R.pkl   process R's python, numpy, torch (and CUDA) generator states
        scaler.pt             fp16 loss scale, when there is one
        state.json            step, tokens and examples seen, best validation (written last)

It is written into a temporary folder and renamed, so a crash or kill mid-write leaves the
previous checkpoint as the newest complete one. ``save_state`` would store the whole model
(a 7B backbone for a few MB of adapter): a save hook keeps only the trainable weights,
and a load hook puts them back, checking that they fit.

Checkpoints written before genrec used ``save_state`` (``adapter/``, ``optimizer.pt``,
``scheduler.pt``, ``rng-R.pt``) still resume, except under FSDP or DeepSpeed.
"""

from __future__ import annotations

import errno
import json
import random
import shutil
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from ..errors import GenrecError

CKPT_DIR = "checkpoints"
#: what Accelerate names the weights of the first prepared model (accelerate.utils.SAFE_WEIGHTS_NAME)
WEIGHTS_FILE = "model.safetensors"
#: the folder of a checkpoint written before save_state (PEFT adapter or full model)
LEGACY_ADAPTER = "adapter"


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


def _trainable(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def attach(accelerator) -> None:
    """Make ``save_state``/``load_state`` store and restore only the trainable weights.

    Accelerate runs these hooks for models it saves itself (one process, DDP); FSDP and
    DeepSpeed save through their own sharded formats and never reach them. Names are
    those of the unwrapped training model, so a checkpoint resumes under any number of
    processes.
    """

    def save_trainable(models, weights, output_dir) -> None:
        for i in range(len(weights)):
            inner = accelerator.unwrap_model(models[i])
            weights[i] = OrderedDict((n, p.detach()) for n, p in _trainable(inner).items())

    def load_trainable(models, input_dir) -> None:
        path = Path(input_dir) / WEIGHTS_FILE
        if not models or not path.is_file():
            return
        from safetensors.torch import load_file

        saved = load_file(path)
        for model in models:
            wanted = _trainable(accelerator.unwrap_model(model))
            if saved.keys() != wanted.keys():
                missing, unexpected = sorted(wanted.keys() - saved.keys()), sorted(saved.keys() - wanted.keys())
                raise GenrecError(
                    f"checkpoint {input_dir} does not fit this model (missing {missing[:3]}, unexpected {unexpected[:3]})",
                    "resume with the config the run was started with",
                )
            with torch.no_grad():
                for name, p in wanted.items():
                    p.copy_(saved[name])
        models.clear()  # loaded: Accelerate's strict whole-model load must skip them

    accelerator.register_save_state_pre_hook(save_trainable)
    accelerator.register_load_state_pre_hook(load_trainable)


def save(accelerator, run_dir: Path, step: int, state: dict, keep: int) -> Path:
    """Write checkpoint `step` atomically (collective: every process must call it)."""
    root = run_dir / CKPT_DIR
    final = root / f"step-{step}"
    tmp = root / f".tmp-step-{step}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(tmp))
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


def load(accelerator, ckpt: Path, wrapped, optimizer, scheduler) -> dict:
    """Restore a checkpoint written by :func:`save` (or by genrec before it used
    ``save_state``) into the prepared model, optimizer and scheduler, and this process's
    generator states; returns its state counters."""
    if (ckpt / LEGACY_ADAPTER).is_dir():
        _load_legacy(accelerator, ckpt, wrapped, optimizer, scheduler)
    else:
        accelerator.load_state(str(ckpt))
        # checkpoints fall on step boundaries; a different process count (so a different
        # accumulation count) must start counting micro-batches afresh
        accelerator.step = 0
    return json.loads((ckpt / "state.json").read_text())


def _load_legacy(accelerator, ckpt: Path, wrapped, optimizer, scheduler) -> None:
    """A checkpoint written before save_state: adapter/, optimizer.pt, scheduler.pt, rng-R.pt."""
    from accelerate.utils import DistributedType

    from ..model.finetune import load_weights_into

    if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        raise GenrecError(
            f"{ckpt} was written by an earlier genrec (adapter/, optimizer.pt) and cannot be loaded into a sharded model",
            "resume it once without FSDP/DeepSpeed (one process, or torchrun/DDP); its next checkpoint has the new format",
        )
    load_weights_into(accelerator.unwrap_model(wrapped).model, ckpt / LEGACY_ADAPTER)
    optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=False))
    scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=False))
    rng_file = ckpt / f"rng-{accelerator.process_index}.pt"
    if rng_file.is_file():
        rng = torch.load(rng_file, weights_only=False)
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
