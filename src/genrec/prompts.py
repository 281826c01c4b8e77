"""Prompt templates: a user's items, in order, and the next item as the response.

``alpaca`` is the paper's template (GenRec inherits alpaca-lora's instruction / input /
response layout, with several paraphrased instructions per domain). GenRec joined the
history with a bare comma, which is ambiguous (13.5% of Amazon Toys targets contain a
comma) and named the wrong domain in 19% of Toys prompts; here the instructions are per
domain and the history serialisation is selectable: ``lines`` (one title per line, the
default), ``quoted`` (a quoted list) or ``comma`` (the paper's, for reproduction only).

``compact`` is a short template for CPU budgets: a one-word header, then every title
terminated the same way the response is (by the end-of-sequence token and a newline), so
a title reads identically in the history and in the response and the loss can be taken
on every title of a sequence, not only the last.

``tokens`` is for item tokens (one token per item, ``item_repr=item-token``): the
header, then the items with nothing between them, since each item is a single token and
needs no terminator; the response is still the item and EOS, so the decoders' trie is
the same.

A prompt is a list of segments, text or item, never a single string: the tokeniser
encodes every item the same way wherever it appears (see ``genrec.model.encoding``), so
the catalogue trie and the training data agree token for token.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal

Template = Literal["alpaca", "compact", "tokens"]
Serialisation = Literal["lines", "quoted", "comma"]

#: Marker for "the end-of-sequence token goes here" in segments.
EOS = object()

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task, paired with an input that provides "
    "further context. Write a response that appropriately completes the request."
)

# Paraphrases in the spirit of the paper's instruction list, each naming the right domain.
INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "movies": (
        "Given the movies this user watched, in order, predict the next movie they will watch.",
        "Here is a user's viewing history. Which movie will they watch next?",
        "Based on the films below, in the order they were seen, recommend the next film for this user.",
        "Predict the title of the next movie this viewer is likely to watch.",
        "Using this person's watch history, name the movie they are most likely to see next.",
    ),
    "products": (
        "Given the products this customer bought, in order, predict the next product they will buy.",
        "Here is a customer's purchase history. Which product will they buy next?",
        "Based on the items below, in the order they were purchased, recommend the next product for this customer.",
        "Predict the title of the next product this shopper is likely to purchase.",
        "Using this customer's purchases, name the product they are most likely to buy next.",
    ),
    "games": (
        "Given the games this player played, in order, predict the next game they will play.",
        "Here is a player's game history. Which game will they play next?",
        "Based on the games below, in the order they were played, recommend the next game for this player.",
        "Predict the title of the next game this player is likely to play.",
        "Using this player's history, name the game they are most likely to play next.",
    ),
    "items": (
        "Given the items this user interacted with, in order, predict the next item.",
        "Here is a user's interaction history. Which item comes next?",
        "Based on the items below, in order, recommend the next item for this user.",
        "Predict the title of the next item this user is likely to choose.",
        "Using this user's history, name the item they are most likely to pick next.",
    ),
}

COMPACT_HEADER = {"movies": "Watched:\n", "products": "Bought:\n", "games": "Played:\n", "items": "History:\n"}


@dataclass(frozen=True)
class Item:
    """An item segment: index into the catalogue (or the name list of the run)."""

    index: int


Segment = str | Item | object  # text, an item, or EOS


def example_key(user_id: str, position: int) -> str:
    """The key of the example whose target is `user_id`'s item at `position`: it picks the
    instruction paraphrase, the same in training, validation and `genrec show`."""
    return f"{user_id}:{position}"


@dataclass(frozen=True)
class PromptSpec:
    template: Template = "alpaca"
    serialisation: Serialisation = "lines"
    domain: str = "items"
    #: pick one paraphrase per example (True) or always the first (False)
    vary_instruction: bool = True

    def instruction(self, key: str | None) -> str:
        """The instruction of the example `key` (:func:`example_key`); ``None`` (inference,
        where there is no example) is the first paraphrase, see ``genrec.model.prompting``."""
        options = INSTRUCTIONS.get(self.domain, INSTRUCTIONS["items"])
        if not self.vary_instruction or key is None:
            return options[0]
        # crc32, not hash(): the choice must be the same in every process and run
        return options[zlib.crc32(key.encode()) % len(options)]

    def prompt(self, history: list[int], key: str | None = None) -> list[Segment]:
        """Segments of the prompt for `history` (oldest first), ending where the response starts."""
        if self.template in ("compact", "tokens"):
            segs: list[Segment] = [COMPACT_HEADER.get(self.domain, COMPACT_HEADER["items"])]
            for i in history:
                segs += [Item(i)] if self.template == "tokens" else [Item(i), EOS, "\n"]
            return segs
        segs = [f"{ALPACA_PREAMBLE}\n\n### Instruction:\n{self.instruction(key)}\n\n### Input:\n"]
        if self.serialisation == "lines":
            for n, i in enumerate(history):
                segs += (["\n"] if n else []) + [Item(i)]
        elif self.serialisation == "quoted":
            segs.append('["')
            for n, i in enumerate(history):
                segs += (['", "'] if n else []) + [Item(i)]
            segs.append('"]')
        else:  # the paper's bare comma
            for n, i in enumerate(history):
                segs += ([","] if n else []) + [Item(i)]
        segs.append("\n\n### Response:\n")
        return segs

    def response(self, target: int) -> list[Segment]:
        return [Item(target), EOS]

    def render(self, segments: list[Segment], names: list[str], eos_text: str = "</s>") -> str:
        """A readable string of `segments` (for `genrec show` and free decoding)."""
        out = []
        for s in segments:
            if s is EOS:
                out.append(eos_text)
            elif isinstance(s, Item):
                out.append(names[s.index])
            else:
                out.append(str(s))
        return "".join(out)
