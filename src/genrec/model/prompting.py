"""History → prompt ids: the one rule training, validation, inference and `genrec show` share.

A prompt is fixed by four things, each decided here and nowhere else:

- **the cap**: a history keeps its most recent ``min(cfg.max_history, the dataset's
  max_history)`` items (:func:`history_cap`);
- **the example key** (:func:`genrec.prompts.example_key`, ``"user:position"``), which
  picks the instruction paraphrase when ``vary_instruction`` is on. Serving has no
  example: it asks with the key ``None``, which is the *first* paraphrase, the one every
  prompt uses with ``vary_instruction`` off. A key derived from the history was the
  other choice; it would change the instruction as a user's history grows, so one
  user's lists would move between visits for a reason that is no signal. The first
  paraphrase is also what inference has always used (``crc32("") % n == 0``);
- **the cutoff**: the oldest items are dropped, one at a time and keeping at least one,
  until the example fits ``cutoff_len`` tokens. In training and validation the target is
  known and the example is the prompt plus its response (the paper's rule, as
  alpaca-lora's ``cutoff_len``). At inference the response is what the model is about to
  write, so the prompt keeps what fits beside the *shortest* response in the catalogue:
  the longest prompt training could have shown for this history. With one token per
  item (item tokens, random ids of one length) every response is equally long and the
  three paths agree token for token; with titles the served prompt is the one training
  built for this history with its shortest-titled targets;
- **the codec and the prompt spec** of the run (template, serialisation, domain).

Without a codec (``genrec show`` reads no tokenizer) the cap and the key still apply;
the cutoff, which counts tokens, cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..prompts import PromptSpec, Segment
from .encoding import Codec, LossOn


def history_cap(max_history: int | None, dataset_max_history: int) -> int:
    """Items a history keeps: the run's ``max_history`` when set, never above the dataset's."""
    return min(max_history or dataset_max_history, dataset_max_history)


@dataclass
class PromptBuilder:
    spec: PromptSpec
    #: the most recent items a history keeps (see :func:`history_cap`)
    max_history: int
    codec: Codec | None = None
    #: tokens per example; None: no cutoff (no codec, or a caller that wants none)
    cutoff_len: int | None = None
    _shortest: tuple[int, int] = field(default=(-1, 0), init=False, repr=False)

    @classmethod
    def for_run(cls, codec: Codec | None, dataset, cfg) -> PromptBuilder:
        """The builder of a training config (``genrec.training.TrainConfig``) on `dataset`."""
        spec = PromptSpec(cfg.template, cfg.serialisation, dataset.domain, cfg.vary_instruction)
        return cls(spec, history_cap(cfg.max_history, dataset.manifest["max_history"]), codec, cfg.cutoff_len)

    def history(self, history: Sequence[int]) -> list[int]:
        """The capped history (plain ints, oldest first)."""
        return [int(i) for i in history][-self.max_history :]

    def segments(self, history: Sequence[int], key: str | None = None) -> list[Segment]:
        """Prompt segments of the capped history (no cutoff: for rendering without a tokenizer)."""
        return self.spec.prompt(self.history(history), key)

    def _fit(self, history: list[int], key: str | None, tail: list[Segment], reserve: int) -> list[int]:
        """`history` with the oldest items dropped until prompt + `tail` + `reserve` tokens fit."""
        if self.cutoff_len is None or self.codec is None:
            return history
        while len(history) > 1 and self.codec.length(self.spec.prompt(history, key) + tail) + reserve > self.cutoff_len:
            history = history[1:]
        return history

    def example(self, history: Sequence[int], target: int, key: str | None, loss_on: LossOn = "response") -> tuple[list[int], list[int]]:
        """(input ids, labels) of a training or validation example, cut at ``cutoff_len``."""
        response = self.spec.response(target)
        h = self._fit(self.history(history), key, response, 0)
        ids, labels = self.codec.encode(self.spec.prompt(h, key), response, loss_on)
        if self.cutoff_len is not None:  # a single item longer than the cutoff is cut
            ids, labels = ids[: self.cutoff_len], labels[: self.cutoff_len]
        return ids, labels

    def example_length(self, history: Sequence[int], target: int, key: str | None) -> int:
        """Tokens of the example before the cutoff (for grouping by length)."""
        return self.codec.length(self.spec.prompt(self.history(history), key) + self.spec.response(target))

    def prompt_ids(self, history: Sequence[int], key: str | None = None) -> list[int]:
        """Ids of the prompt the model continues at inference (and when validation decodes)."""
        h = self._fit(self.history(history), key, [], self.shortest_response())
        return self.codec.encode(self.spec.prompt(h, key))[0]

    def shortest_response(self) -> int:
        """Tokens of the shortest response in the catalogue (item and EOS), kept up to date
        as items are added to the codec."""
        seen, shortest = self._shortest
        n = len(self.codec.item_tokens)
        if n != seen:  # items were added (or an addition rolled back: look at them all again)
            start = seen if 0 <= seen < n else 0
            new = min((len(ids) for ids in self.codec.item_tokens[start:]), default=0) + 1
            self._shortest = (n, min(shortest, new) if start else new)
        return self._shortest[1]
