"""Fixtures for the serving tests (see _fixtures.py)."""

from tests.serving._fixtures import one_thread, recommender, run_copy, tiny_run  # noqa: F401
