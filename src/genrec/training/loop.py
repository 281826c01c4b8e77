"""The one training loop: CPU, one GPU, or many processes under Accelerate.

There is no second copy of this loop anywhere (CONVENTIONS.md: copied training scripts
drift apart). Distribution is Accelerate's: ``accelerate launch`` (DDP, FSDP2, DeepSpeed)
or ``torchrun`` run the same code, and every distributed step goes through Accelerate's
own mechanism:

- gradient accumulation through ``accelerator.accumulate``: an optimizer step (with
  clipping, the scheduler and logging) happens only when ``accelerator.sync_gradients``,
  so DeepSpeed, whose engine steps inside ``accelerator.backward``, steps once per step
  batch and not after every micro-batch;
- clipping with ``accelerator.clip_grad_norm_`` on the parameters of the *prepared*
  model (FSDP replaces the parameters; a list taken before ``prepare`` would clip nothing);
- checkpoints through ``accelerator.save_state``/``load_state`` on every process
  (checkpoint.py), the adapter through ``accelerator.get_state_dict`` on every process;
- validation on every process (``validation.validate_in_training``), so a sharded
  model's collectives line up.

The loss of an optimizer step is the sum of token losses over the whole step batch
divided by that batch's number of labelled tokens, whatever the number of processes or
accumulation steps: each micro-batch's summed loss is scaled by
``processes × accumulation / step_tokens`` before ``accelerator.backward`` (which divides
by the accumulation steps; DDP and FSDP then average over processes). Averaging per
micro-batch instead, as most scripts do, weights short examples more when accumulating
(the gradient accumulation bug transformers fixed in 2024) and makes a two-process run
differ from a one-process run with the same effective batch.
"""

from __future__ import annotations

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
from ._trackers import TRACKER_DIR, check_trackers, finish_trackers, start_trackers, tracker_values
from .config import TrainConfig
from .examples import Encoder, build_examples, micro_batches, step_batches
from .losses import SummedLoss, pad_batch
from .rundir import RunDir, now
from .validation import Validator, validate_in_training, validation_due

Progress = Callable[[dict], None]

#: gradients are clipped to this global norm (as the paper's alpaca-lora Trainer does)
MAX_GRAD_NORM = 1.0


def item_names(ds: Dataset, cfg: TrainConfig) -> list[str]:
    if cfg.item_repr == "random-id":
        return random_id_names(len(ds.catalogue), cfg.id_seed)
    return list(ds.catalogue.titles)


def accumulation_steps(cfg: TrainConfig, world: int) -> int:
    """Micro-batches each process runs per optimizer step.

    ``effective_batch`` is global: the examples of one optimizer step summed over
    processes and accumulation steps. A step batch of ``effective_batch`` examples is
    cut into micro-batches of ``batch_size`` and dealt round-robin to the `world`
    processes, so each runs ``effective_batch / (batch_size × world)`` of them and N
    processes take the same optimizer steps, on the same examples, as one.
    """
    micro_per_step = cfg.effective_batch // cfg.batch_size
    if micro_per_step % world:
        raise GenrecError(
            f"effective_batch={cfg.effective_batch} with batch_size={cfg.batch_size} gives {micro_per_step} "
            f"micro-batches per step, which {world} processes cannot share evenly",
            f"make effective_batch a multiple of batch_size × processes ({cfg.batch_size * world})",
        )
    return micro_per_step // world


