"""Length-grouped batches: random batches whose rows have similar lengths.

As Hugging Face's ``group_by_length``: take the examples in a random order, sort each
window of consecutive ones by length (longest first, stable), cut the window into
batches and shuffle the batches. Each batch is padded only to its own longest row,
while batches stay random. SASRec's epochs (users, window of 8 batches) and GenRec's
optimizer steps (examples, window of 16 steps) both batch this way.
"""

from __future__ import annotations

import numpy as np


def length_grouped(order: np.ndarray, lengths: np.ndarray, size: int, window: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of `size` indices of `order` (a random order of rows; the last batch of
    each window may be shorter), grouped by ``lengths[row]`` within each `window` of
    consecutive rows, in an order shuffled by `rng`."""
    batches: list[np.ndarray] = []
    for start in range(0, len(order), window):
        block = order[start : start + window]
        block = block[np.argsort(-lengths[block], kind="stable")]
        batches += [block[i : i + size] for i in range(0, len(block), size)]
    return [batches[i] for i in rng.permutation(len(batches))]
