"""The paper's free decoding, its grounding to the catalogue, and Hugging Face's beam search.

GenRec (Ji et al. 2023, after alpaca-lora) decodes with Hugging Face ``generate``:
10 beams, no constraint, and counts a hit when the generated text equals the target
title (exact string match). Free text need not be a catalogue title; this module
reports how often that happens and offers two ways to ground it:

* ``bm25``: the nearest title by BM25 over title words (``bm25s``);
* ``embedding``: BIGRec's grounding (Bao et al. 2023): the generated text and every
  title are embedded with the backbone itself (mean of the last hidden states over
  the text's tokens) and the nearest title by cosine similarity is taken. Title
  embeddings are computed once per decoder.
* ``bigrec``: BIGRec's ranking: the best output alone is embedded, and the whole
  catalogue is ranked by ``(1 + P)^-gamma * D``, with ``D`` the L2 distance of each title's
  embedding to it, min-max normalised per user, and ``P`` an assistant's probability of
  each item (BIGRec's: popularity; or SASRec's), min-max normalised per user, so that
  ``gamma`` (``ground_weight``, chosen on validation) moves likely items closer. With
  ``gamma = 0`` (or no assistant) it is the nearest titles in order. BIGRec embeds with
  the last token's hidden state of its own model; here the same mean-pooled, normalised
  embedding as ``embedding`` is used (on unit vectors L2 distance orders as cosine).

In ``exact`` mode an output that is not a title is INVALID and a repeated or excluded
title is NO_ITEM (it is not a new recommendation); grounding instead assigns each
output, best beam first, the nearest title not yet used and not excluded, so every
slot holds a distinct item.

``hf_beam_topk`` is Hugging Face's beam search made valid with the trie
(``prefix_allowed_tokens_fn``), one user at a time: the straightforward way that the
benchmark compares genrec's batched beam search against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..data.catalogue import clean_title
from ..errors import GenrecError
from ..ranking import INVALID, NO_ITEM, Ranked, top_k_from_scores
from . import _lm
from .config import Grounding
from .trie import Trie


def _generate(model, prompt: Sequence[int], beams: int, k: int, max_new_tokens: int, eos_id: int, pad_id: int,
              length_penalty: float, allowed_fn=None):
    device = _lm.model_device(model)
    ids = torch.tensor([list(prompt)], dtype=torch.long, device=device)
    out = model.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), num_beams=beams, num_return_sequences=k,
        max_new_tokens=max_new_tokens, do_sample=False, early_stopping=False, length_penalty=length_penalty,
        eos_token_id=eos_id, pad_token_id=pad_id, prefix_allowed_tokens_fn=allowed_fn,
        output_scores=True, return_dict_in_generate=True,
    )
    gen = out.sequences[:, ids.shape[1]:].cpu().numpy()
    seqs = []
    for row in gen:
        stop = np.flatnonzero(row == eos_id)
        seqs.append(row[: stop[0] + 1].tolist() if stop.size else row.tolist())
    return seqs, out.sequences_scores.double().cpu().numpy()


def hf_beam_topk(model, trie: Trie, prompts: Sequence[Sequence[int]], k: int, beams: int = 10,
                 exclude: Sequence[Sequence[int]] | None = None, pad_id: int | None = None,
                 length_penalty: float = 0.0) -> Ranked:
    """Hugging Face ``generate`` beam search restricted to the trie, one prompt at a time.

    ``length_penalty=0`` ranks by summed log-probability, as ``beam_search`` does by
    default. Excluded items are removed as in ``beam_search``: no token is offered that
    leads only to excluded titles.
    """
    if beams < k:
        raise GenrecError(f"beam width {beams} must be at least k ({k})", f"use beams >= {k}")
    pad_id = trie.eos_id if pad_id is None else pad_id
    items = np.full((len(prompts), k), NO_ITEM, dtype=np.int64)
    scores = np.full((len(prompts), k), -np.inf)
    for u, prompt in enumerate(prompts):
        start = len(prompt)
        banned = set(map(int, exclude[u])) if exclude is not None else set()
        nodes: dict[tuple, int] = {(): 0}
        overlay = trie.exclusion([sorted(banned)])

        def allowed(_batch_id, input_ids, start=start, banned=banned, nodes=nodes, overlay=overlay):
            gen = tuple(input_ids[start:].tolist())
            node = nodes.get(gen)
            if node is None:
                parent = nodes.get(gen[:-1])
                if parent is None:
                    parent = trie.walk(gen[:-1])
                node = int(trie.step([max(parent, 0)], [gen[-1]])[0]) if parent >= 0 else -1
                nodes[gen] = node
            if node < 0:
                return [trie.eos_id]
            _, tok, child = trie.allowed([node])
            if banned:  # the same per-user overlay as beam_search: no subtree of excluded titles only
                tok = tok[~trie.blocked(np.zeros(child.size, np.int64), child, overlay)]
            return tok.tolist() if tok.size else [trie.eos_id]

        with torch.inference_mode():
            seqs, seq_scores = _generate(model, prompt, beams, k, max(1, trie.max_depth), trie.eos_id, pad_id,
                                         length_penalty, allowed)
        r = 0
        for s, sc in zip(seqs, seq_scores, strict=True):
            node = trie.walk(s)
            item = int(trie.item_at([node])[0]) if node >= 0 else NO_ITEM
            if item >= 0 and item not in banned and item not in items[u, :r]:
                items[u, r], scores[u, r] = item, sc
                r += 1
    return Ranked(items, scores)


def bigrec_scores(dist: np.ndarray, assist: np.ndarray | None, gamma: float) -> np.ndarray:
    """BIGRec's ``(1 + P)^-gamma * D`` (lower is better): ``dist`` is D, (users, items) in
    [0, 1]; ``P`` the assistant's probabilities min-max normalised per user."""
    if assist is None or gamma == 0:
        return dist
    assist = np.asarray(assist, dtype=np.float64)
    lo, hi = assist.min(axis=1, keepdims=True), assist.max(axis=1, keepdims=True)
    p = (assist - lo) / np.where(hi > lo, hi - lo, 1.0)
    return np.power(1.0 + p, -gamma) * dist


