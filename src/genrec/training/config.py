"""`genrec train` settings: one typed config, presets in ``genrec/presets/train-*.yaml``.

Presets: ``paper`` (Ji et al. 2023 / alpaca-lora: LoRA r=8, alpha=16, dropout 0.05 on
q_proj/v_proj, lr 3e-4, 3 epochs, effective batch 128, 100 warm-up steps, cutoff 256,
loss on the whole prompt, history joined by commas), ``recommended`` (the same on an
unambiguous template, loss on the response only, validation-based checkpoint selection
and early stopping) and ``cpu`` (settings that learn within minutes on a laptop CPU:
see the preset file for the measurements behind it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..config import Config
from ..model.encoding import LossOn
from ..prompts import Serialisation, Template


class LoraSettings(Config):
    r: int = Field(8, ge=1, description="LoRA rank")
    alpha: float = Field(16, gt=0, description="LoRA alpha (scaling = alpha / r)")
    dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the LoRA input")
    target_modules: list[str] = Field(["q_proj", "v_proj"], description="module names to adapt (validated against the backbone)")
    layers: list[int] | None = Field(None, description="adapt only these layer indices (default: all layers)")


class TrainConfig(Config):
    backbone: str = Field("smollm2-135m", description="model: smollm2-135m (packaged), tiny-random-llama, a local folder or a hub name")
    template: Template = Field("alpaca", description="prompt template: alpaca (the paper's), compact, or tokens (item tokens only, no separators)")
    serialisation: Serialisation = Field("lines", description="history in the alpaca template: lines, quoted or comma (the paper's, ambiguous)")
    vary_instruction: bool = Field(True, description="use several paraphrased instructions (the paper does)")
    item_repr: Literal["title", "random-id", "item-token"] = Field("title", description="write items as titles (GenRec), random ID numbers (a P5-style variant), or one new token per item initialised from its title (needs finetune=full)")
    num_layers: int | None = Field(None, ge=1, description="keep only the first N transformer layers of the backbone (faster; default: all)")
    finetune: Literal["lora", "full"] = Field("lora", description="lora: train LoRA adapters (GenRec's); full: train every weight (BIGRec/D3; about 16 bytes a parameter with AdamW in fp32)")
    id_seed: int = Field(0, description="seed of the random item IDs (item_repr=random-id)")
    loss_on: LossOn = Field("response", description="response (the target only), items (every item in the sequence), all (every token, the paper's)")
    windows: Literal["all", "recent", "chunks", "sequences"] = Field(
        "all", description="training examples: every sliding window, the most recent per user, non-overlapping chunks of max_history+1 items, or sequences (each user's training sequence packed into runs up to cutoff_len tokens, every item a target; needs loss_on=items)"
    )
    windows_per_user: int | None = Field(None, ge=1, description="recent/chunks/sequences: keep at most this many per user (most recent first)")
    max_history: int | None = Field(None, ge=1, description="cap histories below the dataset's max_history")
    max_users: int | None = Field(None, ge=1, description="train on a seeded random subset of this many users")
    cutoff_len: int = Field(256, ge=16, description="maximum tokens per example; the oldest history items are dropped to fit")
    lora: LoraSettings = Field(default_factory=LoraSettings)
    lr: float = Field(3e-4, gt=0, description="peak learning rate (AdamW)")
    weight_decay: float = Field(0.0, ge=0)
    schedule: Literal["cosine", "linear", "constant"] = Field("linear", description="learning-rate schedule after warm-up")
    warmup_steps: int = Field(100, ge=0, description="linear warm-up, in optimizer steps")
    epochs: float = Field(3.0, gt=0, description="passes over the training examples")
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps (overrides epochs for the schedule)")
    max_minutes: float | None = Field(None, gt=0, description="stop training after this many minutes (the schedule still follows max_steps/epochs)")
    batch_size: int = Field(8, ge=1, description="examples per forward pass and process")
    effective_batch: int = Field(128, ge=1, description="examples per optimizer step, over processes and accumulation")
    group_by_length: bool = Field(True, description="batch examples of similar length so little padding is computed")
    seed: int = Field(42)
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = Field("auto", description="auto: bf16 on a GPU that has it, fp32 on CPU")
    quantization: Literal["none", "8bit", "4bit"] = Field("none", description="load the base model in 8/4 bit (GPU with bitsandbytes)")
    gradient_checkpointing: bool = Field(False, description="trade compute for memory")
    threads: int | None = Field(None, ge=1, description="CPU threads (default: all cores)")
    log_every: int = Field(1, ge=1, description="log every N optimizer steps")
    eval_every: int | None = Field(None, ge=1, description="validate every N optimizer steps (default: at the end only)")
    eval_minutes: list[float] | None = Field(None, description="also validate when training time first reaches each of these minutes (learning curves)")
    eval_users: int = Field(64, ge=1, description="fixed seeded sample of validation users")
    eval_decode: bool = Field(True, description="also compute validation HR@10/NDCG@10 with the constrained decoder")
    eval_beams: int = Field(10, ge=1)
    metric: Literal["hr@10", "ndcg@10", "loss"] = Field("ndcg@10", description="validation metric for best-checkpoint selection and early stopping")
    select_best: bool = Field(False, description="the run's adapter is the best validated checkpoint, not the last")
    early_stopping_patience: int | None = Field(None, ge=1, description="stop after this many validations without improvement")
    save_every: int | None = Field(50, ge=1, description="checkpoint every N optimizer steps")
    keep_checkpoints: int = Field(2, ge=1, description="keep the newest N checkpoints")
    log_with: list[Literal["tensorboard", "wandb"]] | None = Field(
        None, description="also log to Accelerate trackers: tensorboard (event files in RUN/logs/) and/or wandb, e.g. log_with=tensorboard or log_with=[tensorboard,wandb]; none: train_log.jsonl only (always written)"
    )

    @field_validator("log_with", mode="before")
    @classmethod
    def _trackers(cls, value):
        """``tensorboard``, ``tensorboard,wandb`` or a list; ``none`` (or nothing) for no tracker."""
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list | tuple):
            value = list(dict.fromkeys(v for v in value if not (isinstance(v, str) and v.lower() == "none")))
            return value or None
        return value

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        problems = []
        if self.effective_batch % self.batch_size:
            problems.append(
                f"effective_batch={self.effective_batch} is not a multiple of batch_size={self.batch_size}"
            )
        if self.early_stopping_patience and not (self.eval_every or self.eval_minutes):
            problems.append("early_stopping_patience needs eval_every or eval_minutes")
        if self.select_best and not (self.eval_every or self.eval_minutes):
            problems.append("select_best needs eval_every or eval_minutes")
        if self.item_repr == "item-token" and self.finetune != "full":
            problems.append("item_repr=item-token needs finetune=full (the new item embeddings must be trained)")
        if self.template == "tokens" and self.item_repr != "item-token":
            problems.append("template=tokens writes items with nothing between them: it needs item_repr=item-token")
        if self.windows == "sequences" and self.loss_on == "response":
            problems.append("windows=sequences trains every item of a sequence: it needs loss_on=items (or all); with loss_on=response only the last item would be learnt")
        if self.eval_minutes is not None and any(not (m > 0) for m in self.eval_minutes):
            problems.append(f"eval_minutes must be positive minutes (got {self.eval_minutes})")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def default_preset() -> str:
    """The preset a run gets when none is named: ``recommended`` with a GPU, else ``cpu``."""
    import torch

    return "recommended" if torch.cuda.is_available() else "cpu"


def from_preset(
    preset: str | None = None, backbone: str | None = None, max_steps: int | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    """A training config: a preset (a name or a YAML path; default :func:`default_preset`), then
    ``backbone`` and ``max_steps`` where given, then ``key=value`` overrides (``lora.r=16``).

    The one recipe behind ``genrec train``, the quickstart and the benches.
    """
    from ..config import load_preset

    data = load_preset("train", preset or default_preset())
    if backbone:
        data["backbone"] = backbone
    if max_steps:
        data["max_steps"] = max_steps
    return TrainConfig.build(data, overrides or [])
