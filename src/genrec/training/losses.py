"""Next-token cross-entropy computed only where there are labels.

The language-model head of SmolLM2 is a 49,152 × 576 matrix: about a fifth of the
model's forward cost per token. With the loss on the response only, most positions
need no logits, so the head runs on the labelled positions alone (the same saving as
``logits_to_keep`` in transformers, but per example). Models that post-process logits
(soft-capping, logit scaling) take the plain path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..model.encoding import IGNORE
from ..model.finetune import base_model


def pad_batch(encoded: list[tuple[list[int], list[int]]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad (ids, labels) pairs; padding is masked by position, not by token id."""
    n = max(len(ids) for ids, _ in encoded)
    ids = torch.full((len(encoded), n), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), n), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(encoded), n), dtype=torch.long)
    for r, (i, lab) in enumerate(encoded):
        ids[r, : len(i)] = torch.tensor(i)
        labels[r, : len(lab)] = torch.tensor(lab)
        mask[r, : len(i)] = 1
    return ids.to(device), mask.to(device), labels.to(device)


def token_losses(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every labelled next token (1-D, row-major order)."""
    logits, target = labelled_logits(model, input_ids, attention_mask, labels)
    return F.cross_entropy(logits, target, reduction="none")


def labelled_logits(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 logits predicting every labelled token (row-major), and those tokens."""
    hf = base_model(model)
    target = labels[:, 1:]
    keep = target != IGNORE
    cfg = hf.config
    plain = any(getattr(cfg, a, None) for a in ("final_logit_softcapping", "logit_scale")) or not hasattr(hf, "get_decoder")
    if plain:
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[:, :-1]
        return logits[keep].float(), target[keep]
    hidden = hf.get_decoder()(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    logits = hf.get_output_embeddings()(hidden[:, :-1][keep])
    return logits.float(), target[keep]


class SummedLoss(nn.Module):
    """Wraps the (peft) model so DDP/FSDP see one forward that returns the summed loss."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, labels):
        return token_losses(self.model, input_ids, attention_mask, labels).sum()
