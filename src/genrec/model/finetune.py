"""What is trained, and how a trained model folder is loaded back.

Two ways to fine-tune, chosen by ``TrainConfig.finetune``:

- ``lora`` (GenRec's, after alpaca-lora): low-rank adapters via ``peft``; the run's
  ``adapter/`` is a plain PEFT adapter (a few MB).
- ``full``: every parameter is trained, as BIGRec and D3 (Bao et al. 2023/2024) do with
  Qwen2-0.5B. The run's ``adapter/`` then holds the whole fine-tuned model in Hugging
  Face format (``config.json`` + ``model.safetensors``). Memory with AdamW in fp32 is
  about 16 bytes a parameter: 2.2 GB for SmolLM2-135M.

Item tokens (``item_repr=item-token``): every catalogue item becomes one new token
appended to the vocabulary, whose embedding starts as the mean embedding of its title's
tokens (so the new token begins where the title's meaning is, and the tied output row
scores it by that meaning). An item then costs one token instead of about ten; the
model is a sequence model over items with a language model's initialisation, a point
between GenRec's titles and P5's random IDs. The new rows must be trained, so item
tokens need ``finetune=full``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import GenrecError


def base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The Hugging Face model under a PEFT wrapper (the model itself when fully fine-tuned)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def add_item_tokens(model: torch.nn.Module, title_ids: Sequence[Sequence[int]]) -> int:
    """Append one token per item (embedding = mean of its title's token embeddings).

    Returns the id of the first item token; item ``i`` is token ``first + i``.
    """
    emb = model.get_input_embeddings()
    first = emb.weight.shape[0]
    with torch.no_grad():
        rows = torch.stack([emb.weight[list(ids)].mean(0) if len(ids) else emb.weight.mean(0) for ids in title_ids])
    # mean_resizing would overwrite our rows' statistics anyway; we set every new row below
    model.resize_token_embeddings(first + len(title_ids), mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight[first:] = rows
        out = model.get_output_embeddings()
        if out is not None and out.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr():
            out.weight[first:] = rows  # untied head: start the output rows from the same meaning
    return first


def keep_layers(model: torch.nn.Module, n: int) -> None:
    """Keep only the first `n` transformer layers (a shallower, faster backbone; the output
    head reads the n-th layer's states through the final norm). A backbone with `n` layers
    or fewer is kept whole, so a preset can name a depth for any backbone."""
    from .lora import num_layers

    total = num_layers(model)
    layers = getattr(getattr(model, "model", None), "layers", None)
    if total is None or layers is None:
        raise GenrecError("num_layers works with LLaMA-style backbones (model.model.layers)", "drop num_layers for this backbone")
    if n < 1:
        raise GenrecError(f"num_layers={n} must be at least 1", "drop num_layers to keep every layer")
    if n >= total:
        return
    model.model.layers = layers[:n]
    model.config.num_hidden_layers = n
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = model.config.layer_types[:n]


def trainable_model(model: torch.nn.Module, cfg) -> torch.nn.Module:
    """The model to optimise: wrapped in LoRA adapters, or itself with every weight trainable."""
    if cfg.finetune == "lora":
        from .lora import attach_lora

        return attach_lora(model, cfg.lora)
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def load_trained(model: torch.nn.Module, folder: str | Path, dtype=None) -> torch.nn.Module:
    """The fine-tuned model a run saved in `folder`: a PEFT adapter on `model`, or full weights.

    For full weights the folder is a complete Hugging Face model; `model` (the freshly
    loaded backbone) supplies only the device, dtype and pad token.
    """
    folder = Path(folder)
    if (folder / "adapter_config.json").is_file():
        from .lora import load_adapter

        return load_adapter(model, folder)
    if (folder / "config.json").is_file():
        from transformers import AutoModelForCausalLM

        device = next(model.parameters()).device
        full = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or next(model.parameters()).dtype)
        full.config.pad_token_id = model.config.pad_token_id
        return full.to(device)
    raise GenrecError(
        f"{folder} holds neither a PEFT adapter (adapter_config.json) nor a full model (config.json)",
        "point at a run's adapter/ folder written by `genrec train`",
    )


def load_weights_into(model: torch.nn.Module, folder: Path) -> None:
    """Restore a checkpoint's weights (PEFT adapter or full model) into `model` in place."""
    from safetensors.torch import load_file

    adapter = folder / "adapter_model.safetensors"
    if adapter.is_file():
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(adapter))
        return
    full = folder / "model.safetensors"
    if not full.is_file():
        raise GenrecError(f"checkpoint {folder} holds no weights", "resume from another checkpoint or start again")
    missing, unexpected = model.load_state_dict(load_file(full), strict=False)
    tied = {"lm_head.weight"} if getattr(model.config, "tie_word_embeddings", False) else set()
    if unexpected or set(missing) - tied:
        raise GenrecError(
            f"checkpoint {folder} does not fit this model (missing {sorted(set(missing) - tied)[:3]}, unexpected {unexpected[:3]})",
            "resume with the config the run was started with",
        )