def check_distributed(accelerator, accumulation: int) -> None:
    """Refuse the Accelerate settings this loop would get wrong."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.FSDP and not accelerator.is_fsdp2:
        raise GenrecError(
            "genrec trains under FSDP version 2 only (FSDP1 cannot run validation on a sharded model)",
            "launch with `accelerate launch --use_fsdp --fsdp_version 2 ...` or set fsdp_version: 2 in the accelerate config",
        )
    if accelerator.gradient_accumulation_steps != accumulation:
        raise GenrecError(
            f"Accelerate is set to gradient_accumulation_steps={accelerator.gradient_accumulation_steps}, but genrec derives "
            f"it from effective_batch / (batch_size × processes) = {accumulation}",
            "remove gradient_accumulation_steps from the accelerate (or DeepSpeed) config and "
            "ACCELERATE_GRADIENT_ACCUMULATION_STEPS, and set effective_batch instead",
        )


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
    from accelerate import Accelerator, PartialState
    from accelerate.utils import DataLoaderConfiguration, DistributedType, ProjectConfiguration, set_seed
    from transformers import get_scheduler

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    check_trackers(cfg.log_with)
    cpu = not torch.cuda.is_available()
    accumulation = accumulation_steps(cfg, PartialState(cpu=cpu).num_processes)
    run = RunDir(run_dir)
    # a replaced run is trained aside and the old one deleted only once the new one is complete (run.commit)
    target = run.staged() if overwrite and not resume and run.exists() else run
    accelerator = Accelerator(
        cpu=cpu,
        gradient_accumulation_steps=accumulation,
        # the step batches are split across processes here (a step is the same examples
        # for any number of processes), so a prepared scheduler steps once per step
        dataloader_config=DataLoaderConfiguration(split_batches=True),
        log_with=cfg.log_with,
        project_config=ProjectConfiguration(project_dir=str(target.path), logging_dir=str(target.path / TRACKER_DIR)),
    )
    world, rank = accelerator.num_processes, accelerator.process_index
    check_distributed(accelerator, accumulation)
    ds = Dataset(data_dir)
    if accelerator.is_main_process:
        run.check(cfg, Path(data_dir), resume, overwrite)
    run = target
    set_seed(cfg.seed)

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

    encoder = Encoder(prompts, cfg.loss_on)
    examples = build_examples(ds, cfg, encoder.length)
    lengths = np.array([min(encoder.length(e), cfg.cutoff_len) for e in examples], dtype=np.int64)
    steps_per_epoch = len(examples) // cfg.effective_batch
    if steps_per_epoch == 0:
        raise GenrecError(
            f"{len(examples)} training examples cannot fill one step of effective_batch={cfg.effective_batch}",
            "lower effective_batch, or use more users or windows",
        )
    total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))

    # the optimizer takes the parameters before prepare; Accelerate points it at the
    # prepared (under FSDP: sharded, replaced) ones, which clipping then reads from `wrapped`
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    # full fine-tuning steps every weight: the fused kernel is about 5x faster than the
    # per-tensor loop on CPU (0.12 s against 0.64 s a step for SmolLM2-135M, measured)
    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=cfg.finetune == "full" or None)
    del trainable
    scheduler = get_scheduler(
        {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[cfg.schedule],
        optimizer, num_warmup_steps=min(cfg.warmup_steps, total_steps), num_training_steps=total_steps,
    )
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        # no DataLoader is prepared, so DeepSpeed learns its micro-batch here
        plugin = accelerator.state.deepspeed_plugin
        if plugin.is_auto("train_micro_batch_size_per_gpu"):
            plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = cfg.batch_size
    wrapped, optimizer, scheduler = accelerator.prepare(SummedLoss(model), optimizer, scheduler)
    check_distributed(accelerator, accumulation)  # a DeepSpeed config may have set its own accumulation
    checkpoint.attach(accelerator)

    validator = None
    if cfg.eval_every or cfg.eval_minutes:
        validator = Validator(ds, codec, prompts.spec, cfg.eval_users, cfg.seed, cfg.eval_beams, cfg.eval_decode, prompts=prompts)

    state = {"step": 0, "tokens_seen": 0, "examples_seen": 0, "train_seconds": 0.0, "best": None, "best_step": None, "bad_evals": 0}
    if resume:
        ckpt = checkpoint.latest(run.path)
        if ckpt is not None:
            state.update(checkpoint.load(accelerator, ckpt, wrapped, optimizer, scheduler))
            if accelerator.is_main_process:
                run.truncate_log(state["step"])
    if accelerator.is_main_process:
        run.update(
            status="running", examples=len(examples), steps_planned=total_steps, steps_per_epoch=steps_per_epoch,
            processes=world, accumulation_steps=accumulation, trainable_parameters=n_trainable,
        )
    if cfg.log_with:
        start_trackers(accelerator, cfg, run, Path(run_dir).name)

    def report(entry: dict) -> None:
        if accelerator.is_main_process:
            run.log(entry)
            if cfg.log_with:
                accelerator.log(tracker_values(entry), step=entry["step"])
            if progress:
                progress(entry)

    def save_checkpoint() -> None:
        checkpoint.save(accelerator, run.path, state["step"], state, cfg.keep_checkpoints)

    def save_best() -> None:
        _save_model(accelerator, wrapped, run.path / "best")

    if progress and accelerator.is_main_process:
        progress({"kind": "start", "step": state["step"], "total": total_steps, "examples": len(examples)})
    model.train()
    epoch_cache: dict[int, list[np.ndarray]] = {}
    status = "finished"
    try:  # the trackers are closed however training ends
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
                mine = [[encoded[int(i)] for i in mb] for j, mb in enumerate(micros) if j % world == rank]
                mine_totals = _optimizer_step(accelerator, wrapped, optimizer, scheduler, mine, codec.pad_id, world * accumulation / step_tokens)
                totals = accelerator.reduce(mine_totals, reduction="sum")
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
                if validator is not None and validation_due(cfg, state, total_steps):
                    if progress and accelerator.is_main_process:  # validation can take minutes: say it started
                        progress({"kind": "eval_start", "step": state["step"], "users": len(validator)})
                    stop = validate_in_training(accelerator, validator, wrapped, cfg, state, report, save_best)
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
        use_best = _agree(accelerator, cfg.select_best and (run.path / "best").is_dir())
        if use_best:
            if accelerator.is_main_process:
                _copy_adapter(run.path / "best", run.path / "adapter")
        else:
            _save_model(accelerator, wrapped, run.path / "adapter")
        if accelerator.is_main_process:
            run.update(
                status=status, finished=now(), steps_done=state["step"], tokens_seen=state["tokens_seen"],
                examples_seen=state["examples_seen"], train_seconds=round(state["train_seconds"], 1),
                adapter_step=state["best_step"] if use_best else state["step"],
                best={"metric": state.get("best_metric"), "value": state["best"], "step": state["best_step"]},
            )
            finish_trackers(accelerator)  # closes the event files before a staged run is renamed
            run.commit()
    finally:
        finish_trackers(accelerator)
    accelerator.wait_for_everyone()
    info = RunDir(run_dir).info()
    accelerator.end_training()
    return info


def _optimizer_step(accelerator, wrapped, optimizer, scheduler, micros: list[list[tuple[list[int], list[int]]]], pad_id: int, scale: float) -> torch.Tensor:
    """One optimizer step over this process's micro-batches (``accumulation`` of them).

    Each micro-batch runs under ``accelerator.accumulate``: gradients are synchronised
    across processes on the last one only, and clipping, the optimizer, the scheduler
    (and DeepSpeed's engine step inside ``accelerator.backward``) act only there, when
    ``accelerator.sync_gradients``. Returns this process's [summed loss, tokens].
    """
    device = accelerator.device
    loss_sum = torch.zeros((), device=device)
    n_tokens = torch.zeros((), device=device)
    for encoded in micros:
        ids, mask, labels = pad_batch(encoded, pad_id, device)
        with accelerator.accumulate(wrapped):
            summed = wrapped(ids, mask, labels)
            accelerator.backward(summed * scale)  # backward divides by the accumulation steps again
            if accelerator.sync_gradients:
                clip_gradients(accelerator, wrapped)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
        loss_sum += summed.detach()
        n_tokens += mask.sum()
    if not accelerator.sync_gradients:  # the step batch and the accumulation count disagree: a bug, never a setting
        raise RuntimeError(f"{len(micros)} micro-batches ended without an optimizer step "
                           f"(gradient_accumulation_steps={accelerator.gradient_accumulation_steps})")
    return torch.stack([loss_sum, n_tokens])


def clip_gradients(accelerator, wrapped, max_norm: float = MAX_GRAD_NORM):
    """Clip the global gradient norm of the prepared model (returns the norm before clipping).

    The parameters are read from the prepared model on every call: under FSDP they are
    not the tensors the model had before ``prepare``, and Accelerate clips a sharded
    model only when given exactly its parameters. Frozen ones have no gradient and are
    skipped.
    """
    return accelerator.clip_grad_norm_(wrapped.parameters(), max_norm)


def _model_state_dict(accelerator, wrapped) -> dict:
    """The trained model's state dict, named as the (PEFT) model names it.

    Collective: under FSDP every process holds a shard and takes part in gathering; the
    dict is complete on the main process (other processes may get an empty one).
    """
    full = accelerator.get_state_dict(wrapped)
    return {k.removeprefix("model."): v for k, v in full.items()}  # SummedLoss keeps the model as `.model`


def _save_model(accelerator, wrapped, dest: Path) -> None:
    """Write the adapter (or the full model) to `dest` atomically: gathered by every
    process, written by the main one."""
    state_dict = _model_state_dict(accelerator, wrapped)
    if accelerator.is_main_process:
        with atomic_dir(dest) as tmp:
            accelerator.unwrap_model(wrapped).model.save_pretrained(tmp, state_dict=state_dict)
    accelerator.wait_for_everyone()


def _agree(accelerator, flag: bool) -> bool:
    """All processes stop together (the decision is the main process's)."""
    if accelerator.num_processes == 1:
        return flag
    from accelerate.utils import broadcast_object_list

    box = [flag]
    broadcast_object_list(box, from_process=0)
    return bool(box[0])


def _copy_adapter(src: Path, dest: Path) -> None:
    import shutil

    with atomic_dir(dest) as tmp:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
