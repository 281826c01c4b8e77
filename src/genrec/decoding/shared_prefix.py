"""Shared-prefix attention for beam steps: every beam of a user reads one copy of its prompt.

With a plain cache each beam row holds its own copy of the prompt's keys and values,
and every step copies all of them twice (the cache's concatenation and the beam
reorder): at 10 beams x 8 users x 180 prompt tokens that traffic cost as much as the
model's matrix products (measured with SmolLM2-135M on CPU). This is the cascade /
shared-prefix decomposition of Hydragen (Juravsky et al. 2024) and FlashInfer: the
softmax over [prompt ; generated] keys is split into a per-user product with the
prompt (one batched matmul over users, beams as extra query rows) and a per-beam
product with the few generated tokens, joined in one softmax. The prompt's cache is
never copied or reordered; only the generated part is.

It is plugged into Hugging Face's own model code, not a re-implementation of it: an
attention function registered with ``AttentionInterface`` and selected only for the
duration of a step's forward pass, while the cache passed to the model holds only
the generated tokens. Supported for decoder models with plain full attention (LLaMA,
Mistral without sliding window, Qwen2, ...); others use the plain cache.
"""

from __future__ import annotations

import contextlib
import threading

import torch

from ..model.finetune import base_model

NAME = "genrec_shared_prefix"
_LOCAL = threading.local()
_SUPPORTED = {"llama", "mistral", "qwen2", "qwen3", "olmo", "olmo2", "granite", "smollm3"}
_registered = False


class PrefixState:
    """The prompt cache of a batch of users and the map from beam rows to users."""

    def __init__(self, prompt_cache, prompt_mask: torch.Tensor):
        self.keys = [layer.keys for layer in prompt_cache.layers]  # (B, Hkv, P, D) each
        self.values = [layer.values for layer in prompt_cache.layers]
        # additive bias hiding the left padding of each user's prompt
        self.bias = torch.zeros(prompt_mask.shape, dtype=torch.float32, device=prompt_mask.device)
        self.bias.masked_fill_(prompt_mask == 0, float("-inf"))
        self.n_users = prompt_mask.shape[0]
        self.set_rows(torch.arange(self.n_users, device=prompt_mask.device))

    def set_rows(self, row_user: torch.Tensor) -> None:
        """Beam rows, grouped by user (ascending): their user and slot within the user."""
        self.row_user = row_user
        counts = torch.bincount(row_user, minlength=self.n_users)
        starts = torch.cumsum(counts, 0) - counts
        self.slot = torch.arange(row_user.numel(), device=row_user.device) - starts[row_user]
        self.width = int(counts.max()) if row_user.numel() else 0


def supported(model) -> bool:
    base = base_model(model)
    cfg = getattr(base, "config", None)
    return (
        cfg is not None
        and getattr(cfg, "model_type", None) in _SUPPORTED
        and not getattr(cfg, "sliding_window", None)
        and not getattr(cfg, "attn_logit_softcapping", None)
        and hasattr(base, "model")
    )


def _attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """Attention of one new token per beam row over [its user's prompt ; its own generated tokens]."""
    st: PrefixState = _LOCAL.state
    R, Hq, q_len, D = query.shape
    assert q_len == 1, "shared-prefix attention decodes one token per row"
    Hkv = key.shape[1]
    G = Hq // Hkv
    scale = scaling if scaling is not None else D**-0.5
    pk, pv = st.keys[module.layer_idx], st.values[module.layer_idx]  # (B, Hkv, P, D)
    B, _, P, _ = pk.shape
    n = st.width
    q = query.reshape(R, Hkv, G, D).float()
    # prompt part: pad rows into (B, n) slots so each user's prompt is one batched matmul
    q_pad = q.new_zeros(B, n, Hkv, G, D)
    q_pad[st.row_user, st.slot] = q
    q_pad = q_pad.permute(0, 2, 1, 3, 4).reshape(B, Hkv, n * G, D)
    s_pre = torch.matmul(q_pad, pk.float().transpose(-1, -2)) * scale  # (B, Hkv, n*G, P)
    s_pre = s_pre.view(B, Hkv, n, G, P).permute(0, 2, 1, 3, 4)[st.row_user, st.slot]  # (R, Hkv, G, P)
    s_pre = s_pre + st.bias[st.row_user].view(R, 1, 1, P)
    # generated part: each row's own tokens
    s_gen = torch.matmul(q, key.float().transpose(-1, -2)) * scale  # (R, Hkv, G, t)
    w = torch.softmax(torch.cat([s_pre, s_gen], dim=-1), dim=-1)
    w_pre, w_gen = w[..., :P], w[..., P:]
    w_pad = w.new_zeros(B, n, Hkv, G, P)
    w_pad[st.row_user, st.slot] = w_pre
    w_pad = w_pad.permute(0, 2, 1, 3, 4).reshape(B, Hkv, n * G, P)
    o_pre = torch.matmul(w_pad, pv.float()).view(B, Hkv, n, G, D).permute(0, 2, 1, 3, 4)[st.row_user, st.slot]
    o_gen = torch.matmul(w_gen, value.float())  # (R, Hkv, G, D)
    out = (o_pre + o_gen).reshape(R, Hq, D).to(query.dtype)
    return out.unsqueeze(1), None  # (R, q_len, Hq, D), as Hugging Face's attention functions return


def _register() -> None:
    global _registered
    if not _registered:
        from transformers import AttentionInterface

        AttentionInterface.register(NAME, _attention)
        _registered = True


@contextlib.contextmanager
def active(model, state: PrefixState):
    """Select shared-prefix attention for the forward passes inside this block."""
    _register()
    base = base_model(model)
    before = base.config._attn_implementation
    _LOCAL.state = state
    base.config._attn_implementation = NAME
    try:
        yield
    finally:
        base.config._attn_implementation = before
        _LOCAL.state = None
