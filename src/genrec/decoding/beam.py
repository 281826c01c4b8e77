"""Batched beam search constrained to the catalogue trie.

Constrained beam search over a prefix tree of item identifiers is the decoding of
TIGER, P5-CID and BIGRec's constrained variant (after GENRE, De Cao et al. 2021); its
search follows Hugging Face's beam search (top continuations over beams x tokens,
finished hypotheses kept apart, stop when no running beam can beat them) with three
changes for speed and for a better tail:

* **The prompt runs once per user.** Users are batched with left padding; after the
  prompt pass each user's cache rows are selected into its beams' rows
  (``batch_select_indices``), so the W beams share one prompt computation. Hugging
  Face expands the prompt to every beam before the first pass (FINDINGS.md: 3.1 s of
  5.7 s per user).
* **Candidates come from the trie, not the vocabulary.** At every step only the
  (beam, token) pairs the trie allows are scored (log_softmax of the last position in
  fp32, then a gather), and each user keeps its best W non-EOS continuations.
* **Every EOS a beam may take is a finished item**, not only those ranked in the top W
  (Hugging Face drops the rest), and a user stops as soon as it has k finished items
  and no running beam can beat the k-th: log-probabilities only fall as a title grows,
  so a beam scoring below the k-th finished item is dropped at once, and the batch
  (and its cache) shrinks as users finish.

``exclude`` (a user's history) is a per-user overlay on the trie's live counts
(``Trie.exclusion``): every node on an excluded item's path counts how many of the
user's excluded items lie below it, and a token is offered to that user only if some
live item below its child is *not* excluded. So an excluded title's EOS is never
offered, a beam never walks into a subtree that holds only excluded titles (a base
model that copies the history would otherwise spend all its beams there and end
short of k items), and an excluded title that is a prefix of another (``Alien`` of
``Aliens``) still leads there. Every running beam therefore has a valid completion,
and W >= k beams return k items whenever the catalogue has them (a safety net
searches a user again with twice the width should it ever end short).

``length_normalise`` (off by default) ranks finished items by mean token log-probability
instead of the sum; the stopping bound then uses ``score / max_depth``, which is still
admissible (a sum only falls and the length is at most the trie's depth), but weaker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import GenrecError
from ..ranking import NO_ITEM, Ranked
from . import _lm
from . import shared_prefix as prefix_attention
from .trie import Trie


@dataclass
class BeamStats:
    """What one call did (for benchmarks and reports)."""

    users: int = 0
    steps: int = 0
    beam_tokens: int = 0  # (beam, token) positions forwarded after the prompts
    prompt_tokens: int = 0


def check_width(beams: int, k: int) -> None:
    if beams < k:
        raise GenrecError(f"beam width {beams} must be at least k ({k})", f"use beams >= {k} or ask for fewer items")


def _ranked_per_group(group: np.ndarray, score: np.ndarray, tie: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the best ``n`` entries of each group (groups ascending, best first) and their ranks."""
    if not group.size:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.lexsort((tie, -score, group))
    g = group[order]
    start = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    rank = np.arange(g.size) - np.repeat(start, np.diff(np.r_[start, g.size]))
    keep = rank < n
    return order[keep], rank[keep]


def _top_per_group(group: np.ndarray, score: np.ndarray, tie: np.ndarray, n: int) -> np.ndarray:
    return _ranked_per_group(group, score, tie, n)[0]