class FreeDecoder:
    """Unconstrained beam search (the paper's decoding) mapped to catalogue items."""

    def __init__(self, model, codec, beams: int = 10, grounding: Grounding = "exact",
                 max_new_tokens: int | None = None, length_penalty: float = 1.0, embed_batch: int = 64):
        if grounding not in ("exact", "bm25", "embedding", "bigrec"):
            raise GenrecError(f"unknown grounding {grounding!r}", "use exact, bm25, embedding or bigrec")
        self.model, self.codec, self.beams, self.grounding = model, codec, beams, grounding
        self.max_new_tokens = max_new_tokens or (max((len(x) for x in codec.item_tokens), default=0) + 1)
        self.length_penalty = length_penalty  # Hugging Face's default, as the paper ran it
        self.embed_batch = embed_batch
        # generated text and titles compared as the catalogue cleans titles (entities, whitespace)
        self._index = {clean_title(n) or n: i for i, n in enumerate(codec.names)}
        self._bm25 = None
        self._title_emb: torch.Tensor | None = None
        #: after each call: outputs generated, outputs that were not catalogue titles, their share
        self.last_stats: dict = {}
        self.last_texts: list[list[str]] = []

    # ---------------------------------------------------------------- grounding indexes

    def _bm25_index(self):
        if self._bm25 is None:
            import bm25s

            self._bm25 = bm25s.BM25()
            self._bm25.index(bm25s.tokenize(list(self.codec.names), show_progress=False), show_progress=False)
        return self._bm25

    def _embed(self, token_lists: Sequence[Sequence[int]]) -> torch.Tensor:
        """Mean-pooled last hidden states, L2-normalised, one row per token list (batched
        by length, so a batch holds little padding; rows come back in the given order)."""
        order = np.argsort([len(t) for t in token_lists], kind="stable")
        rows = []
        with torch.inference_mode():
            for lo in range(0, len(order), self.embed_batch):
                chunk = [list(token_lists[i]) or [self.codec.pad_id] for i in order[lo:lo + self.embed_batch]]
                ids, mask, _ = _lm.left_pad(chunk, self.codec.pad_id, _lm.model_device(self.model))
                positions = (mask.cumsum(1) - 1).clamp(min=0)
                out = _lm.forward(self.model, ids, mask, positions, hidden=True)
                h = out.hidden_states[-1].float()
                m = mask.unsqueeze(-1).float()
                rows.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1).cpu())
        if not rows:
            return torch.zeros(0, 1)
        sorted_rows = torch.cat(rows)
        out = torch.empty_like(sorted_rows)
        out[torch.as_tensor(order)] = sorted_rows
        return out

    def title_embeddings(self) -> torch.Tensor:
        if self._title_emb is None:
            self._title_emb = self._embed(self.codec.item_tokens)
        return self._title_emb

    def _neighbours(self, texts: list[str], token_lists: list[list[int]], n: int) -> list[np.ndarray]:
        """Catalogue indices nearest to each output, best first (at most ``n``)."""
        n = min(n, len(self.codec))
        if self.grounding == "bm25":
            import bm25s

            index = self._bm25_index()
            out = []
            for t in texts:
                q = bm25s.tokenize([t], return_ids=False, show_progress=False)
                if not q or not q[0]:
                    out.append(np.zeros(0, np.int64))
                    continue
                docs, sc = index.retrieve(q, k=n, show_progress=False)
                out.append(np.asarray(docs[0], dtype=np.int64)[np.asarray(sc[0]) > 0])
            return out
        sims = self._embed(token_lists) @ self.title_embeddings().T
        return [row for row in torch.topk(sims, n, dim=1).indices.numpy()]

    # ---------------------------------------------------------------- decoding

    def bigrec_distances(self, token_lists: Sequence[Sequence[int]]) -> np.ndarray:
        """``D`` of the bigrec grounding: per output, every title's L2 distance to it,
        min-max normalised to [0, 1] over the catalogue."""
        dist = torch.cdist(self._embed(token_lists).double(), self.title_embeddings().double()).numpy()
        lo, hi = dist.min(axis=1, keepdims=True), dist.max(axis=1, keepdims=True)
        return (dist - lo) / np.where(hi > lo, hi - lo, 1.0)

    def best_outputs(self, prompts: Sequence[Sequence[int]]) -> list[list[int]]:
        """The best beam's tokens (without EOS) per prompt, as the bigrec grounding embeds
        them; ``last_texts`` and ``last_stats`` describe them."""
        eos = self.codec.eos_id
        best, texts = [], []
        for prompt in prompts:
            with torch.inference_mode():
                seqs, _ = _generate(self.model, prompt, self.beams, 1, self.max_new_tokens, eos, self.codec.pad_id,
                                    self.length_penalty)
            best.append(seqs[0][:-1] if seqs[0] and seqs[0][-1] == eos else seqs[0])
            texts.append(clean_title(self.codec.tokenizer.decode(best[-1], skip_special_tokens=True)) or "")
        self.last_texts = [[t] for t in texts]
        n_invalid = sum(1 for t in texts if t not in self._index)
        self.last_stats = {"outputs": len(texts), "not_in_catalogue": n_invalid,
                           "invalid_share": n_invalid / len(texts) if texts else 0.0}
        return best

    def _bigrec_topk(self, prompts, k: int, exclude, assist, gamma: float) -> Ranked:
        scores = -bigrec_scores(self.bigrec_distances(self.best_outputs(prompts)), assist, gamma)  # higher is better
        return top_k_from_scores(scores, k, exclude=exclude)

    def topk(self, prompts: Sequence[Sequence[int]], k: int, exclude: Sequence[Sequence[int]] | None = None,
             assist: np.ndarray | None = None, ground_weight: float = 0.0) -> Ranked:
        """``assist`` and ``ground_weight`` (gamma) are the bigrec grounding's (module doc),
        which ranks the whole catalogue, so its k is not limited by the beam width."""
        if self.grounding == "bigrec":
            if ground_weight < 0:
                raise GenrecError(f"ground_weight={ground_weight} is negative", "use gamma >= 0 (0: distance alone)")
            if ground_weight > 0:
                assist = _lm.check_assist(assist, len(prompts), len(self.codec), 0.0)
                if assist is None:
                    raise GenrecError("ground_weight scales distances by an assistant's probabilities, but none were given",
                                      "pass assist= (one row of item probabilities per prompt), or ground_weight=0")
            return self._bigrec_topk(prompts, k, exclude, assist, ground_weight)
        if self.beams < k:
            raise GenrecError(f"beam width {self.beams} must be at least k ({k})", f"use beams >= {k}")
        eos = self.codec.eos_id
        items = np.full((len(prompts), k), NO_ITEM, dtype=np.int64)
        scores = np.full((len(prompts), k), -np.inf)
        n_out = n_invalid = 0
        self.last_texts = []
        for u, prompt in enumerate(prompts):
            with torch.inference_mode():
                seqs, seq_scores = _generate(self.model, prompt, self.beams, k, self.max_new_tokens, eos,
                                             self.codec.pad_id, self.length_penalty)
            body = [s[:-1] if s and s[-1] == eos else s for s in seqs]
            texts = [clean_title(self.codec.tokenizer.decode(b, skip_special_tokens=True)) or "" for b in body]
            self.last_texts.append(texts)
            exact = [self._index.get(t, NO_ITEM) for t in texts]
            n_out += len(texts)
            n_invalid += sum(1 for e in exact if e < 0)
            banned = set(map(int, exclude[u])) if exclude is not None else set()
            used: set[int] = set()
            if self.grounding == "exact":
                for r, (e, sc) in enumerate(zip(exact, seq_scores, strict=True)):
                    scores[u, r] = sc
                    if e < 0:
                        items[u, r] = INVALID
                    elif e in banned or e in used:
                        items[u, r], scores[u, r] = NO_ITEM, -np.inf
                    else:
                        items[u, r] = e
                        used.add(e)
                continue
            # a title generated exactly is its own nearest item; the rest are grounded
            near = self._neighbours(texts, body, k + len(banned) + k)
            r = 0
            for e, cand, sc in zip(exact, near, seq_scores, strict=True):
                pick = next((int(c) for c in ([e] if e >= 0 else []) + list(cand) if c not in banned and c not in used), None)
                if pick is not None:
                    items[u, r], scores[u, r] = pick, sc
                    used.add(pick)
                    r += 1
        self.last_stats = {"outputs": n_out, "not_in_catalogue": n_invalid,
                           "invalid_share": n_invalid / n_out if n_out else 0.0}
        return Ranked(items, scores)
