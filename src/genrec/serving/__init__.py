"""Serving a trained run: the live catalogue and its persisted changes (:mod:`.catalogue`),
request batching (:mod:`.batching`) and the HTTP application (:mod:`.app`, `genrec serve`).

The Python entry point is :class:`genrec.Recommender` (``genrec/api.py``); this package
holds what it and the HTTP layer share. Importing it does not import torch or FastAPI.
"""