def beam_search(
    model,
    trie: Trie,
    prompts: Sequence[Sequence[int]],
    k: int,
    beams: int = 10,
    exclude: Sequence[Sequence[int]] | None = None,
    batch_size: int = 16,
    pad_id: int | None = None,
    length_normalise: bool = False,
    max_new_tokens: int | None = None,
    stats: BeamStats | None = None,
    hf_compatible: bool = False,
    shared_prefix: bool | None = None,
    renormalise: bool = False,
    assist: np.ndarray | None = None,
    assist_weight: float = 0.0,
) -> Ranked:
    """Top-``k`` catalogue items for each prompt (token ids up to where the response starts).

    Scores are summed token log-probabilities of the item's response ids (its tokens
    and EOS), or their mean with ``length_normalise``. Users with fewer than ``k``
    reachable items get NO_ITEM slots with score -inf.

    ``hf_compatible`` follows Hugging Face's selection rule instead (per user the best 2W
    candidates; an EOS among the first W of them finishes an item, the best W non-EOS
    among them run on), to check that the two searches are the same search.

    ``renormalise`` scores each token by its probability among the tokens the trie allows
    at that point (a distribution over catalogue items rather than over all strings):
    tokens a title's prefix makes certain then cost nothing, which removes the length
    penalty of long titles. Off by default (the plain sum of log-probabilities).

    ``assist`` (users x catalogue items, each row an item distribution from a text-free
    model such as SASRec or popularity) is fused at every step, as D3 does (Bao et al.
    2024): a token scores ``(1 - w) * log p_LM(token) + w * log p_assist(token)`` with
    ``w = assist_weight`` (D3's gamma is ``1 - w``), where ``p_assist(token)`` is the
    assistant's mass of the live, non-excluded items below the token's trie node over the
    mass below its parent (the items under a prefix summed). Both terms are
    log-probabilities, so a path's score still only falls as it grows and the stopping
    bound stays exact; along a whole path the assistant terms add up to ``w * log
    p_assist(item)``, so with ``w = 1`` an item's score is the assistant's (renormalised)
    log-probability, and a beam as wide as the catalogue ranks exactly as the assistant.

    ``shared_prefix`` (default: where the model supports it) keeps one copy of each
    prompt's cache for all of a user's beams (see :mod:`.shared_prefix`); off, every beam row
    carries its own copy in a plain Hugging Face cache. Both give the same result.
    """
    check_width(beams, k)
    _lm.check_topk_request(prompts, k, exclude)
    assist = _lm.check_assist(assist, len(prompts), trie.n_items, assist_weight)
    pad_id = trie.eos_id if pad_id is None else pad_id
    stats = stats if stats is not None else BeamStats()
    shared = prefix_attention.supported(model) if shared_prefix is None else shared_prefix
    opts = dict(pad_id=pad_id, length_normalise=length_normalise, max_new_tokens=max_new_tokens, stats=stats,
                hf_compatible=hf_compatible, shared=shared, renormalise=renormalise,
                assist=assist if assist is not None and assist_weight > 0 else None, assist_weight=assist_weight)
    # users of similar prompt length share a batch: less left padding to compute
    by_length = np.argsort([len(p) for p in prompts], kind="stable")
    parts = []
    with torch.inference_mode():
        for lo in range(0, len(prompts), batch_size):
            users = by_length[lo:lo + batch_size]
            parts.append(_search_batch(model, trie, [prompts[u] for u in users], users, k, beams, exclude, **opts))
    if not parts:
        return Ranked(np.zeros((0, k), np.int64), np.zeros((0, k)))
    out = Ranked.concat(parts)
    back = np.argsort(by_length)
    out = Ranked(out.items[back], out.scores[back])
    # Safety net (the exclusion overlay should make it unreachable): a user short of k
    # items while the catalogue has more is searched again with twice the width, until
    # the width covers every live item (then nothing is ever pruned by width).
    width = beams
    while width < len(trie) and not hf_compatible:
        short = np.flatnonzero((out.items == NO_ITEM).any(axis=1))
        if not short.size:
            break
        if exclude is not None:
            live = trie.item_at(trie.leaf_of(np.arange(trie.n_items))) >= 0
            eligible = np.array([len(trie) - int(live[[i for i in set(map(int, exclude[u])) if 0 <= i < trie.n_items]].sum())
                                 for u in short], dtype=np.int64)
        else:
            eligible = np.full(short.size, len(trie))
        short = short[(out.items[short] != NO_ITEM).sum(axis=1) < np.minimum(eligible, k)]
        if not short.size:
            break
        width *= 2
        with torch.inference_mode():
            again = _search_batch(model, trie, [prompts[u] for u in short], short, k, width, exclude, **opts)
        out.items[short], out.scores[short] = again.items, again.scores
    return out


