"""The one training loop: CPU, one GPU, or many processes under Accelerate.

There is no second copy of this loop anywhere (CONVENTIONS.md: copied training scripts
drift apart). Distribution is Accelerate's: ``accelerate launch`` (DDP, FSDP, DeepSpeed)
or ``torchrun`` run the same code.

The loss of an optimizer step is the sum of token losses over the whole step batch
divided by that batch's number of labelled tokens, whatever the number of processes or
accumulation steps: each micro-batch's summed loss is scaled by ``world / step_tokens``
before backward (DDP then averages over processes). Averaging per micro-batch instead,
as most scripts do, weights short examples more when accumulating (the gradient
accumulation bug transformers fixed in 2024) and makes a two-process run differ from a
one-process run with the same effective batch.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .._io import atomic_dir
from ..data.dataset import Dataset
from ..errors import GenrecError
from ..model.backbone import backbone_record, load_backbone
from ..model.encoding import IGNORE, Codec, random_id_names
from ..model.finetune import add_item_tokens, keep_layers, trainable_model
from ..model.prompting import PromptBuilder
from . import checkpoint
from .config import TrainConfig
from .examples import Encoder, build_examples, micro_batches, step_batches
from .losses import SummedLoss, pad_batch
from .rundir import RunDir, now
from .validation import Validator

Progress = Callable[[dict], None]


def item_names(ds: Dataset, cfg: TrainConfig) -> list[str]:
    if cfg.item_repr == "random-id":
        return random_id_names(len(ds.catalogue), cfg.id_seed)
    return list(ds.catalogue.titles)


def _is_better(metric: str, new: float, best: float | None) -> bool:
    if best is None:
        return True
    return new < best if metric == "loss" else new > best


def train(
    data_dir: str | Path,
    run_dir: str | Path,
    cfg: TrainConfig,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    on_step: Callable[[int], None] | None = None,
) -> dict:
    """Fine-tune `cfg.backbone` with LoRA on the dataset at `data_dir`; returns run.json.

    `on_step(step)` is called after every optimizer step (it may raise KeyboardInterrupt,
    which saves a checkpoint and marks the run interrupted).
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import get_scheduler

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    world, rank = accelerator.num_processes, accelerator.process_index
    ds = Dataset(data_dir)
    run = RunDir(run_dir)
    if accelerator.is_main_process:
        run.check(cfg, Path(data_dir), resume, overwrite)
    if overwrite and not resume and run.exists():
        run = run.staged()  # the old run is deleted only once the new one is complete (run.commit)
    set_seed(cfg.seed)

    micro_per_step = cfg.effective_batch // cfg.batch_size
    if micro_per_step % world:
        raise GenrecError(
            f"effective_batch={cfg.effective_batch} with batch_size={cfg.batch_size} gives {micro_per_step} "
            f"micro-batches per step, which {world} processes cannot share evenly",
            f"make effective_batch a multiple of batch_size × processes ({cfg.batch_size * world})",
        )

    device = accelerator.device
    backbone = load_backbone(cfg.backbone, dtype=cfg.dtype, quantization=cfg.quantization, device=str(device) if cfg.quantization == "none" else None)
    model = backbone.model
    if cfg.num_layers:
        keep_layers(model, cfg.num_layers)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    names = item_names(ds, cfg)
    item_token_start = None
    if cfg.item_repr == "item-token":
        item_token_start = add_item_tokens(model, Codec(backbone.tokenizer, names).item_tokens)
    model = trainable_model(model, cfg)
    codec = Codec(backbone.tokenizer, names, item_token_start)
    prompts = PromptBuilder.for_run(codec, ds, cfg)  # the one prompt rule of validation and inference too
    # everything that can reject the settings has run: only now touch the run folder
    if accelerator.is_main_process and not resume:
        run.create(cfg, ds, overwrite)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        run.update(backbone=backbone_record(cfg.backbone, backbone.path), item_repr=cfg.item_repr, item_token_start=item_token_start)
        if cfg.item_repr == "random-id":
            from .._io import write_json

            write_json(run.path / "names.json", names)

    examples = build_examples(ds, cfg)
    encoder = Encoder(prompts, cfg.loss_on)
    lengths = np.array([min(encoder.length(e), cfg.cutoff_len) for e in examples], dtype=np.int64)
    steps_per_epoch = len(examples) // cfg.effective_batch
    if steps_per_epoch == 0:
        raise GenrecError(
            f"{len(examples)} training examples cannot fill one step of effective_batch={cfg.effective_batch}",
            "lower effective_batch, or use more users or windows",
        )
    total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))

    trainable = [p for p in model.parameters() if p.requires_grad]
    # full fine-tuning steps every weight: the fused kernel is about 5x faster than the
    # per-tensor loop on CPU (0.12 s against 0.64 s a step for SmolLM2-135M, measured)
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=cfg.finetune == "full" or None)
    scheduler = get_scheduler(
        {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[cfg.schedule],
        optimizer, num_warmup_steps=min(cfg.warmup_steps, total_steps), num_training_steps=total_steps,
    )
    wrapped, optimizer = accelerator.prepare(SummedLoss(model), optimizer)

    validator = None
    if cfg.eval_every or cfg.eval_minutes:
        validator = Validator(ds, codec, prompts.spec, cfg.eval_users, cfg.seed, cfg.eval_beams, cfg.eval_decode, prompts=prompts)

    state = {"step": 0, "tokens_seen": 0, "examples_seen": 0, "train_seconds": 0.0, "best": None, "best_step": None, "bad_evals": 0}
    if resume:
        ckpt = checkpoint.latest(run.path)
        if ckpt is not None:
            state.update(checkpoint.load(accelerator, ckpt, model, optimizer, scheduler))
            if accelerator.is_main_process:
                run.truncate_log(state["step"])
    if accelerator.is_main_process:
        run.update(
            status="running", examples=len(examples), steps_planned=total_steps, steps_per_epoch=steps_per_epoch,
            processes=world, trainable_parameters=sum(p.numel() for p in trainable),
        )

    def report(entry: dict) -> None:
        if accelerator.is_main_process:
            run.log(entry)
            if progress:
                progress(entry)

    def save_checkpoint() -> None:
        checkpoint.save(accelerator, run.path, state["step"], accelerator.unwrap_model(wrapped).model, optimizer, scheduler, state, cfg.keep_checkpoints)

    def save_best() -> None:
        if accelerator.is_main_process:
            _save_adapter(accelerator.unwrap_model(wrapped).model, run.path / "best")

    if progress and accelerator.is_main_process:
        progress({"kind": "start", "step": state["step"], "total": total_steps, "examples": len(examples)})
    model.train()
    epoch_cache: dict[int, list[np.ndarray]] = {}
    status = "finished"
    try:
        while state["step"] < total_steps:
            step = state["step"]
            epoch, in_epoch = divmod(step, steps_per_epoch)
            if epoch not in epoch_cache:
                epoch_cache.clear()
                epoch_cache[epoch] = step_batches(lengths, cfg.effective_batch, cfg.seed, epoch, cfg.group_by_length)
            batch = epoch_cache[epoch][in_epoch]
            t0 = time.perf_counter()
            micros = micro_batches(batch, lengths, cfg.batch_size)
            encoded = {int(i): encoder(examples[i]) for i in batch}
            step_tokens = sum(sum(1 for x in lab[1:] if x != IGNORE) for _, lab in encoded.values())
            mine = [mb for j, mb in enumerate(micros) if j % world == rank]
            loss_sum = torch.zeros((), device=device)
            n_tokens = torch.zeros((), device=device)
            for j, mb in enumerate(mine):
                ids, mask, labels = pad_batch([encoded[int(i)] for i in mb], codec.pad_id, device)
                sync = j == len(mine) - 1
                ctx = accelerator.no_sync(wrapped) if not sync and world > 1 else contextlib.nullcontext()
                with ctx:
                    summed = wrapped(ids, mask, labels)
                    accelerator.backward(summed * (world / step_tokens))
                loss_sum += summed.detach()
                n_tokens += mask.sum()
            accelerator.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            totals = accelerator.reduce(torch.stack([loss_sum, n_tokens]), reduction="sum")
            if not math.isfinite(float(totals[0].item())):
                # this step's update is already broken: save nothing, keep the earlier checkpoints
                if accelerator.is_main_process:
                    run.update(status="failed", steps_done=step, error=f"the loss stopped being finite at step {step + 1}")
                raise GenrecError(
                    f"the training loss became {float(totals[0].item())} at step {step + 1} (lr={cfg.lr}); training stopped",
                    f"lower lr and train again; the checkpoints before step {step + 1} in {run.path / 'checkpoints'} are kept",
                )
            dt = time.perf_counter() - t0
            state["step"] = step + 1
            state["tokens_seen"] += int(totals[1].item())
            state["examples_seen"] += len(batch)
            state["train_seconds"] += dt  # optimizer steps only: validation time is not training time
            if state["step"] % cfg.log_every == 0 or state["step"] == total_steps:
                report({
                    "kind": "train", "step": state["step"], "epoch": round(state["step"] / steps_per_epoch, 4),
                    "loss": float(totals[0].item() / step_tokens), "lr": scheduler.get_last_lr()[0],
                    "tokens_per_second": float(totals[1].item() / dt), "examples_per_second": len(batch) / dt,
                    "tokens_seen": state["tokens_seen"], "elapsed_s": round(state["train_seconds"], 2),
                    "total": total_steps,
                })
            stop = False
            if validator is not None and _validation_due(cfg, state, total_steps):
                if progress and accelerator.is_main_process:  # validation can take minutes: say it started
                    progress({"kind": "eval_start", "step": state["step"], "users": len(validator)})
                stop = _validate(accelerator, validator, wrapped, cfg, state, report, save_best)
            if cfg.max_minutes and state["train_seconds"] > cfg.max_minutes * 60:
                stop = True
            stop = _agree(accelerator, stop)
            if cfg.save_every and (state["step"] % cfg.save_every == 0) and state["step"] < total_steps and not stop:
                save_checkpoint()
            if on_step:
                on_step(state["step"])
            if stop:
                status = "stopped early"
                break
    except KeyboardInterrupt:
        save_checkpoint()
        if accelerator.is_main_process:
            run.update(status="interrupted", steps_done=state["step"], interrupted=now())
        raise
    save_checkpoint()
    if accelerator.is_main_process:
        final = accelerator.unwrap_model(wrapped).model
        use_best = cfg.select_best and (run.path / "best").is_dir()
        if use_best:
            _copy_adapter(run.path / "best", run.path / "adapter")
        else:
            _save_adapter(final, run.path / "adapter")
        run.update(
            status=status, finished=now(), steps_done=state["step"], tokens_seen=state["tokens_seen"],
            examples_seen=state["examples_seen"], train_seconds=round(state["train_seconds"], 1),
            adapter_step=state["best_step"] if use_best else state["step"],
            best={"metric": state.get("best_metric"), "value": state["best"], "step": state["best_step"]},
        )
        run.commit()
    accelerator.wait_for_everyone()
    info = RunDir(run_dir).info()
    accelerator.end_training()
    return info


def _validation_due(cfg: TrainConfig, state: dict, total_steps: int) -> bool:
    """Every `eval_every` steps, at the last step, and when training time first passes a
    mark of `eval_minutes` (marks already passed when a run resumes are not repeated)."""
    step = state["step"]
    if cfg.eval_every and (step % cfg.eval_every == 0 or step == total_steps):
        return True
    if cfg.eval_minutes:
        passed = sum(1 for m in cfg.eval_minutes if state["train_seconds"] >= m * 60)
        if passed > state.get("minute_marks_done", 0) or step == total_steps:
            state["minute_marks_done"] = passed
            return True
    return False


def _agree(accelerator, flag: bool) -> bool:
    """All processes stop together (the decision is the main process's)."""
    if accelerator.num_processes == 1:
        return flag
    from accelerate.utils import broadcast_object_list

    box = [flag]
    broadcast_object_list(box, from_process=0)
    return bool(box[0])


def _validate(accelerator, validator, wrapped, cfg, state, report, save_best) -> bool:
    stop = False
    if accelerator.is_main_process:
        t0 = time.perf_counter()
        metrics = validator(accelerator.unwrap_model(wrapped).model)
        key = {"loss": "valid_loss", "hr@10": "valid_hr@10", "ndcg@10": "valid_ndcg@10"}[cfg.metric]
        if key not in metrics:  # built without the decoder: select on the loss
            key = "valid_loss"
        value = metrics[key]
        better = _is_better("loss" if key == "valid_loss" else cfg.metric, value, state["best"])
        if better:
            state["best"], state["best_step"], state["bad_evals"] = value, state["step"], 0
            state["best_metric"] = key.removeprefix("valid_")
            if cfg.select_best:
                save_best()
        else:
            state["bad_evals"] += 1
        report({"kind": "eval", "step": state["step"], **metrics, "users": len(validator), "seconds": round(time.perf_counter() - t0, 1)})
        stop = bool(cfg.early_stopping_patience and state["bad_evals"] >= cfg.early_stopping_patience)
    accelerator.wait_for_everyone()
    return stop


def _save_adapter(peft_model, dest: Path) -> None:
    with atomic_dir(dest) as tmp:
        peft_model.save_pretrained(tmp)


def _copy_adapter(src: Path, dest: Path) -> None:
    import shutil

    with atomic_dir(dest) as tmp:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
