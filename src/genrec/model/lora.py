"""LoRA adapters via ``peft`` (Hu et al. 2021), as GenRec fine-tunes LLaMA-7B.

Target modules are checked against the backbone's own module names before anything is
trained, so a typo lists the valid names instead of failing deep inside peft.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import torch

from ..errors import ConfigError, GenrecError


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """Distinct last-component names of the model's linear layers (e.g. q_proj)."""
    names = set()
    for full, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) or type(module).__name__ in ("Linear8bitLt", "Linear4bit"):
            names.add(full.rsplit(".", 1)[-1])
    return sorted(names)


def num_layers(model: torch.nn.Module) -> int | None:
    return getattr(model.config, "num_hidden_layers", None)


def attach_lora(model: torch.nn.Module, settings) -> torch.nn.Module:
    """Wrap `model` in a trainable peft LoRA model after validating `settings`."""
    from peft import LoraConfig, TaskType, get_peft_model

    valid = linear_module_names(model)
    problems = []
    unknown = [m for m in settings.target_modules if m not in valid]
    if unknown:
        head = [v for v in valid if v not in ("lm_head",)]
        problems.append(f"lora.target_modules: {unknown} not in this backbone; valid names: {head}")
    n = num_layers(model)
    if settings.layers is not None and n is not None:
        bad = [i for i in settings.layers if not 0 <= i < n]
        if bad:
            problems.append(f"lora.layers: {bad} out of range; this backbone has layers 0..{n - 1}")
    if problems:
        raise ConfigError(problems, "fix the LoRA settings, e.g. lora.target_modules=[q_proj,v_proj]")
    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        layers_to_transform=list(settings.layers) if settings.layers is not None else None,
        bias="none",
        task_type=TaskType.CAUSAL_LM,
    )
    with _quiet_peft():
        # LoRA on a tied lm_head adapts the output projection only; the input embeddings
        # stay as they are, which is what is wanted (peft warns about merging such adapters)
        warnings.filterwarnings("ignore", message=".*tie_word_embeddings.*", category=UserWarning)
        return get_peft_model(model, config)


@contextmanager
def _quiet_peft():
    """peft reads transformers' deprecated `is_gradient_checkpointing` (a FutureWarning that
    users of genrec cannot act on)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def load_adapter(model: torch.nn.Module, adapter_dir: str | Path, trainable: bool = False) -> torch.nn.Module:
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise GenrecError(f"{adapter_dir} holds no PEFT adapter (no adapter_config.json)", "point at a run's adapter/ folder")
    with _quiet_peft():
        return PeftModel.from_pretrained(model, adapter_dir, is_trainable=trainable)
