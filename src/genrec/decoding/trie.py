"""A token prefix trie over the catalogue, stored in flat arrays.

Constrained decoding over a prefix tree of item identifiers is how generative
recommenders keep their output inside the catalogue (TIGER, P5-CID, BIGRec's
constrained variant; De Cao et al.'s GENRE introduced it for entity names). Here the
tree holds every item's *response* token ids (``Codec.response_ids``: the title as
written after a newline, then EOS), so a path from the root that takes EOS ends on a
leaf, and each leaf is exactly one item.

Layout. Nodes are integers (root 0). An edge ``parent --token--> child`` is the int64
key ``parent * V + token`` in a sorted array with a parallel child array, so the
tokens allowed at node ``n`` are the key range ``[n*V, (n+1)*V)`` (two searchsorted
calls for a whole batch of nodes) and the child for ``(n, t)`` is one searchsorted
lookup: no per-beam Python loop anywhere. Each node also has a parent and a *live*
count (live items below it), so items can be removed (counts fall along the path; an
edge into a node with no live items is never offered) and added (new edges go to a
small sorted pending buffer, merged into the main arrays when it grows) without a
rebuild. Leaves map to items through a sorted leaf array (new nodes get ever larger
ids, so appending keeps it sorted).

Building is level by level: at depth d every still-running sequence has a node id p;
``np.unique(p * V + token)`` gives the distinct edges of that depth, their new node ids
(in key order) and the live counts. Numbering nodes depth by depth (breadth first)
makes the concatenated edge keys sorted with no global sort, and a million titles
build in a few seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import GenrecError
from ..ranking import NO_ITEM

_MERGE_MIN = 4096  # pending edges tolerated before a merge (and at least 1/64 of all edges)


class Trie:
    """Prefix tree over token sequences that each end with ``eos_id``.

    ``Trie.build(codec)`` takes every item's ``codec.response_ids(i)``; item ``i`` of the
    trie is the ``i``-th sequence. Node and token arguments may be numpy arrays or
    tensors; results are numpy int64 arrays unless stated otherwise.
    """

    def __init__(self, vocab_size: int, eos_id: int):
        self.vocab_size = int(vocab_size)
        self.eos_id = int(eos_id)
        # edges: sorted keys parent*V + token, child node ids
        self._key = np.zeros(0, dtype=np.int64)
        self._child = np.zeros(0, dtype=np.int32)
        # pending (added, not yet merged) edges, kept sorted too
        self._pkey = np.zeros(0, dtype=np.int64)
        self._pchild = np.zeros(0, dtype=np.int32)
        # nodes
        self._parent = np.full(1, -1, dtype=np.int32)
        self._live = np.zeros(1, dtype=np.int32)
        # leaves (sorted node ids) and their items; item -> leaf
        self._leaf = np.zeros(0, dtype=np.int64)
        self._leaf_item = np.zeros(0, dtype=np.int32)
        self._item_leaf = np.zeros(0, dtype=np.int64)
        self._alive = np.zeros(0, dtype=bool)
        self.max_depth = 0

    # ------------------------------------------------------------------ building

    @classmethod
    def build(cls, source, vocab_size: int | None = None, eos_id: int | None = None) -> Trie:
        """A trie over a codec's items (``response_ids``) or over explicit token lists.

        With token lists, every list must end with ``eos_id`` (default: the last token
        of the first list) and contain it nowhere else.
        """
        if hasattr(source, "response_ids"):
            seqs = [source.response_ids(i) for i in range(len(source))]
            eos_id = source.eos_id if eos_id is None else eos_id
            if vocab_size is None:
                vocab_size = source.vocab_size
        else:
            seqs = list(source)
        if eos_id is None:
            if not seqs:
                raise GenrecError("cannot build a trie from no sequences without eos_id", "pass eos_id=")
            eos_id = int(seqs[0][-1])
        flat, offsets = _flatten(seqs)
        if vocab_size is None:
            vocab_size = int(flat.max()) + 1 if flat.size else eos_id + 1
        trie = cls(int(vocab_size), int(eos_id))
        trie._build(flat, offsets)
        return trie

    def _build(self, flat: np.ndarray, offsets: np.ndarray) -> None:
        V = self.vocab_size
        n = len(offsets) - 1
        lengths = np.diff(offsets)
        _check_sequences(flat, offsets, lengths, self.eos_id, V)
        keys, childs, parents, lives = [], [], [np.full(1, -1, np.int32)], [np.array([n], np.int32)]
        seq = np.arange(n, dtype=np.int64)  # sequences still running
        node = np.zeros(n, dtype=np.int64)  # their current node
        next_id = 1
        d = 0
        leaf_nodes, leaf_items = [], []
        while seq.size:
            tok = flat[offsets[seq] + d]
            key = node * V + tok
            uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
            ids = np.arange(next_id, next_id + uniq.size, dtype=np.int64)
            next_id += uniq.size
            keys.append(uniq)
            childs.append(ids.astype(np.int32))
            parents.append((uniq // V).astype(np.int32))
            lives.append(counts.astype(np.int32))
            node = ids[inverse]
            ended = lengths[seq] == d + 1
            if ended.any():
                end_nodes, end_seq = node[ended], seq[ended]
                order = np.argsort(end_nodes, kind="stable")
                end_nodes, end_seq = end_nodes[order], end_seq[order]
                dup = np.flatnonzero(end_nodes[1:] == end_nodes[:-1])
                if dup.size:
                    pairs = [(int(end_seq[i]), int(end_seq[i + 1])) for i in dup[:5]]
                    raise GenrecError(
                        f"{dup.size} pair(s) of items have identical token ids, e.g. items {pairs}",
                        # they usually differ only where the tokenizer normalises (case, spaces), so a
                        # year they already carry is no help; an id suffix always is
                        "titles must tokenise differently; give one of each pair a suffix in the catalogue, "
                        "e.g. its item id: \"Title [id]\", as genrec prepare does for duplicate titles",
                    )
                leaf_nodes.append(end_nodes)
                leaf_items.append(end_seq)
            keep = ~ended
            seq, node = seq[keep], node[keep]
            d += 1
        self.max_depth = d
        self._key = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        self._child = np.concatenate(childs) if childs else np.zeros(0, np.int32)
        self._parent = np.concatenate(parents)
        self._live = np.concatenate(lives)
        if leaf_nodes:
            ln, li = np.concatenate(leaf_nodes), np.concatenate(leaf_items)
            order = np.argsort(ln)
            self._leaf, self._leaf_item = ln[order], li[order].astype(np.int32)
        self._item_leaf = np.zeros(n, dtype=np.int64)
        self._item_leaf[self._leaf_item] = self._leaf
        self._alive = np.ones(n, dtype=bool)

    # ------------------------------------------------------------------ size

    @property
    def n_nodes(self) -> int:
        return len(self._live)

    @property
    def n_items(self) -> int:
        """Item slots ever added (live or removed); item indices are below this."""
        return len(self._alive)

    def __len__(self) -> int:
        return int(self._alive.sum())

    @property
    def nbytes(self) -> int:
        arrays = (self._key, self._child, self._pkey, self._pchild, self._parent, self._live,
                  self._leaf, self._leaf_item, self._item_leaf, self._alive)
        return int(sum(a.nbytes for a in arrays))

    def bytes_per_item(self) -> float:
        return self.nbytes / max(1, len(self))

    # ------------------------------------------------------------------ queries

    def _merge_if_needed(self, force: bool = False) -> None:
        if not self._pkey.size:
            return
        if force or self._pkey.size > max(_MERGE_MIN, self._key.size // 64):
            pos = np.searchsorted(self._key, self._pkey)
            self._key = np.insert(self._key, pos, self._pkey)
            self._child = np.insert(self._child, pos, self._pchild)
            self._pkey = self._pkey[:0]
            self._pchild = self._pchild[:0]

    def allowed(self, nodes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every live continuation of every node in ``nodes``.

        Returns ``(row, token, child)``: candidate ``j`` extends ``nodes[row[j]]`` by
        ``token[j]`` into ``child[j]``. Rows come in ascending order, tokens ascending
        within a row (the pending buffer, if any, is merged in order).
        """
        nodes = _np64(nodes)
        V = self.vocab_size
        parts = [self._ranges(self._key, self._child, nodes, V)]
        if self._pkey.size:
            parts.append(self._ranges(self._pkey, self._pchild, nodes, V))
        row = np.concatenate([p[0] for p in parts])
        edge_key = np.concatenate([p[1] for p in parts])
        child = np.concatenate([p[2] for p in parts]).astype(np.int64)
        if len(parts) > 1:
            order = np.lexsort((edge_key, row))
            row, edge_key, child = row[order], edge_key[order], child[order]
        live = self._live[child] > 0
        return row[live], (edge_key[live] % V), child[live]

    @staticmethod
    def _ranges(keys: np.ndarray, childs: np.ndarray, nodes: np.ndarray, V: int):
        lo = np.searchsorted(keys, nodes * V)
        hi = np.searchsorted(keys, (nodes + 1) * V)
        counts = hi - lo
        row = np.repeat(np.arange(nodes.size, dtype=np.int64), counts)
        start = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        edge = start + np.arange(row.size, dtype=np.int64)
        return row, keys[edge], childs[edge]

    def allowed_mask(self, nodes, device=None) -> torch.Tensor:
        """Bool tensor ``(len(nodes), vocab_size)``: True where a token is allowed."""
        row, tok, _ = self.allowed(nodes)
        mask = torch.zeros(len(_np64(nodes)), self.vocab_size, dtype=torch.bool, device=device)
        mask[torch.from_numpy(row).to(device), torch.from_numpy(tok).to(device)] = True
        return mask

    def step(self, nodes, tokens) -> np.ndarray:
        """Child of each ``(nodes[b], tokens[b])``, or -1 where that edge is absent or dead."""
        nodes, tokens = _np64(nodes), _np64(tokens)
        key = nodes * self.vocab_size + tokens
        out = np.full(key.shape, -1, dtype=np.int64)
        for keys, childs in ((self._key, self._child), (self._pkey, self._pchild)):
            if not keys.size:
                continue
            pos = np.minimum(np.searchsorted(keys, key), keys.size - 1)
            hit = keys[pos] == key
            out[hit] = childs[pos[hit]]
        found = out >= 0
        out[found & (self._live[np.maximum(out, 0)] <= 0)] = -1
        return out

    def item_at(self, nodes) -> np.ndarray:
        """The item whose leaf each node is, or NO_ITEM (internal node, or a removed item)."""
        nodes = _np64(nodes)
        out = np.full(nodes.shape, NO_ITEM, dtype=np.int64)
        if not self._leaf.size:
            return out
        pos = np.minimum(np.searchsorted(self._leaf, nodes), self._leaf.size - 1)
        hit = self._leaf[pos] == nodes
        items = self._leaf_item[pos[hit]].astype(np.int64)
        out[hit] = np.where(self._alive[items], items, NO_ITEM)
        return out

    def live_items(self) -> np.ndarray:
        """A boolean mask over item indices: True for the items that may be decoded (added
        and not removed); a copy."""
        return self._alive.copy()

    def leaf_of(self, items) -> np.ndarray:
        return self._item_leaf[_np64(items)]

    def walk(self, token_ids: Sequence[int]) -> int:
        """The node reached from the root by ``token_ids``, or -1."""
        node = np.zeros(1, dtype=np.int64)
        for t in token_ids:
            node = self.step(node, [t])
            if node[0] < 0:
                return -1
        return int(node[0])

    def contains(self, token_ids: Sequence[int]) -> bool:
        """Whether ``token_ids`` (ending with EOS, as ``response_ids``) is a live item."""
        node = self.walk(token_ids)
        return node >= 0 and int(self.item_at([node])[0]) >= 0

    def item_tokens(self, item: int) -> list[int]:
        """Token ids of ``item`` (with EOS), read back by walking up from its leaf."""
        node = int(self._item_leaf[item])
        out = []
        while node > 0:
            parent = int(self._parent[node])
            _, tok, child = self._all_edges(parent)
            out.append(int(tok[child == node][0]))
            node = parent
        return out[::-1]

    def _all_edges(self, node: int):
        """Every edge out of ``node``, dead ones included."""
        nodes = np.array([node], dtype=np.int64)
        r, k, c = self._ranges(self._key, self._child, nodes, self.vocab_size)
        if self._pkey.size:
            r2, k2, c2 = self._ranges(self._pkey, self._pchild, nodes, self.vocab_size)
            r, k, c = np.concatenate([r, r2]), np.concatenate([k, k2]), np.concatenate([c, c2])
        return r, k % self.vocab_size, c.astype(np.int64)

    def exclusion(self, items_per_group: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """A per-group overlay on the live counts: ``(keys, counts)`` where ``counts[j]`` live
        items of group ``keys[j] // n_nodes`` lie below node ``keys[j] % n_nodes`` and are
        excluded for that group (e.g. a user's history). See :meth:`blocked`."""
        groups, leaves = [], []
        for g, items in enumerate(items_per_group):
            it = np.unique(_np64(items))
            it = it[(it >= 0) & (it < self.n_items)]
            it = it[self._alive[it]]
            groups.append(np.full(it.size, g, dtype=np.int64))
            leaves.append(self._item_leaf[it])
        if not groups:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        group, node = np.concatenate(groups), np.concatenate(leaves)
        keys = []
        while node.size:  # every node on every excluded item's path, one depth at a time
            keys.append(group * self.n_nodes + node)
            up = self._parent[node].astype(np.int64)
            keep = up >= 0
            group, node = group[keep], up[keep]
        if not keys:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.unique(np.concatenate(keys), return_counts=True)

    def node_mass(self, weights: np.ndarray) -> np.ndarray:
        """Per group, the summed item weight below every node: ``weights`` is (groups, n_items)
        (e.g. an assistant's item probabilities per user, zero where an item is excluded);
        the result is (groups, n_nodes). Removed items weigh nothing. The mass of a child
        over its parent's is the probability of that token under the item distribution,
        renormalised over the tokens the trie allows there (D3's text-free assistant, with
        the items below a prefix summed rather than maximised)."""
        weights = np.asarray(weights, dtype=np.float64)
        if weights.ndim != 2 or weights.shape[1] != self.n_items:
            raise GenrecError(f"node_mass needs weights of shape (groups, {self.n_items}), got {weights.shape}",
                              "pass one weight per catalogue item for every group")
        weights = weights * self._alive[None, :]
        mass = np.zeros((weights.shape[0], self.n_nodes))
        node = self._item_leaf.copy()
        item = np.arange(self.n_items)
        while node.size:  # add every item's weight to each node on its path, one depth at a time
            np.add.at(mass, (slice(None), node), weights[:, item])
            up = self._parent[node].astype(np.int64)
            keep = up >= 0
            node, item = up[keep], item[keep]
        return mass

    def blocked(self, groups, nodes, overlay: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """True where every live item below ``nodes[j]`` is excluded for ``groups[j]``."""
        groups, nodes = _np64(groups), _np64(nodes)
        keys, counts = overlay
        if not keys.size:
            return np.zeros(nodes.shape, dtype=bool)
        q = groups * self.n_nodes + nodes
        pos = np.minimum(np.searchsorted(keys, q), keys.size - 1)
        excluded = np.where(keys[pos] == q, counts[pos], 0)
        return self._live[nodes] - excluded <= 0

    # ------------------------------------------------------------------ updates

    def snapshot(self) -> dict:
        """A copy of the whole state, for :meth:`restore` to put back if a change of which
        this trie is one part fails later (O(trie size), as ``add``'s concatenations are):
        a trie is its flat arrays and a few sizes, and ``remove``/``add`` change some
        arrays in place, so the arrays are copied."""
        return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in vars(self).items()}

    def restore(self, state: dict) -> None:
        """Put back a :meth:`snapshot` of this trie."""
        vars(self).update(state)

    def remove(self, items) -> None:
        """Make ``items`` unreachable (their paths' live counts fall; nothing is freed)."""
        items = np.unique(_np64(items))
        if items.size and (items.min() < 0 or items.max() >= self.n_items):
            raise GenrecError(f"cannot remove items outside 0..{self.n_items - 1}", "pass trie item indices")
        items = items[self._alive[items]]
        if not items.size:
            return
        self._alive[items] = False
        nodes = self._item_leaf[items]
        while nodes.size:  # one vectorised step up per depth
            np.subtract.at(self._live, nodes, 1)
            nodes = self._parent[nodes].astype(np.int64)
            nodes = nodes[nodes >= 0]

    def add(self, seqs: Sequence[Sequence[int]], items: Sequence[int] | None = None) -> np.ndarray:
        """Add token sequences (each ending with EOS) as items; returns their indices.

        Without ``items`` they get the next free indices. Re-adding a removed item's
        exact tokens revives its leaf. An item already live with the same tokens is an
        error, as in :meth:`build`.
        """
        seqs = [list(map(int, s)) for s in seqs]
        if not seqs:
            return np.zeros(0, dtype=np.int64)
        flat, offsets = _flatten(seqs)
        lengths = np.diff(offsets)
        _check_sequences(flat, offsets, lengths, self.eos_id, self.vocab_size)
        if items is None:
            idx = np.arange(self.n_items, self.n_items + len(seqs), dtype=np.int64)
        else:
            idx = _np64(items)
            if idx.size != len(seqs) or np.unique(idx).size != idx.size or (idx < 0).any():
                raise GenrecError("items must be distinct non-negative indices, one per sequence", "check the item indices")
            slots = idx[idx < self.n_items]
            if self._alive[slots].any():
                raise GenrecError(f"items {slots[self._alive[slots]][:5].tolist()} are already in the trie", "remove them first")
        V = self.vocab_size
        n = len(seqs)
        node = np.zeros(n, dtype=np.int64)
        path = [node.copy()]
        for d in range(int(lengths.max())):
            run = np.flatnonzero(lengths > d)
            tok = flat[offsets[run] + d]
            child = self._find(node[run], tok)
            missing = child < 0
            if missing.any():
                # new edges, deduplicated among the added sequences themselves
                key = node[run][missing] * V + tok[missing]
                uniq, inverse = np.unique(key, return_inverse=True)
                ids = np.arange(self.n_nodes, self.n_nodes + uniq.size, dtype=np.int64)
                self._parent = np.concatenate([self._parent, (uniq // V).astype(np.int32)])
                self._live = np.concatenate([self._live, np.zeros(uniq.size, np.int32)])
                pos = np.searchsorted(self._pkey, uniq)
                self._pkey = np.insert(self._pkey, pos, uniq)
                self._pchild = np.insert(self._pchild, pos, ids.astype(np.int32))
                child[missing] = ids[inverse]
            node[run] = child
            full = np.full(n, -1, dtype=np.int64)
            full[run] = child
            path.append(full)
        leaves = node
        order = np.argsort(leaves, kind="stable")
        dup = np.flatnonzero(leaves[order][1:] == leaves[order][:-1])
        if dup.size:
            raise GenrecError("two added sequences are identical", "titles must tokenise differently")
        known = self.item_at(leaves) >= 0
        if known.any():
            raise GenrecError(
                f"{int(known.sum())} added sequence(s) equal live items, e.g. item {int(self.item_at(leaves[known])[0])}",
                "titles must be unique; remove the old item first",
            )
        # live counts along every added path
        for p in path:
            p = p[p >= 0]
            np.add.at(self._live, p, 1)
        if idx.max() >= self.n_items:
            grow = int(idx.max()) + 1 - self.n_items
            self._alive = np.concatenate([self._alive, np.zeros(grow, bool)])
            self._item_leaf = np.concatenate([self._item_leaf, np.full(grow, -1, np.int64)])
        self._alive[idx] = True
        self._item_leaf[idx] = leaves
        # a revived leaf keeps its slot in the sorted leaf array; new leaves are appended
        # in id order (new nodes have the largest ids, so the array stays sorted)
        pos = np.searchsorted(self._leaf, leaves)
        existing = pos < self._leaf.size
        existing[existing] = self._leaf[pos[existing]] == leaves[existing]
        self._leaf_item[pos[existing]] = idx[existing].astype(np.int32)
        if (~existing).any():
            nl, ni = leaves[~existing], idx[~existing]
            o = np.argsort(nl)
            self._leaf = np.concatenate([self._leaf, nl[o]])
            self._leaf_item = np.concatenate([self._leaf_item, ni[o].astype(np.int32)])
        self.max_depth = max(self.max_depth, int(lengths.max()))
        self._merge_if_needed()
        return idx

    def _find(self, nodes: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Child for each (node, token) whether live or dead; -1 if the edge is absent."""
        key = nodes * self.vocab_size + tokens
        out = np.full(key.shape, -1, dtype=np.int64)
        for keys, childs in ((self._key, self._child), (self._pkey, self._pchild)):
            if keys.size:
                pos = np.minimum(np.searchsorted(keys, key), keys.size - 1)
                hit = keys[pos] == key
                out[hit] = childs[pos[hit]]
        return out

    def compact(self) -> None:
        """Merge the pending buffer now (queries work either way)."""
        self._merge_if_needed(force=True)


def _np64(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.int64).reshape(-1)


def _flatten(seqs: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((t for s in seqs for t in s), dtype=np.int64, count=int(offsets[-1]))
    return flat, offsets


def _check_sequences(flat, offsets, lengths, eos_id: int, vocab_size: int) -> None:
    if (lengths == 0).any():
        raise GenrecError(f"sequence {int(np.flatnonzero(lengths == 0)[0])} is empty", "every item needs at least EOS")
    if flat.size and (flat.min() < 0 or flat.max() >= vocab_size):
        raise GenrecError(f"token ids must lie in 0..{vocab_size - 1}", "build the trie with the model's vocabulary size")
    last = flat[offsets[1:] - 1]
    if (last != eos_id).any():
        bad = int(np.flatnonzero(last != eos_id)[0])
        raise GenrecError(f"sequence {bad} does not end with EOS ({eos_id})", "use codec.response_ids(i)")
    if int((flat == eos_id).sum()) != len(lengths):
        seq_of = np.repeat(np.arange(len(lengths)), lengths)
        inner = (flat == eos_id) & (np.arange(flat.size) != np.repeat(offsets[1:] - 1, lengths))
        bad = int(seq_of[np.flatnonzero(inner)[0]])
        raise GenrecError(f"sequence {bad} contains EOS before its end", "a title must not contain the end-of-sequence text")