def _group_logsumexp(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """log(sum(exp(values))) per group id (0..n-1), stable."""
    top = np.full(n, -np.inf)
    np.maximum.at(top, group, values)
    total = np.zeros(n)
    np.add.at(total, group, np.exp(values - top[group]))
    with np.errstate(divide="ignore"):
        return top + np.log(total)


def _search_batch(model, trie, prompts, users, k, W, exclude, *, pad_id, length_normalise, max_new_tokens, stats,
                  hf_compatible, shared, renormalise=False, assist=None, assist_weight=0.0) -> Ranked:
    B = len(prompts)
    overlay = trie.exclusion([exclude[u] for u in users] if exclude is not None else [])
    log_mass = None
    if assist is not None:
        weights = assist[users].copy()
        if exclude is not None:
            for row, u in enumerate(users):
                banned = np.asarray(list(exclude[u]), dtype=np.int64)
                weights[row, banned[(banned >= 0) & (banned < trie.n_items)]] = 0.0
        with np.errstate(divide="ignore"):
            log_mass = np.log(trie.node_mass(weights))
    max_steps = trie.max_depth if max_new_tokens is None else min(max_new_tokens, trie.max_depth)
    depth_cap = max(1, max_steps)

    logp, cache, prompt_mask, prompt_len = _lm.prompt_pass(model, prompts, pad_id)
    device = logp.device
    stats.users += B
    stats.prompt_tokens += int(prompt_len.sum())
    if shared:
        from transformers import DynamicCache

        state = prefix_attention.PrefixState(cache, prompt_mask)
        cache = DynamicCache()  # generated tokens only; the prompt stays in `state`, one copy per user

    # running beams, grouped by user: user, trie node, summed log-prob, cache row
    b_user = np.arange(B, dtype=np.int64)
    b_node = np.zeros(B, dtype=np.int64)
    b_score = np.zeros(B, dtype=np.float64)
    rows_of_cache = b_user.copy()  # which cache row each running beam reads
    # finished items, at most k per user
    f_user = np.zeros(0, np.int64)
    f_item = np.zeros(0, np.int64)
    f_score = np.zeros(0, np.float64)
    kth = np.full(B, -np.inf)

    for step in range(max_steps):
        length = step + 1  # tokens in a title finished at this step (EOS included)
        crow, ctok, cchild = trie.allowed(b_node)
        if not crow.size:
            break
        lp = logp[torch.from_numpy(crow).to(device), torch.from_numpy(ctok).to(device)].double().cpu().numpy()
        if renormalise:
            lp = lp - _group_logsumexp(crow, lp, len(b_node))[crow]
        if log_mass is not None:
            cu = b_user[crow]
            with np.errstate(invalid="ignore"):  # -inf - -inf: a node with no mass is never reached
                lp_assist = log_mass[cu, cchild] - log_mass[cu, b_node[crow]]
            lp = (1.0 - assist_weight) * lp + assist_weight * np.nan_to_num(lp_assist, nan=-np.inf)
        cscore = b_score[crow] + lp
        cuser = b_user[crow]
        is_eos = ctok == trie.eos_id
        # a token into a subtree whose live items are all excluded for this user is no candidate
        c_item = np.full(crow.size, NO_ITEM, dtype=np.int64)
        c_item[is_eos] = trie.item_at(cchild[is_eos])
        bad = trie.blocked(cuser, cchild, overlay) | (is_eos & (c_item < 0))
        if bad.any():
            ok = ~bad
            crow, ctok, cchild, cscore, cuser, is_eos, c_item = (
                crow[ok], ctok[ok], cchild[ok], cscore[ok], cuser[ok], is_eos[ok], c_item[ok])
        if hf_compatible:
            top, rank = _ranked_per_group(cuser, cscore, ctok, 2 * W)
            finishing = top[is_eos[top] & (rank < W)]
            running = top[~is_eos[top]]
        else:  # every EOS finishes an item; any non-EOS continuation may run on
            finishing = np.flatnonzero(is_eos)
            running = np.flatnonzero(~is_eos)

        if finishing.size:
            e_score = cscore[finishing] / length if length_normalise else cscore[finishing]
            f_user = np.concatenate([f_user, cuser[finishing]])
            f_item = np.concatenate([f_item, c_item[finishing]])
            f_score = np.concatenate([f_score, e_score])
            best = _top_per_group(f_user, f_score, f_item, k)
            f_user, f_item, f_score = f_user[best], f_item[best], f_score[best]
            kth[:] = -np.inf
            counts = np.bincount(f_user, minlength=B)
            full = counts >= k
            if full.any():
                # _top_per_group keeps users in order and best first: the k-th is the last of each group
                ends = np.cumsum(counts) - 1
                kth[full] = f_score[ends[full]]

        # running beams: the best W non-EOS continuations of each user that can still win
        run = running
        bound = cscore[run] / depth_cap if length_normalise else cscore[run]
        run = run[bound > kth[cuser[run]]]
        if step + 1 >= max_steps:
            break
        pick = run[_top_per_group(cuser[run], cscore[run], ctok[run], W)]
        pick = pick[np.argsort(cuser[pick], kind="stable")]  # keep beams grouped by user
        if not pick.size:
            break
        parent_rows = rows_of_cache[crow[pick]]
        b_user, b_node, b_score = cuser[pick], cchild[pick], cscore[pick]

        # one token for every running beam, its cache rows taken from its parent's
        idx = torch.from_numpy(parent_rows).to(device)
        cache.reorder_cache(idx)
        u = torch.from_numpy(b_user).to(device)
        R = pick.size
        positions = (prompt_len[u] + step).unsqueeze(1)
        tokens = torch.from_numpy(ctok[pick]).to(device).unsqueeze(1)
        if shared:
            state.set_rows(u)
            with prefix_attention.active(model, state):
                out = _lm.forward(model, tokens, None, positions, cache)
        else:
            mask = torch.cat([prompt_mask[u], torch.ones(R, step + 1, dtype=prompt_mask.dtype, device=device)], dim=1)
            out = _lm.forward(model, tokens, mask, positions, cache)
        cache = out.cache
        logp = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
        rows_of_cache = np.arange(R, dtype=np.int64)
        stats.steps += 1
        stats.beam_tokens += R

    items = np.full((B, k), NO_ITEM, dtype=np.int64)
    scores = np.full((B, k), -np.inf)
    if f_user.size:
        starts = np.r_[0, np.cumsum(np.bincount(f_user, minlength=B))[:-1]]
        rank = np.arange(f_user.size) - starts[f_user]
        items[f_user, rank] = f_item
        scores[f_user, rank] = f_score
    return Ranked(items, scores)
