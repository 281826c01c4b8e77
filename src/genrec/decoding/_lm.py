"""Thin helpers around a Hugging Face causal LM (optionally wrapped by peft).

Prompts of different lengths are batched with LEFT padding, so every prompt's last
token sits in the last column and the first generated token of every row is
appended at the same cache position; ``position_ids`` are counted over real tokens
only, so a padded prompt is encoded exactly as it would be alone.

transformers 5.x renamed the cache argument ``past_key_values`` to ``cache`` (the old
name is deprecated); the right one is read from the model's signature once.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import torch

from ..errors import GenrecError
from ..model.finetune import base_model

_KWARG: dict[int, str] = {}


def check_topk_request(prompts: Sequence, k: int, exclude: Sequence | None) -> None:
    """The checks every top-k decoder makes on its arguments."""
    if k < 1:
        raise GenrecError(f"k must be at least 1, got {k}", "ask for one or more items")
    if exclude is not None and len(exclude) != len(prompts):
        raise GenrecError(f"exclude has {len(exclude)} lists for {len(prompts)} prompts", "pass one list per prompt")


def check_assist(assist, n_prompts: int, n_items: int, weight: float):
    """The checks every decoder that uses an assistant makes: one non-negative, finite
    weight per item for each prompt (returned as float64), and a weight in [0, 1]."""
    if assist is not None:
        assist = np.asarray(assist, dtype=np.float64)
        if assist.shape != (n_prompts, n_items) or not np.isfinite(assist).all() or (assist < 0).any():
            raise GenrecError(
                f"assist must hold a non-negative, finite weight per item for each user: shape ({n_prompts}, {n_items}), "
                f"got {assist.shape}", "pass the assistant's item probabilities, one row per prompt")
    if not 0.0 <= weight <= 1.0:
        raise GenrecError(f"assist_weight={weight} is outside [0, 1]", "use 0 (language model only) to 1 (assistant only)")
    return assist


def cache_kwarg(model) -> str:
    key = id(type(base_model(model)))
    if key not in _KWARG:
        params = inspect.signature(base_model(model).forward).parameters
        _KWARG[key] = "cache" if "cache" in params else "past_key_values"
    return _KWARG[key]


def model_device(model) -> torch.device:
    return next(base_model(model).parameters()).device


def forward(model, input_ids, attention_mask, position_ids, cache=None, logits_to_keep: int = 1, hidden: bool = False):
    """One forward pass; returns the output object, whose ``.cache`` is the updated cache."""
    kwargs = {cache_kwarg(model): cache} if cache is not None else {}
    out = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
        use_cache=True, logits_to_keep=logits_to_keep, output_hidden_states=hidden, **kwargs,
    )
    if not hasattr(out, "cache"):  # transformers before the rename
        out.cache = out.past_key_values
    return out


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, device=None):
    """(ids, mask, lengths) for prompts padded on the left to one length."""
    lengths = torch.tensor([len(p) for p in prompts], dtype=torch.long)
    width = int(lengths.max())
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for r, p in enumerate(prompts):
        if len(p):
            ids[r, width - len(p):] = torch.as_tensor(list(p), dtype=torch.long)
            mask[r, width - len(p):] = 1
    return ids.to(device), mask.to(device), lengths.to(device)


def prompt_pass(model, prompts: Sequence[Sequence[int]], pad_id: int):
    """Run every prompt once. Returns (log-probs of the next token (B, V) fp32, cache, mask, lengths)."""
    device = model_device(model)
    ids, mask, lengths = left_pad(prompts, pad_id, device)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    out = forward(model, ids, mask, positions)
    logp = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
    return logp, out.cache, mask, lengths
