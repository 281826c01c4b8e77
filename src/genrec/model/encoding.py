"""Token-level encoding of prompts and responses.

An item is tokenised once, the same way wherever it appears: as the text that follows a
newline (``tokens("\\n" + name)`` minus ``tokens("\\n")``), which is how the response
starts in every template. The catalogue trie is built from these same ids plus EOS, so
the decoder can only write what training taught (FINDINGS.md: a title after a newline
and after a space tokenise differently; a response written as ``" " + title`` let
digit-led titles take over the beams).

Labels are set by position, never by token id: EOS doubles as the pad token in SmolLM2,
and masking every pad-id token would remove EOS from the loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from ..prompts import EOS, Item, Segment

LossOn = Literal["response", "items", "all"]
IGNORE = -100
ANCHOR = "\n"


def random_id_names(n: int, seed: int) -> list[str]:
    """P5-style item identifiers: distinct random numbers of one length, never sequential.

    Sequential ids leak the answer (consecutive ids follow consecutive interactions);
    one length keeps every identifier the same number of tokens.
    """
    digits = max(4, len(str(n * 10)))
    rng = np.random.default_rng(seed)
    lo, hi = 10 ** (digits - 1), 10**digits
    picks = rng.choice(hi - lo, size=n, replace=False) + lo
    return [str(int(x)) for x in picks]


class Codec:
    """Encodes segments to token ids, caching every item name and text piece.

    With ``item_token_start`` every item is one token of its own (``item_token_start +
    index``, see ``genrec.model.finetune.add_item_tokens``) instead of its name's tokens.
    """

    def __init__(self, tokenizer, names: Sequence[str], item_token_start: int | None = None):
        self.tokenizer = tokenizer
        self.item_token_start = item_token_start
        self.eos_id: int = tokenizer.eos_token_id
        self.pad_id: int = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        with_special = tokenizer("x").input_ids
        plain = tokenizer("x", add_special_tokens=False).input_ids
        # tokens a tokenizer adds before every text (LLaMA-2's <s>); SmolLM2 adds none
        self.prefix: list[int] = with_special[: len(with_special) - len(plain)] if with_special[-len(plain):] == plain else []
        self._anchor = tokenizer(ANCHOR, add_special_tokens=False).input_ids
        self._text: dict[str, list[int]] = {}
        self.names: list[str] = []
        self.item_tokens: list[list[int]] = []
        self.add_names(names)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def vocab_size(self) -> int:
        """Token ids the model can write: the tokenizer's, plus one per item token."""
        if self.item_token_start is None:
            return len(self.tokenizer)
        return self.item_token_start + len(self.names)

    def encode_names(self, names: Sequence[str]) -> list[list[int]]:
        """Token ids of each name as it is written after a newline (no EOS)."""
        if not names:
            return []
        if self.item_token_start is not None:
            first = self.item_token_start + len(self.item_tokens)
            return [[first + j] for j in range(len(names))]
        batch = self.tokenizer([ANCHOR + n for n in names], add_special_tokens=False).input_ids
        k = len(self._anchor)
        out = []
        for name, ids in zip(names, batch, strict=True):
            if ids[:k] == self._anchor and len(ids) > k:
                out.append(ids[k:])
            else:  # the tokenizer merged the newline into the name: encode it alone
                out.append(self.tokenizer(name, add_special_tokens=False).input_ids)
        return out

    def add_names(self, names: Sequence[str]) -> None:
        names = list(names)
        tokens = self.encode_names(names)  # first: a tokenizer error adds nothing
        self.names.extend(names)
        self.item_tokens.extend(tokens)

    def truncate(self, n: int) -> None:
        """Forget the items from index `n` on (how an addition that failed later is undone)."""
        del self.names[n:]
        del self.item_tokens[n:]

    def text(self, s: str) -> list[int]:
        ids = self._text.get(s)
        if ids is None:
            ids = self.tokenizer(s, add_special_tokens=False).input_ids
            self._text[s] = ids
        return ids

    def response_ids(self, index: int) -> list[int]:
        """What the model must write for item `index`: its tokens and EOS."""
        return self.item_tokens[index] + [self.eos_id]

    def segment_length(self, seg: Segment) -> int:
        if seg is EOS:
            return 1
        if isinstance(seg, Item):
            return len(self.item_tokens[seg.index])
        return len(self.text(seg))  # type: ignore[arg-type]

    def length(self, segments: Sequence[Segment]) -> int:
        return len(self.prefix) + sum(self.segment_length(s) for s in segments)

    def encode(
        self,
        prompt: Sequence[Segment],
        response: Sequence[Segment] = (),
        loss_on: LossOn = "response",
    ) -> tuple[list[int], list[int]]:
        """Input ids and labels (IGNORE where no loss is taken).

        ``response``: every token labelled. ``items``: also every item and EOS token in
        the prompt (a sequence objective: each history item is predicted from the ones
        before it). ``all``: every token (the paper's ``train_on_inputs``).
        """
        ids: list[int] = list(self.prefix)
        labels: list[int] = [IGNORE] * len(ids)
        for part, is_response in ((prompt, False), (response, True)):
            for seg in part:
                if seg is EOS:
                    toks = [self.eos_id]
                    learn = is_response or loss_on != "response"
                elif isinstance(seg, Item):
                    toks = self.item_tokens[seg.index]
                    learn = is_response or loss_on != "response"
                else:
                    toks = self.text(seg)  # type: ignore[arg-type]
                    learn = is_response or loss_on == "all"
                ids.extend(toks)
                labels.extend(toks if learn else [IGNORE] * len(toks))
        return ids, labels
