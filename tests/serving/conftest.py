"""The serving tests run the tiny model on one thread (fixtures: tests/conftest.py)."""

import pytest


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    yield
