"""Exact top-K over the catalogue: best-first search on the token trie, and brute force.

Best-first search is uniform-cost search (A* with a zero heuristic) over the prefix
tree: a partial title's summed log-probability bounds every completion's, because each
further token adds a log-probability <= 0. Popping frontier nodes in order of partial
score, the first leaf (a title followed by EOS) popped is the best item, the second the
second best, and so on: the first k leaves are exactly the model's top-k catalogue
items (this is the "exact decoding" of e.g. Stahlberg & Byrne 2019, restricted to a
trie). Nodes whose live titles are all excluded for the user are never pushed.

Expansion is batched: each round pops, per user, up to ``expand`` internal nodes from
the top of its frontier (stopping at the first leaf, which may only be declared final
once nothing above it is left unexpanded) and runs them in one forward pass.

Cache choice: every expanded node keeps the key/value vectors of its *own* token only
(one position, in a shared pool), and a node's past is assembled from the user's
prompt cache plus its ancestors' pooled positions. That costs one model position per
expansion (recomputing the path from the prompt would cost the node's depth, ~10x
more) and a few tens of KB per node for a 135M model, against a full per-node cache
that would copy the prompt for every node. The past is laid out
``[prompt | gap | ancestors]`` with the gap masked out; keys already carry their
rotary positions, so where they sit in the buffer does not matter.

``score_items`` is the brute-force reference: every item's response scored by one
teacher-forced pass per batch of items, sharing the prompt's cache.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..ranking import NO_ITEM, Ranked
from . import _lm
from .trie import Trie


@dataclass
class ExactStats:
    users: int = 0
    expansions: int = 0
    forward_calls: int = 0
    #: per user: True where the expansion budget ran out before k items were proven best
    exhausted: list[bool] = field(default_factory=list)


def _cache_layers(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(layer.keys, layer.values) for layer in cache.layers]


def _make_cache(kv: list[tuple[torch.Tensor, torch.Tensor]]):
    from transformers import DynamicCache

    return DynamicCache(ddp_cache_data=kv)


class _Pool:
    """Key/value vectors of one position per expanded node, for every layer, grown in chunks."""

    def __init__(self, like: list[tuple[torch.Tensor, torch.Tensor]], capacity: int = 256):
        self.shapes = [(k.shape[1], k.shape[3]) for k, _ in like]
        self.dtype, self.device = like[0][0].dtype, like[0][0].device
        self.size = 0
        self.k = [torch.empty(capacity, h, d, dtype=self.dtype, device=self.device) for h, d in self.shapes]
        self.v = [torch.empty(capacity, h, d, dtype=self.dtype, device=self.device) for h, d in self.shapes]

    def add(self, keys: list[torch.Tensor], values: list[torch.Tensor]) -> np.ndarray:
        n = keys[0].shape[0]
        if self.size + n > self.k[0].shape[0]:
            grow = max(self.k[0].shape[0], n)
            self.k = [torch.cat([t, torch.empty(grow, *t.shape[1:], dtype=t.dtype, device=t.device)]) for t in self.k]
            self.v = [torch.cat([t, torch.empty(grow, *t.shape[1:], dtype=t.dtype, device=t.device)]) for t in self.v]
        for layer in range(len(self.k)):
            self.k[layer][self.size:self.size + n] = keys[layer]
            self.v[layer][self.size:self.size + n] = values[layer]
        slots = np.arange(self.size, self.size + n)
        self.size += n
        return slots


def exact_topk(
    model,
    trie: Trie,
    prompts: Sequence[Sequence[int]],
    k: int,
    exclude: Sequence[Sequence[int]] | None = None,
    batch_size: int = 8,
    expand: int = 16,
    max_expansions: int = 2000,
    pad_id: int | None = None,
    stats: ExactStats | None = None,
) -> Ranked:
    """The model's exact top-``k`` catalogue items per prompt (summed log-probabilities).

    ``max_expansions`` bounds the nodes expanded per user; a user that hits it gets the
    best items found so far (proven ones first, then the best complete items still on
    its frontier) and ``stats.exhausted`` is True for it.
    """
    _lm.check_topk_request(prompts, k, exclude)
    pad_id = trie.eos_id if pad_id is None else pad_id
    stats = stats if stats is not None else ExactStats()
    parts = []
    with torch.inference_mode():
        for lo in range(0, len(prompts), batch_size):
            users = range(lo, min(lo + batch_size, len(prompts)))
            ex = [set(map(int, exclude[u])) if exclude is not None else set() for u in users]
            parts.append(_search(model, trie, [prompts[u] for u in users], ex, k, expand, max_expansions, pad_id, stats))
    if not parts:
        return Ranked(np.zeros((0, k), np.int64), np.zeros((0, k)))
    return Ranked.concat(parts)


def _search(model, trie, prompts, excluded, k, expand, max_expansions, pad_id, stats) -> Ranked:
    B = len(prompts)
    logp, cache, pmask, plen = _lm.prompt_pass(model, prompts, pad_id)
    device = logp.device
    prompt_kv = _cache_layers(cache)
    pool = _Pool(prompt_kv)
    slot_parent: list[int] = []  # pool slot -> parent's pool slot (-1: the prompt)
    tie = itertools.count()
    # frontier entries: (-score, tie, node, parent_slot, token, depth); leaf entries have item >= 0
    heaps: list[list] = [[] for _ in range(B)]
    found: list[list[tuple[int, float]]] = [[] for _ in range(B)]
    used = [0] * B
    stats.users += B

    overlay = trie.exclusion([sorted(e) for e in excluded])

    def push_children(u: int, nodes: np.ndarray, scores: np.ndarray, slots: np.ndarray, depths: np.ndarray, lp: torch.Tensor):
        row, tok, child = trie.allowed(nodes)
        # never expand into a subtree whose live titles are all excluded for this user
        ok = ~trie.blocked(np.full(child.size, u), child, overlay)
        row, tok, child = row[ok], tok[ok], child[ok]
        if not row.size:
            return
        s = scores[row] + lp[torch.from_numpy(row).to(device), torch.from_numpy(tok).to(device)].double().cpu().numpy()
        item = np.where(tok == trie.eos_id, trie.item_at(child), NO_ITEM)
        h = heaps[u]
        for j in range(row.size):
            if tok[j] == trie.eos_id:
                if item[j] < 0 or int(item[j]) in excluded[u]:
                    continue
                heapq.heappush(h, (-s[j], next(tie), -1, -1, -1, 0, int(item[j])))
            else:
                heapq.heappush(h, (-s[j], next(tie), int(child[j]), int(slots[row[j]]), int(tok[j]), int(depths[row[j]]) + 1, NO_ITEM))

    for u in range(B):
        push_children(u, np.zeros(1, np.int64), np.zeros(1), np.array([-1]), np.zeros(1, np.int64), logp[u:u + 1])

    active = list(range(B))
    while active:
        batch = []  # (user, entry)
        for u in list(active):
            h = heaps[u]
            taken = 0
            while h and len(found[u]) < k:
                top = h[0]
                if top[6] >= 0:  # a leaf on top is final unless a node above it waits for expansion
                    if taken:
                        break
                    heapq.heappop(h)
                    found[u].append((top[6], -top[0]))
                    continue
                if taken == expand or used[u] >= max_expansions:
                    break
                batch.append((u, heapq.heappop(h)))
                taken += 1
                used[u] += 1
            if not taken:  # done, out of frontier, or out of budget; takers wait for their children
                active.remove(u)
        if not batch:
            break
        M = len(batch)
        paths = []
        for _, e in batch:
            p, slot = [], e[3]
            while slot >= 0:
                p.append(slot)
                slot = slot_parent[slot]
            paths.append(p[::-1])
        dmax = max(len(p) for p in paths)
        users = torch.tensor([u for u, _ in batch], device=device)
        P = pmask.shape[1]
        gmask = torch.zeros(M, dmax, dtype=pmask.dtype, device=device)
        gslots = torch.zeros(M, dmax, dtype=torch.long, device=device)
        for r, p in enumerate(paths):
            if p:
                gslots[r, dmax - len(p):] = torch.tensor(p, device=device)
                gmask[r, dmax - len(p):] = 1
        kv = []
        for layer, (pk, pv) in enumerate(prompt_kv):
            gk = pool.k[layer][gslots].transpose(1, 2)  # (M, H, dmax, D)
            gv = pool.v[layer][gslots].transpose(1, 2)
            kv.append((torch.cat([pk[users], gk], dim=2), torch.cat([pv[users], gv], dim=2)))
        mask = torch.cat([pmask[users], gmask, torch.ones(M, 1, dtype=pmask.dtype, device=device)], dim=1)
        depth = torch.tensor([e[5] for _, e in batch], device=device)
        positions = (plen[users] + depth - 1).unsqueeze(1)
        tokens = torch.tensor([[e[4]] for _, e in batch], device=device)
        out = _lm.forward(model, tokens, mask, positions, _make_cache(kv))
        lp_all = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
        new = _cache_layers(out.cache)
        slots = pool.add([kk[:, :, -1] for kk, _ in new], [vv[:, :, -1] for _, vv in new])
        slot_parent.extend(e[3] for _, e in batch)
        stats.expansions += M
        stats.forward_calls += 1
        assert P + dmax + 1 == new[0][0].shape[2]
        for r, (u, e) in enumerate(batch):
            push_children(u, np.array([e[2]]), np.array([-e[0]]), np.array([slots[r]]), np.array([e[5]]), lp_all[r:r + 1])

    items = np.full((B, k), NO_ITEM, dtype=np.int64)
    scores = np.full((B, k), -np.inf)
    for u in range(B):
        got = list(found[u])
        exhausted = len(got) < k and any(e[6] < 0 for e in heaps[u])
        if exhausted:  # best complete items left on the frontier, unproven
            leaves = sorted((e for e in heaps[u] if e[6] >= 0), key=lambda e: e[0])
            got += [(e[6], -e[0]) for e in leaves[: k - len(got)]]
        stats.exhausted.append(bool(exhausted))
        for r, (item, s) in enumerate(got[:k]):
            items[u, r], scores[u, r] = item, s
    return Ranked(items, scores)


def score_items(
    model,
    codec,
    prompt_ids: Sequence[int],
    items: Sequence[int] | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Summed log-probability of each item's ``codec.response_ids`` after ``prompt_ids``.

    Brute force: the prompt runs once, then one teacher-forced pass per batch of items
    over a copy of its cache. ``items`` defaults to the whole codec.
    """
    items = list(range(len(codec))) if items is None else [int(i) for i in items]
    out = np.zeros(len(items), dtype=np.float64)
    with torch.inference_mode():
        logp0, cache, pmask, plen = _lm.prompt_pass(model, [list(prompt_ids)], codec.pad_id)
        device = logp0.device
        prompt_kv = _cache_layers(cache)
        for lo in range(0, len(items), batch_size):
            chunk = items[lo:lo + batch_size]
            resp = [codec.response_ids(i) for i in chunk]
            n, L = len(resp), max(len(r) for r in resp)
            first = torch.tensor([r[0] for r in resp], device=device)
            total = logp0[0, first].double()
            if L > 1:
                ids = torch.full((n, L - 1), codec.pad_id, dtype=torch.long, device=device)
                tgt = torch.full((n, L - 1), 0, dtype=torch.long, device=device)
                valid = torch.zeros((n, L - 1), dtype=torch.bool, device=device)
                for r, x in enumerate(resp):  # right padding: pads come after the real tokens
                    ids[r, : len(x) - 1] = torch.tensor(x[:-1])
                    tgt[r, : len(x) - 1] = torch.tensor(x[1:])
                    valid[r, : len(x) - 1] = True
                kv = [(pk.expand(n, -1, -1, -1).contiguous(), pv.expand(n, -1, -1, -1).contiguous()) for pk, pv in prompt_kv]
                mask = torch.cat([pmask.expand(n, -1), valid.long()], dim=1)
                positions = plen[0] + torch.arange(L - 1, device=device).unsqueeze(0).expand(n, -1)
                res = _lm.forward(model, ids, mask, positions, _make_cache(kv), logits_to_keep=0)
                lp = torch.log_softmax(res.logits.float(), dim=-1).gather(2, tgt.unsqueeze(2)).squeeze(2).double()
                total = total + (lp * valid).sum(1)
            out[lo:lo + n] = total.cpu().numpy()
    return out
